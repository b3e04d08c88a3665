"""Table and show mechanics of the OpenNebula 1.4 CLI (reference §12.1, §12.3).

Pure: every function maps values to lines of text; only ``top`` writes and sleeps, and it takes
both as arguments. ANSI attributes are added only when ``tty`` is true, so pipes and tests see
plain text.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

BOLD = "\33[1m"
UNDERLINE = "\33[4m"
RESTORE = "\33[0m"
CLEAR_SCREEN = "\33[2J\33[H"
TIME_FORMAT = "%m/%d %H:%M:%S"


@dataclass(frozen=True)
class Column:
    """One listing column: ``value(item)`` is printed as ``%<-?>size.sizes`` (truncated)."""

    name: str
    size: int
    value: Callable[[Any], object]
    left: bool = False
    desc: str = ""

    def cell(self, value: object) -> str:
        return format_cell(value, self.size, self.left)


def format_cell(value: object, size: int, left: bool = False) -> str:
    """``"%-size.sizes" % value`` when ``left``, else ``"%size.sizes"``: padded, then cut."""
    text = str(value)[:size]
    return text.ljust(size) if left else text.rjust(size)


def styled(text: str, tty: bool, underline: bool = True) -> str:
    """``text`` in bold (and underlined) when writing to a terminal; unchanged otherwise."""
    if not tty:
        return text
    return BOLD + (UNDERLINE if underline else "") + text + RESTORE


def header_line(columns: Sequence[Column], tty: bool = False) -> str:
    """The column names, formatted like the cells below them, bold+underlined on a TTY."""
    return styled(" ".join(c.cell(c.name) for c in columns), tty)


def row_line(columns: Sequence[Column], item: Any) -> str:
    """One item's cells joined by a single space."""
    return " ".join(c.cell(c.value(item)) for c in columns)


def table_lines(columns: Sequence[Column], items: Iterable[Any], tty: bool = False) -> list[str]:
    """Header then one line per item: what ``<cmd> list`` prints."""
    return [header_line(columns, tty), *(row_line(columns, item) for item in items)]


def select_columns(
    layout: Mapping[str, Column], default: Sequence[str], wanted: str | None = None
) -> list[Column]:
    """The columns named in ``wanted`` (``--list id,name``; case-insensitive), else the default.

    Raises ``ValueError`` naming an unknown column and the valid ones.
    """
    if not wanted:
        return [layout[k] for k in default]
    keys = [w.strip().lower() for w in wanted.split(",") if w.strip()]
    unknown = [k for k in keys if k not in layout]
    if unknown or not keys:
        bad = ",".join(unknown) or repr(wanted)
        raise ValueError(f"unknown column {bad}; valid: {','.join(layout)}")
    return [layout[k] for k in keys]


def columns_help(layout: Mapping[str, Column]) -> str:
    """One ``name (size) => description`` line per column, as 1.4's ``list_options`` printed."""
    return "\n".join(f"{key:>9} ({c.size:2d}) => {c.desc}" for key, c in layout.items())


def str_running_time(stime: int, etime: int, now: float | None = None) -> str:
    """``"DD hh:mm:ss"`` from ``stime`` to ``etime``, or to ``now`` while ``etime`` is 0."""
    end = etime if etime else (time.time() if now is None else now)
    delta = max(0, int(end) - int(stime))
    days, rest = divmod(delta, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{days:02d} {hours:02d}:{minutes:02d}:{seconds:02d}"


def str_time(stamp: int) -> str:
    """A timestamp as ``%m/%d %H:%M:%S`` in local time, or ``-`` when it is 0."""
    if not stamp:
        return "-"
    return time.strftime(TIME_FORMAT, time.localtime(stamp))


def show_header(text: str, tty: bool = False, underline: bool = False) -> str:
    """A section title of a ``show`` output: ``%-80s``, bold on a TTY (the first one underlined)."""
    return styled(f"{text:<80}", tty, underline)


def show_field(label: str, value: object, width: int) -> str:
    """``"%-<width>s: %-20s"``, the line format of ``show`` outputs (trailing blanks kept)."""
    return f"{label:<{width}}: {value!s:<20}"


def template_lines(template: ET.Element | None, flat: bool = False) -> list[str]:
    """A TEMPLATE element as the 1.4 CLI prints it, in document order.

    Single attributes print as ``NAME=value``. Vectors print as ``NAME=[``, then one ``  K=v``
    line per value joined by ``,``, the last closed by `` ]``; ``flat`` puts a vector on one line
    (``NAME=[ K=v, K2=v2 ]``), the variant ``onevnet show`` uses.
    """
    if template is None:
        return []
    enter, tab = ("", " ") if flat else ("\n", "  ")
    lines: list[str] = []
    for attr in template:
        if len(attr) == 0:
            lines.append(f"{attr.tag}={attr.text or ''}")
            continue
        values = ("," + enter).join(f"{tab}{c.tag}={c.text or ''}" for c in attr)
        lines.extend(f"{attr.tag}=[{enter}{values} ]".split("\n"))
    return lines


def top(
    render: Callable[[], list[str]],
    write: Callable[[str], object],
    delay: float = 1.0,
    sleep: Callable[[float], object] = time.sleep,
    rounds: int | None = None,
) -> int:
    """Clear the screen and print ``render()`` every ``delay`` seconds until interrupted.

    ``rounds`` bounds the loop (for tests); Ctrl-C ends it and returns 0. Errors raised by
    ``render`` propagate, so a lost oned ends ``top`` with the usual ``Error:`` line.
    """
    done = 0
    try:
        while rounds is None or done < rounds:
            lines = render()
            write(CLEAR_SCREEN + "".join(line + "\n" for line in lines))
            done += 1
            if rounds is None or done < rounds:
                sleep(delay)
    except KeyboardInterrupt:
        pass
    return 0

"""What oneimage prints: the image list, the show layout and the copy's progress, from oned's XML.

Pure: XML text (or numbers) in, lines out. Columns and the show layout are OpenNebula 2.0's
(reference §12.2); onecloud adds SIZE, PATH, CHECKSUM, the bytes copied while an image is
LOCKED and the ERROR of a failed copy to ``show``. Sizes are binary (KiB, MiB, GiB), as the
repository's SIZE is in MB of 1024 KiB.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from cli.common import int_of, parse_xml, text_of
from cli.table import Column, show_field, show_header, str_time, table_lines, template_lines
from oned.states import IMAGE_SHORT, ImageState, ImageType

MIB = 1024 * 1024
BAR_WIDTH = 20
# NOTE: 2.0's oneimage list prints TYPE in two letters (Image::SHORT_IMAGE_TYPES).
SHORT_TYPES = {ImageType.OS: "OS", ImageType.CDROM: "CD", ImageType.DATABLOCK: "DB"}
LIST_TIME_FORMAT = "%b %d, %Y %H:%M"  # 2.0's REGTIME column ("Jul 11, 2010 15:05")
NO_PROGRESS = "LOCKED, no progress reported yet"  # before the driver's first PROGRESS
OPTIONAL = ("PATH", "CHECKSUM")  # show lines printed only when there is a value


def image_user(img: ET.Element) -> str:
    """The owner's name: USERNAME (2.0), else UNAME (modern)."""
    return text_of(img, "USERNAME") or text_of(img, "UNAME")


def type_name(img: ET.Element, short: bool = False) -> str:
    """OS, CDROM or DATABLOCK (``short``: OS, CD, DB); an unknown number as it is."""
    value = int_of(img, "TYPE", -1)
    if value not in ImageType._value2member_map_:
        return text_of(img, "TYPE")
    return SHORT_TYPES[ImageType(value)] if short else ImageType(value).name


def state_of(img: ET.Element) -> int:
    return int_of(img, "STATE", -1)


def short_state(img: ET.Element) -> str:
    """The STAT column: rdy, used, lock, err... (oned.states.IMAGE_SHORT)."""
    value = state_of(img)
    if value not in ImageState._value2member_map_:
        return "-"
    return IMAGE_SHORT.get(ImageState(value), str(value))


def yes_no(img: ET.Element, name: str) -> str:
    return "Yes" if int_of(img, name) else "No"


def list_regtime(img: ET.Element) -> str:
    stamp = int_of(img, "REGTIME")
    return time.strftime(LIST_TIME_FORMAT, time.localtime(stamp)) if stamp else "-"


# NOTE: 2.0's sizes; PUBLIC and PERSISTENT are 3 wide, so their headers print as PUB and PER.
IMAGE_COLUMNS: dict[str, Column] = {
    "id": Column("ID", 4, lambda i: text_of(i, "ID"), desc="ONE identifier for the Image"),
    "user": Column("USER", 8, image_user, desc="Name of the owner"),
    "name": Column("NAME", 20, lambda i: text_of(i, "NAME"), desc="Name of the Image"),
    "type": Column(
        "TYPE", 4, lambda i: type_name(i, short=True), desc="OS, CD(ROM), D(ATA)B(LOCK)"
    ),
    "regtime": Column("REGTIME", 20, list_regtime, desc="Registration time of the Image"),
    "public": Column("PUBLIC", 3, lambda i: yes_no(i, "PUBLIC"), desc="Whether it is public"),
    "persistent": Column(
        "PERSISTENT", 3, lambda i: yes_no(i, "PERSISTENT"), desc="Whether it is persistent"
    ),
    "stat": Column("STAT", 4, short_state, desc="State of the Image"),
    "vms": Column("#VMS", 5, lambda i: text_of(i, "RUNNING_VMS", "0"), desc="VMs using it"),
}
DEFAULT_COLUMNS = tuple(IMAGE_COLUMNS)


def list_lines(
    pool_xml: str,
    columns: Sequence[Column] | None = None,
    tty: bool = False,
    user: str | None = None,
) -> list[str]:
    """``oneimage list`` for an ``<IMAGE_POOL>``; ``user`` keeps only that owner's images."""
    cols = columns or [IMAGE_COLUMNS[k] for k in DEFAULT_COLUMNS]
    images = [i for i in parse_xml(pool_xml).iter("IMAGE") if user is None or image_user(i) == user]
    return table_lines(cols, images, tty)


def show_lines(image_xml: str, tty: bool = False) -> list[str]:
    """``oneimage show`` for an ``<IMAGE>``: 2.0's fields and onecloud's, then the template."""
    img = parse_xml(image_xml)
    return [
        # NOTE: 2.0 prints "IMAGE  INFORMATION", without the id (its header read image[:id]).
        show_header("IMAGE  INFORMATION", tty, underline=True),
        *(show_field(label, value, 15) for label, value in show_fields(img)),
        "",
        show_header("IMAGE TEMPLATE", tty),
        *template_lines(img.find("TEMPLATE"), flat=True),
    ]


def show_fields(img: ET.Element) -> list[tuple[str, str]]:
    """2.0's ID ... RUNNING_VMS, with PATH, SIZE and CHECKSUM after SOURCE, COPIED while a
    copy reports progress, and the ERROR (the template's) while in ERROR."""
    size = int_of(img, "SIZE")
    fields = [
        ("ID", text_of(img, "ID")),
        ("NAME", text_of(img, "NAME")),
        ("TYPE", type_name(img)),
        ("REGISTER TIME", str_time(int_of(img, "REGTIME"))),
        ("PUBLIC", yes_no(img, "PUBLIC")),
        ("PERSISTENT", yes_no(img, "PERSISTENT")),
        ("SOURCE", text_of(img, "SOURCE")),
        ("PATH", text_of(img, "PATH")),
        ("SIZE", human_bytes(size * MIB) if size else "-"),
        ("CHECKSUM", text_of(img, "CHECKSUM")),
        ("STATE", short_state(img)),
        ("RUNNING_VMS", text_of(img, "RUNNING_VMS", "0")),
    ]
    fields = [(label, value) for label, value in fields if value or label not in OPTIONAL]
    if state_of(img) == ImageState.LOCKED and any(progress_of(img)):
        fields.append(("COPIED", copied_text(*progress_of(img))))
    if state_of(img) == ImageState.ERROR:
        fields.append(("ERROR", error_of(img)))
    return fields


def progress_of(img: ET.Element) -> tuple[int, int]:
    """The bytes copied and to copy (PROGRESS/DONE, PROGRESS/TOTAL); (0, 0) when not known."""
    return int_of(img, "PROGRESS/DONE"), int_of(img, "PROGRESS/TOTAL")


def error_of(img: ET.Element) -> str:
    """The template's ERROR ("<ctime> : <message>"), on one line."""
    return " ".join(text_of(img, "TEMPLATE/ERROR", "no reason recorded").split())


def ready_line(img: ET.Element) -> str:
    """``ttylinux: READY (3.0 GiB, sha256:...)``: what ``create --wait`` ends with."""
    size, checksum = int_of(img, "SIZE"), text_of(img, "CHECKSUM")
    details = [human_bytes(size * MIB)] if size else []
    details += [checksum] if checksum else []
    value = state_of(img)
    state = ImageState(value).name if value in ImageState._value2member_map_ else str(value)
    suffix = f" ({', '.join(details)})" if details else ""
    return f"{text_of(img, 'NAME')}: {state}{suffix}"


# ---------------------------------------------------------------------------- progress


def human_bytes(count: float) -> str:
    """``512 B``, ``1.4 GiB``, ``210 MiB``: one decimal below 10, none above."""
    value, unit = float(count), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    if unit == "B":
        return f"{int(value)} B"
    return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"


def copied_text(done: int, total: int) -> str:
    """``1.4 GiB of 3.0 GiB (45%)`` (``show``'s COPIED); without a total, the bytes done."""
    if total <= 0:
        return human_bytes(done)
    return f"{human_bytes(done)} of {human_bytes(total)} ({percent(done, total)}%)"


def percent(done: int, total: int) -> int:
    return max(0, min(100, done * 100 // total)) if total > 0 else 0


def progress_text(done: int, total: int, rate: float | None, bar: bool = True) -> str:
    """``[#########-----------]  45%  1.4 GiB / 3.0 GiB  210 MiB/s`` (``bar=False``: from the
    percentage on); the rate is left out until it is known."""
    if done <= 0 and total <= 0:
        return NO_PROGRESS
    parts = []
    if total > 0:
        filled = BAR_WIDTH * percent(done, total) // 100
        head = f"{percent(done, total):3d}%"
        if bar:
            head = "[" + "#" * filled + "-" * (BAR_WIDTH - filled) + "] " + head
        parts += [head, f"{human_bytes(done)} / {human_bytes(total)}"]
    else:
        parts.append(human_bytes(done))
    if rate is not None:
        parts.append(f"{human_bytes(rate)}/s")
    return "  ".join(parts)


class Meter:
    """The copy's rate over the last ``window`` seconds of (time, bytes done) samples."""

    def __init__(self, window: float = 3.0):
        self.window = window
        self.samples: list[tuple[float, int]] = []

    def add(self, now: float, done: int) -> float | None:
        """Record a sample; the rate in bytes/s, or None before two samples apart in time."""
        if self.samples and done < self.samples[-1][1]:
            self.samples.clear()  # a copy started again from the beginning
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.pop(0)
        first_time, first_done = self.samples[0]
        if now - first_time <= 0:
            return None
        return (done - first_done) / (now - first_time)

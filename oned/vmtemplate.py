"""Checks on a VM template at allocate time; pure.

OpenNebula 1.4 stores almost anything; onecloud refuses values that could only fail later
(no MEMORY, a MEMORY that is not a number, a DISK that is not a vector, a REQUIREMENTS or RANK
that does not parse), naming the attribute.

Every template a user sends (VMs at allocate and update, networks) is also bounded, so that
parsing and checking it stays cheap and no value can carry a line into a driver:

- ``MAX_TEMPLATE_SIZE``: 128 KiB of text, checked before parsing (``check_size``). The worst
  case measured, 128 KiB of one-character attributes, parses in about 27 ms (1 MiB: 200 ms).
- ``MAX_ATTRIBUTES``: 4,096 attributes, each single attribute and each vector key counting one.
- ``MAX_VALUE_LENGTH``: 64 KiB in one value (CONTEXT carries ssh keys and base64 user data).
- No control character in any name or value: C0 (newline, tab, NUL...), DEL, C1, and the
  Unicode line and paragraph separators, which Python's ``splitlines`` also breaks on.
- ``MAX_MEMORY`` (16 TiB in MB), ``MAX_CPU`` and ``MAX_VCPU`` (1,024) bound a VM's capacity.
"""

from __future__ import annotations

import re

from oned.expr import ExpressionError, parse_rank, parse_requirements
from oned.template import Template

VECTORS = ("OS", "FEATURES", "DISK", "NIC", "INPUT", "GRAPHICS", "RAW", "CONTEXT")
_VECTORS = frozenset(VECTORS)
MAX_TEMPLATE_SIZE = 128 * 1024
MAX_ATTRIBUTES = 4096
MAX_VALUE_LENGTH = 64 * 1024
MAX_MEMORY = 16 * 1024 * 1024  # MB: 16 TiB
MAX_CPU = 1024
MAX_VCPU = 1024
_INT = re.compile(r"\d+")
_NUMBER = re.compile(r"\d+(\.\d*)?|\.\d+")
_NAME = re.compile(r"[A-Za-z0-9_]+")
_NAMES = re.compile(r"[A-Za-z0-9_]+(?: [A-Za-z0-9_]+)*")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def check_size(text: str) -> str | None:
    """Why ``text`` is too long to parse, or None; before parsing, so a huge text costs nothing."""
    if len(text) > MAX_TEMPLATE_SIZE:
        return f"template of {len(text)} characters exceeds MAX_TEMPLATE_SIZE ({MAX_TEMPLATE_SIZE})"
    return None


def check_bounds(tmpl: Template) -> list[str]:
    """Too many attributes, a value too long, a bad name or a control character, by attribute."""
    names: list[str] = []
    values: list[str] = []
    for name, value in tmpl:
        names.append(name)
        if isinstance(value, str):
            values.append(value)
        else:
            names += value
            values += value.values()
    count = len(values)
    if count > MAX_ATTRIBUTES:
        return [f"{count} attributes exceed MAX_ATTRIBUTES ({MAX_ATTRIBUTES})"]
    # One pass over everything first: the common, clean template costs a few microseconds (and
    # when all the values together fit in MAX_VALUE_LENGTH, each one does).
    joined = "".join(values)
    if (
        _NAMES.fullmatch(" ".join(names))
        and not _CONTROL.search(joined)
        and (len(joined) <= MAX_VALUE_LENGTH or max(map(len, values)) <= MAX_VALUE_LENGTH)
    ):
        return []
    return _each_bad_value(tmpl)


def _each_bad_value(tmpl: Template) -> list[str]:
    problems = []
    for name, value in tmpl:
        pairs = [(name, value)] if isinstance(value, str) else value.items()
        prefix = "" if isinstance(value, str) else f"{name}/"
        if prefix and not _NAME.fullmatch(name):
            problems.append(f"{name!r} is not an attribute name ([A-Za-z0-9_]+)")
        for key, item in pairs:
            problem = _bad_value(prefix + key, key, item)
            if problem:
                problems.append(problem)
    return problems


def _bad_value(attribute: str, key: str, value: str) -> str | None:
    if not _NAME.fullmatch(key):
        return f"{attribute!r} is not an attribute name ([A-Za-z0-9_]+)"
    if len(value) > MAX_VALUE_LENGTH:
        return f"{attribute} is longer than MAX_VALUE_LENGTH ({MAX_VALUE_LENGTH} characters)"
    control = _CONTROL.search(value)
    if control:
        return f"{attribute} contains a control character ({repr(control.group())[1:-1]})"
    return None


def check_vm_template(tmpl: Template) -> list[str]:
    """Every problem found, each naming the attribute; empty when the template is acceptable."""
    problems = [f"{name} must be a vector attribute ({name} = [ ... ])" for name in _scalars(tmpl)]
    problems += _numbers(tmpl)
    name = tmpl.get_str("NAME")
    if name is not None and (not name.strip() or "\n" in name or len(name) > 128):
        problems.append(f'NAME = "{name}": must be 1-128 characters on one line')
    problems += _expressions(tmpl)
    return problems


def check_memory_given(tmpl: Template) -> list[str]:
    """A VM must say its MEMORY: what allocate adds to ``check_vm_template`` (not update).

    NOTE: OpenNebula refuses a VM without MEMORY ("MEMORY attribute must be a positive integer
    value"); 1.4 took it and the scheduler placed a VM of 0 MB anywhere.
    """
    if tmpl.get("MEMORY") is None:
        return ["MEMORY is missing: a VM needs MEMORY, a positive integer (MB)"]
    return []


def _expressions(tmpl: Template) -> list[str]:
    """REQUIREMENTS and RANK must parse, so a VM never waits forever on a typo."""
    problems = []
    for attr, compile_expression in (("REQUIREMENTS", parse_requirements), ("RANK", parse_rank)):
        value = tmpl.get(attr)
        if isinstance(value, dict):
            problems.append(f"{attr} must be a single attribute, not a vector")
            continue
        try:
            compile_expression(value or "")
        except ExpressionError as e:
            problems.append(f'{attr} = "{value}": {e}')
    return problems


def _scalars(tmpl: Template) -> list[str]:
    """The VECTORS given as single attributes, sorted: one pass over the template."""
    return sorted(
        {name for name, value in tmpl if name in _VECTORS and not isinstance(value, dict)}
    )


# (attribute, its pattern, what it must be, its bound)
_NUMBERS = (
    ("MEMORY", _INT, "a positive integer (MB)", MAX_MEMORY),
    ("VCPU", _INT, "a positive integer", MAX_VCPU),
    ("CPU", _NUMBER, "a positive number (1 = one physical CPU)", MAX_CPU),
)


def _numbers(tmpl: Template) -> list[str]:
    problems = []
    for attr, pattern, what, most in _NUMBERS:
        value = tmpl.get(attr)
        if value is None:
            continue
        if not isinstance(value, str) or not pattern.fullmatch(value.strip()):
            problems.append(f'{attr} = "{_show(value)}": must be {what}')
            continue
        number = float(value)
        if number <= 0:
            problems.append(f'{attr} = "{value}": must be {what}')
        elif number > most:
            problems.append(f'{attr} = "{value}": must be at most {most}')
    return problems


def _show(value: object) -> str:
    return value if isinstance(value, str) else "[...]"

"""Checks on a VM template at allocate time; pure.

OpenNebula 1.4 stores almost anything; onecloud refuses values that could only fail later
(a MEMORY that is not a number, a DISK that is not a vector, a REQUIREMENTS or RANK that does
not parse), naming the attribute.
"""

from __future__ import annotations

import re

from oned.expr import ExpressionError, parse_rank, parse_requirements
from oned.template import Template

VECTORS = ("OS", "FEATURES", "DISK", "NIC", "INPUT", "GRAPHICS", "RAW", "CONTEXT")
_INT = re.compile(r"\d+")
_NUMBER = re.compile(r"\d+(\.\d*)?|\.\d+")


def check_vm_template(tmpl: Template) -> list[str]:
    """Every problem found, each naming the attribute; empty when the template is acceptable."""
    problems = [f"{name} must be a vector attribute ({name} = [ ... ])" for name in _scalars(tmpl)]
    problems += _numbers(tmpl)
    name = tmpl.get_str("NAME")
    if name is not None and (not name.strip() or "\n" in name or len(name) > 128):
        problems.append(f'NAME = "{name}": must be 1-128 characters on one line')
    problems += _expressions(tmpl)
    return problems


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
    return sorted(
        {name for name in VECTORS for value in tmpl.get_all(name) if not isinstance(value, dict)}
    )


def _numbers(tmpl: Template) -> list[str]:
    problems = []
    for attr, pattern, what in (
        ("MEMORY", _INT, "a positive integer (MB)"),
        ("VCPU", _INT, "a positive integer"),
        ("CPU", _NUMBER, "a positive number (1 = one physical CPU)"),
    ):
        value = tmpl.get(attr)
        if value is None:
            continue
        if not isinstance(value, str) or not pattern.fullmatch(value.strip()):
            problems.append(f'{attr} = "{_show(value)}": must be {what}')
        elif float(value) <= 0:
            problems.append(f'{attr} = "{value}": must be {what}')
    return problems


def _show(value: object) -> str:
    return value if isinstance(value, str) else "[...]"

"""What REQUIREMENTS and RANK compile to: comparison nodes, ``!``, ``&``/``|`` chains and
arithmetic, each compiled to a closure over a host's attributes; ``why`` names the comparisons
that decide a REQUIREMENTS. Evaluating never raises. oned/expr.py parses the text into these.
Pure module: no I/O.
"""

from __future__ import annotations

import fnmatch
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Attributes = Mapping[str, object]
Predicate = Callable[[Attributes], bool]
Number = Callable[[Attributes], float]

# NOTE: OpenNebula reads a numeric attribute with `istringstream >>`: the leading number counts,
# anything else (or nothing) reads as 0.
_LEADING_NUMBER = re.compile(r"[ \t\n]*[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_NUMERIC_OPS = {"=": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt}


def number_of(value: object) -> float:
    """An attribute value as a float: its leading number, 0 when it has none, is missing or is
    not finite (an int past float's range too: it would overflow the arithmetic)."""
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:
            return 0.0
        return number if math.isfinite(number) else 0.0
    if isinstance(value, str):
        m = _LEADING_NUMBER.match(value)
        if m:
            number = float(m.group())
            return number if math.isfinite(number) else 0.0
    return 0.0


def _text_of(value: object) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


@dataclass(frozen=True)
class Compare:
    """``ATTR op value``; ``text`` is its source, for explanations."""

    attr: str
    op: str
    value: float | str
    text: str

    def compile(self) -> Predicate:
        attr = self.attr
        if isinstance(self.value, str):
            match = re.compile(fnmatch.translate(self.value)).match
            want = self.op == "="

            # NOTE: an empty or missing attribute is false for both = and != (OpenNebula).
            def glob(attrs: Attributes) -> bool:
                text = _text_of(attrs.get(attr))
                return bool(text) and (match(text) is not None) == want

            return glob
        compare, limit = _NUMERIC_OPS[self.op], self.value
        return lambda attrs: compare(number_of(attrs.get(attr)), limit)

    def describe(self, attrs: Attributes, value: bool) -> str:
        found = attrs.get(self.attr)
        if found is None:
            shown = "not set"
        elif isinstance(self.value, str):
            shown = f'"{_text_of(found)}"'
        else:
            shown = found if isinstance(found, str) else f"{number_of(found):g}"
        return f"{self.text} is {'true' if value else 'false'} ({self.attr} is {shown})"


@dataclass(frozen=True)
class Not:
    operand: Node

    def compile(self) -> Predicate:
        inner = self.operand.compile()
        return lambda attrs: not inner(attrs)


@dataclass(frozen=True)
class Chain:
    """``a op b op c ...`` (``&`` or ``|``), folded from the left."""

    operands: tuple[Node, ...]
    ops: tuple[str, ...]  # ops[i] joins operands[i + 1] to what precedes it

    def compile(self) -> Predicate:
        first = self.operands[0].compile()
        rest = [
            (op == "&", node.compile())
            for op, node in zip(self.ops, self.operands[1:], strict=True)
        ]

        def chain(attrs: Attributes) -> bool:
            value = first(attrs)
            for is_and, operand in rest:
                if value != is_and:  # true | x, false & x: already decided
                    continue
                value = operand(attrs)
            return value

        return chain


Node = Compare | Not | Chain


def why(node: Node, attrs: Attributes, value: bool) -> list[str]:
    """The comparisons that make ``node`` evaluate to ``value`` (``expr.explain``'s reasons)."""
    if isinstance(node, Compare):
        return [node.describe(attrs, value)]
    if isinstance(node, Not):
        return why(node.operand, attrs, not value)
    prefix, parts = [node.operands[0].compile()(attrs)], []
    for op, operand in zip(node.ops, node.operands[1:], strict=True):
        step = operand.compile()(attrs)
        prefix.append(prefix[-1] and step if op == "&" else prefix[-1] or step)
    i = len(node.operands) - 1
    while i >= 0:
        decisive = i > 0 and (node.ops[i - 1] == "&") != value  # false & x, true | x
        if decisive and prefix[i - 1] == value:
            i -= 1
            continue
        parts.append(why(node.operands[i], attrs, value))
        i = -1 if decisive else i - 1
    return [reason for part in reversed(parts) for reason in part]


def _divide(a: float, b: float) -> float:
    """NOTE: a division by zero gives 0 (OpenNebula's float division gives inf)."""
    return a / b if b else 0.0


_ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": _divide}


def arithmetic(first: Number, rest: list[tuple[str, Number]]) -> Number:
    """``first op1 v1 op2 v2 ...`` folded from the left, without recursion."""
    steps = [(_ARITHMETIC[op], value) for op, value in rest]

    def fold(attrs: Attributes) -> float:
        result = first(attrs)
        for apply, value in steps:
            result = apply(result, value(attrs))
        return result

    return fold

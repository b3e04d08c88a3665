"""REQUIREMENTS and RANK: the scheduler's host-matching expression language (reference §7.3).

Compiled once (and cached by text) into a tree of closures (oned/expr_nodes.py), evaluated many
times against a host's attributes: UPPER-case names to strings (monitored template) or numbers
(HOST_SHARE). Pure module: no I/O.

REQUIREMENTS is boolean: ``ATTR = n``, ``ATTR != n``, ``ATTR > n``, ``ATTR < n`` on numbers,
``ATTR = "glob"`` / ``ATTR != "glob"`` on strings (shell globbing: ``*``, ``?``, ``[..]``), combined
with ``&``, ``|``, ``!`` and parentheses. RANK is arithmetic: ``+ - * /``, unary minus,
parentheses, numbers and attribute names.

Compiling raises ``ExpressionError`` (a ValueError) and nothing else, for any text: deeper
parentheses than ``MAX_DEPTH``, texts longer than ``MAX_LENGTH`` and quoted globs longer than
``MAX_STRING`` are refused. Evaluating never raises. bench/fuzz.py checks both.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from oned.expr_nodes import (
    Attributes,
    Chain,
    Compare,
    Node,
    Not,
    Number,
    Predicate,
    arithmetic,
    number_of,
    why,
)

# Re-exported: the scheduler and the tests read attributes as numbers with oned.expr.number_of.
__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_STRING",
    "Attributes",
    "ExpressionError",
    "Rank",
    "Requirement",
    "explain",
    "number_of",
    "parse_rank",
    "parse_requirements",
]

_T = TypeVar("_T")
MAX_DEPTH = 64  # nested parentheses; deeper input is refused rather than overflowing the stack
# Characters in one expression: 3,000 host names ORed together fit; a megabyte of "!" would take
# the scheduler seconds to compile.
MAX_LENGTH = 65536
# Characters in one quoted glob: compiling "*a*a..." costs ~30 us per character.
MAX_STRING = 4096

_TOKEN = re.compile(
    r"(?P<ws>[ \t\r\n]+)|(?P<num>[0-9]+(?:\.[0-9]+)?)|(?P<id>[A-Za-z][A-Za-z0-9_]*)"
    r'|(?P<str>"[^"]*")|(?P<op>[!&|=><()*+/^-])'
)
_NO_GE = " (there is no >= or <=: write ! (A < n) for A >= n)"


class ExpressionError(ValueError):
    """An expression did not parse: ``position`` is the 1-based column of ``token``."""

    def __init__(self, message: str, position: int, token: str = ""):
        super().__init__(f"syntax error at column {position}: {message}")
        self.message = message
        self.position = position
        self.token = token


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # num, id, str, op or end
    text: str
    start: int  # 0-based offset in the expression
    end: int


def _tokenize(text: str) -> list[_Token]:
    """The tokens of ``text``, blanks dropped, ending with an ``end`` token."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"longer than {MAX_LENGTH} characters", MAX_LENGTH + 1)
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            what = "unterminated string" if text[pos] == '"' else f"unexpected {text[pos]!r}"
            raise ExpressionError(what, pos + 1, text[pos])
        if m.lastgroup != "ws":
            tokens.append(_Token(m.lastgroup or "", m.group(), pos, m.end()))
        pos = m.end()
    tokens.append(_Token("end", "", len(text), len(text)))
    return tokens


class _Parser:
    """Recursive descent over the tokens; ``depth`` counts open parentheses."""

    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def fail(self, token: _Token, expecting: str = "", hint: str = "") -> ExpressionError:
        what = "end of expression" if token.kind == "end" else f"'{token.text}'"
        message = f"unexpected {what}" + (f", expecting {expecting}" if expecting else "")
        return ExpressionError(message + hint, token.start + 1, token.text)

    def expect_end(self) -> None:
        if self.peek().kind != "end":
            raise self.fail(self.peek(), "an operator or the end")

    def skip(self, symbol: str) -> int:
        """Take every ``symbol`` token ahead; how many there were."""
        count = 0
        while self.peek().text == symbol:
            self.take()
            count += 1
        return count

    def parenthesized(self, inner: Callable[[], _T]) -> _T:
        """``( inner )``, at most MAX_DEPTH deep."""
        token = self.take()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"more than {MAX_DEPTH} nested '('", token.start + 1, "(")
        value = inner()
        if self.peek().text != ")":
            raise self.fail(self.peek(), "')'")
        self.take()
        self.depth -= 1
        return value

    # REQUIREMENTS: chain := unary (('&' | '|') unary)* ; unary := '!'* primary
    # NOTE: as in OpenNebula's grammar, ! & | share one precedence level, left-associative:
    # a | b & c means (a | b) & c.
    def chain(self) -> Node:
        operands, ops = [self.unary()], []
        while self.peek().text in ("&", "|"):
            ops.append(self.take().text)
            operands.append(self.unary())
        return operands[0] if len(operands) == 1 else Chain(tuple(operands), tuple(ops))

    def unary(self) -> Node:
        negations = self.skip("!")
        node = self.primary()
        return Not(node) if negations % 2 else node

    def primary(self) -> Node:
        token = self.peek()
        if token.text == "(":
            return self.parenthesized(self.chain)
        if token.kind != "id":
            raise self.fail(token, "an attribute name, '!' or '('")
        return self.comparison()

    def comparison(self) -> Compare:
        attr = self.take()
        op = self.take()
        if op.text == "!" and self.peek().text == "=":
            self.take()
            op = _Token("op", "!=", op.start, op.end)
        elif op.text not in ("=", ">", "<"):
            raise self.fail(op, "=, !=, > or <")
        value = self.literal(op.text)
        text = self.text[attr.start : self.tokens[self.i - 1].end]
        return Compare(attr.text.upper(), op.text, value, text)

    def literal(self, op: str) -> float | str:
        token = self.peek()
        if token.kind in ("str", "id") and op in ("=", "!="):
            if len(token.text) > MAX_STRING + 2:
                raise ExpressionError(f"string longer than {MAX_STRING}", token.start + 1, "")
            self.take()
            return token.text[1:-1] if token.kind == "str" else token.text
        sign = -1.0 if token.text == "-" else 1.0
        if sign < 0:
            self.take()
            token = self.peek()
        if token.kind != "num":
            hint = _NO_GE if token.text == "=" else ""
            raise self.fail(token, "a number" if op in "<>" else "a number or a string", hint)
        self.take()
        return sign * float(token.text)

    # RANK: sum := term (('+'|'-') term)* ; term := factor (('*'|'/') factor)* ;
    #       factor := '-'* (number | attribute | '(' sum ')')
    def sum(self) -> Number:
        return self._fold(self.term, "+-")

    def term(self) -> Number:
        return self._fold(self.factor, "*/")

    def _fold(self, operand: Callable[[], Number], ops: str) -> Number:
        first, rest = operand(), []
        while self.peek().kind == "op" and self.peek().text in ops:
            op = self.take().text
            rest.append((op, operand()))
        return arithmetic(first, rest) if rest else first

    def factor(self) -> Number:
        negations = self.skip("-")
        value = self.atom()
        return (lambda attrs: -value(attrs)) if negations % 2 else value

    def atom(self) -> Number:
        token = self.peek()
        if token.text == "(":
            return self.parenthesized(self.sum)
        self.take()
        if token.kind == "num":
            constant = float(token.text)
            return lambda attrs: constant
        if token.kind == "id":
            name = token.text.upper()
            return lambda attrs: number_of(attrs.get(name))
        raise self.fail(token, "a number, an attribute name, '-' or '('")


@dataclass(frozen=True, eq=False)
class Requirement:
    """A compiled REQUIREMENTS: ``evaluate(attrs)`` says whether a host fits; never raises."""

    text: str
    evaluate: Predicate
    node: Node | None

    def __call__(self, attrs: Attributes) -> bool:
        return self.evaluate(attrs)


@dataclass(frozen=True, eq=False)
class Rank:
    """A compiled RANK: ``evaluate(attrs)`` is a finite float; an empty expression is 0."""

    text: str
    evaluate: Number

    def __call__(self, attrs: Attributes) -> float:
        return self.evaluate(attrs)


@functools.lru_cache(maxsize=1024)
def parse_requirements(text: str) -> Requirement:
    """Compile a REQUIREMENTS expression, or raise ``ExpressionError`` naming the column."""
    parser = _Parser(text)
    if parser.peek().kind == "end":
        return Requirement(text, lambda attrs: True, None)
    node = parser.chain()
    parser.expect_end()
    return Requirement(text, node.compile(), node)


@functools.lru_cache(maxsize=1024)
def parse_rank(text: str) -> Rank:
    """Compile a RANK expression, or raise ``ExpressionError`` naming the column."""
    parser = _Parser(text)
    if parser.peek().kind == "end":
        return Rank(text, lambda attrs: 0.0)
    value = parser.sum()
    parser.expect_end()

    def finite(attrs: Attributes) -> float:
        result = value(attrs)
        return result if math.isfinite(result) else 0.0

    return Rank(text, finite)


def explain(requirement: Requirement, attrs: Attributes, most: int = 3) -> str:
    """Why ``requirement`` is false (or true) for ``attrs``, naming at most ``most`` comparisons.

    For example ``HOSTNAME = "host09" is false (HOSTNAME is "host02")``.
    """
    if requirement.node is None:
        return "no REQUIREMENTS (always true)"
    reasons = why(requirement.node, attrs, requirement.evaluate(attrs))
    shown = "; ".join(reasons[:most])
    return shown + (f"; and {len(reasons) - most} more" if len(reasons) > most else "")

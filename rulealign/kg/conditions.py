"""What a rule's conditions and exceptions admit, in forms that can be compared.

Numeric conditions (``>``, ``>=``, ``<``, ``<=``, ``==`` a number) become an
:class:`Interval` per term; categorical ones (``==``, ``!=``, ``in``, ``not in`` anything
else) a :class:`ValueSet` per term; conditions and exceptions in words are compared as
sentences, case, spacing and end punctuation aside. The conflict search asks whether two
rules' conditions can hold at once (intersections) and whether one rule's cases lie inside
another's (containment).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rulealign.compiler.models import Condition, Rule


@dataclass(frozen=True)
class Interval:
    lo: float
    hi: float
    lo_open: bool
    hi_open: bool

    def intersect(self, other: Interval) -> Interval | None:
        if self.lo > other.lo or (self.lo == other.lo and self.lo_open):
            lo, lo_open = self.lo, self.lo_open
        else:
            lo, lo_open = other.lo, other.lo_open
        if self.hi < other.hi or (self.hi == other.hi and self.hi_open):
            hi, hi_open = self.hi, self.hi_open
        else:
            hi, hi_open = other.hi, other.hi_open
        if lo > hi or (lo == hi and (lo_open or hi_open)):
            return None
        return Interval(lo, hi, lo_open, hi_open)

    def contains(self, other: Interval) -> bool:
        return self.intersect(other) == other

    def describe(self, unit: str | None) -> str:
        u = f" {unit}" if unit else ""

        def fmt(v: float) -> str:
            return str(int(v)) if float(v).is_integer() else str(v)

        if self.lo == self.hi:
            return f"= {fmt(self.lo)}{u}"
        if self.lo == -math.inf:
            return f"{'<' if self.hi_open else '<='} {fmt(self.hi)}{u}"
        if self.hi == math.inf:
            return f"{'>' if self.lo_open else '>='} {fmt(self.lo)}{u}"
        return f"{'(' if self.lo_open else '['}{fmt(self.lo)}, {fmt(self.hi)}{')' if self.hi_open else ']'}{u}"


FULL = Interval(-math.inf, math.inf, True, True)


def interval_of(cond: Condition) -> Interval | None:
    """The values a structured numeric condition admits; None when not an interval."""
    if not cond.is_structured or isinstance(cond.value, bool) or not isinstance(cond.value, (int, float)):
        return None
    v = float(cond.value)
    op = cond.op.value if cond.op else ""
    if op == ">":
        return Interval(v, math.inf, True, True)
    if op == ">=":
        return Interval(v, math.inf, False, True)
    if op == "<":
        return Interval(-math.inf, v, True, True)
    if op == "<=":
        return Interval(-math.inf, v, True, False)
    if op == "==":
        return Interval(v, v, False, False)
    return None


Intervals = dict[str, tuple[Interval, str | None]]  # term -> the values allowed, unit


def intervals_of(rule: Rule) -> Intervals:
    out: Intervals = {}
    for c in rule.conditions:
        iv = interval_of(c)
        if iv is not None and c.term:
            prev = out.get(c.term)
            merged = iv if prev is None else prev[0].intersect(iv)
            out[c.term] = (merged or Interval(0, 0, True, True), c.unit)
    return out


def said(text: str) -> str:
    """A condition or exception sentence as compared: case, spacing and end punctuation aside."""
    return " ".join(text.lower().split()).rstrip(".;:!")


def _canonical(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lower()


@dataclass(frozen=True)
class ValueSet:
    """The values a term may take under a rule's categorical conditions (``==``, ``!=``,
    ``in``, ``not in`` on anything but a numeric interval): ``allowed`` (None: any value)
    less ``banned``."""

    allowed: frozenset[str] | None = None
    banned: frozenset[str] = frozenset()

    @classmethod
    def of(cls, cond: Condition) -> ValueSet:
        values = cond.value if isinstance(cond.value, list) else [cond.value]
        vs = frozenset(_canonical(v) for v in values)
        op = cond.op.value if cond.op else ""
        return cls(allowed=vs) if op in ("==", "in") else cls(banned=vs)

    def intersect(self, other: ValueSet) -> ValueSet:
        if self.allowed is None or other.allowed is None:
            allowed = self.allowed if other.allowed is None else other.allowed
        else:
            allowed = self.allowed & other.allowed
        banned = self.banned | other.banned
        return ValueSet(None if allowed is None else allowed - banned, banned)

    @property
    def empty(self) -> bool:
        return self.allowed is not None and not (self.allowed - self.banned)

    def contains(self, other: ValueSet) -> bool:
        """Whether every value ``other`` admits, this admits too."""
        if other.allowed is not None:
            admitted = other.allowed - other.banned
            return not (admitted & self.banned) if self.allowed is None else admitted <= self.allowed - self.banned
        return self.allowed is None and self.banned <= other.banned

    def describe(self) -> str:
        if self.allowed is not None:
            values = sorted(self.allowed - self.banned)
            return f"= {values[0]}" if len(values) == 1 else "in [" + ", ".join(values) + "]"
        return "not in [" + ", ".join(sorted(self.banned)) + "]"


def value_sets_of(rule: Rule) -> dict[str, ValueSet]:
    """term -> the values the rule's categorical conditions on it admit."""
    out: dict[str, ValueSet] = {}
    for c in rule.conditions:
        if c.is_structured and c.term and interval_of(c) is None:
            vs = ValueSet.of(c)
            out[c.term] = out[c.term].intersect(vs) if c.term in out else vs
    return out


def texts_of(rule: Rule) -> frozenset[str]:
    return frozenset(said(c.text) for c in rule.conditions if not c.is_structured and c.text)


def exceptions_of(rule: Rule) -> frozenset[str]:
    return frozenset(f"rule:{e.rule}" if e.rule else said(e.text or "") for e in rule.exceptions)

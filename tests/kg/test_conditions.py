"""The condition algebra the conflict search rests on: intervals and categorical values."""

from __future__ import annotations

import math

import pytest

from rulealign.compiler.models import Condition, Operator
from rulealign.kg.conditions import Interval, ValueSet, interval_of, said


def values(op: Operator, value: object) -> ValueSet:
    return ValueSet.of(Condition(term="tier", op=op, value=value))


ANY_BUT_GOLD = values(Operator.NE, "Gold")
ANY_BUT_GOLD_SILVER = values(Operator.NOT_IN, ["gold", "silver"])
GOLD = values(Operator.EQ, "gold")
SILVER = values(Operator.EQ, "silver")
GOLD_SILVER = values(Operator.IN, ["gold", "silver"])


@pytest.mark.parametrize(("wide", "narrow", "expected"), [
    (ANY_BUT_GOLD, SILVER, True),
    (ANY_BUT_GOLD, GOLD, False),
    (ANY_BUT_GOLD, ANY_BUT_GOLD_SILVER, True),
    (ANY_BUT_GOLD_SILVER, ANY_BUT_GOLD, False),
    (GOLD_SILVER, GOLD, True),
    (GOLD, GOLD_SILVER, False),
    (GOLD_SILVER, ANY_BUT_GOLD, False),
    (ValueSet(), ANY_BUT_GOLD, True),
])
def test_value_set_containment(wide: ValueSet, narrow: ValueSet, expected: bool) -> None:
    assert wide.contains(narrow) is expected


def test_value_sets_meet_or_exclude_each_other() -> None:
    assert GOLD.intersect(SILVER).empty
    assert GOLD.intersect(ANY_BUT_GOLD).empty  # values compare without case
    assert GOLD_SILVER.intersect(ANY_BUT_GOLD).describe() == "= silver"
    assert not ANY_BUT_GOLD.intersect(ANY_BUT_GOLD_SILVER).empty


def test_numeric_conditions_become_intervals() -> None:
    def iv(op: Operator, v: float) -> Interval | None:
        return interval_of(Condition(term="amount", op=op, value=v))

    assert iv(Operator.GT, 100) == Interval(100, math.inf, True, True)
    assert iv(Operator.LE, 5) == Interval(-math.inf, 5, True, False)
    assert iv(Operator.NE, 5) is None  # not an interval: a categorical exclusion
    gt, le = iv(Operator.GT, 100), iv(Operator.LE, 100)
    assert gt is not None and le is not None and gt.intersect(le) is None


def test_sentences_compare_without_case_spacing_or_end_punctuation() -> None:
    assert said("A  supervisor has Approved.") == said("a supervisor has approved")

"""Hostile input to the audit stage (issue 19): checks, reports and their renderings."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rulealign.audit.checks import run_check
from rulealign.compiler.models import Check, CheckKind

# -- defect 1: regular-expression checks run in bounded time ----------------------------------


def test_defect01_regex_check_bounded_time() -> None:
    check = Check(kind=CheckKind.NOT_REGEX, value=r"(a|aa)+$")
    t0 = time.perf_counter()
    result = run_check(check, "a" * 40 + "!", timeout=0.1)
    assert time.perf_counter() - t0 < 2.0
    assert result.status == "error" and result.code == "RA604"
    assert not result.failed and "time budget" in result.detail
    # the patterns of the issue, on long answers, end within the budget too
    for pattern, text in ((r"(a+)+$", "a" * 1200 + "!"), (r"^(\w+\s?)*$", "ab " * 400 + "!")):
        t0 = time.perf_counter()
        got = run_check(Check(kind=CheckKind.REGEX, value=pattern), text, timeout=0.1)
        assert time.perf_counter() - t0 < 2.0 and got.status in ("fail", "error")


def test_defect01_timed_out_check_leaves_the_answer_undecided() -> None:
    from rulealign.audit.generative import AuditItem, judge
    from rulealign.compiler.models import Modality, Policy, Rule

    rule = Rule(id="r", text="t", clause_ids=("c",), modality=Modality.PROHIBITION, action="a",
                checks=(Check(kind=CheckKind.NOT_REGEX, value=r"(a|aa)+$"),))
    policy = Policy(id="p", title="p", rules=(rule,))
    item = AuditItem(id="i", rule_ids=("r",), clause_ids=("c",), axis="threshold",
                     side="inside", messages=({"role": "user", "content": "q"},))
    [verdict] = judge(policy, [item], [("a" * 40 + "!", False)], None)
    assert verdict.verdict == "unknown" and verdict.by == "check error"
    assert "RA604" in verdict.rationale


_ADVERSARIAL = st.one_of(
    st.text(max_size=300),
    st.builds(lambda c, n, end: c * n + end, st.sampled_from(list("a0 _.-\n\t€")),
              st.integers(0, 2000), st.sampled_from(["", "!", "\x00", " "])),
    st.builds(lambda w, n: w * n, st.sampled_from(["ab ", "a ", "{\"a\":", "[", "😀"]),
              st.integers(0, 600)),
)
_CHECKS = [Check(kind=CheckKind.REGEX, value=r"(a+)+$"),
           Check(kind=CheckKind.NOT_REGEX, value=r"^(\w+\s?)*$"),
           Check(kind=CheckKind.NOT_REGEX, value=r"(a|aa)+$"),
           Check(kind=CheckKind.CONTAINS, value="ticket"),
           Check(kind=CheckKind.NOT_CONTAINS, value="password"),
           Check(kind=CheckKind.REQUIRED_PHRASE, value="I am an AI"),
           Check(kind=CheckKind.MAX_WORDS, value=5), Check(kind=CheckKind.MIN_WORDS, value=3),
           Check(kind=CheckKind.MAX_SENTENCES, value=2), Check(kind=CheckKind.JSON),
           Check(kind=CheckKind.LANGUAGE, value="en")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ADVERSARIAL)
def test_every_check_kind_ends_in_bounded_time_on_adversarial_text(text: str) -> None:
    assert {c.kind for c in _CHECKS} == set(CheckKind)
    for check in _CHECKS:
        t0 = time.perf_counter()
        result = run_check(check, text, timeout=0.05)
        assert time.perf_counter() - t0 < 1.0, check
        assert result.status in ("pass", "fail", "skipped", "error")
        assert (result.status == "error") == (result.code == "RA604")

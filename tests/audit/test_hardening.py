"""Hostile input to the audit stage (issue 19): checks, reports and their renderings."""

from __future__ import annotations

import copy
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rulealign.audit.report import AuditReport, load_report
from rulealign.compiler.models import Check, CheckKind
from rulealign.errors import RulealignError
from rulealign.verdict.checks import run_check

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
    [verdict] = judge(policy, [item], [("a" * 40 + "!", False)])
    assert verdict.verdict == "undecided" and verdict.by == "check"
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


# -- reports: a small one built by hand --------------------------------------------------------

PAYLOAD = "<script>alert(1)</script><img src=x onerror=alert(2)>[click](javascript:x) **b** @all"


def _report() -> AuditReport:
    from rulealign.audit.generative import AuditItem, ItemVerdict
    from rulealign.audit.report import ModelInfo, build_report
    from rulealign.compiler.models import Clause, Modality, Policy, Rule

    rules = tuple(Rule(id=f"r{i}", text=f"Rule {i} text.", clause_ids=("c1",),
                       modality=Modality.PROHIBITION, action="act") for i in range(2))
    policy = Policy(id="p", title="P", rules=rules,
                    clauses=(Clause(id="c1", document="doc.md", text="Clause text.", line=3),))
    items = [AuditItem(id=f"i{i}", rule_ids=(f"r{i % 2}",), clause_ids=("c1",),
                       axis="threshold", side="inside",
                       messages=({"role": "user", "content": "q"},)) for i in range(4)]
    verdicts = [ItemVerdict(item=it.id, rule_id=it.rule_ids[0], axis="threshold",
                            side="inside", verdict="violates" if i % 2 else "complies",
                            by="judge", refused=False, rationale=PAYLOAD, prompt="q",
                            response=PAYLOAD) for i, it in enumerate(items)]
    cov = {"matrix": {"r0": {"threshold": 1}, "r1": {"threshold": 0}}, "axes": ["threshold"],
           "empty_cells": [{"rule": "r1", "axis": "threshold", "reason": "none accepted"}],
           "rules_with_pairs": 1, "rules": 2, "k": 1, "terms_below_k": [],
           "conflicts": {}}
    models = {"before": ModelInfo(label="base", model="m", model_hash="h" * 64, backend="fake")}
    return build_report(policy, items, models, {"before": verdicts}, coverage=cov,
                        conflicts=[{"id": "x", "kind": "modal-opposition", "rules": ["r0", "r1"],
                                    "resolution": "unresolved", "winner": None,
                                    "explanation": "both"}])


def _dump(report: AuditReport) -> dict:
    return json.loads(report.to_json())


# -- defect 5: audit render escapes everything and validates the report's types ---------------


def test_defect05_render_escapes_report_fields(tmp_path) -> None:
    from rulealign.audit.render import html_report

    data = _dump(_report())
    data["policy"]["rules"] = "<script>alert('rules')</script>"
    data["policy"]["clauses"] = "<script>alert('clauses')</script>"
    data["coverage"]["k"] = "<script>alert('k')</script>"
    path = tmp_path / "report.json"
    path.write_text(json.dumps(data))
    with pytest.raises(RulealignError) as err:
        load_report(path)
    assert err.value.code == "RA601" and "policy.rules" in str(err.value)
    page = html_report(_report())
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)" in page


# -- defect 11: well-formed but wrong reports are RA601, never a traceback ----------------------


def test_defect11_wrong_report_is_coded_error(tmp_path) -> None:
    good = _dump(_report())
    variants: list[bytes] = [
        b"\xff\xfe\x00garbage",
        ("[" * 100_000 + "]" * 100_000).encode(),
        json.dumps({"schema": good["schema"], "rules": "nope"}).encode(),
    ]
    for mutate in (lambda d: d.pop("overall"),
                   lambda d: d["overall"]["before"].pop("compliance"),
                   lambda d: d["overall"]["before"]["compliance"].update(rate=2.5),
                   lambda d: d["rules"][0]["before"]["compliance"].update(rate=2.5, k=9),
                   lambda d: d["conflicts"][0].update(rules=[]),
                   lambda d: d["coverage"].update(matrix={"r0": ["threshold"]}),
                   lambda d: d["clauses"].append(7),
                   lambda d: d["models"]["before"].update(model_hash=None)):
        data = copy.deepcopy(good)
        mutate(data)
        variants.append(json.dumps(data).encode())
    for i, raw in enumerate(variants):
        path = tmp_path / f"r{i}.json"
        path.write_bytes(raw)
        with pytest.raises(RulealignError) as err:
            load_report(path)
        assert err.value.code == "RA601" and str(path) in str(err.value), i


# -- defect 23: a huge report is refused before it is read whole -------------------------------


def test_defect23_huge_report_refused_without_reading_it(tmp_path) -> None:
    path = tmp_path / "report.json"
    with path.open("wb") as fh:  # sparse: 1 GB on paper
        fh.truncate(1 << 30)
    t0 = time.perf_counter()
    with pytest.raises(RulealignError) as err:
        load_report(path, max_bytes=10_000_000)
    assert err.value.code == "RA601" and "larger than" in str(err.value)
    with pytest.raises(RulealignError):
        load_report(path)  # the default limit, well under the file
    assert time.perf_counter() - t0 < 2.0


# -- defect 24: report.md shows answers as text, never as markup -------------------------------


def test_defect24_markdown_escapes_model_answers() -> None:
    from rulealign.audit.render import markdown

    md = markdown(_report())
    for raw in ("<script>", "<img", "[click](", "**b**", " @all"):
        assert raw not in md, raw
    assert "&lt;script&gt;" in md and "\\[click\\]\\(javascript" in md


# -- fuzzed report JSON renders or is refused with a code ---------------------------------------

_JSON_LEAVES = st.none() | st.booleans() | st.integers(-5, 10**12) | st.floats() \
    | st.text(max_size=12)
_JSON = st.recursive(_JSON_LEAVES, lambda c: st.lists(c, max_size=3)
                     | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=8)


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


_GOOD: dict | None = None


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_report_json_renders_or_is_refused_without_traceback(data) -> None:
    from rulealign.audit.render import html_report, markdown

    global _GOOD
    if _GOOD is None:
        _GOOD = _dump(_report())
    doc = copy.deepcopy(_GOOD)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        where = data.draw(st.sampled_from(paths))
        parent = doc
        for part in where[:-1]:
            parent = parent[part]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[where[-1]]
        else:
            parent[where[-1]] = data.draw(_JSON)
    try:
        report = AuditReport.from_json(json.dumps(doc), "fuzz.json")
    except RulealignError as exc:
        assert exc.code == "RA601"
        return
    assert markdown(report) and html_report(report)

"""The generative audit, reports and the gate, orchestrated with a scripted model.

The scripted "base model" violates on some prompts ("[bad]" in its answer); with an adapter
it answers well. The scripted judge calls "[bad]" answers violations. So every figure in the
report has a known right value that these tests compute independently.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from rulealign.audit.generative import (
    AuditItem,
    calibrate,
    judge,
    read_items,
    read_texts,
    relevant_rules,
)
from rulealign.audit.render import html_report, markdown
from rulealign.audit.report import SCHEMA, AuditReport, buckets, gate, load_report
from rulealign.audit.run import AuditSettings, Judges, audit, audit_texts
from rulealign.cli.main import main
from rulealign.errors import RulealignError
from rulealign.llm.fake import FakeBackend
from rulealign.verdict.llm_judge import backend_judge
from tests.synth.helpers import respond

GOOD = "Thanks for asking, here is how we can help you with that today [ok]."
BAD = "Sure, whatever you want, done right away [bad]."


def _base_fails(prompt: str) -> bool:
    return int(hashlib.sha256(prompt.encode()).hexdigest()[:2], 16) % 2 == 0


def model_under_test() -> FakeBackend:
    """Base: violates on about half the prompts; with any adapter: always fine."""
    backend: FakeBackend

    def responder(chat, schema):
        if schema is not None:          # the judge
            return respond(chat, schema)
        if backend.active_adapter is None and _base_fails(chat[-1]["content"]):
            return BAD
        return GOOD

    backend = FakeBackend(responder=responder)
    return backend


def fake_judges(policy, backend) -> Judges:
    """The scripted model as the LLM judge (orchestration only: no small judge)."""
    return Judges(policy, llm=backend_judge(backend), name="fake", say=lambda _m: None)


def run_audit(policy, data, out, backend=None, **kw):
    backend = backend or model_under_test()
    return audit(policy, data, out, backend=backend, judges=fake_judges(policy, backend),
                 say=lambda _m: None, **kw)


def test_items_come_from_the_held_out_prompts_only(acme, synth_dir) -> None:
    policy, _ = acme
    items = read_items(synth_dir / "data" / "prompts.heldout.jsonl", policy)
    train = read_items(synth_dir / "data" / "prompts.train.jsonl", policy)
    assert items and train
    assert not {it.user for it in items} & {it.user for it in train}
    assert all(it.rule_hashes for it in items)


def test_bad_audit_data_is_a_coded_error_with_the_line(acme, tmp_path) -> None:
    policy, _ = acme
    bad = tmp_path / "prompts.heldout.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}],
                               "meta": {"rule_ids": ["no-such-rule"]}}) + "\n")
    with pytest.raises(RulealignError) as exc:
        read_items(bad, policy)
    d = exc.value.diagnostics[0]
    assert d.code == "RA602" and d.line == 1 and "no-such-rule" in d.message


def test_checks_decide_before_the_judge(acme) -> None:
    policy, _ = acme
    rule = policy.rule("no-profanity")   # a not_regex check and no exceptions
    item = AuditItem(id="x", rule_ids=(rule.id,), clause_ids=rule.clause_ids, axis="typical",
                     side="inside", messages=({"role": "user", "content": "Tell me more"},))
    profane = "What a damn mess, sorry. [ok]"  # the scripted judge would say "complies"
    judge_backend = FakeBackend(responder=respond)
    [v] = judge(policy, [item], [(profane, False)], llm=backend_judge(judge_backend))
    assert v.verdict == "violates" and v.by == "check" and "damn" in v.rationale
    assert judge_backend.requests == []          # the judge was not asked


def test_without_a_judge_only_a_failed_check_decides(acme) -> None:
    policy, _ = acme
    rule = policy.rule("no-profanity")
    item = AuditItem(id="x", rule_ids=(rule.id,), clause_ids=rule.clause_ids, axis="typical",
                     side="inside", messages=({"role": "user", "content": "Tell me more"},))
    short, profane = "Happy to help.", "What a damn mess, sorry."
    passing, failing = judge(policy, [item, item], [(short, False), (profane, False)])
    # passing checks cover part of a rule: they are no verdict of compliance
    assert (passing.verdict, passing.by) == ("undecided", "none") and not passing.judged
    assert (failing.verdict, failing.by) == ("violates", "check")


def test_judge_verdicts_cite_a_clause_and_failures_are_recorded(acme) -> None:
    policy, _ = acme
    rule = next(r for r in policy.rules if not r.checks)
    item = AuditItem(id="x", rule_ids=(rule.id,), clause_ids=rule.clause_ids, axis="condition",
                     side="inside", messages=({"role": "user", "content": "Hello there"},))
    ok = judge(policy, [item, item], [(GOOD, False), (BAD, False)],
               llm=backend_judge(FakeBackend(responder=respond)))
    assert [v.verdict for v in ok] == ["complies", "violates"]
    assert ok[1].cited_clause == rule.clause_ids[0]
    broken = judge(policy, [item], [(GOOD, False)],
                   llm=backend_judge(FakeBackend(['{"verdict": "compl'])))
    assert broken[0].verdict == "undecided" and broken[0].by == "llm_judge"
    assert "failed" in broken[0].rationale


def test_calibration_measures_the_judge_on_human_labels(acme, tmp_path) -> None:
    policy, _ = acme
    rule = next(r for r in policy.rules if not r.checks)
    labelled = tmp_path / "x.eval.jsonl"
    rows = [{"rule_id": rule.id, "prompt": f"question {i}", "response": resp, "label": lab}
            for i, (resp, lab) in enumerate([(GOOD, "complies"), (BAD, "violates"),
                                             (GOOD, "violates"), (BAD, "violates")] * 5)]
    labelled.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cal = calibrate(policy, labelled, small=None,
                    llm=backend_judge(FakeBackend(responder=respond)), judge_name="fake")
    # the scripted judge says "[bad]" violates, anything else complies: 15 of 20 right
    assert (cal.n, cal.correct) == (20, 15)
    assert cal.confusion == {"complies->complies": 5, "violates->violates": 10,
                             "violates->complies": 5}
    assert cal.base_rate == 0.75 and not cal.trusted   # 75% is what "always violates" gets
    none = calibrate(policy, None, small=None, llm=None, judge_name="fake")
    assert none.n == 0 and "uncalibrated" in none.headline()


def test_audit_before_and_after_with_buckets_and_reports(acme, synth_dir, tmp_path) -> None:
    policy, conflicts = acme
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    out = tmp_path / "audit"
    report = run_audit(policy, synth_dir / "data", out, adapter=str(adapter),
                       settings=AuditSettings(likelihood=False, fail_under=0.9),
                       conflicts=conflicts)
    items = read_items(synth_dir / "data" / "prompts.heldout.jsonl", policy)
    before = [json.loads(x) for x in (out / "verdicts.before.jsonl").read_text().splitlines()]
    after = [json.loads(x) for x in (out / "verdicts.after.jsonl").read_text().splitlines()]
    assert len(before) == len(after) == len(items)
    # the aligned model never violates; the base model only where the script made it
    assert all(v["verdict"] != "violates" for v in after if v["by"] == "llm_judge")
    base_bad = {it.id for it in items if _base_fails(it.user)}
    judged_bad = {v["item"] for v in before if v["verdict"] == "violates" and v["by"] == "llm_judge"}
    assert judged_bad and judged_bad <= base_bad
    b = report.buckets
    assert b is not None and sum(b.values()) == sum(
        1 for x, y in zip(before, after, strict=True)
        if x["verdict"] != "undecided" and y["verdict"] != "undecided")
    assert b["only aligned"] >= len(judged_bad) - b["neither"] and b["only base"] == 0
    # per rule: delta = after - before, and clause roll-ups pool their rules
    for r in report.rules:
        if r.after and r.before.compliance.n and r.after.compliance.n:
            assert r.delta == pytest.approx(r.after.compliance.rate - r.before.compliance.rate)
    for c in report.clauses:
        mine = [report.rule(rid) for rid in c.rules]
        assert c.before.pooled.n == sum(r.before.compliance.n for r in mine)
        rates = [r.before.compliance.rate for r in mine if r.before.compliance.n]
        if rates:
            assert c.before.minimum == min(rates)
    assert {c.status for c in report.clauses if c.before.pooled.n} == {"fresh"}
    # gate on the aligned model at 90%: what fails is what the rules' checks caught in the
    # aligned model's answers, nothing the judge said
    expected = {c.clause_id for c in report.clauses
                if c.after and c.after.pooled.n and c.after.pooled.rate < 0.9}
    assert report.gate is not None and set(report.gate.failing) == expected
    assert report.gate.passed == (not expected)
    for c in expected:
        rules = set(report.clauses[[x.clause_id for x in report.clauses].index(c)].rules)
        assert all(v["by"] == "check" for v in after
                   if v["rule_id"] in rules and v["verdict"] == "violates")
    # the three renderings exist and agree with the JSON
    loaded = load_report(out / "report.json")
    assert loaded.to_json() == report.to_json()
    md = (out / "report.md").read_text()
    assert "### Per clause" in md and "Gate:" in md
    html = (out / "report.html").read_text()
    for plot in ("plot-rules", "plot-clauses", "plot-coverage", "plot-conflicts"):
        assert f'id="{plot}"' in html
    assert "http://" not in html and "https://" not in html   # self-contained


def test_failing_rules_link_to_their_clause_text_and_line(acme, synth_dir, tmp_path) -> None:
    policy, conflicts = acme
    report = run_audit(policy, synth_dir / "data", tmp_path, settings=AuditSettings(
        likelihood=False, fail_under=1.0), conflicts=conflicts)
    assert report.gate is not None and not report.gate.passed and report.gate.failing
    html = html_report(report)
    md = markdown(report)
    failing_rule = next(r for r in report.rules if r.before.compliance.n and
                        r.before.compliance.k < r.before.compliance.n)
    clause = policy.index()["clauses"][failing_rule.clause_ids[0]]
    assert f'href="#clause-{clause.id}"' in html and f'id="clause-{clause.id}"' in html
    assert f"{clause.document}:{clause.line}" in html
    assert failing_rule.rule_id in md and failing_rule.source in md
    assert failing_rule.source.split(":")[1].isdigit()


def test_a_changed_rule_makes_its_clause_stale(acme, synth_dir, tmp_path) -> None:
    policy, _conflicts = acme
    items = read_items(synth_dir / "data" / "prompts.heldout.jsonl", policy)
    target = policy.rule(items[0].rule_ids[0])
    changed_rule = target.model_copy(update={"text": target.text + " Always."})
    changed = policy.model_copy(update={"rules": tuple(
        changed_rule if r.id == target.id else r for r in policy.rules)})
    report = run_audit(changed, synth_dir / "data", tmp_path, settings=AuditSettings(
        likelihood=False))
    status = {c.clause_id: c.status for c in report.clauses}
    assert all(status[c] == "stale" for c in target.clause_ids)
    others = {c.clause_id for c in report.clauses if c.before.pooled.n} - set(target.clause_ids)
    assert others and all(status[c] == "fresh" for c in others)


def test_an_interrupted_audit_asks_only_what_is_missing(acme, synth_dir, tmp_path) -> None:
    from rulealign.llm import GenerationLog

    policy, _ = acme
    first = model_under_test()
    first.log = GenerationLog(tmp_path / "generations.sqlite")
    run_audit(policy, synth_dir / "data", tmp_path, settings=AuditSettings(likelihood=False),
              backend=first)
    again = model_under_test()
    again.log = GenerationLog(tmp_path / "generations.sqlite")
    run_audit(policy, synth_dir / "data", tmp_path, settings=AuditSettings(likelihood=False),
              backend=again)
    assert first.requests and again.requests == []


def test_audit_texts_finds_the_rules_a_text_bears_on(acme, tmp_path) -> None:
    policy, _ = acme
    assert "refund-cap" in relevant_rules(policy, "Can I get a refund of $180?")
    texts = tmp_path / "log.jsonl"
    texts.write_text("\n".join(json.dumps(r) for r in [
        {"prompt": "I want a refund of $180 for my blender", "response": BAD},
        {"prompt": "Where is my order?", "response": GOOD, "rule_ids": ["share-order-status"]},
    ]) + "\n")
    items = read_texts(texts, policy)
    assert {"refund-cap", "share-order-status"} <= {it.rule_ids[0] for it in items}
    fake = FakeBackend(responder=respond)
    report = audit_texts(policy, texts, tmp_path / "out", backend=fake,
                         judges=fake_judges(policy, fake), say=lambda _m: None)
    cap = report.rule("refund-cap").before
    assert cap.verdicts.get("violates") == 1
    assert (tmp_path / "out" / "report.html").exists()


def test_report_json_is_versioned(tmp_path) -> None:
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps({"schema": "rulealign.audit/0"}))
    with pytest.raises(RulealignError) as exc:
        load_report(bad)
    assert exc.value.diagnostics[0].code == "RA601" and SCHEMA in exc.value.diagnostics[0].message


def test_cli_compare_render_and_gate(acme, synth_dir, tmp_path, capsys) -> None:
    policy, _conflicts = acme
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    run_audit(policy, synth_dir / "data", a_dir, settings=AuditSettings(likelihood=False))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    run_audit(policy, synth_dir / "data", b_dir, adapter=str(adapter),
              settings=AuditSettings(likelihood=False))
    assert main(["audit", "compare", str(a_dir / "report.json"), str(b_dir / "report.json")]) == 0
    out = capsys.readouterr().out
    assert "better" in out and "+" in out
    assert main(["audit", "render", str(a_dir / "report.json"), "--fail-under", "1.0"]) == 1
    lowest = min(c.after.pooled.rate for c in load_report(b_dir / "report.json").clauses
                 if c.after and c.after.pooled.n)
    assert main(["audit", "render", str(b_dir / "report.json"), "--fail-under",
                 str(lowest)]) == 0
    assert main(["audit", "render", str(b_dir / "report.json"), "--fail-under",
                 str(lowest + 0.01)]) == 1
    a_json, b_json = str(a_dir / "report.json"), str(b_dir / "report.json")
    assert main(["audit", "compare", a_json, b_json, "--fail-under", str(lowest)]) == 0
    assert main(["audit", "compare", a_json, b_json, "--fail-under", str(lowest + 0.01)]) == 1
    assert main(["audit", "compare", str(a_dir / "report.json"),
                 str(tmp_path / "missing.json")]) == 1
    assert "RA601" in capsys.readouterr().err


def test_buckets_count_each_item_once() -> None:
    from rulealign.audit.generative import ItemVerdict

    def v(item: str, verdict: str) -> ItemVerdict:
        return ItemVerdict(item=item, rule_id="r", axis="a", side="inside", verdict=verdict,
                           by="llm_judge", refused=False)

    before = [v("1", "complies"), v("2", "violates"), v("3", "complies"), v("4", "violates"),
              v("5", "undecided")]
    after = [v("1", "complies"), v("2", "complies"), v("3", "violates"), v("4", "violates"),
             v("5", "complies")]
    assert buckets(before, after) == {"both comply": 1, "only aligned": 1, "only base": 1,
                                      "neither": 1}


def test_gate_ignores_untested_clauses_but_lists_them(acme, synth_dir, tmp_path) -> None:
    policy, _ = acme
    report = run_audit(policy, synth_dir / "data", tmp_path, settings=AuditSettings(
        likelihood=False))
    gated = gate(report, 0.0)
    assert gated.gate is not None and gated.gate.passed
    tested = {c.clause_id for c in report.clauses if c.before.pooled.n}
    assert set(gated.gate.untested).isdisjoint(tested) and gated.gate.untested
    assert isinstance(AuditReport.from_json(gated.to_json()), AuditReport)


def test_the_engine_is_sized_to_the_adapter_rank(tmp_path) -> None:
    from rulealign.audit.run import lora_rank

    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 12}))
    assert lora_rank(tmp_path) == 16
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 64}))
    assert lora_rank(tmp_path) == 64
    assert lora_rank(tmp_path / "missing") == 64


@pytest.mark.parametrize(("x", "near", "side"), [
    (300.0, [(200.0, 100.0)], "right"),   # away from a neighbour on the left
    (300.0, [(400.0, 100.0)], "left"),    # away from a neighbour on the right
    (40.0, [(100.0, 100.0)], "above"),    # no room on the left, the neighbour lies on the right
    (740.0, [(740.0, 130.0)], "left"),    # no room on the right; the neighbour is below, not under
])
def test_conflict_graph_labels_stay_on_the_plot_and_off_their_neighbours(
        x: float, near: list[tuple[float, float]], side: str) -> None:
    from rulealign.audit.render import _label_place

    width, plot = 120.0, 760.0
    tx, _, anchor = _label_place(x, 100.0, width, near, plot)
    got = "above" if "middle" in anchor else "left" if "end" in anchor else "right"
    assert got == side
    lo, hi = (tx - width / 2, tx + width / 2) if got == "above" else (tx - width, tx) if got == "left" else (tx, tx + width)
    assert lo >= 0 and hi <= plot


def test_no_verdict_is_counted_apart_never_as_compliance() -> None:
    from rulealign.audit.generative import ItemVerdict

    def v(side: str, verdict: str) -> ItemVerdict:
        return ItemVerdict(item="i", rule_id="r", axis="a", side=side, verdict=verdict,
                           by="small_judge", refused=False)

    # not_applicable to a prompt made to fall inside the rule: no verdict
    assert not v("inside", "not_applicable").judged
    assert not v("inside", "not_applicable").complies
    # outside the rule (or matched by its terms only) it is the right answer: not a violation
    assert v("outside", "not_applicable").judged and v("outside", "not_applicable").complies
    assert v("matched", "not_applicable").complies
    assert not v("inside", "undecided").judged and not v("inside", "violates").complies


def test_audit_texts_scores_given_labels_per_rule(acme, tmp_path) -> None:
    policy, _ = acme
    texts = tmp_path / "log.jsonl"
    rows = [{"prompt": f"Where is order {n}?", "response": resp, "rule_ids": [rid],
             "label": lab}
            for n, (rid, resp, lab) in enumerate([
                ("share-order-status", GOOD, "complies"), ("share-order-status", BAD, "violates"),
                ("verify-identity", GOOD, "violates"), ("verify-identity", BAD, "violates")])]
    texts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    said: list[str] = []
    fake = FakeBackend(responder=respond)
    report = audit_texts(policy, texts, tmp_path / "out", backend=fake,
                         judges=fake_judges(policy, fake), say=said.append)
    agr = report.text_agreement
    assert agr is not None and (agr.n, agr.correct) == (4, 3)
    assert agr.per_rule == {"share-order-status": (2, 2), "verify-identity": (1, 2)}
    assert any("4/4 verdicts" in m for m in said)        # progress as it goes
    assert "human labels agreed" in (tmp_path / "out" / "report.md").read_text()

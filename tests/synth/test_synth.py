"""The synthesizer's orchestration, with a scripted model: pairs, provenance, resumability,
incremental regeneration, splits, filters and coverage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rulealign.compiler.loader import load_policy
from rulealign.compiler.models import Operator
from rulealign.kg.build import build_graph
from rulealign.synth import agents as A
from rulealign.synth.export import coverage, export
from rulealign.synth.filters import NearDuplicates, degenerate
from rulealign.synth.pipeline import SynthSettings, synthesize
from rulealign.synth.plan import plan, plan_rule
from rulealign.synth.store import SynthStore
from rulealign.verdict.refusal import is_refusal

from .helpers import ROOT, SPEC, fake_backend


@pytest.fixture(scope="module")
def acme():
    policy = load_policy(SPEC)
    return policy, build_graph(policy, check=False).conflicts


def _settings(policy, n=6, **kw):
    return SynthSettings(**{"per_rule": 2, "batch": 8, "qa_per_clause": 1, "model_writes": True,
                            "rules": tuple(r.id for r in policy.rules[:n]), **kw})


def test_thresholds_give_values_just_inside_and_outside(acme) -> None:
    policy, conflicts = acme
    rule = next(r for r in policy.rules for c in r.conditions
                if c.op in (Operator.GT, Operator.GE) and isinstance(c.value, (int, float)))
    cond = next(c for c in rule.conditions if c.op in (Operator.GT, Operator.GE))
    sides = {s.side: s for s in plan_rule(rule, policy, conflicts) if s.axis == "threshold"}
    inside, outside = sides["inside"].details["value"], sides["outside"].details["value"]
    if cond.op == Operator.GT:
        assert inside > float(cond.value) >= outside
    else:
        assert inside >= float(cond.value) > outside
    assert "does not" in sides["inside"].expected or rule.modality.value != "prohibition"


def test_every_opposing_conflict_becomes_one_scenario_with_its_winner(acme) -> None:
    policy, conflicts = acme
    scenarios = [s for s in plan(policy, conflicts) if s.axis == "conflict"]
    opposing = [c for c in conflicts if c.kind == "modal-opposition"]
    assert {s.conflict_id for s in scenarios} == {c.id for c in opposing}
    for s in scenarios:
        c = next(c for c in opposing if c.id == s.conflict_id)
        assert set(s.rule_ids) == set(c.rules)
        if c.winner:
            assert c.winner in s.expected


def test_synthesis_accepts_pairs_with_provenance_and_exports_trl_files(acme, tmp_path) -> None:
    policy, conflicts = acme
    store = SynthStore(tmp_path / "store.sqlite")
    # (the first 8 rules include refund-cap, whose threshold messages are made by construction)
    result = synthesize(policy, conflicts, fake_backend(), store, _settings(policy, n=8))
    assert len(result.pairs) >= 6
    for ex in result.examples:
        assert ex.provenance.spec_hash == policy.content_hash()
        assert set(ex.rule_ids) <= set(ex.provenance.rule_hashes)
        assert ex.provenance.backend == "spec" or ex.provenance.templates["verifier"] == \
            A.VERIFIER.version
    for ex in result.pairs:
        if ex.scenario.axis == "labelled":  # written by the spec's author
            continue
        rules = [policy.rule(r) for r in ex.rule_ids]
        authors = {r for e in rules[0].examples for r in (e.compliant, e.violating) if r}
        threshold = ex.scenario.axis == "threshold"  # (the amount in a carried reply moves)
        if ex.chosen_source == "human":  # the spec's replies, carried over to a built message
            assert ex.prompt_source == "construction"
            assert ex.chosen in authors or A.ALSO in ex.chosen or threshold
        else:
            assert ex.chosen_source == "model" and "[ok]" in ex.chosen
        refusing = A.refusal_is_the_failure(ex.scenario, rules)
        if ex.rejected_source == "human":
            assert ex.rejected in authors or threshold
        elif refusing:  # a needless refusal is its opening alone, no model text
            assert ex.rejected_source == "template" and ex.rejected in A.REFUSING_OPENINGS
        else:  # the stance is fixed by the opening
            assert ex.rejected_source == "model" and "[bad]" in ex.rejected
            assert not is_refusal(ex.rejected)
        assert ex.label_source == "construction"
        assert ex.prompt_source in ("attacker", "construction")
        assert {v.by for v in ex.verdicts} <= {"small_judge", "llm_judge", "check",
                                               "refusal check", "human label"}
        # the authors' label stands in for a verdict only on their own needless refusal
        assert ex.verdicts[0].by != "human label"
        if ex.verdicts[1].by == "human label":
            assert ex.rejected_source == "human" and refusing
    assert {e.prompt_source for e in result.pairs if e.scenario.axis == "labelled"} <= {"human"}
    assert any(e.prompt_source == "construction" for e in result.examples)
    made = [e for e in result.pairs if e.scenario.axis != "labelled"]
    assert {e.chosen_source for e in made} == {"human", "model"}
    assert {e.rejected_source for e in made} >= {"human", "template", "model"}
    assert any(e.kind == "sft" for e in result.examples)
    counts = export(result.examples, tmp_path / "data")
    assert counts["pairs.train.jsonl"] + counts["pairs.heldout.jsonl"] == len(result.pairs)
    from datasets import load_dataset

    ds = load_dataset("json", data_files=str(tmp_path / "data" / "pairs.train.jsonl"),
                      split="train", cache_dir=str(tmp_path / "hf"))
    assert set(ds.column_names) >= {"prompt", "chosen", "rejected", "meta"}
    assert ds[0]["chosen"][0]["role"] == "assistant"
    kto = [json.loads(x) for x in (tmp_path / "data" / "kto.train.jsonl").read_text().splitlines()]
    assert {r["label"] for r in kto} == {True, False}
    # every scenario with a usable attacker prompt (pair accepted or not) is kept for the
    # generative audit, in the same split as its scenario
    prompts = result.prompts
    assert len(prompts) >= len([p for p in result.pairs if p.scenario.axis != "labelled"])
    assert counts["prompts.train.jsonl"] + counts["prompts.heldout.jsonl"] == len(prompts)
    split_of_scenario = {e.scenario.id: e.split for e in result.pairs}
    for p in prompts:
        assert p.messages[-1]["role"] == "user" and p.chosen is None
        assert split_of_scenario.get(p.scenario.id, p.split) == p.split


def test_a_second_run_asks_the_model_nothing(acme, tmp_path) -> None:
    policy, conflicts = acme
    store = SynthStore(tmp_path / "store.sqlite")
    first = synthesize(policy, conflicts, fake_backend(), store, _settings(policy))
    again_backend = fake_backend()
    second = synthesize(policy, conflicts, again_backend, store, _settings(policy))
    assert first.generated > 0 and second.generated == 0 and again_backend.requests == []
    assert [e.id for e in second.examples] == [e.id for e in first.examples]


def test_changing_one_rule_regenerates_only_that_rule(acme, tmp_path) -> None:
    policy, conflicts = acme
    store = SynthStore(tmp_path / "store.sqlite")
    synthesize(policy, conflicts, fake_backend(), store, _settings(policy, qa_per_clause=0))
    target = policy.rules[2]  # (its empty cells also get a top-up scenario, of the same rule)
    changed_rule = target.model_copy(update={"text": target.text + " Always."})
    changed = policy.model_copy(update={"rules": tuple(
        changed_rule if r.id == target.id else r for r in policy.rules)})
    backend = fake_backend()
    synthesize(changed, conflicts, backend, store, _settings(changed, qa_per_clause=0))
    assert backend.requests
    # every request concerns a scenario of the changed rule: its text is in the prompt (the
    # attacker is shown the rule's topic and the scenario's facts, not the rule's sentence)
    from rulealign.synth.agents import _act

    def about_target(chat: list[dict[str, str]]) -> bool:
        text = " ".join(m["content"] for m in chat)
        if chat[0]["content"].startswith("You write realistic messages"):
            def names(rule) -> bool:  # the attacker's two forms (with or without a demo)
                return f"Topic: {_act(rule)}." in text or f"same topic ({_act(rule)})" in text

            return names(changed_rule) and not any(
                names(r) for r in policy.rules
                if r.id != target.id and _act(r) != _act(changed_rule))
        if chat[-1]["role"] == "assistant" and not chat[0]["content"].startswith(
                "You are a helpful assistant. Follow"):
            # the violating writer is not shown the rules: it answers the same message
            return chat[1]["content"] in complier_asks
        return changed_rule.text in text

    complier_asks = {r.chat[1]["content"] for r in backend.requests
                     if r.chat[0]["content"].startswith("You are a helpful assistant. Follow")}
    assert all(about_target(r.chat) for r in backend.requests)
    attacker_asks = [r for r in backend.requests if r.schema and r.schema["title"] == "UserTurn"]
    assert 1 <= len(attacker_asks) <= 2 * 2  # per_rule=2, plus one top-up each at most


def test_no_scenario_is_in_both_splits(acme, tmp_path) -> None:
    policy, conflicts = acme
    result = synthesize(policy, conflicts, fake_backend(), SynthStore(tmp_path / "s.sqlite"),
                        _settings(policy, n=12, heldout=0.5))
    splits: dict[str, set[str]] = {}
    prompts: dict[str, set[str]] = {}
    for ex in result.examples:
        splits.setdefault(ex.scenario.id, set()).add(ex.split)
        prompts.setdefault(ex.messages[-1]["content"], set()).add(ex.split)
    assert all(len(s) == 1 for s in splits.values())
    assert all(len(s) == 1 for s in prompts.values())
    assert {"train", "heldout"} <= {ex.split for ex in result.examples}


def test_coverage_reports_every_cell_and_why_empty_ones_are_empty(acme, tmp_path) -> None:
    policy, conflicts = acme
    result = synthesize(policy, conflicts, fake_backend(), SynthStore(tmp_path / "s.sqlite"),
                        _settings(policy))
    cov = coverage(policy, result.scenarios, result.examples, conflicts, result.cell_reasons)
    assert set(cov["matrix"]) == {r.id for r in policy.rules}
    assert cov["rules_with_pairs"] >= 3
    for cell in cov["empty_cells"]:
        assert cell["reason"]
    assert set(cov["conflicts"]) == {c.id for c in conflicts if c.kind == "modal-opposition"}


def test_sigkill_mid_run_loses_nothing_and_duplicates_nothing(tmp_path) -> None:
    store_path = tmp_path / "store.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "tests.synth.helpers", str(store_path),
                             "0.05"], cwd=ROOT, env={**os.environ})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if store_path.exists():
            try:
                if SynthStore(store_path).count("items") >= 4:
                    break
            except Exception:
                continue
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = SynthStore(store_path)
    before = {k: (s, e) for k, s, _r, e in store.all_items(
        [r[0] for r in store.db.execute("SELECT key FROM items")])}
    assert 4 <= len(before) < 16, "kill the run while it is still going"
    # (the planner's choices and messages made by construction are stored, not asked for)
    model_outputs = ("SELECT COUNT(*) FROM outputs WHERE agent != 'planner' "
                     "AND template NOT LIKE 'constructed%'")
    outputs_before = store.db.execute(model_outputs).fetchone()[0]
    policy = load_policy(SPEC)
    conflicts = build_graph(policy, check=False).conflicts
    backend = fake_backend()
    settings = SynthSettings(per_rule=2, batch=4, qa_per_clause=0, model_writes=True,
                             rules=tuple(r.id for r in policy.rules[:8]))
    result = synthesize(policy, conflicts, backend, store, settings)
    after = {k: (s, e) for k, s, _r, e in store.all_items(
        [r[0] for r in store.db.execute("SELECT key FROM items")])}
    for key, value in before.items():
        assert after[key] == value  # nothing finished before the kill changed
    assert len(after) == len(result.scenarios)       # one item per scenario, no duplicate
    planned = plan(policy, conflicts, per_rule=2, rules=settings.rules)
    assert len(planned) == 16 + sum(s.axis == "conflict" for s in planned)
    assert len([s for s in result.scenarios if "~topup" not in s.id]) == len(planned)
    ids = [e.id for e in result.examples]
    assert len(ids) == len(set(ids))
    # the resumed run asked only for what was not stored yet, each thing once
    added = store.db.execute(model_outputs).fetchone()[0] - outputs_before
    assert 0 < len(backend.requests) == added


def test_degenerate_text_is_caught() -> None:
    assert degenerate("no_no_no_no_no_no_no_no_no_no_no_no") is not None
    assert degenerate("the the the the the the the the the") is not None
    assert degenerate("ok") == "too short"
    assert degenerate("Refunds above $100 need a supervisor's approval first.") is None


def test_near_duplicates_are_dropped_and_distinct_texts_kept() -> None:
    near = NearDuplicates()
    keep = near.keep(["Can you refund my $150 order today?",
                      "Can you refund my $150 order today please?",
                      "What is the weather like in Paris in spring?"])
    assert keep[0] and keep[2] and not keep[1]


def test_dropped_scenarios_keep_their_reason(acme, tmp_path) -> None:
    from rulealign.llm.fake import FakeBackend

    policy, conflicts = acme
    from rulealign.llm.base import RawOutput
    from tests.synth.helpers import respond

    # usable user messages, then reply writers that fail
    short = FakeBackend(responder=lambda chat, schema: respond(chat, schema)
                        if schema and schema["title"] == "UserTurn" else
                        RawOutput("", "error", code="RA305", message="scripted failure"))
    result = synthesize(policy, conflicts, short, SynthStore(tmp_path / "s.sqlite"),
                        _settings(policy, n=1, qa_per_clause=0, spec_examples=False))
    assert result.pairs == [] and result.scenarios
    assert set(result.drop_reasons) == {s.id for s in result.scenarios}
    # the writers failed: each drop says which agent failed and how (or, for a
    # message the grounding filters refused, which code)
    from rulealign.synth.pipeline import DROP_CODES, PROMPT_CODES, drop_code

    reasons = list(result.drop_reasons.values())
    codes = [drop_code(why) for why in reasons]
    assert all(c in DROP_CODES for c in codes)
    assert all(why == "reply-failed: complier error" or c in PROMPT_CODES or
               c == "prompt-degenerate" for why, c in zip(reasons, codes, strict=True))
    assert codes.count("reply-failed") >= len(reasons) // 2
    # the counts are by code, never by free text
    assert set(result.dropped) <= set(DROP_CODES) | {"exact duplicate", "near duplicate"}
    assert sum(result.dropped.values()) == len(reasons)


def test_the_specs_own_labelled_examples_become_pairs(acme, tmp_path) -> None:
    policy, conflicts = acme
    labelled = [(r.id, e) for r in policy.rules for e in r.examples if e.compliant and e.violating]
    assert labelled
    rules = tuple(dict.fromkeys(rid for rid, _ in labelled))
    result = synthesize(policy, conflicts, fake_backend(), SynthStore(tmp_path / "s.sqlite"),
                        SynthSettings(per_rule=1, qa_per_clause=0, rules=rules, model_writes=True))
    mine = [e for e in result.pairs if e.scenario.axis == "labelled"]
    assert {(e.rule_ids[0], e.chosen, e.rejected) for e in mine} == {
        (rid, e.compliant, e.violating) for rid, e in labelled}
    assert all(e.provenance.backend == "spec" for e in mine)
    off = synthesize(policy, conflicts, fake_backend(), SynthStore(tmp_path / "t.sqlite"),
                     SynthSettings(per_rule=1, qa_per_clause=0, rules=rules, model_writes=True,
                                   spec_examples=False))
    assert not [e for e in off.pairs if e.scenario.axis == "labelled"]


def test_a_verified_compliant_answer_without_a_violating_twin_becomes_sft_data(acme,
                                                                             tmp_path) -> None:
    from rulealign.llm.fake import FakeBackend
    from tests.synth.helpers import respond

    def violator_never_violates(chat, schema):
        system = chat[0]["content"]
        if chat[-1]["role"] == "assistant" and not system.startswith("You are a helpful "
                                                                     "assistant. Follow"):
            return " Thanks for asking, here is how we can help [ok]."
        return respond(chat, schema)

    policy, conflicts = acme
    result = synthesize(policy, conflicts, FakeBackend(responder=violator_never_violates),
                        SynthStore(tmp_path / "s.sqlite"),
                        _settings(policy, qa_per_clause=0, spec_examples=False,
                                  model_replies=True))
    singles = [e for e in result.examples if e.kind == "sft"]
    # the judge clears every "violating" reply, so what still makes a pair is a needless
    # refusal (fixed by its opening) or a violation a programmatic check proves
    assert singles and all(is_refusal(p.rejected) or p.verdicts[1].by == "check"
                           for p in result.pairs)
    for ex in singles:
        assert "[ok]" in ex.completion and ex.verdicts[0].verdict == "complies"
        assert ex.messages[-1]["role"] == "user"
    rows = export(result.examples, tmp_path / "data")
    # (a pair's compliant reply is SFT data too)
    assert rows["sft.train.jsonl"] + rows["sft.heldout.jsonl"] == len(singles) + len(
        result.pairs)


def test_coverage_top_up_retries_only_empty_cells(acme, tmp_path) -> None:
    from collections import Counter

    from rulealign.llm.fake import FakeBackend
    from tests.synth.helpers import respond

    def first_try_fails():
        seen: Counter[str] = Counter()

        def responder(chat, schema):
            # the violator fails the first time it is asked about a scenario, then manages
            system = chat[0]["content"]
            if chat[-1]["role"] == "assistant" and not system.startswith(
                    "You are a helpful assistant. Follow"):
                situation = chat[1]["content"].split("): ", 1)[-1]  # without the tag
                seen[situation] += 1
                if seen[situation] == 1:
                    return " Thanks for asking, happy to help [ok]."
            return respond(chat, schema)

        return FakeBackend(responder=responder)

    policy, conflicts = acme

    def cells(result):
        return {(e.rule_ids[0], e.scenario.axis) for e in result.pairs
                if e.scenario.axis != "labelled"}

    base = synthesize(policy, conflicts, first_try_fails(), SynthStore(tmp_path / "a.sqlite"),
                      _settings(policy, qa_per_clause=0, rounds=0, topup=0))
    topped = synthesize(policy, conflicts, first_try_fails(), SynthStore(tmp_path / "b.sqlite"),
                        _settings(policy, qa_per_clause=0, rounds=0, topup=1))
    extra = [sc for sc in topped.scenarios if sc.id.endswith("~topup1")]
    assert extra and len(cells(topped)) > len(cells(base))
    # only cells that had no accepted pair after the first pass were topped up
    first_pass = {(sc.rule_ids[0], sc.axis) for sc in base.scenarios}
    assert {(sc.rule_ids[0], sc.axis) for sc in extra} <= first_pass - cells(base)


def test_passing_checks_do_not_accept_a_reply_without_the_judge(acme, tmp_path) -> None:
    # the synthesizer decides like the audit: a failed check proves a violation, passing checks
    # prove nothing; here the compliant side passes the rule's check but the judge finds it
    # violating, and the violating side fails the check, so no judge is asked about it
    from rulealign.llm.fake import FakeBackend
    from tests.synth.helpers import respond

    judged: list[str] = []

    def responder(chat, schema):
        system, user = chat[0]["content"], chat[-1]["content"]
        if (schema or {}).get("title") == "Judgement":
            judged.append(user.split("Assistant:", 1)[1])
        elif chat[-1]["role"] == "assistant" and system.startswith("You are a helpful "
                                                                   "assistant. Follow"):
            return " Happy to help with that, let me look into it now for you [bad]."
        elif chat[-1]["role"] == "assistant":
            return " To verify you, please tell me your password and the full card number."
        return respond(chat, schema)

    policy, conflicts = acme
    result = synthesize(policy, conflicts, FakeBackend(responder=responder),
                        SynthStore(tmp_path / "s.sqlite"),
                        SynthSettings(per_rule=4, batch=8, qa_per_clause=0, rounds=0, topup=0, model_writes=True,
                                      rules=("no-card-request",), spec_examples=False,
                                      model_replies=True))
    inside = [sc for sc in result.scenarios if sc.side == "inside"]
    assert len(inside) == 3 and not [e for e in result.pairs if e.scenario.side == "inside"]
    assert all(result.drop_reasons[sc.id].startswith("judge-disagrees: judge: violates")
               for sc in inside)
    # the judge saw each inside scenario's compliant side, never a side a check had decided
    assert sum("[bad]" in text for text in judged) >= len(inside)
    assert not [text for text in judged if "password" in text]


def test_training_uses_human_pairs_where_a_rule_has_them(tmp_path) -> None:
    from rulealign.synth.export import training_selection

    def row(rule: str, source: str, axis: str = "threshold",
            replies: tuple[str, str] = ("model", "model")) -> str:
        return json.dumps({"prompt": [{"role": "user", "content": f"{rule} {source}"}],
                           "chosen": [], "rejected": [],
                           "meta": {"rule_ids": [rule], "label_source": source,
                                    "axis": axis, "reply_sources": replies}}) + "\n"

    data = tmp_path / "data"
    data.mkdir()
    (data / "pairs.train.jsonl").write_text(
        row("a", "human") + row("a", "construction") + row("b", "construction") +
        row("a", "construction", "actor", replies=("human", "human")) +
        row("a", "construction", "benign", replies=("human", "template")) +
        row("a", "construction", "condition", replies=("human", "model")))
    (data / "sft.train.jsonl").write_text(row("a", "construction", "qa") +
                                          row("a", "construction"))
    kept = training_selection(data, tmp_path / "sel")
    assert kept["pairs.train.jsonl"] == {"human": 1, "construction": 3}
    pairs = [json.loads(x) for x in (tmp_path / "sel" / "pairs.train.jsonl").read_text()
             .splitlines()]
    # rule a trains on its authors' pairs and on their replies carried to built messages,
    # not on the model's replies; rule b, with no human pairs, on the model's
    assert [(p["meta"]["rule_ids"][0], p["meta"]["label_source"], p["meta"]["axis"])
            for p in pairs] == [("a", "human", "threshold"), ("b", "construction", "threshold"),
                                ("a", "construction", "actor"), ("a", "construction", "benign")]
    # question/answer rows are not pairs of a rule: kept
    assert kept["sft.train.jsonl"] == {"construction": 1}

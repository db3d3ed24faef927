"""The one verdict procedure: checks, the small judge, the LLM judge, calibration, and the
wall between human evaluation sets and everything that trains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rulealign.compiler.loader import load_policy
from rulealign.errors import RulealignError
from rulealign.verdict.calibration import agreement, eval_set_for, measure, read_labelled
from rulealign.verdict.cascade import decide
from rulealign.verdict.data import (
    JudgeRow,
    related,
    spec_rows,
    template_rows,
    training_rows,
)
from rulealign.verdict.llm_judge import Judgement
from rulealign.verdict.models import Case
from rulealign.verdict.small_judge import SmallJudge, load_or_train, train_judge
from tests.conftest import SHIPPED_SPECS, SPECS


@pytest.fixture(scope="module")
def acme():
    return load_policy(SPECS / "acme-support.yaml")


class Unsure:
    """A small judge that always answers ``label`` with probability ``p``."""

    name = "unsure"
    unsure = 0.5

    def __init__(self, label: str = "complies", p: float = 0.4) -> None:
        self.label, self.p, self.asked = label, p, 0

    def judge(self, cases):
        self.asked += len(cases)
        return [(self.label, self.p)] * len(cases)


class Recorder:
    """An LLM judge that says ``verdict`` and records the prompts it was given."""

    def __init__(self, verdict: str = "violates") -> None:
        self.verdict, self.chats = verdict, []

    def __call__(self, chats):
        self.chats.extend(chats)
        return [(Judgement(verdict=self.verdict, cited_clause="1.1", rationale="r"), "")
                for _ in chats]


def _case(policy, rule_id: str, reply: str, side: str = "inside") -> Case:
    return Case(rules=(policy.rule(rule_id),), prompt="Hello, a question", reply=reply,
                side=side)


def test_a_failed_check_proves_a_violation_without_asking_a_judge(acme) -> None:
    rule = acme.rule("no-profanity")
    assert rule.checks and not rule.exceptions
    small, llm = Unsure(), Recorder("complies")
    [v] = decide([_case(acme, rule.id, "This is a damn shame, honestly.")], small=small, llm=llm)
    assert (v.label, v.by, v.confidence) == ("violates", "check", 1.0)
    assert small.asked == 0 and llm.chats == []
    # outside the rule a failed check proves nothing: the judge decides
    [v] = decide([_case(acme, rule.id, "This is a damn shame, honestly.", side="outside")],
                 small=Unsure(p=0.9))
    assert v.by == "small_judge"


def test_a_failed_check_on_a_rule_with_exceptions_leaves_it_to_the_judges(acme) -> None:
    # "Responses must not exceed 200 words unless the customer asks for detail": a long
    # reply fails the word count, but only a judge can see whether detail was asked for
    rule = acme.rule("max-response-length")
    assert rule.exceptions and any(c.kind.value == "max_words" for c in rule.checks)
    small = Unsure("complies", p=0.9)
    [v] = decide([_case(acme, rule.id, "word " * 1000)], small=small)
    assert (v.label, v.by) == ("complies", "small_judge") and small.asked == 1
    [v] = decide([_case(acme, rule.id, "word " * 1000)])
    assert v.label == "undecided"
    # with two rules (a conflict scenario) each rule's own exceptions count: the partner's
    # failed check still proves, the target's does not
    both = (rule, acme.rule("no-profanity"))
    long_profane, long_clean = "damn " + "word " * 1000, "word " * 1000
    [v, w] = decide([Case(rules=both, prompt="q", reply=long_profane, side="inside"),
                     Case(rules=both, prompt="q", reply=long_clean, side="inside")],
                    small=Unsure("complies", p=0.9))
    assert (v.label, v.by) == ("violates", "check") and "damn" in v.rationale
    assert "words" not in v.rationale and w.by == "small_judge"


def test_the_llm_judge_decides_only_where_the_small_judge_is_unsure(acme) -> None:
    rid = next(r.id for r in acme.rules if not r.checks)
    llm = Recorder("violates")
    sure, unsure = decide([_case(acme, rid, "Fine.")], small=Unsure(p=0.9), llm=llm), None
    assert (sure[0].label, sure[0].by, sure[0].confidence) == ("complies", "small_judge", 0.9)
    assert llm.chats == []
    unsure = decide([_case(acme, rid, "Fine.")], small=Unsure(p=0.4), llm=llm)
    assert (unsure[0].label, unsure[0].by) == ("violates", "llm_judge") and len(llm.chats) == 1
    # without an LLM judge the unsure small judge's label stands, with its probability
    [alone] = decide([_case(acme, rid, "Fine.")], small=Unsure(p=0.4))
    assert (alone.label, alone.by, alone.confidence) == ("complies", "small_judge", 0.4)


def test_no_answer_no_judge_and_an_untrusted_judge_are_undecided(acme) -> None:
    rid = next(r.id for r in acme.rules if not r.checks)
    empty, nojudge = decide([_case(acme, rid, "  "), _case(acme, rid, "Fine.")])
    assert empty.label == nojudge.label == "undecided" and not empty.decided
    [untrusted] = decide([_case(acme, rid, "Fine.")], small=Unsure(p=0.9), trusted=False)
    assert untrusted.label == "undecided" and "chance" in untrusted.rationale
    [check] = decide([_case(acme, "no-profanity", "What a damn mess.")], small=Unsure(),
                     trusted=False)
    assert check.label == "violates"  # checks still decide what they prove


def test_agreement_figures_and_the_chance_gate() -> None:
    want = ["complies"] * 4 + ["violates"] * 4 + ["not_applicable"] * 2
    got = ["complies"] * 3 + ["violates"] + ["violates"] * 4 + ["complies", "not_applicable"]
    a = agreement("j", "s", want, got, ["r1"] * 5 + ["r2"] * 5)
    assert (a.n, a.correct, a.accuracy) == (10, 8, 0.8)
    assert a.base_rate == 0.4 and a.confusion["complies->violates"] == 1
    # macro-F1 over the three labels: complies 6/8, violates 8/9, not_applicable 2/3
    assert a.macro_f1 == pytest.approx((6 / 8 + 8 / 9 + 2 / 3) / 3)
    pe = (4 * 4 + 4 * 5 + 2 * 1) / 100
    assert a.kappa == pytest.approx((0.8 - pe) / (1 - pe))
    assert a.per_rule == {"r1": (4, 5), "r2": (4, 5)}
    assert a.trusted == (a.accuracy_ci[0] > 0.4)
    chance = agreement("j", "s", want, ["violates"] * 10, ["r"] * 10)
    assert not chance.trusted and "NOT shown better than chance" in chance.headline()


def test_bad_labelled_rows_are_all_reported_with_their_line(acme, tmp_path) -> None:
    path = tmp_path / "bad.jsonl"
    rid = acme.rules[0].id
    path.write_text("\n".join([
        json.dumps({"rule_id": rid, "prompt": "p", "response": "r", "label": "complies"}),
        json.dumps({"rule_id": "refund-capp", "prompt": "p", "response": "r",
                    "label": "complies"}),
        json.dumps({"rule_id": rid, "prompt": "p", "response": "r"}),
        json.dumps({"rule_id": rid, "prompt": "p", "response": "r", "label": "ok"}),
        "[1, 2]"]) + "\n")
    with pytest.raises(RulealignError) as exc:
        read_labelled(path, acme)
    diags = exc.value.diagnostics
    assert [(d.code, d.line) for d in diags] == [("RA451", 2), ("RA451", 3), ("RA451", 4),
                                                 ("RA451", 5)]
    assert "did you mean 'refund-cap'" in diags[0].message and "label" in diags[1].message
    assert str(path) in str(diags[0])


def test_every_shipped_spec_has_a_human_evaluation_set_covering_each_rule() -> None:
    for spec in SHIPPED_SPECS:
        policy = load_policy(spec)
        path = eval_set_for(spec)
        assert path is not None, spec
        items = read_labelled(path, policy)
        for rule in policy.rules:
            labels = [it.label for it in items if it.rule_id == rule.id]
            assert labels.count("complies") >= 2 and labels.count("violates") >= 2, rule.id
        assert any(it.label == "not_applicable" for it in items)
        assert {it.split for it in items} == {"dev", "final"}


def test_evaluation_sets_never_reach_training_data(tmp_path) -> None:
    """No prompt or reply of a human evaluation set is in any judge-training row, and a
    synth export made from the spec carries none either; a folder holding an eval set is
    refused as training data."""
    from rulealign.kg.build import build_graph
    from rulealign.synth.export import export
    from rulealign.synth.pipeline import SynthSettings, synthesize
    from rulealign.synth.store import SynthStore
    from tests.synth.helpers import fake_backend

    for spec in SHIPPED_SPECS:
        policy = load_policy(spec)
        evals = read_labelled(eval_set_for(spec), policy)
        texts = {t.strip() for it in evals for t in (it.prompt, it.response)}
        rows = training_rows(policy)
        assert rows and not texts & {t.strip() for r in rows for t in (r.prompt, r.reply)}
        out = tmp_path / policy.id
        res = synthesize(policy, build_graph(policy, check=False).conflicts, fake_backend(),
                         SynthStore(out / "synth.sqlite"),
                         SynthSettings(per_rule=1, qa_per_clause=0, model_writes=True,
                                       rules=tuple(r.id for r in policy.rules[:6])))
        export(res.examples, out / "data")
        blob = "".join(p.read_text() for p in (out / "data").glob("*.jsonl"))
        assert not [t for t in texts if len(t) > 20 and json.dumps(t)[1:-1] in blob]
    (tmp_path / "leak").mkdir()
    (tmp_path / "leak" / "acme-support.eval.jsonl").write_text("")
    with pytest.raises(RulealignError) as exc:
        training_rows(load_policy(SPECS / "acme-support.yaml"), [tmp_path / "leak"])
    assert exc.value.code == "RA451"


def test_training_rows_say_where_each_label_came_from(acme) -> None:
    human = spec_rows(acme)
    assert human and {r.source for r in human} == {"human"}
    assert {r.label for r in human} == {"complies", "violates", "not_applicable"}
    built = template_rows(acme)
    assert {r.source for r in built} == {"construction"}
    # rule flips: each rule's exchanges are tuned beside those of one unrelated rule
    from rulealign.verdict.small_judge import JudgeSettings, training_groups

    groups = training_groups(acme, human, JudgeSettings())
    assert len(groups) == len({r.rule_id for r in human})
    for g in groups:
        rules = list(dict.fromkeys(r.rule_id for r in g))
        assert len(rules) == 2 and not related(acme, acme.rule(rules[0]), acme.rule(rules[1]))
    # a policy without one human label still gets judge data, all of it constructed
    bare = acme.model_copy(update={"rules": tuple(r.model_copy(update={"examples": ()})
                                                  for r in acme.rules)})
    rows = training_rows(bare)
    assert rows and {r.source for r in rows} == {"construction"}


def test_the_small_judge_trains_predicts_and_is_cached(acme, acme_judge, monkeypatch) -> None:
    judge = SmallJudge(acme_judge)
    assert judge.meta["policy_id"] == acme.id and judge.meta["rows"] > 0
    rid = acme.rules[0].id
    probs = judge.probabilities([_case(acme, rid, "hello")] * 3)
    assert len(probs) == 3 and all(p == pytest.approx(probs[0]) for p in probs)
    assert sum(probs[0]) == pytest.approx(1.0, abs=1e-5)
    [(label, p)] = judge.judge([_case(acme, rid, "Sure.")])
    assert label in ("complies", "violates", "not_applicable") and 0.33 <= p <= 1.0
    # the cache: the same rows, policy and settings give the same folder, not a new training
    rows = [JudgeRow(rid, "q", "a", "complies", "human", "spec example")]
    from rulealign.verdict import small_judge as sj

    calls = []
    monkeypatch.setattr(sj, "train_judge", lambda *a, **k: calls.append(a) or
                        SmallJudge(acme_judge))
    root = acme_judge.parent / "cache"
    key = sj.judge_key(acme, rows, sj.JudgeSettings(), sj.base_hash(sj.base_encoder()))
    folder = root / f"{acme.id}-{key}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    import shutil

    shutil.copytree(acme_judge, folder)
    assert load_or_train(acme, rows, root=root).path == folder and calls == []
    # settings read only when judging reuse the trained judge, and are the ones it uses;
    # a training setting trains anew
    looser = sj.JudgeSettings(threshold=0.9, temperature=0.2, unsure=0.7)
    again = load_or_train(acme, rows, root=root, settings=looser)
    assert again.path == folder and calls == []
    assert (again.settings["threshold"], again.settings["temperature"], again.unsure) == (
        0.9, 0.2, 0.7)
    assert again.judge([_case(acme, rid, "Sure.")])[0][0] == "not_applicable"  # 0.9 floor
    load_or_train(acme, rows, root=root, settings=sj.JudgeSettings(epochs=1.0))
    assert len(calls) == 1


def test_the_judge_reads_a_rule_through_its_labelled_exchanges(acme, acme_judge) -> None:
    """An exchange the judge indexed takes its own label under its rule, and the same
    exchange judged against a rule with nothing like it is not_applicable."""
    from rulealign.verdict.data import training_rows, unrelated_rules

    judge = SmallJudge(acme_judge)
    rows = training_rows(acme)[::12]
    assert judge.meta["indexed"] == len(rows) > 10
    cases = [Case(rules=(acme.rule(r.rule_id),), prompt=r.prompt, reply=r.reply)
             for r in rows]
    assert [lab for lab, _ in judge.judge(cases)] == [r.label for r in rows]
    indexed = {r.rule_id for r in rows}
    away = [Case(rules=(other,), prompt=r.prompt, reply=r.reply) for r in rows
            for other in unrelated_rules(acme, acme.rule(r.rule_id), 40, r.item)
            if other.id in indexed][:60]
    said = [lab for lab, _ in judge.judge(away)]
    assert len(away) >= 30 and said.count("not_applicable") >= 0.8 * len(said)
    # embeddings come back in the order asked, whatever the batching by length
    texts = [f"User: {c.prompt}\nAssistant: {c.reply}" for c in cases[:20]]
    fwd, back = judge.embed(texts), judge.embed(texts[::-1])
    assert (fwd - back.flip(0)).abs().max() < 1e-4
    # a rule the judge holds no exchange of (a newer spec): undecided, never a verdict
    unseen = acme.rules[0].model_copy(update={"id": "a-rule-added-later"})
    assert judge.judge([Case(rules=(unseen,), prompt="hi", reply="hello")]) == [
        ("undecided", 0.0)]


def test_a_judge_folder_missing_its_index_is_refused_and_retrained(acme, acme_judge,
                                                                   tmp_path,
                                                                   monkeypatch) -> None:
    import shutil

    from rulealign.verdict import small_judge as sj

    rows = [JudgeRow(acme.rules[0].id, "q", "a", "complies", "human", "spec example")]
    key = sj.judge_key(acme, rows, sj.JudgeSettings(), sj.base_hash(sj.base_encoder()))
    folder = tmp_path / f"{acme.id}-{key}"
    shutil.copytree(acme_judge, folder)
    (folder / sj.INDEX_ROWS).unlink()
    with pytest.raises(RulealignError) as exc:
        SmallJudge(folder)
    assert exc.value.code == "RA453" and sj.INDEX_ROWS in str(exc.value)
    calls = []
    monkeypatch.setattr(sj, "train_judge", lambda *a, **k: calls.append(a) or
                        SmallJudge(acme_judge))
    assert load_or_train(acme, rows, root=tmp_path).path == acme_judge and len(calls) == 1


def test_a_judge_for_another_policy_is_refused(acme_judge) -> None:
    other = load_policy(SPECS / "northwind-conduct.yaml")
    with pytest.raises(RulealignError) as exc:
        SmallJudge(acme_judge).check_policy(other)
    assert exc.value.code == "RA452" and str(acme_judge) in str(exc.value)
    with pytest.raises(RulealignError) as exc:
        SmallJudge(acme_judge.parent / "nothing-here")
    assert exc.value.code == "RA453"


def test_a_failed_training_leaves_the_old_judge_in_place(acme, acme_judge, tmp_path,
                                                         monkeypatch) -> None:
    import shutil

    import transformers

    target = tmp_path / "judge"
    shutil.copytree(acme_judge, target)
    before = (target / "judge.json").read_text()

    def boom(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(transformers.Trainer, "train", boom)
    with pytest.raises(KeyboardInterrupt):
        train_judge(acme, spec_rows(acme)[:4], target)
    assert (target / "judge.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["judge"]


def test_measure_counts_rule_flips(acme, tmp_path) -> None:
    rid = next(r.id for r in acme.rules if not r.checks)
    path = tmp_path / "x.eval.jsonl"
    path.write_text("".join(json.dumps({"rule_id": rid, "prompt": f"p{i}", "response": "r",
                                        "label": lab}) + "\n"
                            for i, lab in enumerate(["complies", "violates",
                                                     "not_applicable"])))
    items = read_labelled(path, acme)
    a = measure(acme, items, small=Unsure("not_applicable", 0.9), judge="u", source="x")
    assert a.flips == (2, 2) and a.correct == 1   # flips only for complies/violates items


def test_cli_judge_eval_reports_agreement(acme_judge, capsys) -> None:
    from rulealign.cli.main import main

    spec = SPECS / "acme-support.yaml"
    assert main(["judge", "eval", str(spec), str(eval_set_for(spec)), "--judge",
                 str(acme_judge), "--split", "dev", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["n"] > 100 and data["flips"][1] > 0 and "macro_f1" in data
    other = SPECS / "northwind-conduct.yaml"
    assert main(["judge", "eval", str(other), str(eval_set_for(other)), "--judge",
                 str(acme_judge)]) == 1
    assert "RA452" in capsys.readouterr().err


def test_eval_file_paths_are_recognised() -> None:
    assert eval_set_for(SPECS / "acme-support.yaml") == SPECS / "acme-support.eval.jsonl"
    assert eval_set_for(Path("/nowhere/x.yaml")) is None

"""``rulealign run`` end to end with a scripted engine and a tiny random model for training:
stage caching by input hashes, a changed rule, interruption, the run folder and manifest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rulealign.audit.report import load_report
from rulealign.errors import RulealignError
from rulealign.workflow import RunSettings, run
from tests.audit.test_audit import model_under_test
from tests.synth.helpers import ScriptedJudge

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "acme-support.yaml"
RULES = ("refund-cap", "verify-identity", "no-card-request", "offer-human-transfer",
         "no-medical-advice", "share-order-status", "price-match-allowed", "return-window")


def settings(model: Path, **kw) -> RunSettings:
    # the scripted judge knows only the scripted agents' marks: measured on the spec's human
    # evaluation set it would be (rightly) no better than chance, and decide nothing
    return RunSettings(**{"model": str(model), "per_rule": 3, "rounds": 1, "qa_per_clause": 1,
                          "heldout": 0.5, "rules": RULES, "sft_steps": 2, "pref_steps": 2,
                          "labelled": "", **kw})


def quiet(_msg: str) -> None:
    pass


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, tiny_model):
    out = tmp_path_factory.mktemp("run") / "acme"
    engine = model_under_test()
    result = run(SPEC, out, settings(tiny_model), say=quiet, backend=engine,
                 judge=ScriptedJudge())
    return out, result, engine


def test_a_run_makes_a_readable_folder_and_an_audited_model(first_run) -> None:
    out, result, engine = first_run
    for path in ("manifest.json", "spec/policy.json", "spec/acme-support.yaml",
                 "graph/graph.ttl", "graph/conflicts.json", "synth/synth.sqlite",
                 "synth/data/prompts.heldout.jsonl", "synth/coverage.json",
                 "train/sft/adapter/adapter_model.safetensors",
                 "train/dpo/adapter/adapter_model.safetensors", "train/dpo/provenance.json",
                 "audit/report.json", "audit/report.md", "audit/report.html",
                 "audit/verdicts.before.jsonl", "audit/verdicts.after.jsonl"):
        assert (out / path).exists(), path
    man = json.loads((out / "manifest.json").read_text())
    assert set(man["stages"]) == {"compile", "graph", "judge", "synth", "train", "audit"}
    assert all(rec["status"] == "done" for rec in man["stages"].values())
    assert man["versions"]["torch"] and man["settings"]["seed"] == 0
    assert man["spec"]["policy_hash"] and man["rule_hashes"]["refund-cap"]
    report = result.report
    assert set(report.models) == {"before", "after"}
    assert report.models["after"].adapter.endswith("train/dpo/adapter")
    assert report.buckets is not None and sum(report.buckets.values()) > 0
    # the likelihood audit ran on the held-out pairs, before and after
    assert report.overall["before"]["preference"] is not None
    assert engine.requests  # the engine answered synth, audit and judge prompts


def test_a_second_run_reuses_every_stage(first_run, tiny_model) -> None:
    out, first, _ = first_run
    engine = model_under_test()
    again = run(SPEC, out, settings(tiny_model), say=quiet, backend=engine,
                judge=ScriptedJudge())
    assert engine.requests == []
    assert again.reused == {"judge", "synth", "train", "audit"}
    assert again.stages["synth"]["key"] == first.stages["synth"]["key"]
    assert again.report.to_json() == load_report(out / "audit" / "report.json").to_json()
    assert {c.status for c in again.report.clauses if c.before.pooled.n} == {"fresh"}


def test_a_changed_rule_reruns_only_what_depends_on_it(first_run, tiny_model, tmp_path) -> None:
    import shutil

    out, _first, _ = first_run
    copy = tmp_path / "acme"
    shutil.copytree(out, copy)
    spec = tmp_path / "acme-support.yaml"
    text = SPEC.read_text()
    old = "text: The assistant must not promise refunds above $100 without supervisor approval."
    assert text.count(old) == 1
    spec.write_text(text.replace(old, old[:-1] + ", not even as a goodwill gesture."))
    (tmp_path / "acme-support.md").write_text((SPEC.parent / "acme-support.md").read_text())
    engine = model_under_test()
    result = run(spec, copy, settings(tiny_model), say=quiet, backend=engine,
                 judge=ScriptedJudge())
    asked = [r.chat for r in engine.requests]
    assert asked, "the changed rule's data must be regenerated"
    # the synthesizer only asked about the changed rule (the audit re-asks what is new)
    synth_asks = [c for c in asked if "[refund-cap]" in json.dumps(c) or
                  "Policy text" in c[-1]["content"]]
    assert synth_asks
    from rulealign.compiler.loader import load_policy
    from rulealign.synth.agents import _act

    act = _act(load_policy(spec).rule("refund-cap"))
    other_rule_asks = [c for c in asked if c[0]["content"].startswith("You write realistic")
                       and f"Topic: {act}." not in c[-1]["content"]
                       and f"same topic ({act})" not in c[-1]["content"]]
    assert other_rule_asks == []
    tested = {c.clause_id: c for c in result.report.clauses if c.before.pooled.n}
    refund_clauses = set(result.report.rule("refund-cap").clause_ids)
    assert refund_clauses <= set(tested)
    assert all(tested[c].status == "fresh" for c in refund_clauses)
    others = [c for cid, c in tested.items() if "refund-cap" not in c.rules]
    assert others and all(c.status == "reused" for c in others), [
        (c.clause_id, c.status) for c in others]


def test_a_judge_no_better_than_chance_decides_nothing(first_run, tiny_model, tmp_path) -> None:
    """On the spec's human evaluation set the scripted judge is at chance: every verdict it
    gave becomes undecided, checks still decide, and the report says why."""
    import shutil

    out, _first, _ = first_run
    copy = tmp_path / "acme"
    shutil.copytree(out, copy)
    result = run(SPEC, copy, settings(tiny_model, labelled=str(SPEC.with_name(
        "acme-support.eval.jsonl"))), say=quiet, backend=model_under_test(),
        judge=ScriptedJudge())
    cal = result.report.calibration
    assert cal is not None and cal.n > 200 and not cal.trusted
    verdicts = [json.loads(x) for x in
                (copy / "audit" / "verdicts.before.jsonl").read_text().splitlines()]
    assert {v["verdict"] for v in verdicts if v["by"] == "small_judge"} == {"undecided"}
    assert all(v["verdict"] == "violates" for v in verdicts if v["by"] == "check")
    assert "NOT shown better than chance" in (copy / "audit" / "report.md").read_text()


def test_a_missing_input_is_a_coded_error(tmp_path) -> None:
    with pytest.raises(RulealignError) as exc:
        run(tmp_path / "nope.yaml", tmp_path / "out", say=quiet)
    assert exc.value.diagnostics[0].code == "RA701"


RUNNER = """
import sys, time
from pathlib import Path
from rulealign.workflow import run, RunSettings
from tests.audit.test_audit import model_under_test
from tests.synth.helpers import ScriptedJudge
from tests.test_workflow import SPEC, settings
engine = model_under_test()
slow = engine.responder
def responder(chat, schema):
    time.sleep(float(sys.argv[3]))
    return slow(chat, schema)
engine.responder = responder
run(SPEC, sys.argv[1], settings(Path(sys.argv[2])), backend=engine, judge=ScriptedJudge())
print("RUN DONE", len(engine.requests))
"""


def test_a_killed_run_finishes_without_redoing_work(tmp_path, tiny_model) -> None:
    out = tmp_path / "acme"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = tmp_path / "first.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(out), str(tiny_model),
                                 "0.01"], cwd=ROOT, env=env, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
    # kill it once synthesis has stored some work but before the run ends
    deadline = time.time() + 120
    store = out / "synth" / "synth.sqlite"
    while time.time() < deadline and proc.poll() is None:
        if store.exists() and store.stat().st_size > 0 and (out / "generations.sqlite").exists():
            time.sleep(1.0)
            break
        time.sleep(0.1)
    assert proc.poll() is None, log.read_text()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = json.loads((out / "manifest.json").read_text())["stages"]
    assert "synth" not in killed_at and "audit" not in killed_at  # stopped mid-synthesis
    done = subprocess.run([sys.executable, "-c", RUNNER, str(out), str(tiny_model), "0"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "RUN DONE" in done.stdout
    # nothing was lost or duplicated: one set of items per scenario, a complete report
    import sqlite3

    db = sqlite3.connect(store)
    dup = db.execute("SELECT COUNT(*) - COUNT(DISTINCT key) FROM items").fetchone()[0]
    assert dup == 0
    assert (out / "audit" / "report.html").exists()
    # and a third run asks nothing at all
    again = model_under_test()
    run(SPEC, out, settings(tiny_model), say=quiet, backend=again, judge=ScriptedJudge())
    assert again.requests == []

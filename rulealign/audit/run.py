"""One audit, start to end: answers from the base model (and the aligned one: same engine, a
LoRA adapter on top), verdicts, the judge's calibration, the likelihood audit, the report.

Every answer and judgement goes through the generation log, which doubles as a cache keyed by
model hash, adapter weights, settings and prompt: an interrupted audit started again asks the
model only what it had not answered yet.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rulealign.audit.generative import (
    AuditItem,
    ItemVerdict,
    answer,
    calibrate,
    judge,
    read_items,
    write_verdicts,
)
from rulealign.audit.report import AuditReport, ModelInfo, build_report, gate
from rulealign.compiler.models import Policy
from rulealign.errors import RulealignError, diagnostic
from rulealign.fileio import atomic_write_text
from rulealign.llm.base import Backend, adapter_hash
from rulealign.verdict.calibration import Agreement
from rulealign.verdict.llm_judge import AskJudge
from rulealign.verdict.small_judge import SmallJudge

Say = Callable[[str], None]


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class AuditSettings:
    backend: str = "auto"
    model: str = "default"
    base_url: str | None = None
    #: The small judge's folder; ``None``: the policy's own, trained on first use (cached).
    judge: str | None = None
    #: An LLM judge (local checkpoint or served model) asked where the small judge is unsure.
    judge_model: str | None = None
    #: A human-labelled set the judges are measured on (``specs/NAME.eval.jsonl``); without
    #: one, every report says the judge is uncalibrated.
    labelled: str | None = None
    likelihood: bool = True
    #: Also audit on the labelled set's prompts and reply pairs (held-out, human-written).
    human_heldout: bool = True
    max_items: int | None = None
    seed: int = 0
    fail_under: float | None = None


def open_backend(settings: AuditSettings, log: Any, *, lora: bool,
                 adapter: str | None = None) -> Backend:
    from rulealign.llm import choose_backend, load_backend

    chosen, _ = choose_backend(settings.backend)
    options: dict[str, Any] = {}
    if chosen == "vllm" and lora:
        options["enable_lora"] = True
        if adapter is not None:  # LoRA kernels pad to the max rank: no larger than needed
            options["max_lora_rank"] = lora_rank(adapter)
    return load_backend(settings.backend, settings.model, log=log, base_url=settings.base_url,
                        **options)


def lora_rank(adapter: str | Path) -> int:
    """The smallest rank vLLM accepts that holds the adapter's rank (64 if unknown)."""
    try:
        r = int(json.loads((Path(adapter) / "adapter_config.json").read_text())["r"])
    except (OSError, ValueError, KeyError, TypeError):
        return 64
    return next((n for n in (8, 16, 32, 64, 128, 256, 320, 512) if n >= r), 512)


def write_report(report: AuditReport, out: Path) -> dict[str, Path]:
    from rulealign.audit.render import html_report, markdown

    paths = {"json": out / "report.json", "md": out / "report.md", "html": out / "report.html"}
    atomic_write_text(paths["json"], report.to_json())
    atomic_write_text(paths["md"], markdown(report))
    atomic_write_text(paths["html"], html_report(report))
    return paths


def audit(policy: Policy, data_dir: str | Path, out_dir: str | Path, *,
          adapter: str | None = None, settings: AuditSettings | None = None,
          conflicts: Sequence[Any] = (), backend: Backend | None = None,
          reused_rules: set[str] | None = None, say: Say = _say,
          judges: Judges | None = None) -> AuditReport:
    """Audit the base model, and with ``adapter`` the aligned model too, on the held-out
    prompts in ``data_dir``; writes report.{json,md,html} and the verdicts to ``out_dir``.
    ``backend`` reuses an open engine (it must support LoRA when ``adapter`` is given)."""
    s = settings or AuditSettings()
    data = Path(data_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prompts = data / "prompts.heldout.jsonl"
    items = read_items(prompts, policy)[: s.max_items] if prompts.exists() else []
    human_items: list[AuditItem] = []
    human_pairs: list[dict[str, Any]] = []
    if s.labelled and s.human_heldout:
        from rulealign.audit.heldout import labelled_items, labelled_pairs

        human_items = labelled_items(s.labelled, policy)[: s.max_items]
        human_pairs = labelled_pairs(s.labelled, policy)
        say(f"audit: {len(human_items)} human-written held-out prompts and "
            f"{len(human_pairs)} reply pairs from {Path(s.labelled).name}")
    items += human_items
    if not items:
        raise RulealignError(diagnostic(
            "RA603", reason=f"no held-out prompts at {prompts}" if not prompts.exists()
            else f"{prompts} has no prompts"))
    seconds: dict[str, float] = {}
    own = backend is None
    if backend is None:
        from rulealign.llm import GenerationLog

        t0 = time.perf_counter()
        backend = open_backend(s, GenerationLog(out / "generations.sqlite"),
                               lora=adapter is not None, adapter=adapter)
        seconds["engine start"] = time.perf_counter() - t0
    try:
        verdicts, calibration = _generative(policy, items, backend, adapter, s, seconds, say,
                                            judges)
    finally:
        if own:
            backend.close()
    preferences: dict[str, Any] = {}
    pairs = data / "pairs.heldout.jsonl"
    # human-written pairs where the policy has them: the synthesizer's held-out pairs are the
    # same model's own writing, a weaker test of what training changed
    pair_data: Any = human_pairs or (pairs if pairs.exists() and pairs.stat().st_size else None)
    pair_name = Path(s.labelled).name if human_pairs and s.labelled else str(pairs)
    if s.likelihood and pair_data:
        from rulealign.audit.preference import audit_preferences

        for label, ad in (("before", None), ("after", adapter)):
            if label == "after" and adapter is None:
                continue
            t0 = time.perf_counter()
            preferences[label] = audit_preferences(pair_data, s.model, ad, name=pair_name)
            seconds[f"likelihood {label}"] = time.perf_counter() - t0
            say(f"audit: likelihood ({label}): prefers compliant in "
                f"{preferences[label].accuracy:.0%} of {preferences[label].n} held-out pairs")
    coverage = None
    cov_file = data.parent / "coverage.json"
    if cov_file.exists():
        coverage = json.loads(cov_file.read_text(encoding="utf-8"))
    models = {"before": ModelInfo(label="base", model=backend.model_id,
                                  model_hash=backend.model_hash, backend=backend.name)}
    if adapter is not None:
        models["after"] = ModelInfo(label="aligned", model=backend.model_id,
                                    model_hash=backend.model_hash, adapter=str(adapter),
                                    adapter_hash=adapter_hash(adapter), backend=backend.name)
    report = build_report(policy, items, models, verdicts, preferences=preferences,
                          calibration=calibration, coverage=coverage, conflicts=conflicts,
                          data={"prompts": str(prompts), "items": len(items),
                                "human_items": len(human_items),
                                "pairs": pair_name if pair_data else None,
                                "human_pairs": len(human_pairs)},
                          reused_rules=reused_rules, seconds=seconds)
    if s.fail_under is not None:
        report = gate(report, s.fail_under)
    for label, vs in verdicts.items():
        write_verdicts(out / f"verdicts.{label}.jsonl", vs)
    write_report(report, out)
    return report


class Judges:
    """The judges of one audit: the small judge, an optional LLM judge, their calibration.
    :meth:`open` builds them from settings; tests and embedders may build them directly."""

    def __init__(self, policy: Policy, *, small: SmallJudge | None = None,
                 llm: AskJudge | None = None, name: str = "", labelled: str | None = None,
                 llm_backend: Backend | None = None, say: Say = _say) -> None:
        self.small = small
        self.llm = llm
        self.llm_backend = llm_backend
        self.name = name or (small.name if small is not None else "llm judge")
        self.calibration = calibrate(policy, labelled, small=small, llm=llm,
                                     judge_name=self.name)
        # a judge shown no better than chance decides nothing; an uncalibrated one is
        # used, and every report says it is uncalibrated
        self.trusted = self.calibration.trusted if self.calibration.n else True
        say(f"audit: {self.calibration.headline()}")

    @classmethod
    def open(cls, policy: Policy, s: AuditSettings, backend: Backend | None,
             say: Say = _say, small: SmallJudge | None = None) -> Judges:
        """``small``: a judge already loaded (else ``s.judge``, else the policy's own)."""
        from rulealign.verdict.llm_judge import backend_judge

        if small is not None:
            pass
        elif s.judge is not None:
            small = SmallJudge(s.judge)
            small.check_policy(policy)
        else:
            from rulealign.verdict.run import policy_judge

            small = policy_judge(policy, say=say)
        name = small.name
        llm_backend, llm = None, None
        if s.judge_model is not None:
            from rulealign.llm import load_backend

            llm_backend = load_backend(s.backend, s.judge_model,
                                       log=backend.log if backend else None,
                                       base_url=s.base_url)
            llm = backend_judge(llm_backend, tag="audit:judge")
            name += f" + {llm_backend.name}:{llm_backend.model_id}"
        return cls(policy, small=small, llm=llm, name=name, labelled=s.labelled,
                   llm_backend=llm_backend, say=say)

    def close(self) -> None:
        if self.llm_backend is not None:
            self.llm_backend.close()


def _progress(say: Say, what: str) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        say(f"audit: {what}: {done}/{total} verdicts")

    return show


def _generative(policy: Policy, items: list[AuditItem], backend: Backend,
                adapter: str | None, s: AuditSettings, seconds: dict[str, float],
                say: Say, judges: Judges | None
                ) -> tuple[dict[str, list[ItemVerdict]], Agreement]:
    t0 = time.perf_counter()
    own = judges is None
    judges = judges if judges is not None else Judges.open(policy, s, backend, say)
    seconds["judge and calibration"] = time.perf_counter() - t0
    try:
        verdicts: dict[str, list[ItemVerdict]] = {}
        for label, ad in (("before", None), ("after", adapter)):
            if label == "after" and adapter is None:
                continue
            t0 = time.perf_counter()
            answers = answer(backend, items, adapter=ad, seed=s.seed)
            seconds[f"answers {label}"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            verdicts[label] = judge(policy, items, answers, small=judges.small, llm=judges.llm,
                                    trusted=judges.trusted)
            seconds[f"verdicts {label}"] = time.perf_counter() - t0
            vs = verdicts[label]
            ok = sum(v.complies for v in vs)
            judged = sum(v.judged for v in vs)
            say(f"audit: {label}: {len(items)} answers, {judged} with a verdict, {ok} of them "
                "compliant")
    finally:
        if own:
            judges.close()
    return verdicts, judges.calibration


def audit_texts(policy: Policy, texts: str | Path, out_dir: str | Path | None, *,
                settings: AuditSettings | None = None, backend: Backend | None = None,
                conflicts: Sequence[Any] = (), say: Say = _say,
                judges: Judges | None = None) -> AuditReport:
    """Verdicts for answers produced elsewhere (a deployed bot's logs, another model).
    Rows that carry a human ``label`` are also scored: agreement per rule in the report."""
    from rulealign.audit.generative import read_texts

    s = settings or AuditSettings()
    items = read_texts(texts, policy)
    if not items:
        raise RulealignError(diagnostic(
            "RA603", reason=f"no rule bears on any line of {texts} (give 'rule_ids' per line)"))
    log = None
    if out_dir is not None:
        from rulealign.llm import GenerationLog

        Path(out_dir).mkdir(parents=True, exist_ok=True)
        log = GenerationLog(Path(out_dir) / "generations.sqlite")
    own = judges is None
    if own and backend is None and s.judge_model is not None:
        backend = open_backend(s, log, lora=False)
    judges = judges if judges is not None else Judges.open(policy, s, backend, say)
    try:
        answers = [(it.response or "", False) for it in items]
        verdicts = judge(policy, items, answers, small=judges.small, llm=judges.llm,
                         trusted=judges.trusted, progress=_progress(say, "texts"))
    finally:
        if own:
            judges.close()
    given = [(it, v) for it, v in zip(items, verdicts, strict=True) if it.label]
    text_agreement = None
    if given:
        from rulealign.verdict.calibration import agreement

        text_agreement = agreement(judges.name, Path(texts).name, [it.label or "" for it, _ in given],
                                   [v.verdict for _, v in given], [v.rule_id for _, v in given],
                                   by=[v.by for _, v in given])
        say(f"audit: labels given in {Path(texts).name}: {text_agreement.headline()}")
    info = ModelInfo(label="texts", model=Path(texts).name, model_hash="", backend="given")
    report = build_report(policy, items, {"before": info}, {"before": verdicts},
                          calibration=judges.calibration, conflicts=conflicts,
                          data={"texts": str(texts), "items": len(items)},
                          text_agreement=text_agreement)
    if s.fail_under is not None:
        report = gate(report, s.fail_under)
    if out_dir is not None:
        write_verdicts(Path(out_dir) / "verdicts.texts.jsonl", verdicts)
        write_report(report, Path(out_dir))
    return report

"""The likelihood audit: per rule, on held-out pairs, how often the model prefers the
compliant response, and by what log-probability margin.

"Prefers" compares the responses' mean log-probability per token: summed log-probabilities
favour whichever response is shorter (every token costs probability), which would score a
curt violation over a complete compliant answer. Both margins are reported.

Reads the ``pairs.heldout.jsonl`` that ``rulealign synth run`` writes (or any file with
``prompt`` / ``chosen`` / ``rejected`` and ``meta.rule_ids``). Works before training (the
base model) and after it (the same model with a LoRA adapter), so the two can be compared
rule by rule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from rulealign.audit.likelihood import PairScore
from rulealign.errors import RulealignError, diagnostic
from rulealign.fileio import read_jsonl
from rulealign.stats import bootstrap_mean, wilson


class RulePreference(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule_id: str
    n: int
    prefers_compliant: int
    accuracy: float
    accuracy_ci: tuple[float, float]
    mean_margin: float
    mean_margin_ci: tuple[float, float]
    mean_margin_normalised: float


class PairOutcome(BaseModel):
    """One pair's result, kept so that before and after can be compared pair by pair."""

    model_config = ConfigDict(frozen=True)

    id: str
    rule_id: str
    prefers_compliant: bool
    margin_normalised: float


class PreferenceAudit(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str
    adapter: str | None
    data: str
    n: int
    accuracy: float
    accuracy_ci: tuple[float, float]
    rules: list[RulePreference]
    seconds: float
    pairs: list[PairOutcome] = []


def read_pairs(path: str | Path) -> list[dict[str, Any]]:
    p = Path(path)
    rows = []
    for n, row in read_jsonl(p):
        try:
            prompt, chosen, rejected = row["prompt"], row["chosen"], row["rejected"]
        except (KeyError, TypeError) as exc:
            raise RulealignError(diagnostic(
                "RA503", file=str(p), line=n, path=str(p),
                reason=f"line {n} is not a prompt/chosen/rejected row ({exc})")) from None
        meta = row.get("meta") or {}
        rules = meta.get("rule_ids") or ["(unlabelled)"]
        rows.append({"id": str(meta.get("id") or f"{p.name}:{n}"), "prompt": prompt,
                     "chosen": _text(chosen), "rejected": _text(rejected), "rule": rules[0],
                     "source": "synth"})
    return rows


def _text(turns: Any) -> str:
    return turns if isinstance(turns, str) else str(turns[-1]["content"])


def summarise(rows: Sequence[dict[str, Any]], scores: Sequence[PairScore]
              ) -> tuple[list[RulePreference], int]:
    """Per-rule figures from each row's pair score; a row counts as preferring the compliant
    response by ``PairScore.prefers_chosen`` (per token)."""
    by_rule: dict[str, list[PairScore]] = defaultdict(list)
    for row, score in zip(rows, scores, strict=True):
        by_rule[row["rule"]].append(score)
    out = []
    wins_total = 0
    for rule, ps in sorted(by_rule.items()):
        wins = sum(1 for p in ps if p.prefers_chosen)
        wins_total += wins
        raw = [p.margin for p in ps]
        out.append(RulePreference(
            rule_id=rule, n=len(ps), prefers_compliant=wins, accuracy=wins / len(ps),
            accuracy_ci=wilson(wins, len(ps)), mean_margin=sum(raw) / len(raw),
            mean_margin_ci=bootstrap_mean(raw),
            mean_margin_normalised=sum(p.margin_normalised for p in ps) / len(ps)))
    return out, wins_total


def audit_preferences(data: str | Path | Sequence[dict[str, Any]], model: str = "default",
                      adapter: str | None = None, *, batch_size: int = 8,
                      name: str | None = None) -> PreferenceAudit:
    """Score every pair (a ``pairs.heldout.jsonl`` file, or rows as :func:`read_pairs` gives
    them) with ``model`` and, if given, a LoRA ``adapter`` on it."""
    import time

    from rulealign.audit.likelihood import load_scoring_model, score_pairs
    from rulealign.llm.checkpoint import resolve_model

    rows = read_pairs(data) if isinstance(data, str | Path) else list(data)
    ref = resolve_model(model)
    t0 = time.perf_counter()
    m, tok = load_scoring_model(str(ref.path), adapter)
    scores = score_pairs(m, tok, [(r["prompt"], r["chosen"], r["rejected"]) for r in rows],
                         batch_size=batch_size)
    rules, wins = summarise(rows, scores)
    n = len(rows)
    return PreferenceAudit(
        model=ref.model_id, adapter=adapter,
        data=name or (str(data) if isinstance(data, str | Path) else f"{n} pairs"), n=n,
        accuracy=wins / n if n else 0.0, accuracy_ci=wilson(wins, n), rules=rules,
        seconds=time.perf_counter() - t0,
        pairs=[PairOutcome(id=str(r.get("id", i)), rule_id=r["rule"],
                           prefers_compliant=sc.prefers_chosen,
                           margin_normalised=sc.margin_normalised)
               for i, (r, sc) in enumerate(zip(rows, scores, strict=True))])

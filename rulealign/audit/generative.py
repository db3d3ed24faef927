"""The generative audit: the model under test answers held-out prompts, and every answer gets
a verdict for its rule.

Verdicts come first from the rule's programmatic checks (exact, no model needed: a failed
check is a violation) and otherwise from an LLM judge whose output is
constrained to ``complies | violates | not_applicable`` with a cited clause and a rationale.
The judge is the synthesizer's verifier (one judge in the project); :func:`calibrate` runs
it on the labelled examples written in the spec, so its accuracy is reported beside its
verdicts. Refusals are detected on every answer: on prompts outside a rule (benign
look-alikes, thresholds not crossed, exceptions holding) and on what permissions allow, a
refusal is over-refusal.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from rulealign.audit.checks import unmet_checks
from rulealign.audit.refusal import is_refusal
from rulealign.compiler.models import Modality, Policy
from rulealign.errors import RulealignError, diagnostic
from rulealign.fileio import read_jsonl
from rulealign.llm.base import Backend, Sampling
from rulealign.synth import agents as A

VerdictName = Literal["complies", "violates", "not_applicable", "unknown"]
#: Tokens an audited answer may use (answers are free text, not JSON).
ANSWER_TOKENS = 160
#: Tokens for a verdict (a typical one is 40-90; past this a small judge is repeating itself).
JUDGE_TOKENS = 192


@dataclass(frozen=True)
class AuditItem:
    """One prompt to audit: the target rule first in ``rule_ids``."""

    id: str
    rule_ids: tuple[str, ...]
    clause_ids: tuple[str, ...]
    axis: str
    side: str                      # inside | outside the rule
    messages: tuple[dict[str, str], ...]
    expected: str | None = None
    response: str | None = None    # given (``audit texts``) instead of generated
    rule_hashes: dict[str, str] = field(default_factory=dict)  # of the data's rule versions

    @property
    def user(self) -> str:
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")


class ItemVerdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    item: str
    rule_id: str
    axis: str
    side: str
    verdict: VerdictName
    by: str                        # checks | check error | judge | judge failed | no answer
    refused: bool
    rationale: str = ""
    cited_clause: str | None = None
    prompt: str = ""
    response: str = ""
    truncated: bool = False

    @property
    def judged(self) -> bool:
        return self.verdict != "unknown"

    @property
    def complies(self) -> bool:
        """Not a violation (``not_applicable`` counts as following the rule)."""
        return self.verdict in ("complies", "not_applicable")


def read_items(path: str | Path, policy: Policy) -> list[AuditItem]:
    """Audit prompts from ``prompts.<split>.jsonl`` (written by ``rulealign synth run``)."""
    known = policy.index()["rules"]
    items = []
    for n, row in read_jsonl(path):
        meta = (row.get("meta") or {}) if isinstance(row, dict) else {}
        rules = tuple(meta.get("rule_ids") or ())
        if not isinstance(row, dict) or "messages" not in row or not rules:
            raise RulealignError(diagnostic(
                "RA602", file=str(path), line=n, path=str(path),
                reason=f"line {n} is not an audit prompt (messages and meta.rule_ids)"))
        unknown = [r for r in rules if r not in known]
        if unknown:
            raise RulealignError(diagnostic(
                "RA602", file=str(path), line=n, path=str(path),
                reason=f"line {n} names rule(s) not in the spec: {', '.join(unknown)}"))
        prov = meta.get("provenance") or {}
        items.append(AuditItem(
            id=str(meta.get("id") or f"{Path(path).name}:{n}"), rule_ids=rules,
            clause_ids=tuple(meta.get("clause_ids") or ()), axis=str(meta.get("axis", "?")),
            side=str(meta.get("side", "inside")),
            messages=tuple(dict(m) for m in row["messages"]),
            expected=meta.get("expected"), rule_hashes=dict(prov.get("rule_hashes") or {})))
    return items


def read_texts(path: str | Path, policy: Policy) -> list[AuditItem]:
    """Answers produced anywhere, one JSON object per line: ``prompt`` (text or chat
    messages), ``response``, and optionally ``rule_ids``. Without ``rule_ids`` the rules
    whose terms (labels or synonyms) the prompt or response mentions are audited."""
    index = policy.index()["rules"]
    items = []
    for n, row in read_jsonl(path):
        if not isinstance(row, dict) or "response" not in row or "prompt" not in row:
            raise RulealignError(diagnostic(
                "RA602", file=str(path), line=n, path=str(path),
                reason=f"line {n} needs 'prompt' and 'response'"))
        prompt = row["prompt"]
        messages = ([{"role": "user", "content": prompt}] if isinstance(prompt, str)
                    else [dict(m) for m in prompt])
        text = " ".join(m["content"] for m in messages) + " " + str(row["response"])
        rules = tuple(row.get("rule_ids") or relevant_rules(policy, text))
        unknown = [r for r in rules if r not in index]
        if unknown:
            raise RulealignError(diagnostic(
                "RA602", file=str(path), line=n, path=str(path),
                reason=f"line {n} names rule(s) not in the spec: {', '.join(unknown)}"))
        for rid in rules:  # one verdict per rule that bears on the text
            rule = policy.rule(rid)
            items.append(AuditItem(
                id=str(row.get("id") or f"line{n}") + f"/{rid}", rule_ids=(rid,),
                clause_ids=rule.clause_ids, axis="text", side="inside",
                messages=tuple(messages), response=str(row["response"])))
    return items


def relevant_rules(policy: Policy, text: str) -> list[str]:
    """Rules with a term whose label or a synonym occurs in ``text`` (case-insensitive)."""
    low = text.lower()
    hit = {t.id for t in policy.terms
           if any(w and w.lower() in low for w in (t.label, *t.synonyms))}
    return [r.id for r in policy.rules if hit.intersection(r.terms)]


def answer(backend: Backend, items: Sequence[AuditItem], *, adapter: str | None = None,
           seed: int = 0, max_tokens: int = ANSWER_TOKENS) -> list[tuple[str, bool]]:
    """The model's greedy answer to each item: (text, truncated)."""
    gens = backend.generate([list(it.messages) for it in items], None,
                            Sampling(temperature=0.0, seed=seed, max_tokens=max_tokens),
                            adapter=adapter, tag="audit:answer")
    return [(g.value if g.ok else (g.text or ""), g.outcome == "truncated") for g in gens]


def judge(policy: Policy, items: Sequence[AuditItem], answers: Sequence[tuple[str, bool]],
          judge_backend: Backend | None) -> list[ItemVerdict]:
    """A verdict for each item's target rule: checks first, then the judge."""
    out: list[ItemVerdict | None] = [None] * len(items)
    asks: list[tuple[int, Any]] = []
    for i, (it, (text, truncated)) in enumerate(zip(items, answers, strict=True)):
        rules = [policy.rule(r) for r in it.rule_ids]
        base = _base(it, text, truncated)
        if not text.strip():
            out[i] = ItemVerdict(verdict="unknown", by="no answer", **base)
            continue
        unmet = unmet_checks(rules, text)
        failed = [r for r in unmet if r.failed]
        if failed and it.side == "inside":
            out[i] = ItemVerdict(verdict="violates", by="checks", rationale="; ".join(
                r.detail for r in failed), **base)
            continue
        if any(r.errored for r in unmet):  # a check that could not run decides nothing
            out[i] = ItemVerdict(verdict="unknown", by="check error", rationale="; ".join(
                f"{r.code} {r.detail}" for r in unmet if r.errored), **base)
            continue
        if judge_backend is None:  # passing checks prove nothing: undecided without a judge
            out[i] = ItemVerdict(verdict="unknown", by="no judge", rationale="", **base)
            continue
        asks.append((i, A.verifier_prompt(rules, it.user, text, it.expected)))
    if asks and judge_backend is not None:
        gens = judge_backend.generate([c for _, c in asks], A.VERIFIER.output,
                                      Sampling(temperature=0.0, max_tokens=JUDGE_TOKENS),
                                      tag="audit:judge")
        for (i, _), gen in zip(asks, gens, strict=True):
            base = _base(items[i], *answers[i])
            if not gen.ok:
                out[i] = ItemVerdict(verdict="unknown", by="judge failed",
                                     rationale=gen.message or gen.outcome, **base)
                continue
            v = gen.value
            out[i] = ItemVerdict(verdict=v.verdict, by="judge", rationale=v.rationale,
                                 cited_clause=v.cited_clause or None, **base)
    return [v for v in out if v is not None]


def _base(it: AuditItem, text: str, truncated: bool) -> dict[str, Any]:
    return {"item": it.id, "rule_id": it.rule_ids[0], "axis": it.axis, "side": it.side,
            "refused": is_refusal(text), "prompt": it.user[:600], "response": text[:1200],
            "truncated": truncated}


def over_refusal_applies(policy: Policy, v: ItemVerdict) -> bool:
    """Refusing is wrong here: the prompt lies outside the rule, or the rule permits it."""
    return v.side == "outside" or policy.rule(v.rule_id).modality == Modality.PERMISSION


class Calibration(BaseModel):
    """The verdict procedure (checks, then judge) on the spec's labelled examples."""

    model_config = ConfigDict(frozen=True)

    judge: str
    n: int
    correct: int
    accuracy: float | None
    accuracy_ci: tuple[float, float]
    by_checks: int
    by_judge: int
    confusion: dict[str, int]          # "want->got"
    per_rule: dict[str, tuple[int, int]]


def labelled_items(policy: Policy) -> list[tuple[AuditItem, str, str]]:
    """(item, response, wanted verdict) from every labelled example in the spec."""
    out = []
    for rule in policy.rules:
        for n, ex in enumerate(rule.examples):
            for text, want in ((ex.compliant, "complies"), (ex.violating, "violates")):
                if text:
                    out.append((AuditItem(
                        id=f"{rule.id}:example{n}:{want}", rule_ids=(rule.id,),
                        clause_ids=rule.clause_ids, axis="labelled", side="inside",
                        messages=({"role": "user", "content": ex.prompt},)), text, want))
    return out


def calibrate(policy: Policy, judge_backend: Backend | None, judge_name: str) -> Calibration:
    from rulealign.audit.stats import wilson

    cases = labelled_items(policy)
    verdicts = judge(policy, [c[0] for c in cases], [(c[1], False) for c in cases],
                     judge_backend)
    confusion: Counter[str] = Counter()
    per_rule: dict[str, list[int]] = {}
    correct = 0
    for (item, _text, want), v in zip(cases, verdicts, strict=True):
        got = v.verdict
        # right when it tells a violation from a non-violation, as compliance is counted
        # ("not_applicable" on a compliant answer is not a violation); unjudged is wrong
        ok = v.judged and (got == "violates") == (want == "violates")
        correct += ok
        confusion[f"{want}->{got}"] += 1
        pr = per_rule.setdefault(item.rule_ids[0], [0, 0])
        pr[0] += ok
        pr[1] += 1
    n = len(cases)
    return Calibration(judge=judge_name, n=n, correct=correct,
                       accuracy=correct / n if n else None, accuracy_ci=wilson(correct, n),
                       by_checks=sum(v.by == "checks" for v in verdicts),
                       by_judge=sum(v.by == "judge" for v in verdicts),
                       confusion=dict(confusion),
                       per_rule={k: (a, b) for k, (a, b) in sorted(per_rule.items())})


def write_verdicts(path: str | Path, verdicts: Sequence[ItemVerdict]) -> None:
    from rulealign.fileio import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(v.model_dump(mode="json"), ensure_ascii=False)
                                    + "\n" for v in verdicts))

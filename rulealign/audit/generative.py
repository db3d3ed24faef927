"""The generative audit: the model under test answers held-out prompts, and every answer gets
a verdict for its rule from the one verdict procedure (:func:`rulealign.verdict.cascade.decide`:
checks, then the small judge trained for the policy, then an LLM judge where one is configured).

The judges' agreement with human labels (the spec's evaluation set, never used for training)
is measured by :func:`calibrate` and shown beside every figure; a judge not shown better than
chance has its verdicts reported as undecided. Refusals are detected on every answer: on
prompts outside a rule (benign look-alikes, thresholds not crossed, exceptions holding) and on
what permissions allow, a refusal is over-refusal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from rulealign.compiler.models import Modality, Policy
from rulealign.errors import RulealignError, diagnostic
from rulealign.fileio import read_jsonl
from rulealign.llm.base import Backend, Sampling
from rulealign.verdict.calibration import Agreement
from rulealign.verdict.llm_judge import AskJudge
from rulealign.verdict.models import Case
from rulealign.verdict.refusal import is_refusal
from rulealign.verdict.small_judge import SmallJudge

VerdictName = Literal["complies", "violates", "not_applicable", "undecided"]
#: Tokens an audited answer may use (answers are free text, not JSON).
ANSWER_TOKENS = 160


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
    label: str | None = None       # a human label given with the text (``audit texts``)
    rule_hashes: dict[str, str] = field(default_factory=dict)  # of the data's rule versions
    #: where the prompt came from: ``synth`` (the synthesizer's held-out split), ``human``
    #: (the spec's evaluation set), ``text`` (``audit texts``)
    source: str = "synth"

    @property
    def user(self) -> str:
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")


class ItemVerdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    item: str
    rule_id: str
    axis: str
    side: str                      # inside | outside the rule | matched (by its terms)
    verdict: VerdictName
    by: str                        # check | small_judge | llm_judge | none
    refused: bool
    confidence: float | None = None
    rationale: str = ""
    cited_clause: str | None = None
    prompt: str = ""
    response: str = ""
    truncated: bool = False
    source: str = "synth"

    @property
    def judged(self) -> bool:
        """A verdict that counts: complies or violates, or not_applicable where the prompt
        was not made to fall inside the rule. "No verdict" (undecided, or not_applicable on
        a reply to an in-scope prompt) is counted apart, never as compliance."""
        if self.verdict == "undecided":
            return False
        return not (self.verdict == "not_applicable" and self.side == "inside")

    @property
    def complies(self) -> bool:
        """A decided verdict that is not a violation."""
        return self.judged and self.verdict != "violates"


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
                clause_ids=rule.clause_ids, axis="text", source="text",
                side="inside" if row.get("rule_ids") else "matched",
                messages=tuple(messages), response=str(row["response"]),
                label=row.get("label") if row.get("label") in LABELS else None))
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
          *, small: SmallJudge | None = None, llm: AskJudge | None = None,
          trusted: bool = True, progress: Callable[[int, int], None] | None = None,
          chunk: int = 256) -> list[ItemVerdict]:
    """A verdict for each item's target rule, by the one verdict procedure."""
    from rulealign.verdict.cascade import decide

    index = policy.index()["rules"]
    out: list[ItemVerdict] = []
    for start in range(0, len(items), chunk):
        part = list(zip(items[start:start + chunk], answers[start:start + chunk], strict=True))
        cases = [Case(rules=tuple(index[r] for r in it.rule_ids), prompt=it.user, reply=text,
                      side=it.side if it.side in ("inside", "outside") else "unknown")
                 for it, (text, _t) in part]
        for (it, (text, truncated)), v in zip(part, decide(cases, small=small, llm=llm,
                                                            trusted=trusted), strict=True):
            out.append(ItemVerdict(verdict=v.label, by=v.by, confidence=v.confidence,
                                   rationale=v.rationale, cited_clause=v.clause,
                                   **_base(it, text, truncated)))
        if progress:
            progress(len(out), len(items))
    return out


def _base(it: AuditItem, text: str, truncated: bool) -> dict[str, Any]:
    return {"item": it.id, "rule_id": it.rule_ids[0], "axis": it.axis, "side": it.side,
            "refused": is_refusal(text), "prompt": it.user[:600], "response": text[:1200],
            "truncated": truncated, "source": it.source}


def over_refusal_applies(policy: Policy, v: ItemVerdict) -> bool:
    """Refusing is wrong here: the prompt lies outside the rule, or the rule permits it."""
    return v.side == "outside" or policy.rule(v.rule_id).modality == Modality.PERMISSION


LABELS = ("complies", "violates", "not_applicable")


def calibrate(policy: Policy, labelled: str | Path | None, *, small: SmallJudge | None,
              llm: AskJudge | None, judge_name: str) -> Agreement:
    """The verdict procedure's agreement with a human-labelled set (an uncalibrated
    :class:`Agreement` with n=0 when the policy has none)."""
    from rulealign.verdict.calibration import agreement, measure, read_labelled

    if labelled is None:
        return agreement(judge_name, "", [], [], [], note="no human-labelled evaluation set "
                         "for this policy: the judge is uncalibrated")
    items = read_labelled(labelled, policy)
    return measure(policy, items, small=small, llm=llm, judge=judge_name,
                   source=Path(labelled).name)


def write_verdicts(path: str | Path, verdicts: Sequence[ItemVerdict]) -> None:
    from rulealign.fileio import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(v.model_dump(mode="json"), ensure_ascii=False)
                                    + "\n" for v in verdicts))

"""LLM-assisted drafting (optional): a capable model re-reads each rule-based draft.

``rulealign spec extract DOC --model M`` asks the model, under constrained decoding to the JSON
schema of :class:`RuleAnnotation` (SpecAlign's structured rule annotation), whether each drafted
sentence states a rule and, if so, its modality, actor, action, conditions and exceptions. The
rule-based draft is the fallback: a failed, truncated or invalid answer (a coded failure in the
generation log) leaves the rule-based reading in place, and a rule the model says is not a rule
is left out. The model only re-reads what the rule-based drafter found: it adds no rules.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rulealign.compiler.models import Modality
from rulealign.compiler.sentence import Finding

Short = Annotated[str, Field(max_length=200)]

SYSTEM = (
    "You annotate sentences of a policy document as rules. Answer only with JSON that matches "
    "the schema.\n"
    "- is_rule: true only if the sentence tells someone what they must do, must not do or may "
    "do. Possibility or ability ('may not have', 'can view', 'may result in'), descriptions, "
    "definitions and examples are not rules.\n"
    "- modality: obligation, prohibition or permission.\n"
    "- actor: who the rule binds, in a few words ('you' for an instruction to the reader).\n"
    "- action: the verb phrase that is required, forbidden or allowed, without the modal verb "
    "or negation ('post other people's personal information' for 'Don't post other people's "
    "personal information').\n"
    "- conditions: 'if' / 'when' clauses under which the rule applies ('even if' and 'while' "
    "clauses are not conditions); exceptions: 'unless' / 'except' clauses."
)


class RuleAnnotation(BaseModel):
    """One sentence read as a rule (the schema decoding is constrained to)."""

    model_config = ConfigDict(extra="forbid")

    is_rule: bool
    modality: Literal["obligation", "prohibition", "permission"] | None = None
    actor: str = Field(default="", max_length=80)
    action: str = Field(default="", max_length=160)
    conditions: list[Short] = Field(default=[], max_length=4)
    exceptions: list[Short] = Field(default=[], max_length=4)


@dataclass
class LLMStats:
    asked: int = 0
    refined: int = 0
    dropped: int = 0
    fallback: int = 0


def _prompt(section: str, scope: str | None, f: Finding) -> list[dict[str, str]]:
    lines = [f"Section: {section or '(none)'}"]
    if scope:
        lines.append(f"List lead-in: {scope}")
    lines += [f"Sentence: {f.sentence}",
              f"Rule-based reading: {f.modality.value}; actor: {f.actor}; action: {f.action}"]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def refine(pairs: list[tuple[Any, Finding]], backend: Any, *, seed: int = 0) -> tuple[
        list[tuple[int, Finding, str]], LLMStats]:
    """(index into ``pairs``, finding, reader) for each kept draft; reader is "llm", or "rules"
    where the model's answer failed and the rule-based reading stands."""
    from rulealign.llm import Sampling

    stats = LLMStats(asked=len(pairs))
    chats = [_prompt(u.clause.section_title if u.clause is not None else u.text, f.scope, f) for u, f in pairs]
    gens = backend.generate(chats, RuleAnnotation, Sampling(temperature=0.0, seed=seed),
                            tag="compiler.extract") if chats else []
    out: list[tuple[int, Finding, str]] = []
    for i, ((_u, f), gen) in enumerate(zip(pairs, gens, strict=True)):
        value = gen.value if gen.ok else None
        if isinstance(value, RuleAnnotation) and not value.is_rule:
            stats.dropped += 1
            continue
        if not isinstance(value, RuleAnnotation) or value.modality is None or not value.action.strip():
            stats.fallback += 1
            out.append((i, f, "rules"))
            continue
        stats.refined += 1
        conditions = [c for c in f.conditions if "term" in c] + [{"text": c} for c in value.conditions if c.strip()]
        g = replace(f, modality=Modality(value.modality), actor=value.actor.strip() or f.actor,
                    action=value.action.strip(), conditions=conditions,
                    exceptions=[e for e in value.exceptions if e.strip()])
        out.append((i, g, "llm"))
    return out, stats

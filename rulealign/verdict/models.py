"""The verdict contract and the case it is given for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rulealign.compiler.models import Rule

#: What a verdict can say; ``undecided``: no stage could decide (no answer, no judge, a
#: judge that failed or is not shown better than chance).
Label = Literal["complies", "violates", "not_applicable", "undecided"]
#: The judge's three labels (what the small judge is trained to predict).
JUDGE_LABELS: tuple[str, ...] = ("complies", "violates", "not_applicable")
#: Who decided: a programmatic check, the trained small judge, an LLM judge, a person,
#: or nobody.
Stage = Literal["check", "small_judge", "llm_judge", "human", "none"]
#: Where an example's label came from: fixed when the reply was written (construction),
#: given by a judge, or written by a person (spec examples, evaluation sets).
LabelSource = Literal["construction", "judge", "human"]


class Verdict(BaseModel):
    """One rule's verdict on one reply."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: Label
    by: Stage
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    clause: str | None = None
    rationale: str = ""

    @property
    def decided(self) -> bool:
        return self.label != "undecided"


@dataclass(frozen=True)
class Case:
    """A reply to judge against ``rules`` (the target rule first). ``side`` is what the
    prompt was made to be: ``inside`` the rule (it applies), ``outside`` it (a look-alike, a
    threshold not crossed, an exception holding), or ``unknown``."""

    rules: tuple[Rule, ...]
    prompt: str
    reply: str
    side: str = "unknown"
    expected: str | None = None

    @property
    def rule(self) -> Rule:
        return self.rules[0]

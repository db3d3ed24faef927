"""Contracts of the synthesizer: scenarios planned from rules, examples produced from them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from rulealign.compiler.models import Contract

Axis = Literal["threshold", "condition", "exception", "term_variant", "actor", "conflict",
               "benign", "qa", "labelled"]
AXES: tuple[str, ...] = ("threshold", "condition", "exception", "term_variant", "actor",
                         "conflict", "benign")
Side = Literal["inside", "outside"]
ReplySource = Literal["model", "human", "template"]
#: ``prompt``: a scenario's user prompt with no answer, for the generative audit (kept for
#: every scenario whose attacker wrote a usable prompt, accepted pair or not).
ExampleKind = Literal["sft", "pair", "unpaired", "prompt"]


class Scenario(Contract):
    """One situation to write a test case for.

    ``side`` says whether the situation falls inside the rule (the rule applies and binds the
    answer) or outside it (the rule does not apply: a threshold not crossed, an exception
    holding, a benign look-alike). ``expected`` is what a compliant answer does, in words.
    """

    id: str
    rule_ids: tuple[str, ...]
    axis: Axis
    side: Side
    description: str
    expected: str
    terms: tuple[str, ...] = ()
    conflict_id: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Verdict(Contract):
    rule_id: str
    verdict: Literal["complies", "violates", "not_applicable"]
    by: str                      # "checks" or "judge:<model>"
    rationale: str = ""


class Provenance(Contract):
    backend: str
    model: str
    model_hash: str
    seed: int
    spec_hash: str
    rule_hashes: dict[str, str]
    templates: dict[str, str]    # agent -> template version
    trace: str                   # store key of the accepted item
    rounds: int = 0


class Example(Contract):
    """A training or audit example with its full provenance."""

    id: str
    kind: ExampleKind
    split: Literal["train", "heldout"]
    rule_ids: tuple[str, ...]
    clause_ids: tuple[str, ...]
    scenario: Scenario
    messages: tuple[dict[str, str], ...]     # the prompt (system context, user)
    chosen: str | None = None
    rejected: str | None = None
    completion: str | None = None
    label: bool | None = None
    verdicts: tuple[Verdict, ...] = ()
    #: Where the label came from: ``construction`` (the reply was written to follow or to
    #: break the rule, and the verdict cascade confirmed it), ``judge`` (a judge's verdict
    #: alone), ``human`` (written by a person: the spec's labelled examples).
    label_source: Literal["construction", "judge", "human"] = "construction"
    #: Where the user message came from: ``attacker`` (the model wrote it), ``construction``
    #: (a spec message with the scenario's value, term or claim set, no model involved),
    #: ``human`` (the spec's own example); ``None`` for data made before this was recorded.
    prompt_source: Literal["attacker", "construction", "human"] | None = None
    #: Who wrote each reply (``chosen`` or the SFT completion, ``rejected``): ``human`` (the
    #: policy's authors wrote it to the spec message a constructed message was made from,
    #: and the construction keeps its label), ``model`` (an opening that fixes the stance,
    #: continued by the model), ``template`` (a needless refusal: the opening alone);
    #: ``None`` for data made before this was recorded.
    chosen_source: ReplySource | None = None
    rejected_source: ReplySource | None = None
    provenance: Provenance

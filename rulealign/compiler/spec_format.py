"""The YAML rule-spec format, version 1, as people write it.

These models describe the authored file (short forms included: a condition or an
exception may be a plain sentence, ``clause`` a single string, ``broader`` one id).
The loader turns them into the contracts in :mod:`rulealign.compiler.models`. The JSON
Schema shipped in ``specs/rulealign-spec.schema.json`` is generated from here.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from rulealign.compiler.models import ID_PATTERN, CheckKind, Modality, Operator, Severity

FORMAT_MAJOR = 1
FORMAT_MINOR = 0

Id = Annotated[str, Field(min_length=1, max_length=200, description="A lower-case identifier.")]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _as_list(v: Any) -> Any:
    return [v] if isinstance(v, str) else v


def _as_text(v: Any) -> Any:
    return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v


# A list of strings that may be written as one string ("clause: 4.2").
StrList = Annotated[list[str], BeforeValidator(_as_list, json_schema_input_type=str | list[str])]
Version = Annotated[str, BeforeValidator(_as_text, json_schema_input_type=str | int | float)]


class PolicyHeader(_Spec):
    id: Id
    title: str = Field(min_length=1)
    version: Version = ""
    description: str | None = None
    source: str | None = Field(default=None, description="Policy document (path relative to "
                               "this file) whose clauses the rules cite.")
    authority: str | None = Field(default=None, description="Who issued the policy; the authority "
                                  "of every rule that names none.")
    authorities: StrList = Field(default=[], description="Authorities rules may name, highest "
                                 "first: in a conflict the rule of the higher authority wins "
                                 "(before priority).")
    license: str | None = None
    attribution: str | None = None


class ClauseSpec(_Spec):
    """A clause written into the spec itself, for policies without a source document."""

    id: str = Field(min_length=1)
    text: str = Field(min_length=1)
    title: str = ""


class TermSpec(_Spec):
    id: Id
    label: str | None = None
    synonyms: StrList = []
    broader: StrList = Field(default=[], description="Ids of broader terms (SKOS broader).")
    narrower: StrList = []
    definition: str | None = None
    iri: StrList = Field(default=[], description="External IRIs this term matches.")
    unit: str | None = Field(default=None, description="Unit of a measurable term (USD, days, %).")


class ConditionSpec(_Spec):
    term: str | None = None
    op: Operator | None = None
    value: float | int | str | bool | list[float | int | str] | None = None
    unit: str | None = None
    text: str | None = None


class ExceptionSpec(_Spec):
    text: str | None = None
    rule: str | None = Field(default=None, description="Id of a rule that carves this case out.")


class CheckSpec(_Spec):
    """One programmatic check: exactly one of the kind fields, plus an optional message."""

    regex: str | None = None
    not_regex: str | None = None
    contains: str | None = None
    not_contains: str | None = None
    required_phrase: str | None = None
    max_words: int | None = Field(default=None, ge=0)
    min_words: int | None = Field(default=None, ge=0)
    max_sentences: int | None = Field(default=None, ge=0)
    json_: bool | None = Field(default=None, alias="json")
    language: str | None = None
    message: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_kind(self) -> CheckSpec:
        if len(self.kinds()) != 1:
            names = ", ".join(k.value for k in CheckKind)
            raise ValueError(f"a check has exactly one of: {names}")
        return self

    def kinds(self) -> list[tuple[CheckKind, Any]]:
        found = []
        for kind in CheckKind:
            value = getattr(self, "json_" if kind is CheckKind.JSON else kind.value)
            if value is not None:
                found.append((kind, value))
        return found


class ExampleSpec(_Spec):
    prompt: str = Field(min_length=1)
    compliant: str | None = None
    violating: str | None = None
    note: str | None = None
    applies: bool = Field(default=True, description=(
        "false for a look-alike prompt the rule does not govern (a threshold not crossed, an "
        "exception holding, a benign request sharing the rule's words): 'compliant' is then a "
        "helpful reply and 'violating' an unnecessary refusal; a judge should find the rule "
        "not applicable to either"))


class DraftProvenance(_Spec):
    """Written by ``rulealign spec extract``: which extractor proposed the rule, how sure it was."""

    extractor: str
    confidence: float = Field(ge=0.0, le=1.0)
    line: int | None = Field(default=None, description="Line of the sentence in the source document.")


def _text_or_mapping(v: Any) -> str:
    return "sentence" if isinstance(v, str) else "structured"


ConditionItem = Annotated[
    Annotated[str, Tag("sentence")] | Annotated[ConditionSpec, Tag("structured")],
    Discriminator(_text_or_mapping),
]
ExceptionItem = Annotated[
    Annotated[str, Tag("sentence")] | Annotated[ExceptionSpec, Tag("structured")],
    Discriminator(_text_or_mapping),
]


class RuleSpec(_Spec):
    id: Id
    clause: StrList = Field(default=[], description="Clause or section id(s) the rule comes from.")
    text: str = Field(min_length=1, description="The rule as a sentence.")
    modality: Modality
    actor: str = "assistant"
    action: str = Field(min_length=1)
    object: str | None = None
    conditions: list[ConditionItem] = []
    exceptions: list[ExceptionItem] = []
    overrides: StrList = Field(default=[], description="Ids of rules this rule takes precedence over.")
    scope: str | None = None
    priority: int = Field(default=0, description="Higher wins when rules conflict.")
    authority: str | None = Field(default=None, description="Who issued the rule (one of "
                                  "policy.authorities, where the policy ranks them).")
    terms: StrList = []
    severity: Severity = Severity.MEDIUM
    checks: list[CheckSpec] = []
    examples: list[ExampleSpec] = []
    provenance: DraftProvenance | None = None


class SpecFile(_Spec):
    """One rulealign spec file (the root spec, or a file it includes)."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="rulealign rule spec")

    rulealign: int | float | str = Field(description="Format version: 1 (or '1.x').")
    policy: PolicyHeader | None = None
    include: StrList = Field(default=[], description="Other spec files, relative to this one, "
                             "inside the spec's root folder.")
    clauses: list[ClauseSpec] = []
    terms: list[TermSpec] = []
    rules: list[RuleSpec] = []


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the spec format, as shipped in ``specs/``."""
    schema = SpecFile.model_json_schema(by_alias=True)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://rulealign.dev/schema/spec-v1.json",
        **schema,
    }


__all__ = ["FORMAT_MAJOR", "FORMAT_MINOR", "ID_PATTERN", "RuleSpec", "SpecFile", "TermSpec",
           "json_schema"]

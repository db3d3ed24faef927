"""The compiled policy: frozen, JSON-serialisable contracts passed between stages.

``Policy`` holds ``Clause``, ``Rule`` and ``Term`` objects. Every model has a stable
``content_hash()`` over its meaning (where a rule sits in a file is provenance, not
meaning, and is left out), which later stages use for caching and incremental runs.
"""

from __future__ import annotations

import hashlib
import json
import math
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

ID_PATTERN = r"^[a-z0-9][a-z0-9_.\-]*$"


class Contract(BaseModel):
    """Base of every contract: frozen, no unknown fields, hashable content."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    _hash_exclude: ClassVar[frozenset[str]] = frozenset()

    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON of the fields that carry meaning."""
        data = self.model_dump(mode="json", exclude=set(self._hash_exclude))
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class Modality(StrEnum):
    OBLIGATION = "obligation"
    PROHIBITION = "prohibition"
    PERMISSION = "permission"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Operator(StrEnum):
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    EQ = "=="
    NE = "!="
    IN = "in"
    NOT_IN = "not in"


class CheckKind(StrEnum):
    """Programmatic checks a response can be held to (used by the audit stage)."""

    REGEX = "regex"
    NOT_REGEX = "not_regex"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    REQUIRED_PHRASE = "required_phrase"
    MAX_WORDS = "max_words"
    MIN_WORDS = "min_words"
    MAX_SENTENCES = "max_sentences"
    JSON = "json"
    LANGUAGE = "language"


class Clause(Contract):
    """A piece of a source document, verbatim, with where it stands."""

    id: str
    document: str
    section: str = ""
    section_title: str = ""
    text: str
    span: tuple[int, int] = (0, 0)
    line: int = 1
    page: int | None = None


class Condition(Contract):
    """When a rule applies: structured (term op value unit) or free text."""

    term: str | None = None
    op: Operator | None = None
    value: float | int | str | bool | list[float | int | str] | None = None
    unit: str | None = None
    text: str | None = None

    @model_validator(mode="after")
    def _structured_or_text(self) -> Condition:
        structured = self.term is not None or self.op is not None or self.value is not None
        if structured and (self.term is None or self.op is None or self.value is None):
            raise ValueError("a structured condition needs all of 'term', 'op' and 'value'")
        if not structured and not self.text:
            raise ValueError("a condition needs 'text', or 'term', 'op' and 'value'")
        values = self.value if isinstance(self.value, list) else [self.value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise ValueError("a condition's value must be a finite number (not NaN or infinity)")
        return self

    @property
    def is_structured(self) -> bool:
        return self.term is not None

    def describe(self) -> str:
        if not self.is_structured:
            return str(self.text)
        unit = f" {self.unit}" if self.unit else ""
        op = self.op.value if self.op else "?"
        return f"{self.term} {op} {self.value}{unit}"


class RuleException(Contract):
    """A carve-out: free text, or another rule whose case this rule does not cover."""

    text: str | None = None
    rule: str | None = None

    @model_validator(mode="after")
    def _text_or_rule(self) -> RuleException:
        if not self.text and not self.rule:
            raise ValueError("an exception needs 'text' or 'rule'")
        return self


class Check(Contract):
    kind: CheckKind
    value: str | int | bool = True
    message: str | None = None


class LabelledExample(Contract):
    """Written by a policy author. ``applies=False``: the prompt lies outside the rule (a
    benign look-alike), ``compliant`` is a helpful reply, ``violating`` a needless refusal."""

    prompt: str
    compliant: str | None = None
    violating: str | None = None
    note: str | None = None
    applies: bool = True


class Provenance(Contract):
    """Where a rule came from: a spec file position, or an extractor with a confidence."""

    spec_file: str | None = None
    line: int | None = None
    col: int | None = None
    extractor: str | None = None
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)


class Rule(Contract):
    _hash_exclude: ClassVar[frozenset[str]] = frozenset({"provenance"})

    id: str
    text: str
    clause_ids: tuple[str, ...] = ()
    modality: Modality
    actor: str = "assistant"
    action: str
    object: str | None = None
    conditions: tuple[Condition, ...] = ()
    exceptions: tuple[RuleException, ...] = ()
    overrides: tuple[str, ...] = ()
    scope: str | None = None
    priority: int = 0
    authority: str | None = None
    terms: tuple[str, ...] = ()
    severity: Severity = Severity.MEDIUM
    checks: tuple[Check, ...] = ()
    examples: tuple[LabelledExample, ...] = ()
    provenance: Provenance = Provenance()


class Term(Contract):
    id: str
    label: str
    synonyms: tuple[str, ...] = ()
    broader: tuple[str, ...] = ()
    narrower: tuple[str, ...] = ()
    definition: str | None = None
    iris: tuple[str, ...] = ()
    unit: str | None = None


class Policy(Contract):
    """A compiled policy: the one type the compiler hands to every later stage."""

    _hash_exclude: ClassVar[frozenset[str]] = frozenset({"spec_hash"})

    id: str
    title: str
    version: str = ""
    description: str | None = None
    authority: str | None = None
    authorities: tuple[str, ...] = ()  # ranked, highest first
    license: str | None = None
    attribution: str | None = None
    format_version: str = "1.0"
    source_documents: tuple[str, ...] = ()
    clauses: tuple[Clause, ...] = ()
    rules: tuple[Rule, ...] = ()
    terms: tuple[Term, ...] = ()
    spec_hash: str = ""

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def index(self) -> dict[str, Any]:
        """Lookup tables by id (built on demand; the model itself stays frozen)."""
        return {
            "rules": {r.id: r for r in self.rules},
            "terms": {t.id: t for t in self.terms},
            "clauses": {c.id: c for c in self.clauses},
        }

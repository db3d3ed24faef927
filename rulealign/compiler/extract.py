"""Draft rules from policy text with a rule-based spaCy pipeline (no trained model needed).

The pipeline is ``spacy.blank("en")`` plus a sentencizer and two registered components:

* ``rulealign_thresholds`` finds numeric thresholds — money, durations, percentages and
  counts — with their comparator ("more than $100", "within 30 days", "3 or more") and
  stores them as structured conditions on ``doc._.thresholds``;
* ``rulealign_deontic`` finds deontic markers with spaCy's ``Matcher`` (modal verbs and
  their negations, "is prohibited from", "is not required to", imperatives ...), decides
  the modality, skips markers inside questions, relative and conditional clauses and
  epistemic uses ("may take a few days"), and splits the sentence into actor, action,
  conditions ("if/when ...") and exceptions ("unless/except ...", "without approval").

Findings become a draft YAML spec in which each rule cites its clause and source line and
carries the extractor's confidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from rulealign.compiler.models import Modality
from rulealign.compiler.sentence import Finding, analyse

EXTRACTOR = "rulealign.deontic/1"

# --- vocabulary -------------------------------------------------------------------------------

_BE = ["is", "are", "am", "be", "was", "were", "'s", "'re"]
# "is also expected to", "are still required": an adverb between the verb and the status word
_BE_ADVERBS = ["also", "still", "always", "generally", "usually", "therefore", "thus"]
_NEG = ["not", "n't", "n’t", "never"]
_CURRENCY_SYMBOL = {"$": "USD", "€": "EUR", "£": "GBP"}
_CURRENCY_WORD = {"usd": "USD", "dollars": "USD", "dollar": "USD", "eur": "EUR", "euros": "EUR",
                  "euro": "EUR", "gbp": "GBP", "pounds": "GBP", "pound": "GBP"}
_DURATION = {"second", "seconds", "minute", "minutes", "hour", "hours", "day", "days", "week",
             "weeks", "month", "months", "year", "years"}
_NUMBER_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
                 "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
                 "fifteen": 15, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
                 "sixty": 60, "ninety": 90, "hundred": 100}
_COMPARATORS: list[tuple[tuple[str, ...], str]] = sorted([
    (("more", "than"), ">"), (("over",), ">"), (("above",), ">"), (("exceeding",), ">"),
    (("exceeds",), ">"), (("exceed",), ">"), (("in", "excess", "of"), ">"),
    (("greater", "than"), ">"), (("higher", "than"), ">"), (("beyond",), ">"),
    (("at", "least"), ">="), (("no", "less", "than"), ">="), (("not", "less", "than"), ">="),
    (("minimum", "of"), ">="), (("a", "minimum", "of"), ">="), (("no", "fewer", "than"), ">="),
    (("less", "than"), "<"), (("under",), "<"), (("below",), "<"), (("fewer", "than"), "<"),
    (("lower", "than"), "<"), (("at", "most"), "<="), (("no", "more", "than"), "<="),
    (("longer", "than"), ">"), (("later", "than"), ">"), (("older", "than"), ">"),
    (("shorter", "than"), "<"), (("younger", "than"), "<"), (("earlier", "than"), "<"),
    (("not", "more", "than"), "<="), (("up", "to"), "<="), (("maximum", "of"), "<="),
    (("a", "maximum", "of"), "<="), (("within",), "<="),
], key=lambda c: -len(c[0]))
_AFTER = {("or", "more"): ">=", ("or", "above"): ">=", ("and", "above"): ">=", ("or", "over"): ">=",
          ("or", "less"): "<=", ("or", "fewer"): "<=", ("or", "under"): "<=", ("and", "below"): "<="}

# (label, base confidence) for each marker pattern family
_NOT_UNITS = {"may", "must", "shall", "should", "can", "will", "might", "could", "would", "is", "are",
              "was", "were", "be", "has", "have", "do", "does", "need", "needs", "cannot"}
_DETERMINERS = {"the", "a", "an", "all", "any", "each", "every", "our", "your", "its", "their",
                "this", "that", "these", "those"}
_STATUS_NEG = ["acceptable", "tolerated", "welcome", "allowed", "permitted", "ok", "okay", "appropriate"]
_PATTERNS: dict[str, list[list[dict[str, Any]]]] = {
    "prohibition|0.92": [
        [{"LOWER": {"IN": ["must", "shall", "sha", "may", "mus"]}}, {"LOWER": {"IN": _NEG}}],
        [{"LOWER": {"IN": _BE}}, {"LOWER": {"IN": ["strictly", "expressly", "absolutely"]}, "OP": "?"},
         {"LOWER": {"IN": ["prohibited", "forbidden", "banned"]}}],
        [{"LOWER": {"IN": _BE}}, {"LOWER": {"IN": ["strictly", "expressly", "absolutely"]}, "OP": "?"},
         {"LOWER": "not"}, {"LOWER": {"IN": ["permitted", "allowed", "authorized", "authorised"]}}],
        [{"LOWER": {"IN": ["under", "in"]}}, {"LOWER": "no"}, {"LOWER": "circumstances"}],
        [{"LOWER": {"IN": ["no", "nobody", "none"]}}, {"IS_ALPHA": True, "OP": "{0,3}"},
         {"LOWER": {"IN": ["may", "shall", "must", "can"]}}],
        [{"LOWER": {"IN": ["must", "shall", "should", "will", "may"]}}, {"LOWER": "never"}],
        [{"LOWER": {"IN": ["must", "shall", "should"]}}, {"LOWER": "refrain"}],
        [{"LOWER": {"IN": ["not"]}}, {"LOWER": {"IN": ["permitted", "allowed"]}}],
        [{"LOWER": "mustn't"}], [{"LOWER": "mustn’t"}],
    ],
    "prohibition|0.85": [
        [{"LOWER": {"IN": ["do", "does", "will", "wo", "shall"]}}, {"LOWER": {"IN": _NEG}},
         {"LOWER": {"IN": ["tolerate", "allow", "permit", "accept", "condone"]}}],
        [{"LOWER": {"IN": ["will", "wo"]}}, {"LOWER": {"IN": _NEG}}, {"LOWER": "be"},
         {"LOWER": {"IN": ["tolerated", "accepted", "allowed", "permitted"]}}],
        [{"LOWER": {"IN": _BE}}, {"LOWER": {"IN": ["not", "never"]}},
         {"LOWER": {"IN": _STATUS_NEG}}],
        [{"LOWER": {"IN": _BE}}, {"LOWER": {"IN": ["unacceptable", "inappropriate"]}}],
        [{"LOWER": "nor"}, {"LOWER": {"IN": ["should", "may", "must", "shall", "can", "will"]}}],
        [{"LOWER": {"IN": _BE}}, {"LOWER": {"IN": ["strongly", "highly"]}, "OP": "?"}, {"LOWER": "discouraged"}],
        [{"LOWER": {"IN": ["agree", "agrees", "undertake", "undertakes"]}}, {"LOWER": "not"}, {"LOWER": "to"}],
    ],
    "prohibition|0.8": [
        [{"LOWER": {"IN": ["should", "ought", "can", "ca", "could", "will", "wo"]}},
         {"LOWER": {"IN": _NEG}}],
        [{"LOWER": "cannot"}],
    ],
    "obligation|0.9": [
        [{"LOWER": {"IN": ["must", "shall"]}}],
        [{"LOWER": {"IN": _BE}}, {"LOWER": {"IN": ["required", "obliged", "obligated", "mandated"]}},
         {"LOWER": "to"}],
        [{"LOWER": {"IN": _BE}}, {"LOWER": "mandatory"}],
    ],
    "obligation|0.8": [
        [{"LOWER": {"IN": ["it", "this"]}}, {"LOWER": {"IN": _BE}}, {"LOWER": {"IN": ["your", "the", "our", "their"]}},
         {"IS_PUNCT": False, "OP": "{0,4}"}, {"LOWER": {"IN": ["responsibility", "duty", "job", "obligation", "role"]}},
         {"IS_ALPHA": True, "OP": "{0,4}"}, {"LOWER": "to"}],
        [{"LOWER": "we"}, {"LOWER": {"IN": ["expect", "ask", "require", "urge"]}}],
    ],
    "obligation|0.75": [
        [{"LOWER": {"IN": ["should"]}}],
        [{"LOWER": {"IN": _BE}}, {"LOWER": {"IN": ["tasked", "charged"]}}, {"LOWER": "with"}],
        [{"LOWER": {"IN": ["it", "this"]}}, {"LOWER": {"IN": _BE}}, {"LOWER": {"IN": ["very", "most", "especially"]}, "OP": "?"},
         {"LOWER": {"IN": ["important", "essential", "vital", "crucial", "necessary", "imperative"]}},
         {"LOWER": {"IN": ["that", "to"]}}],
        [{"LOWER": {"IN": _BE}}, {"LOWER": {"IN": _BE_ADVERBS}, "OP": "?"},
         {"LOWER": {"IN": ["strongly", "highly"]}, "OP": "?"},
         {"LOWER": {"IN": ["encouraged", "recommended", "required", "expected", "mandatory"]}}],
        [{"LOWER": {"IN": ["agree", "agrees", "undertake", "undertakes"]}}, {"LOWER": "to"}],
        [{"LOWER": "ought"}, {"LOWER": "to"}],
        [{"LOWER": {"IN": ["has", "have"]}}, {"LOWER": "to"}],
        [{"LOWER": {"IN": ["need", "needs"]}}, {"LOWER": "to"}],
        [{"LOWER": {"IN": _BE}}, {"LOWER": {"IN": ["responsible", "accountable"]}}, {"LOWER": "for"}],
        [{"LOWER": {"IN": _BE}}, {"LOWER": {"IN": _BE_ADVERBS}, "OP": "?"},
         {"LOWER": {"IN": ["expected", "encouraged", "asked", "urged"]}}, {"LOWER": "to"}],
        [{"LOWER": "we"}, {"LOWER": {"IN": ["encourage", "recommend"]}}],
    ],
    "obligation|0.55": [
        [{"LOWER": {"IN": ["will", "'ll", "’ll"]}}],
    ],
    "permission|0.85": [
        [{"LOWER": {"IN": _BE}}, {"LOWER": {"IN": ["permitted", "allowed", "authorized", "authorised",
                                                   "entitled", "free", "welcome", "empowered"]}},
         {"LOWER": {"IN": ["to", "for"]}}],
        [{"LOWER": {"IN": ["has", "have", "retain", "retains", "reserve", "reserves"]}},
         {"LOWER": {"IN": ["the", "full", "sole", "complete"]}, "OP": "?"},
         {"LOWER": {"IN": ["right", "discretion"]}}],
        [{"LOWER": {"IN": ["need", "needs"]}}, {"LOWER": {"IN": ["not", "n't"]}}],
        [{"LOWER": {"IN": ["do", "does"]}}, {"LOWER": {"IN": ["not", "n't", "n’t"]}},
         {"LOWER": {"IN": ["need", "have"]}}, {"LOWER": "to"}],
        [{"LOWER": {"IN": _BE}}, {"LOWER": "not"},
         {"LOWER": {"IN": ["required", "obliged", "obligated", "expected"]}}],
        [{"LOWER": {"IN": _BE}}, {"LOWER": "not"}, {"LOWER": {"IN": ["prohibited", "forbidden"]}}],
        [{"LOWER": {"IN": ["do", "does", "will"]}}, {"LOWER": "not"}, {"LOWER": {"IN": ["prohibit", "forbid", "ban"]}}],
        [{"LOWER": "we"}, {"LOWER": {"IN": ["generally", "also", "do", "will"]}, "OP": "?"},
         {"LOWER": {"IN": ["allow", "permit", "accept"]}}],
    ],
    "permission|0.8": [
        [{"LOWER": "may"}],
        [{"LOWER": "feel"}, {"LOWER": "free"}, {"LOWER": "to"}],
        [{"LOWER": "only"}, {"IS_ALPHA": True, "OP": "{1,3}"}, {"LOWER": {"IN": ["can", "may"]}}],
    ],
    "permission|0.55": [
        [{"LOWER": {"IN": _BE}}, {"LOWER": "optional"}],
    ],
}


# --- results -------------------------------------------------------------------------------------

@dataclass
class Threshold:
    term: str
    op: str
    value: float | int
    unit: str | None
    start: int  # token index in doc
    end: int
    text: str

    def as_condition(self) -> dict[str, Any]:
        out: dict[str, Any] = {"term": self.term, "op": self.op, "value": self.value}
        if self.unit:
            out["unit"] = self.unit
        return out


# --- pipeline components ---------------------------------------------------------------------------

def _number(text: str) -> float | int | None:
    t = text.lower().replace(",", "")
    if t in _NUMBER_WORDS:
        return _NUMBER_WORDS[t]
    try:
        v = float(t)
    except ValueError:
        return None
    return int(v) if v.is_integer() else v


def _find_thresholds(doc: Any) -> list[Threshold]:
    found: list[Threshold] = []
    lower = [t.lower_ for t in doc]
    i, n = 0, len(doc)
    while i < n:
        tok = doc[i]
        start = i
        value = None
        unit = kind = None
        if tok.text in _CURRENCY_SYMBOL and i + 1 < n and doc[i + 1].like_num:
            value, unit, kind, end = _number(doc[i + 1].text), _CURRENCY_SYMBOL[tok.text], "amount", i + 2
        elif lower[i] in ("usd", "eur", "gbp") and i + 1 < n and doc[i + 1].like_num:
            value, unit, kind, end = _number(doc[i + 1].text), lower[i].upper(), "amount", i + 2
        elif tok.like_num and (value := _number(tok.text)) is not None:
            j = i + 1
            if j < n and lower[j] in ("business", "calendar", "working", "consecutive"):
                j += 1
            nxt = lower[j] if j < n else ""
            if nxt in _CURRENCY_WORD:
                unit, kind, end = _CURRENCY_WORD[nxt], "amount", j + 1
            elif nxt in _DURATION:
                unit = nxt if nxt.endswith("s") else nxt + "s"
                unit = f"{lower[i + 1]} {unit}" if j == i + 2 else unit
                kind, end = "duration", j + 1
            elif nxt in ("%", "percent"):
                unit, kind, end = "%", "percentage", j + 1
            elif nxt == "per" and j + 1 < n and lower[j + 1] == "cent":
                unit, kind, end = "%", "percentage", j + 2
            elif j < n and doc[j].is_alpha and nxt not in _DETERMINERS and nxt not in ("or", "and", "to") \
                    and nxt not in _NOT_UNITS:
                unit, kind, end = None, f"count_{re.sub(r'[^a-z0-9]+', '_', nxt).strip('_')}", j + 1
            else:
                unit, kind, end = None, "quantity", i + 1
        if value is None or kind is None:
            i += 1
            continue
        if end < n and lower[end] in ("million", "thousand", "k"):
            value = value * (1_000_000 if lower[end] == "million" else 1000)
            end += 1
        op = None
        for words, sym in _COMPARATORS:
            k = len(words)
            if start - k >= 0 and tuple(lower[start - k:start]) == words:
                op, start = sym, start - k
                break
        after = tuple(lower[end:end + 2])
        if after in _AFTER:
            op, end = _AFTER[after], end + 2
        if op is None and kind != "amount":
            i += 1  # a number without a comparator is a fact, not a threshold ("2 days a week")
            continue
        found.append(Threshold(kind, op or "==", value, unit, start, end, doc[start:end].text))
        i = end
    return found


def _make_components() -> None:
    from spacy.language import Language
    from spacy.matcher import Matcher
    from spacy.tokens import Doc
    from spacy.util import filter_spans

    if not Doc.has_extension("thresholds"):
        Doc.set_extension("thresholds", default=None)
    if not Doc.has_extension("deontic"):
        Doc.set_extension("deontic", default=None)

    if "rulealign_thresholds" not in Language.factories:
        @Language.component("rulealign_thresholds")
        def thresholds(doc: Any) -> Any:
            doc._.thresholds = _find_thresholds(doc)
            return doc

    if "rulealign_deontic" not in Language.factories:
        @Language.factory("rulealign_deontic")
        def deontic(nlp: Any, name: str) -> Any:
            matcher = Matcher(nlp.vocab)
            for label, patterns in _PATTERNS.items():
                matcher.add(label, patterns)

            def component(doc: Any) -> Any:
                spans = []
                for match_id, start, end in matcher(doc):
                    span = doc[start:end]
                    span.label_ = nlp.vocab.strings[match_id]
                    spans.append(span)
                thresholds = doc._.thresholds or []
                doc._.deontic = [analyse(sent, [s for s in filter_spans(spans)
                                                if sent.start <= s.start < sent.end],
                                         [t for t in thresholds if sent.start <= t.start < sent.end])
                                 for sent in doc.sents]
                return doc

            return component


@lru_cache(maxsize=1)
def build_pipeline() -> Any:
    """The extraction pipeline: blank English, sentencizer, thresholds, deontic markers."""
    import spacy

    _make_components()
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("rulealign_thresholds")
    nlp.add_pipe("rulealign_deontic")
    return nlp


# --- public API ---------------------------------------------------------------------------------------

def extract_findings(texts: list[str], *, batch_size: int = 256) -> list[list[Finding]]:
    """Findings for each text (a clause), in order."""
    nlp = build_pipeline()
    out = []
    for doc in nlp.pipe(texts, batch_size=batch_size):
        out.append([f for sent in doc._.deontic for f in sent])
    return out


def primary_modality(text: str, *, min_confidence: float = 0.5) -> Modality | None:
    """The modality of the first confident finding in ``text``; None for a non-rule."""
    for f in extract_findings([text])[0]:
        if f.confidence >= min_confidence:
            return f.modality
    return None


def draft_spec_from_document(path: str | Path, *, fmt: str | None = None,
                             min_confidence: float = 0.5, policy_id: str | None = None,
                             output: str | Path | None = None,
                             replace_copy: bool = False) -> tuple[str, dict[str, int]]:
    """Extract draft rules from a document; returns (YAML text, counts). See
    :func:`rulealign.compiler.draft.draft_spec` (a document outside ``output``'s folder is
    copied beside it; a different file there is replaced only with ``replace_copy``)."""
    from rulealign.compiler.draft import draft_spec

    return draft_spec(path, fmt=fmt, min_confidence=min_confidence, policy_id=policy_id, output=output,
                      replace_copy=replace_copy)

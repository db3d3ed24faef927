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

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from rulealign.compiler.models import Modality

EXTRACTOR = "rulealign.deontic/1"

# --- vocabulary -------------------------------------------------------------------------------

_BE = ["is", "are", "am", "be", "was", "were", "'s", "'re"]
_NEG = ["not", "n't", "never"]
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

_EPISTEMIC_NEXT = {"have", "result", "lead", "cause", "vary", "take", "occur", "affect", "include",
                   "seem", "appear", "differ", "happen", "change", "depend", "apply", "contain",
                   "mean", "become", "exist", "arise", "require", "need", "find", "notice",
                   "experience", "face", "encounter", "help", "want", "wish", "feel", "expect",
                   "see", "get", "come", "go", "fail", "look", "sound", "prove", "reflect", "trigger",
                   "delay", "impact", "slow"}
_PERMISSIVE_PARTICIPLES = {"reported", "used", "shared", "requested", "disclosed", "accepted", "made",
                           "submitted", "granted", "issued", "offered", "given", "approved", "waived",
                           "extended", "retained", "forwarded", "escalated", "contacted", "collected",
                           "copied", "redistributed", "modified", "published", "transferred",
                           "refunded", "cancelled", "canceled", "removed", "edited", "rejected",
                           "invited", "appealed", "reviewed", "consulted", "recorded", "paid",
                           "claimed", "reimbursed", "exchanged", "returned", "provided", "sent",
                           "kept", "stored", "deleted", "processed", "combined", "accessed"}
_IMPERATIVE_OBLIGATION = {"always", "verify", "report", "ensure", "disclose", "obtain", "notify",
                          "keep", "use", "follow", "record", "escalate", "refer", "inform", "treat",
                          "respect", "protect", "complete", "submit", "declare", "document",
                          "confirm", "provide", "include", "respond", "ask", "check", "redact",
                          "decline", "refuse", "tell", "direct", "log", "remind", "cite", "state",
                          "offer", "apologize", "apologise", "acknowledge", "explain", "identify",
                          "seek", "consult", "return", "store", "encrypt", "lock", "wear", "make"}
_IMPERATIVE_PROHIBITION = {"avoid", "refrain"}
_EXCEPTION_MARKERS = {"unless", "except", "excluding", "other"}
_CONDITION_MARKERS = {"if", "when", "whenever", "where", "wherever", "provided", "once", "while",
                      "before", "after", "during", "in case"}
_LEADING_CONDITION = {"if", "when", "whenever", "where", "wherever", "once", "while", "before",
                      "after", "unless", "during", "provided", "as", "in", "for"}
_APPROVAL = {"approval", "consent", "permission", "authorization", "authorisation", "agreement",
             "sign-off", "signoff", "verification", "authority", "clearance", "escort",
             "supervision", "supervisor", "review"}
_DETERMINERS = {"the", "a", "an", "all", "any", "each", "every", "our", "your", "its", "their",
                "this", "that", "these", "those"}
_ADVERBS = {"always", "also", "only", "promptly", "immediately", "still", "then", "therefore",
            "likewise", "similarly", "generally", "normally", "usually", "at", "all", "times",
            "strictly", "clearly", "politely", "first", "ever"}
_WH = {"what", "how", "whether", "why"}
_RELATIVE = {"who", "that", "which", "whom", "whose"}
_IRREGULAR_PARTICIPLES = {"made", "given", "kept", "sent", "paid", "told", "held", "shown", "done",
                          "taken", "written", "seen", "known", "met", "left", "read", "set", "put",
                          "sold", "bought", "brought", "taught", "found", "spent", "withheld"}

# (label, base confidence) for each marker pattern family
_PATTERNS: dict[str, list[list[dict[str, Any]]]] = {
    "prohibition|0.92": [
        [{"LOWER": {"IN": ["must", "shall", "sha", "may", "mus"]}}, {"LOWER": {"IN": _NEG}}],
        [{"LOWER": {"IN": _BE}}, {"LOWER": {"IN": ["strictly", "expressly", "absolutely"]}, "OP": "?"},
         {"LOWER": {"IN": ["prohibited", "forbidden", "banned", "not"]}},
         {"LOWER": {"IN": ["permitted", "allowed", "authorized", "authorised", "to"]}, "OP": "?"}],
        [{"LOWER": "under"}, {"LOWER": "no"}, {"LOWER": "circumstances"}],
        [{"LOWER": {"IN": ["no", "nobody", "none"]}}, {"IS_ALPHA": True, "OP": "{0,3}"},
         {"LOWER": {"IN": ["may", "shall", "must", "can"]}}],
        [{"LOWER": {"IN": ["must", "shall", "should", "will", "may"]}}, {"LOWER": "never"}],
        [{"LOWER": {"IN": ["must", "shall", "should"]}}, {"LOWER": "refrain"}],
        [{"LOWER": {"IN": ["not"]}}, {"LOWER": {"IN": ["permitted", "allowed"]}}],
    ],
    "prohibition|0.8": [
        [{"LOWER": {"IN": ["should", "ought", "can", "ca", "could", "will", "wo"]}},
         {"LOWER": {"IN": _NEG}}],
        [{"IS_SENT_START": True, "LOWER": {"IN": ["do", "never"]}}, {"LOWER": {"IN": _NEG}, "OP": "?"}],
    ],
    "prohibition|0.62": [
        [{"IS_SENT_START": True, "LOWER": {"IN": sorted(_IMPERATIVE_PROHIBITION)}}],
    ],
    "obligation|0.9": [
        [{"LOWER": {"IN": ["must", "shall"]}}],
        [{"LOWER": {"IN": _BE}}, {"LOWER": {"IN": ["required", "obliged", "obligated", "mandated"]}},
         {"LOWER": "to"}],
        [{"LOWER": {"IN": _BE}}, {"LOWER": "mandatory"}],
    ],
    "obligation|0.75": [
        [{"LOWER": {"IN": ["should"]}}],
        [{"LOWER": "ought"}, {"LOWER": "to"}],
        [{"LOWER": {"IN": ["has", "have"]}}, {"LOWER": "to"}],
        [{"LOWER": {"IN": ["need", "needs"]}}, {"LOWER": "to"}],
        [{"LOWER": {"IN": _BE}}, {"LOWER": {"IN": ["responsible", "accountable"]}}, {"LOWER": "for"}],
        [{"LOWER": {"IN": _BE}}, {"LOWER": "expected"}, {"LOWER": "to"}],
    ],
    "obligation|0.65": [
        [{"IS_SENT_START": True, "LOWER": {"IN": sorted(_IMPERATIVE_OBLIGATION)}}],
    ],
    "obligation|0.55": [
        [{"LOWER": "will"}],
    ],
    "permission|0.85": [
        [{"LOWER": {"IN": _BE}}, {"LOWER": {"IN": ["permitted", "allowed", "authorized", "authorised",
                                                   "entitled", "free", "welcome"]}},
         {"LOWER": {"IN": ["to", "for"]}}],
        [{"LOWER": {"IN": ["has", "have"]}}, {"LOWER": "the"}, {"LOWER": "right"}],
        [{"LOWER": {"IN": ["need", "needs"]}}, {"LOWER": {"IN": ["not", "n't"]}}],
        [{"LOWER": {"IN": ["do", "does"]}}, {"LOWER": {"IN": ["not", "n't"]}},
         {"LOWER": {"IN": ["need", "have"]}}, {"LOWER": "to"}],
        [{"LOWER": {"IN": _BE}}, {"LOWER": "not"},
         {"LOWER": {"IN": ["required", "obliged", "obligated", "expected"]}}],
        [{"LOWER": {"IN": _BE}}, {"LOWER": "not"}, {"LOWER": {"IN": ["prohibited", "forbidden"]}}],
    ],
    "permission|0.8": [
        [{"LOWER": "may"}],
    ],
    "permission|0.55": [
        [{"LOWER": "can"}],
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


@dataclass
class Finding:
    """One deontic statement found in a sentence."""

    sentence: str
    modality: Modality
    confidence: float
    marker: str
    actor: str
    action: str
    object: str | None
    conditions: list[dict[str, Any]] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    sent_start_char: int = 0


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
            elif j < n and doc[j].is_alpha and nxt not in _DETERMINERS and nxt not in ("or", "and", "to"):
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
                doc._.deontic = [_analyse(sent, [s for s in filter_spans(spans)
                                                 if sent.start <= s.start < sent.end], doc)
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


# --- sentence analysis ---------------------------------------------------------------------------

def _main_clause_start(sent: Any) -> int:
    """Token index where the main clause starts (after a leading 'If ...,' clause)."""
    first = sent[0].lower_
    if first in _LEADING_CONDITION or first in _EXCEPTION_MARKERS:
        for tok in sent:
            if tok.text == ",":
                return tok.i + 1
    return sent.start


def _skip_marker(span: Any, sent: Any, main_start: int, modality: str) -> bool:
    doc = span.doc
    if span.start < main_start:
        return True
    before = [t.lower_ for t in doc[max(sent.start, span.start - 3):span.start]]
    if before and before[-1] in _RELATIVE:
        return True
    if any(t.lower_ in _WH for t in doc[sent.start:span.start]):
        return True
    head = span[-1].lower_
    if head in ("may", "can", "will", "could") and len(span) == 1:
        j = span.end
        while j < sent.end and doc[j].lower_ in _ADVERBS:
            j += 1
        nxt = doc[j].lower_ if j < sent.end else ""
        after = doc[j + 1].lower_ if j + 1 < sent.end else "."
        if nxt in _EPISTEMIC_NEXT and not (nxt == "apply" and after not in (".", ",", "to", "in", "for")):
            return True
        if nxt == "be" and j + 1 < sent.end:
            part = doc[j + 1].lower_
            if head == "will":
                return not (part.endswith("ed") or part in _IRREGULAR_PARTICIPLES)
            return part not in _PERMISSIVE_PARTICIPLES
        if head == "will" and (not before or before[-1] in ("it", "there", "this", "that", "which")):
            return True
    return False


def _boundary(tok: Any, thresholds_at: set[int]) -> bool:
    return (tok.is_punct and tok.text not in ("'", "-", "/", "$", "€", "£", "%")) or \
        tok.lower_ in _CONDITION_MARKERS or tok.lower_ in ("unless", "except") or \
        tok.i in thresholds_at


def _clause_after(doc: Any, start: int, end: int) -> str:
    """Text from ``start`` to the next ',' ';' or the sentence end."""
    j = start + 1
    while j < end and doc[j].text not in (",", ";", ":") and not (j == end - 1 and doc[j].is_punct):
        j += 1
    return doc[start:j].text


def _analyse(sent: Any, markers: list[Any], doc: Any) -> list[Finding]:
    if sent.text.rstrip().endswith("?"):
        return []
    main_start = _main_clause_start(sent)
    thresholds = [t for t in (doc._.thresholds or []) if sent.start <= t.start < sent.end]
    thr_starts = {t.start for t in thresholds}
    findings: list[Finding] = []
    for span in markers:
        modality_name, conf_text = span.label_.split("|")
        if _skip_marker(span, sent, main_start, modality_name):
            continue
        confidence = float(conf_text)
        modality = Modality(modality_name)
        imperative = span.start == sent.start or span.start == main_start
        if span[-1].lower_ == "refrain":
            modality = Modality.PROHIBITION
        # actor: from the main clause (or the previous marker) to the marker
        actor_start = (findings and sent.start) or main_start
        actor_tokens = [t for t in doc[actor_start:span.start] if not t.is_punct]
        if span[0].lower_ in ("no", "nobody", "none"):
            actor_tokens = [t for t in span[1:-1]]
        while actor_tokens and actor_tokens[0].lower_ in _DETERMINERS | _ADVERBS | {"and", "but"}:
            actor_tokens = actor_tokens[1:]
        actor = doc[actor_tokens[0].i:actor_tokens[-1].i + 1].text.lower() if actor_tokens else ""
        if findings and len(actor_tokens) > 6:
            actor = findings[-1].actor
        # action: from the marker to the next boundary
        j = span.end if not (imperative and len(span) == 1 and modality_name == "obligation"
                             and span[0].lower_ != "always") else span.start
        while j < sent.end and doc[j].lower_ in _ADVERBS | {"not", "never", "to", "from", "refrain"}:
            j += 1
        k = j
        while k < sent.end and not _boundary(doc[k], thr_starts) and k - j < 12:
            if doc[k].lower_ == "without" and any(t.lower_ in _APPROVAL for t in doc[k + 1:k + 5]):
                break
            if k > j and doc[k].lower_ in ("and", "or") and k + 1 < sent.end and \
                    doc[k + 1].lower_ in ("must", "shall", "may", "should", "will", "never", "not"):
                break
            k += 1
        action_tokens = doc[j:k]
        passive = len(action_tokens) >= 2 and action_tokens[0].lower_ == "be" and (
            action_tokens[1].lower_.endswith("ed") or action_tokens[1].lower_ in _IRREGULAR_PARTICIPLES)
        action = action_tokens.text.strip()
        obj = doc[j + 1:k].text.strip() or None
        if passive:
            obj = actor or None
            by = [t.i for t in action_tokens if t.lower_ == "by"]
            actor = doc[by[0] + 1:k].text.lower() if by else "unspecified"
            action = doc[j + 1:by[0] if by else k].text.strip()
        if not actor:
            actor = "you" if imperative else "unspecified"
            if not imperative:
                confidence -= 0.15
        if not action:
            confidence -= 0.3
            action = span.text
        if len(sent) > 70:
            confidence -= 0.1
        conditions: list[dict[str, Any]] = [t.as_condition() for t in thresholds]
        exceptions: list[str] = []
        for tok in sent:
            low = tok.lower_
            if low in ("unless", "except") or (low == "other" and tok.i + 1 < sent.end and doc[tok.i + 1].lower_ == "than"):
                exceptions.append(_clause_after(doc, tok.i, sent.end))
            elif low == "without" and modality is Modality.PROHIBITION and \
                    any(t.lower_ in _APPROVAL for t in doc[tok.i + 1:tok.i + 5]):
                exceptions.append(_clause_after(doc, tok.i + 1, sent.end))
            elif low in ("if", "when", "whenever", "provided", "where", "once", "while", "during") \
                    and (tok.i == sent.start or doc[tok.i - 1].is_punct or tok.i > span.end) \
                    and doc[tok.i - 1].lower_ not in ("unless", "except") \
                    and not (low == "once" and tok.i + 1 < sent.end
                             and doc[tok.i + 1].lower_ in ("a", "per", "every", "each")):
                text = _clause_after(doc, tok.i, sent.end)
                if len(text.split()) >= 3:
                    conditions.append({"text": text})
        findings.append(Finding(sentence=sent.text.strip(), modality=modality,
                                confidence=round(max(0.0, min(1.0, confidence)), 2),
                                marker=span.text, actor=actor[:80], action=action[:120],
                                object=(obj or None) and obj[:120], conditions=conditions,
                                exceptions=list(dict.fromkeys(exceptions)),
                                sent_start_char=sent.start_char))
    return findings


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


def _yaml_id(text: str) -> str:
    return re.sub(r"[^a-z0-9_.\-]+", "-", text.lower()).strip("-.") or "rule"


def draft_spec_from_document(path: str | Path, *, fmt: str | None = None,
                             min_confidence: float = 0.5, policy_id: str | None = None,
                             output: str | Path | None = None,
                             replace_copy: bool = False) -> tuple[str, dict[str, int]]:
    """Extract draft rules from a document; returns (YAML text, counts).

    The draft (to be written to ``output``) cites the document by a path inside its own
    folder, as every spec must: a document elsewhere is copied beside ``output`` once the
    extraction has succeeded (a different file of that name is replaced only with
    ``replace_copy``, RA003 otherwise)."""
    import yaml

    from rulealign.compiler.ingest import load_document, place_document

    doc_path = Path(path)
    document = load_document(doc_path, fmt=fmt)
    findings = extract_findings([c.text for c in document.clauses])
    rules: list[dict[str, Any]] = []
    terms: dict[str, dict[str, Any]] = {}
    sentences = skipped = 0
    for clause, found in zip(document.clauses, findings, strict=True):
        sentences += len({f.sent_start_char for f in found})
        kept = [f for f in found if f.confidence >= min_confidence]
        skipped += len(found) - len(kept)
        for k, f in enumerate(kept, start=1):
            rule_id = _yaml_id(clause.id) + (f"-{k}" if len(kept) > 1 else "")
            rule: dict[str, Any] = {"id": rule_id, "clause": clause.id, "text": f.sentence,
                                    "modality": f.modality.value, "actor": f.actor,
                                    "action": f.action}
            if f.object:
                rule["object"] = f.object
            if f.conditions:
                rule["conditions"] = [c.get("text") if "text" in c else c for c in f.conditions]
                for c in f.conditions:
                    if "term" in c:
                        terms.setdefault(c["term"], {"id": c["term"],
                                                     "label": c["term"].replace("_", " ")})
            if f.exceptions:
                rule["exceptions"] = f.exceptions
            rule["provenance"] = {"extractor": EXTRACTOR, "confidence": f.confidence,
                                  "line": document.line_of(clause, f.sentence)}
            rules.append(rule)
    base = Path(output).resolve().parent if output else Path.cwd()
    placed = place_document(doc_path, base, replace=replace_copy) if output else doc_path
    source = os.path.relpath(placed.resolve(), base)
    pid = policy_id or _yaml_id(doc_path.stem)
    title = document.title or doc_path.stem.replace("-", " ").replace("_", " ").title()
    spec = {"rulealign": 1,
            "policy": {"id": pid, "title": title, "version": "draft", "source": source},
            "terms": list(terms.values()), "rules": rules}
    shown = re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]",  # a line break would end the comment
                   lambda m: m.group(0).encode("unicode_escape").decode("ascii"), source)
    header = (f"# Draft spec written by `rulealign spec extract` ({EXTRACTOR}) from {shown}.\n"
              "# Every rule cites its clause and source line and carries the extractor's confidence.\n"
              "# Review each rule (actor, action, conditions, exceptions), add terms and priorities,\n"
              "# then check it with `rulealign spec check`.\n")
    body = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)
    return header + body, {"rules": len(rules), "clauses": len(document.clauses),
                           "sentences": sentences, "skipped": skipped}

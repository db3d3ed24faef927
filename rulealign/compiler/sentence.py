"""The deontic reading of one sentence: which rules it states, with actor, action, conditions.

Works on a spaCy ``Span`` from ``spacy.blank("en")`` (tokens only, no tagger) and the marker
spans found by the ``Matcher`` in :mod:`rulealign.compiler.extract`. A sentence is cut into
clauses at ``;``, ``:`` and dashes; in each clause a leading subordinate clause ("If you ...,",
"Even if ...,", "While it is not forbidden ...,") is stepped over to find the main clause.
Markers count only in a main clause (not after "that", "which", "so that", "if" in the same
clause) and only when deontic: "may not have", "may not receive", "may be in" are possibility,
not permission or prohibition. Imperatives are found by position and a closed verb list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rulealign.compiler.models import Modality
from rulealign.compiler.vocab import (
    AUXILIARIES,
    DISCOURSE,
    IMPERATIVE_VERBS,
    MODALS,
    NOUN_LIKE,
    PRONOUN_SUBJECTS,
    REPORTING,
    SUBORDINATORS,
    imperative_verb,
)

_CLAUSE_PUNCT = {";", ":", "—", "–"}
_LEADING = {"if", "when", "whenever", "while", "whilst", "although", "though", "even", "unless",
            "once", "as", "because", "since", "before", "after", "in", "for", "during", "depending",
            "whether", "should", "given", "regardless", "where", "wherever", "with", "without",
            "by", "on", "at", "from", "to", "within", "until", "upon", "except", "other",
            "excluding", "provided", "like", "whatever", "however", "no"}
_CONCESSIVE_START = {"while", "whilst", "although", "though", "even", "whether", "regardless",
                     "despite", "no"}
_CONDITION_START = {"if", "when", "whenever", "once", "where", "wherever", "should", "provided",
                    "in", "during", "before", "after", "until", "upon"}
_EXCEPTION_START = {"unless", "except", "excluding", "other"}
_NEG = {"not", "n't", "n’t", "never"}
_EPISTEMIC_NEXT = {"have", "result", "lead", "cause", "vary", "occur", "affect", "include", "seem",
                   "appear", "differ", "happen", "change", "depend", "contain", "mean", "become",
                   "exist", "arise", "require", "need", "find", "notice", "experience", "face",
                   "encounter", "help", "want", "wish", "feel", "expect", "see", "get", "come",
                   "go", "fail", "look", "sound", "prove", "reflect", "trigger", "delay", "impact",
                   "slow", "receive", "like", "know", "think", "believe", "realize", "realise",
                   "perceive", "range", "involve", "put", "say", "end", "struggle", "lose",
                   "sometimes", "also", "even", "well", "still", "already", "contribute",
                   "apply", "interpret", "misunderstand", "miss", "forget", "violate", "make",
                   "present", "harm", "pose", "constitute", "take", "try", "speed", "automatically",
                   "naturally", "eventually"}
_TAKE_DEONTIC = {"action", "actions", "steps", "measures", "further", "appropriate", "any",
                 "disciplinary", "corrective", "legal"}
_PERMISSIVE_PARTICIPLES = {"reported", "used", "shared", "requested", "disclosed", "accepted", "made",
                           "submitted", "granted", "issued", "offered", "given", "approved", "waived",
                           "extended", "retained", "forwarded", "escalated", "contacted", "collected",
                           "copied", "redistributed", "modified", "published", "transferred",
                           "refunded", "cancelled", "canceled", "removed", "edited", "rejected",
                           "invited", "appealed", "reviewed", "consulted", "recorded", "paid",
                           "claimed", "reimbursed", "exchanged", "returned", "provided", "sent",
                           "kept", "stored", "deleted", "processed", "combined", "accessed",
                           "posted", "directed", "asked", "discussed", "closed", "banned",
                           "suspended", "blocked", "hidden", "locked", "moderated", "redacted"}
_IRREGULAR_PARTICIPLES = {"made", "given", "kept", "sent", "paid", "told", "held", "shown", "done",
                          "taken", "written", "seen", "known", "met", "left", "read", "set", "put",
                          "sold", "bought", "brought", "taught", "found", "spent", "withheld", "hidden"}
_ADVERBS = {"always", "also", "only", "promptly", "immediately", "still", "then", "therefore",
            "likewise", "similarly", "generally", "normally", "usually", "at", "all", "times",
            "strictly", "clearly", "politely", "first", "ever", "merely", "carefully", "entirely",
            "please", "just", "really", "actively", "explicitly", "simply", "kindly", "further",
            "absolutely", "certainly", "typically", "often", "sometimes", "in", "any", "case"}
_DETERMINERS = {"the", "a", "an", "all", "any", "each", "every", "our", "your", "its", "their",
                "this", "that", "these", "those", "such", "some"}
_APPROVAL = {"approval", "consent", "permission", "authorization", "authorisation", "agreement",
             "sign-off", "signoff", "verification", "authority", "clearance", "escort",
             "supervision", "supervisor", "review"}
# the action ends at a comma followed by one of these (a new clause or an aside, not a list)
_COMMA_STOP = {"but", "which", "who", "such", "especially", "including", "for", "however", "so",
               "as", "unless", "except", "even", "because", "while", "whether", "if", "when",
               "whenever", "where", "though", "although", "since", "then", "otherwise", "and",
               "or", "in", "like", "e.g.", "i.e.", "regardless", "before", "after", "rather",
               "instead", "nor", "with", "without", "depending", "whatever", "no"}
_ACTION_STOP = {"unless", "except", "because", "so", "whether", "although", "though", "while",
                "such", "including", "especially", "e.g.", "i.e.", "whenever", "if", "when",
                "before", "after", "until", "once", "provided", "where", "wherever", "since"}
# markers whose action is the subject ("Harassment is not acceptable")
_STATUS_WORDS = {"prohibited", "forbidden", "banned", "allowed", "permitted", "acceptable",
                 "unacceptable", "tolerated", "welcome", "ok", "okay", "fine", "inappropriate",
                 "encouraged", "recommended", "required", "expected", "mandatory", "discouraged"}


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
    kind: str = "modal"  # modal | imperative | pattern | inherited
    scope: str | None = None  # the lead-in a list item's rule stands under
    features: dict[str, float] = field(default_factory=dict)


def _segments(sent: Any) -> list[tuple[int, int]]:
    """Clause ranges of a sentence: cut at ';', ':' and dashes."""
    out, start = [], sent.start
    for tok in sent:
        if tok.text in _CLAUSE_PUNCT or (tok.text == "-" and tok.whitespace_ and tok.i > sent.start
                                         and tok.doc[tok.i - 1].whitespace_):
            if tok.i > start:
                out.append((start, tok.i))
            start = tok.i + 1
    if start < sent.end:
        out.append((start, sent.end))
    return out or [(sent.start, sent.end)]


def _skip_discourse(doc: Any, i: int, end: int) -> int:
    while i < end and (doc[i].lower_ in DISCOURSE or doc[i].text == ",") and not (
            doc[i].lower_ in ("do", "always") and i + 1 < end):
        i += 1
    return i


def _opens_main(doc: Any, i: int, end: int) -> bool:
    """Whether a main clause can start at token ``i`` (a subject or an imperative)."""
    j = _skip_discourse(doc, i, end)
    if j >= end:
        return False
    w = doc[j].lower_
    nxt = [doc[k].text for k in range(j + 1, min(j + 4, end))]
    if w in PRONOUN_SUBJECTS or w in ("do", "don't", "never", "always", "it", "there", "this",
                                      "that", "such", "these", "those", "nothing", "no", "feel"):
        return True
    if imperative_verb(w, nxt):
        return True
    # a noun subject followed by a modal or an auxiliary within three words
    return any(t.lower() in MODALS or t.lower() in AUXILIARIES for t in nxt[:3]) and w not in SUBORDINATORS


def main_start(doc: Any, start: int, end: int) -> tuple[int, str | None]:
    """Where the main clause of ``doc[start:end]`` starts, and the kind of the leading clause
    stepped over ("condition", "concession", "exception" or None)."""
    j = _skip_discourse(doc, start, end)
    if j < end and doc[j].lower_ == "note":  # "Note, however, that X": X is the statement
        k = j + 1
        while k < end and (doc[k].text == "," or doc[k].lower_ in DISCOURSE):
            k += 1
        if k < end and doc[k].lower_ == "that":
            return k + 1, None
    if j >= end or doc[j].lower_ not in _LEADING:
        return start, None
    first = doc[j].lower_
    if first == "no" and not (j + 1 < end and doc[j + 1].lower_ == "matter"):
        return start, None
    kind = "concession" if first in _CONCESSIVE_START else "exception" if first in _EXCEPTION_START \
        else "condition" if first in _CONDITION_START else "phrase"
    if first == "in" and not (j + 1 < end and doc[j + 1].lower_ in ("case", "the", "cases", "situations")):
        kind = "phrase"
    for tok in doc[j + 1:end]:
        if tok.text == "," and _opens_main(doc, tok.i + 1, end):
            return tok.i + 1, kind
    # no comma: "When somebody leaves the project they should ..." - a pronoun before a modal
    for tok in doc[j + 2:end - 1]:
        if tok.lower_ in ("they", "you", "we", "he", "she", "i") and \
                (doc[tok.i + 1].lower_ in MODALS or doc[tok.i + 1].lower_ in ("are", "is", "do")):
            return tok.i, kind
    return start, None


def _in_subordinate(doc: Any, at: int, start: int, *, status: bool = False) -> bool:
    """Whether token ``at`` sits in a dependent clause ("so that people can", "the values to
    which people should aspire", "This does not mean that X is prohibited").

    A relative clause in the subject ("Employees who travel abroad must ...") does not count,
    nor (for a status marker such as "are not allowed") one inside a long subject.
    """
    k = at - 1
    while k >= start:
        tok = doc[k]
        if tok.text in (";", ":") or tok.text in _CLAUSE_PUNCT:
            return False
        w = tok.lower_
        prev = doc[k - 1].lower_ if k > start else ""
        if w in SUBORDINATORS and not (w == "that" and k == start):
            if w == "as" and prev in ("such", "well"):
                k -= 1
                continue
            if w == "so" and not (k + 1 < at and doc[k + 1].lower_ == "that"):
                k -= 1
                continue
            if w in ("who", "that", "which", "whom", "whose") and k - start <= 2 and k != start \
                    and at - k > 1:
                k -= 1
                continue  # a relative clause in the subject, its own verb before the marker
            if status and w in ("who", "that", "which") and prev not in REPORTING and k != start:
                k -= 1
                continue
            if w == "however":
                k -= 1
                continue
            return True
        k -= 1
    return False


def _epistemic(span: Any, end: int) -> bool:
    """'may', 'can', 'will' of possibility, ability or prediction, not of permission."""
    doc = span.doc
    head = span[0].lower_
    if head not in ("may", "might", "can", "ca", "could", "will", "wo", "would"):
        return False
    j = span.end
    while j < end and (doc[j].lower_ in _ADVERBS | {"all", "both", "well", "not", "n't"}
                       or (doc[j].lower_.endswith("ly") and len(doc[j]) > 4)):
        j += 1
    nxt = doc[j].lower_ if j < end else ""
    after = doc[j + 1].lower_ if j + 1 < end else "."
    subject = doc[span.start - 1].lower_ if span.start > 0 else ""
    if nxt == "take" and (after in _TAKE_DEONTIC or (head in ("will", "wo") and subject not in
                                                     ("it", "this", "that", "which", "there"))):
        return False
    if head in ("will", "wo") and span.start > 0:
        k = span.start - 1
        while k > 0 and not doc[k - 1].is_punct and doc[k - 1].i >= span.sent.start:
            k -= 1
        if doc[k].lower_.endswith("ing") and doc[k].lower_ not in ("nothing", "something", "everything", "anything"):
            return True  # "Linking to resources will speed ...": a gerund subject, a prediction
    if nxt in _EPISTEMIC_NEXT:
        return True
    if nxt == "be":
        if head in ("will", "wo"):
            return not (after.endswith("ed") or after in _IRREGULAR_PARTICIPLES)
        return after not in _PERMISSIVE_PARTICIPLES
    if head in ("will", "wo"):
        subject = doc[span.start - 1].lower_ if span.start > 0 else ""
        return subject in ("it", "there", "this", "that", "which", "work", "")
    return False


def _strip_front(doc: Any, j: int, end: int) -> int:
    while j < end and (doc[j].lower_ in _ADVERBS | {"not", "n't", "n’t", "never", "to", "from", "refrain",
                                                     "try", "please"} or doc[j].text == ","):
        j += 1
    return j


def _action_end(doc: Any, j: int, end: int, thr_starts: set[int], limit: int = 16) -> int:
    k = j
    while k < end and k - j < limit:
        tok = doc[k]
        w = tok.lower_
        if tok.text == "(" and k > j:  # an aside: stepped over, left out of the action
            close = next((m for m in range(k + 1, min(end, k + 25)) if doc[m].text == ")"), None)
            if close is None:
                break
            k = close + 1
            continue
        if tok.text in (".", ";", ":", "(", ")", "!", "?", "—", "–", "[", "]") or tok.i in thr_starts:
            break
        if tok.text == "-" and tok.whitespace_:
            break
        if k > j and w in _ACTION_STOP and not (w == "once" and (k + 1 >= end or doc[k + 1].is_punct
                                                                or doc[k + 1].lower_ in ("and", "or", "a", "per"))):
            break
        if k > j and w in ("unless", "except"):
            break
        if w == "without" and any(t.lower_ in _APPROVAL for t in doc[k + 1:k + 5]):
            break
        if tok.text == ",":
            nxt = doc[k + 1].lower_ if k + 1 < end else ""
            after = doc[k + 2].lower_ if k + 2 < end else ""
            verbs_only = all(t.is_punct or t.lower_ in IMPERATIVE_VERBS for t in doc[j:k])
            coordinated_clause = after in PRONOUN_SUBJECTS or after in MODALS or after in _ACTION_STOP \
                or (after in IMPERATIVE_VERBS and not verbs_only) or after in ("do", "never", "don't", "try")
            if (nxt in _COMMA_STOP and not (nxt in ("and", "or") and not coordinated_clause)) \
                    or nxt in PRONOUN_SUBJECTS or (nxt in IMPERATIVE_VERBS and k - j > 3):
                break
        if k > j and w in ("and", "or", "but") and k + 1 < end and (
                doc[k + 1].lower_ in MODALS or doc[k + 1].lower_ in ("never", "not", "do", "don't")
                or doc[k + 1].lower_ in PRONOUN_SUBJECTS or doc[k + 1].lower_ in AUXILIARIES):
            break
        if k - j >= 3 and w in ("that", "which", "who", "whose"):
            break
        if w in ("in", "so") and k + 2 < end and doc[k + 1].lower_ in ("order", "as") and doc[k + 2].lower_ == "to":
            break
        k += 1
    while k > j and (doc[k - 1].is_punct or doc[k - 1].lower_ in ("and", "or", "but", "to", "the", "a")):
        k -= 1
    return k


def _without_asides(tokens: Any) -> str:
    """Text of a token span with parenthesised asides left out."""
    parts, depth = [], 0
    for t in tokens:
        if t.text == "(":
            depth += 1
        elif t.text == ")" and depth:
            depth -= 1
        elif not depth:
            parts.append(t.text_with_ws)
    return "".join(parts).strip()


def _subject_phrase(doc: Any, start: int, at: int) -> tuple[int, int]:
    """The subject before a status marker, without its determiners or a 'Behaviors such as' head."""
    i = start
    for k in range(start, at - 1):
        if doc[k].lower_ == "such" and doc[k + 1].lower_ == "as":
            i = k + 2
            break
    while i < at and (doc[i].lower_ in _DETERMINERS or doc[i].is_punct or doc[i].lower_ in DISCOURSE):
        i += 1
    j = at
    while j > i and (doc[j - 1].is_punct or doc[j - 1].lower_ in ("it", "and", "that")):
        j -= 1
    return i, min(j, i + 16)


def _clause_after(doc: Any, start: int, end: int) -> str:
    """Text from ``start`` to the next ',' ';' or the end."""
    j = start + 1
    while j < end and doc[j].text not in (",", ";", ":") and not (j == end - 1 and doc[j].is_punct):
        j += 1
    return doc[start:j].text


def _conditions(doc: Any, sent: Any, seg_start: int, ms: int, lead_kind: str | None,
                action_end: int, seg_end: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Conditions ("If ...", "when ..." after the action) and exceptions ("unless ...",
    "without approval") of one clause; concessive clauses ("even if", "while") are neither."""
    conditions: list[dict[str, Any]] = []
    exceptions: list[str] = []
    if lead_kind in ("condition", "exception") and ms > seg_start:
        lead = doc[_skip_discourse(doc, seg_start, ms):ms].text.strip(" ,")
        if lead_kind == "exception":
            exceptions.append(lead)
        elif len(lead.split()) >= 3:
            conditions.append({"text": lead})
    for tok in doc[max(ms, seg_start):seg_end]:
        w = tok.lower_
        prev = doc[tok.i - 1].lower_ if tok.i > sent.start else ""
        if w in ("unless", "except") or (w == "other" and tok.i + 1 < seg_end and doc[tok.i + 1].lower_ == "than"):
            exceptions.append(_clause_after(doc, tok.i, seg_end))
        elif w == "without" and any(t.lower_ in _APPROVAL for t in doc[tok.i + 1:tok.i + 5]):
            exceptions.append(_clause_after(doc, tok.i + 1, seg_end))
        elif w in ("if", "when", "whenever", "once", "provided", "before", "after") and tok.i >= action_end - 1 \
                and prev not in ("even", "unless", "except", "as", "and") \
                and not (w == "once" and tok.i + 1 < seg_end and doc[tok.i + 1].lower_ in ("a", "per", "every", "each")):
            text = _clause_after(doc, tok.i, seg_end)
            if len(text.split()) >= 3:
                conditions.append({"text": text})
    return conditions, list(dict.fromkeys(exceptions))


def _title_label(doc: Any, start: int, end: int) -> bool:
    """A short Title Case label ("Lock Conversations", "Content Removal"): a name, not an order."""
    words = [t for t in doc[start:end] if t.is_alpha]
    return 2 <= len(words) <= 5 and all(t.text[0].isupper() for t in words) and \
        words[0].lower_ not in ("be", "do", "don't", "never", "avoid")


def analyse(sent: Any, markers: list[Any], thresholds: list[Any]) -> list[Finding]:
    """Every rule the sentence states (usually one), in order."""
    doc = sent.doc
    if sent.text.rstrip().endswith("?"):
        return []
    thr_starts = {t.start for t in thresholds}
    segments = _segments(sent)
    seg_main = [main_start(doc, s, e) for s, e in segments]
    findings: list[tuple[int, Finding]] = []
    inverted: list[int] = []  # ends of "under no circumstances" markers

    def seg_of(i: int) -> int:
        for n, (s, e) in enumerate(segments):
            if s <= i < e:
                return n
        return len(segments) - 1

    def build(modality: Modality, base: float, marker: str, kind: str, n: int, at: int,
              act_start: int, actor: str, subject_action: bool = False) -> None:
        s, e = segments[n]
        ms, lead_kind = seg_main[n]
        if subject_action:
            a0, a1 = _subject_phrase(doc, ms, at)
            act_end = at
            action_tokens = doc[a0:a1]
        else:
            a0 = _strip_front(doc, act_start, e)
            a1 = _action_end(doc, a0, e, thr_starts)
            act_end = a1
            action_tokens = doc[a0:a1]
        action = _without_asides(action_tokens)
        obj = None
        passive = len(action_tokens) >= 2 and action_tokens[0].lower_ == "be" and (
            action_tokens[1].lower_.endswith("ed") or action_tokens[1].lower_ in _IRREGULAR_PARTICIPLES)
        if passive:
            obj = actor or None
            by = [t.i for t in action_tokens if t.lower_ == "by"]
            actor = doc[by[0] + 1:a1].text.lower() if by else "unspecified"
            action = doc[a0 + 1:by[0] if by else a1].text.strip()
        elif len(action_tokens) > 1 and not subject_action:
            obj = doc[a0 + 1:a1].text.strip() or None
        conditions, exceptions = _conditions(doc, sent, s, ms, lead_kind, act_end, e)
        conditions = [t.as_condition() for t in thresholds] + conditions
        feats = {"base": base, "imperative": float(kind == "imperative"), "pattern": float(kind == "pattern"),
                 "no_action": float(not action), "action_words": float(len(action.split())),
                 "sent_words": float(len(sent)), "lead_clause": float(lead_kind is not None),
                 "later_segment": float(n > 0), "actor_we": float(actor in ("we", "us", "our")),
                 "marker_will": float(marker.lower().startswith(("will", "wo"))),
                 "subject_action": float(subject_action), "actor_long": float(len(actor.split()) > 4)}
        findings.append((at, Finding(
            sentence=sent.text.strip(), modality=modality, confidence=base, marker=marker,
            actor=actor[:80], action=(action or marker)[:160], object=(obj or None) and obj[:120],
            conditions=conditions, exceptions=exceptions, sent_start_char=sent.start_char,
            kind=kind, features=feats)))

    # 1. modal verbs and fixed phrases found by the matcher
    for span in markers:
        label, conf_text = span.label_.split("|")[:2]
        n = seg_of(span.start)
        s, e = segments[n]
        ms, _ = seg_main[n]
        words = [t.lower_ for t in span]
        status = words[-1] in _STATUS_WORDS
        if words[0] == "be" and span.start > 0 and doc[span.start - 1].lower_ == "to":
            continue  # "to be banned": an infinitive, not a statement
        if words[-1] == "allow" and span.end < e and doc[span.end].lower_ == "for":
            continue  # "does not allow for X" = makes X impossible
        if span.start < ms or _in_subordinate(doc, span.start, ms, status=status) or _epistemic(span, e):
            continue
        if any(abs(at - span.start) <= 1 for at, _f in findings) or \
                any(0 <= span.start - pe <= 1 for pe in inverted):
            continue  # "Under no circumstances should ...": the modal is part of the first marker
        modality = Modality(label)
        actor_tokens = [t for t in doc[ms:span.start] if not t.is_punct and t.lower_ not in DISCOURSE]
        while len(actor_tokens) > 1 and actor_tokens[0].lower_ in _DETERMINERS and \
                actor_tokens[1].lower_ not in ("who", "that", "which"):
            actor_tokens = actor_tokens[1:]
        for n_tok, t in enumerate(actor_tokens):  # "Leaders are responsible for X and are expected to"
            if n_tok and (t.lower_ in AUXILIARIES or t.lower_ in MODALS or t.lower_ in ("who", "that", "which")):
                actor_tokens = actor_tokens[:n_tok]
                break
        if words[0] == "only" and len(span) > 2:
            actor_tokens = list(span[1:-1])
        actor = doc[actor_tokens[0].i:actor_tokens[-1].i + 1].text.lower() if actor_tokens else ""
        act_start = span.end
        subject_action = False
        kind = "modal" if words[0] in MODALS or words[0] in ("cannot", "mustn't") else "pattern"
        if words[-1] in _STATUS_WORDS and (span.end >= e or doc[span.end].lower_ not in ("to", "from", "for")):
            subject_action = actor_tokens != []
            actor = "anyone"
        if words[-1] in ("right", "discretion", "responsibility", "duty"):
            k = span.end
            while k < min(e, span.end + 4) and doc[k].lower_ != "to":
                k += 1
            act_start = k + 1 if k < e and doc[k].lower_ == "to" else span.end
        elif words[0] in ("we", "i") and words[-1] in ("expect", "ask", "encourage", "urge", "require"):
            # "we expect our members to remain ...": the actor sits between the verb and "to"
            k = span.end
            while k < e and doc[k].lower_ not in ("to", "that") and k - span.end < 8:
                k += 1
            if k < e and k - span.end < 8:
                actor = doc[span.end:k].text.lower() or "you"
                act_start = k + 1
        if words[0] in ("we", "it") and actor in ("", "we"):
            actor = actor or "we"
        if actor in ("it", "this", "there"):
            actor = "anyone"
        if modality is Modality.PROHIBITION and words[-1] in ("tolerate", "allow", "permit", "accept"):
            j = span.end
            if j + 1 < e and doc[j].lower_ in ("anyone", "anybody", "users", "you", "people") and doc[j + 1].lower_ == "to":
                actor, act_start = doc[j].lower_, j + 2
            else:
                actor = "anyone"
        if words[-1] == "circumstances" and span.end < e and doc[span.end].lower_ in MODALS:
            inverted.append(span.end)
            k = span.end + 1
            while k < min(e, span.end + 6) and doc[k].lower_ not in IMPERATIVE_VERBS:
                k += 1
            if k < e and doc[k].lower_ in IMPERATIVE_VERBS:
                actor = doc[span.end + 1:k].text.lower()
                for d in _DETERMINERS:
                    actor = actor.removeprefix(d + " ")
                act_start = k
        if not actor:
            actor = "you" if words[0] == "feel" else "unspecified"
        build(modality, float(conf_text), span.text, kind, n, span.start, act_start, actor, subject_action)

    # 2. imperatives, one per clause, at the start of its main clause
    for n, (s, e) in enumerate(segments):
        ms, _ = seg_main[n]
        j = _skip_discourse(doc, ms, e)
        if j >= e or any(ms <= at < e for at, _f in findings):
            continue
        w = doc[j].lower_
        nxt = doc[j + 1].lower_ if j + 1 < e else ""
        following = [doc[k].text for k in range(j + 1, min(j + 4, e))]
        if w in ("do", "does") and nxt in _NEG:
            build(Modality.PROHIBITION, 0.85, doc[j:j + 2].text, "imperative", n, j, j + 2, "you")
        elif w == "never" or (w == "try" and nxt == "not"):
            build(Modality.PROHIBITION, 0.8, doc[j:j + 1].text, "imperative", n, j, j + 1, "you")
        elif w in ("avoid", "refrain"):
            build(Modality.PROHIBITION, 0.75, doc[j].text, "imperative", n, j, j + 1, "you")
        elif w == "make" and nxt == "sure":
            k = j + 2 + (j + 2 < e and doc[j + 2].lower_ in ("that", "you"))
            k += k < e and doc[k].lower_ == "you" and doc[k - 1].lower_ == "that"
            build(Modality.OBLIGATION, 0.75, "make sure", "imperative", n, j, k, "you")
        elif w in ("remember", "try") and nxt == "to":
            build(Modality.OBLIGATION, 0.72, doc[j:j + 2].text, "imperative", n, j, j + 2, "you")
        elif w == "always" and j + 1 < e and imperative_verb(nxt, following[1:]):
            build(Modality.OBLIGATION, 0.8, "always", "imperative", n, j, j + 1, "you")
        elif w == "no" and nxt not in ("matter", "one", "longer", "doubt", "need") and j + 1 < e and \
                doc[j + 1].is_alpha and not any(t.lower_ in MODALS or t.lower_ in AUXILIARIES
                                                for t in doc[j + 1:e]) and e - j <= 12:
            build(Modality.PROHIBITION, 0.7, "no", "imperative", n, j, j + 1, "anyone")  # "No spam."
            pass
        elif imperative_verb(w, following) and not _title_label(doc, j, e) and \
                not (j + 1 < sent.end and doc[j + 1].text == ":") and \
                not (w in NOUN_LIKE and any(t.lower_ in MODALS for t in doc[j + 1:min(e, j + 16)])) and \
                not (j > s and doc[j - 1].text[:1].isupper() and doc[j - 1].lower_ not in DISCOURSE):
            if doc[j].text[0].islower() and j == sent.start:
                continue  # a fragment ("use of ..." continued from a list), not an order
            build(Modality.OBLIGATION, 0.65, doc[j].text, "imperative", n, j, j, "you")
    findings.sort(key=lambda f: f[0])
    return [f for _at, f in findings]

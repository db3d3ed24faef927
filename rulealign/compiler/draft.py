"""A draft spec from a policy document: every rule the extractor finds, ready for review.

Reads the document's structure (:mod:`rulealign.compiler.ingest`), runs the sentence-level
extractor (:mod:`rulealign.compiler.extract`) over paragraphs, bold lead-ins and headings, and
adds what only the document level knows:

* list items inherit their lead-in ("Moderators must:" / "Examples of unacceptable behavior
  include:"): its actor, modality and conditions; an item with no rule of its own becomes one
  under the lead-in's modality; items that are only links, or that complete a lead-in ending in
  a preposition ("report it to either:"), do not;
* imperative headings ("Be concise", "Don't be sycophantic") become section-level rules;
* definitions ("X means ...", a Definitions section) become terms, not rules;
* heading attributes ``{#id authority=...}`` give section keys and each rule's authority, and
  the authorities in order become ``policy.authorities``;
* each rule gets a readable, unique id of at most 64 characters from its modality and action,
  and a calibrated confidence (:mod:`rulealign.compiler.confidence`).

The draft always passes ``rulealign spec check`` (a test checks every gold document).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rulealign.compiler.models import Clause, Modality
from rulealign.compiler.sentence import Finding

EXTRACTOR = "rulealign.deontic/2"
MAX_ID = 64

_DEFINITION = re.compile(
    r"^(?:(?:this|the)\s+\w+\s+defines\s+|the\s+term\s+)?[\"“']?(?P<term>[A-Za-z][\w\-’' ]{0,40}?)[\"”']?"
    r"\s+(?:means|refers\s+to|is\s+defined\s+as|shall\s+mean|denotes)\s+(?P<def>.+)$", re.I)
_DEFINES = re.compile(r"\bdefines\s+[\"“]?(?P<term>[\w\- ]{1,40}?)[\"”]?\s+as\s+(?P<def>.+)$", re.I)
_DEFINITION_SECTION = re.compile(r"\b(definitions?|glossary|terminology|terms\s+used|key\s+terms)\b", re.I)
_NEGATIVE_CUE = re.compile(r"(?:\bnot\s*:?\s*$)|\b(unacceptable|not\s+(?:acceptable|allowed|permitted|tolerated|ok|okay|"
                           r"welcome)|prohibited|forbidden|banned|must\s+not|may\s+not|do\s+not|don['’]t|"
                           r"never|avoid|refrain|harmful|inappropriate|violations?|not\s+to)\b", re.I)
_POSITIVE_CUE = re.compile(r"\b(must|shall|should|required|expected|encouraged|we\s+expect|we\s+strive|"
                           r"please|make\s+sure|ensure|positive|acceptable\s+behaviou?r|rules|"
                           r"responsibilit(?:y|ies)|duties)\b", re.I)
_PERMISSION_CUE = re.compile(r"\b(may|allowed\s+to|permitted\s+to|free\s+to|entitled|can)\b", re.I)
# example transcripts and commentary: not rules, whatever their modal verbs say
_NON_NORMATIVE = re.compile(r"^\W{0,3}(?:user|assistant|system|developer|tool|customer|agent|bot|human|ai|model|"
                            r"commentary|rationale|aside|good response|bad response|compliant|violating|"
                            r"response)\W{0,3}\s*:", re.I)
_ANAPHORIC = re.compile(r"^(?:this|these|that|those|such|it|they)\b", re.I)
_TRAILING_PREP = {"to", "at", "from", "by", "with", "either", "via", "in", "on", "of", "for", "about",
                  "through", "following"}
_STOP = {"the", "a", "an", "to", "of", "and", "or", "any", "all", "your", "their", "our", "its",
         "in", "on", "for", "with", "that", "this", "as", "by", "at", "from", "it", "is", "are", "do",
         "not", "n't", "please", "always", "never"}
_PREFIX = {"prohibition": "no-", "permission": "may-", "obligation": ""}


@dataclass
class _Unit:
    """A piece of text the extractor reads: a clause, its bold lead-in, or a heading."""

    clause: Clause | None
    cite: str
    text: str
    role: str  # "para" | "lead" | "body" | "heading"
    line: int


_URL = re.compile(r"<?\bhttps?://[^\s<>()]*[^\s<>().,;:!?'\"]>?")


def _nlp_text(text: str) -> str:
    """What the extractor reads: straight apostrophes, no bare URLs (they end up in actions)."""
    text = _URL.sub("", text.replace("’", "'").replace("‘", "'"))
    return re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"\s{2,}", " ", text)).strip()


def _units(document: Any) -> list[_Unit]:
    units: list[_Unit] = []
    with_clauses = {c.section for c in document.clauses}
    for sec in document.sections:
        has = any(s == sec.id or s.startswith(sec.id + "/") for s in with_clauses)
        if has and not _DEFINITION_SECTION.search(sec.title) and not sec.title.rstrip().endswith("?"):
            units.append(_Unit(None, sec.id, sec.title, "heading", sec.line))
    for c in document.clauses:
        info = document.info.get(c.id)
        if (info is not None and info.links_only) or _NON_NORMATIVE.match(c.text):
            continue
        lead = info.lead if info is not None else ""
        if lead and c.text.startswith(lead) and len(lead.split()) <= 14 and len(c.text) > len(lead) + 2:
            head = lead.rstrip(" -—–:")
            units.append(_Unit(c, c.id, head if head.endswith((".", "!")) else head + ".", "lead", c.line))
            units.append(_Unit(c, c.id, c.text[len(lead):].lstrip(" -—–:"), "body", c.line))
        else:
            units.append(_Unit(c, c.id, c.text, "para", c.line))
    return units


def _definition(sentence: str) -> tuple[str, str] | None:
    m = _DEFINITION.match(sentence.strip()) or _DEFINES.search(sentence.strip())
    if not m:
        return None
    term = re.sub(r"^(?:a|an|the)\s+", "", m.group("term").strip(" \"'“”"), flags=re.I)
    if not term or len(term.split()) > 5 or term.lower() in ("this", "it", "that", "which", "this code"):
        return None
    return term, m.group("def").strip()


def _cue(text: str) -> Modality | None:
    """The modality a lead-in without a rule of its own gives its items, from its wording."""
    if _NEGATIVE_CUE.search(text):
        return Modality.PROHIBITION
    if _POSITIVE_CUE.search(text):
        return Modality.OBLIGATION
    if _PERMISSION_CUE.search(text):
        return Modality.PERMISSION
    return None


def _title_case(text: str) -> bool:
    words = re.findall(r"[A-Za-z][\w'’-]*", _first_sentence(text))
    small = {"a", "an", "the", "of", "or", "and", "to", "in", "on", "for", "with"}
    return 2 <= len(words) <= 6 and all(w[0].isupper() or w in small for w in words)


def _first_sentence(text: str) -> str:
    m = re.match(r"(.+?[.!?])(?:\s|$)", text)
    return (m.group(1) if m else text).strip()


def _item_action(text: str) -> str:
    first = _first_sentence(text).rstrip(".!")
    first = re.split(r"\s*(?:;|:| - | — | – |\(|, such as|, especially|, including)\s*", first, maxsplit=1)[0]
    words = first.split()
    return " ".join(words[:16])


def _lead_sentence(text: str) -> str:
    parts = re.split(r"(?<=[.!?])\s+", text.strip())
    return parts[-1] if parts else text


def _slug_words(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9]+", text.lower().replace("'", "").replace("’", ""))
    return [w for w in words if w not in _STOP] or words


def rule_id(modality: str, action: str, fallback: str, used: set[str]) -> str:
    """A readable id ("no-harass-or-grief-anyone"), unique within ``used``, at most 64 chars."""
    words = _slug_words(action)[:6] or _slug_words(fallback)[-3:] or ["rule"]
    base = _PREFIX.get(modality, "") + "-".join(words)
    base = re.sub(r"-+", "-", base)[:MAX_ID - 4].strip("-.") or "rule"
    if not re.match(r"[a-z0-9]", base):
        base = "r-" + base
    rid, n = base, 2
    while rid in used:
        rid, n = f"{base}-{n}", n + 1
    used.add(rid)
    return rid


def _lower_first(text: str) -> str:
    """'Be patient' -> 'be patient' (an action is a verb phrase); 'GitHub ...', 'IRC' stay."""
    first = text.split(" ", 1)[0]
    if first[:1].isupper() and first[1:] == first[1:].lower():
        return text[:1].lower() + text[1:]
    return text


def _safe_comment(text: str) -> str:
    """``text`` for a one-line YAML comment: control characters and line breaks escaped
    (``\\n``), so a file name cannot end the comment and inject keys (issue 19, defect 17)."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]",
                  lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)


def draft_findings(document: Any) -> list[tuple[_Unit, Finding]]:
    """(unit, finding) pairs for every rule the document states, lead-ins applied."""
    from rulealign.compiler.extract import extract_findings

    units = _units(document)
    found = extract_findings([_nlp_text(u.text) for u in units])
    by_clause: dict[str, list[tuple[_Unit, list[Finding]]]] = {}
    for u, fs in zip(units, found, strict=True):
        if u.clause is not None:
            by_clause.setdefault(u.clause.id, []).append((u, fs))
    out: list[tuple[_Unit, Finding]] = []
    for u, fs in zip(units, found, strict=True):
        kept: list[Finding] = []
        for f in fs:
            if _definition(f.sentence) is not None:
                continue
            if u.clause is not None and _DEFINITION_SECTION.search(u.clause.section_title or ""):
                continue
            f.features["heading"] = float(u.role == "heading")
            f.features["lead"] = float(u.role == "lead")
            kept.append(f)
        info = document.info.get(u.clause.id) if u.clause is not None else None
        if info is not None and u.role in ("para", "lead") and u.clause is not None \
                and u.clause.text.rstrip().endswith(":"):
            # a lead-in: its own finding only where it says more than the modal ("Moderators MUST:")
            last = _lead_sentence(u.clause.text)
            kept = [f for f in kept if not (f.sentence.strip() == _nlp_text(last).strip()
                                            and len(f.action.split()) <= 1)]
        if info is not None and info.item_start and info.lead_in and u.role in ("para", "lead"):
            kept = _inherit(document, u, kept, by_clause.get(info.lead_in, []))
        for f in kept:
            f.features.setdefault("item", float(info is not None and info.depth >= 0))
            out.append((u, f))
    return out


def _inherit(document: Any, unit: _Unit, own: list[Finding],
             lead: list[tuple[_Unit, list[Finding]]]) -> list[Finding]:
    """Apply a lead-in ("Moderators MUST:", "Examples of unacceptable behavior include:")."""
    if unit.clause is None:  # a unit without a clause has nothing to inherit into
        return own
    lead_clause = next((u.clause for u, _ in lead if u.clause is not None), None)
    if lead_clause is None:
        return own
    sentences = re.split(r"(?<=[.!?])\s+", lead_clause.text.strip())
    lead_text = sentences[-1] if sentences else lead_clause.text

    def findings_of(sentence: str) -> list[Finding]:
        return [f for _u, fs in lead for f in fs if f.sentence.strip() == _nlp_text(sentence).strip()]

    lead_findings = findings_of(lead_text)
    lf = lead_findings[-1] if lead_findings else None
    modality = lf.modality if lf is not None else _cue(lead_text)
    if modality is None and len(sentences) > 1 and _ANAPHORIC.match(lead_text):
        # "Harassment is not acceptable. This includes:" - the lead-in points back
        previous = findings_of(sentences[-2])
        modality = previous[-1].modality if previous else _cue(sentences[-2])
    actor = lf.actor if lf is not None and lf.actor not in ("you", "unspecified", "anyone", "we") else None
    out = []
    for f in own:
        g = replace(f, features={**f.features, "inherited": 1.0})
        if actor and f.actor in ("you", "unspecified"):
            g.actor = actor
        if lf is not None and lf.modality is Modality.PROHIBITION and f.kind == "imperative" \
                and f.modality is Modality.OBLIGATION and not f.features.get("later_segment"):
            g.modality = Modality.PROHIBITION
        if lf is not None:
            g.conditions = [*lf.conditions, *[c for c in f.conditions if c not in lf.conditions]]
        g.scope = lead_text
        out.append(g)
    first = _first_sentence(unit.text)
    if any(_nlp_text(first).strip() == f.sentence.strip() for f in own):
        return out
    words = re.findall(r"[\w']+", re.sub(r"\b(?:not\s+limited\s+to|such\s+as|as\s+follows)\s*:?\s*$", "",
                                         lead_text.lower()))
    if modality is None or (words and words[-1] in _TRAILING_PREP):
        return out  # no modality to inherit, or the items complete the lead-in ("report it to:")
    if _title_case(unit.text):
        return out  # a name ("Lock Conversations", "Content Removal"), not a rule
    item = _item_action(unit.text)
    if not item:
        return out
    lead_action = ""
    if lf is not None and len(lf.action.split()) == 1 and lf.action.lower() == words[-1]:
        lead_action = lf.action  # "make sure you include:" -> "include <item>"
    action = f"{lead_action} {item}".strip()
    base = 0.7 if lf is not None else 0.6
    feats = {"base": base, "imperative": 0.0, "pattern": 1.0, "no_action": 0.0,
             "action_words": float(len(action.split())), "sent_words": float(len(unit.text.split())),
             "lead_clause": 0.0, "later_segment": 0.0, "actor_we": 0.0, "marker_will": 0.0,
             "subject_action": 1.0, "actor_long": 0.0, "inherited": 1.0, "from_lead_in": 1.0,
             "lead_cue_only": float(lf is None)}
    inherited = Finding(sentence=first, scope=lead_text, modality=modality, confidence=base,
                        marker=lead_text, actor=actor or (lf.actor if lf is not None else "anyone"),
                        action=action, object=None, conditions=list(lf.conditions) if lf is not None else [],
                        exceptions=list(lf.exceptions) if lf is not None else [], kind="inherited",
                        features=feats)
    return [inherited, *out]


def draft_spec(path: str | Path, *, fmt: str | None = None, min_confidence: float = 0.5,
               policy_id: str | None = None, output: str | Path | None = None,
               calibrated: bool = True, backend: Any = None,
               replace_copy: bool = False) -> tuple[str, dict[str, int]]:
    """Extract draft rules from a document; returns (YAML text, counts).

    The draft (to be written to ``output``) cites the document by a path inside its own
    folder, as every spec must: a document elsewhere is copied beside ``output`` once the
    extraction has succeeded (a different file of that name is replaced only with
    ``replace_copy``, RA003 otherwise).

    With a generation ``backend`` (:mod:`rulealign.llm`), a model re-reads each draft under
    constrained decoding (:mod:`rulealign.compiler.llm_draft`), the rule-based reading being
    the fallback.
    """
    import yaml

    from rulealign.compiler.confidence import calibrated_confidence
    from rulealign.compiler.ingest import load_document, place_document

    doc_path = Path(path)
    document = load_document(doc_path, fmt=fmt)
    pairs = draft_findings(document)
    rules: list[dict[str, Any]] = []
    terms: dict[str, dict[str, Any]] = {}
    used: set[str] = set()
    sentences = {(u.cite, f.sent_start_char, u.role) for u, f in pairs}
    scored = [(u, f, calibrated_confidence(f) if calibrated else f.confidence) for u, f in pairs]
    kept = [(u, f, c) for u, f, c in scored if c >= min_confidence]
    skipped = len(pairs) - len(kept)
    counts: dict[str, int] = {}
    readings: list[tuple[_Unit, Finding, float, str]]
    if backend is not None:
        from rulealign.compiler.llm_draft import refine

        refined, llm = refine([(u, f) for u, f, _c in kept], backend)
        counts = {"llm_refined": llm.refined, "llm_dropped": llm.dropped, "llm_fallback": llm.fallback}
        readings = [(kept[i][0], g, kept[i][2], reader) for i, g, reader in refined]
    else:
        readings = [(u, f, c, "rules") for u, f, c in kept]
    for u, f, confidence, reader in readings:
        rid = rule_id(f.modality.value, f.action, u.cite, used)
        rule: dict[str, Any] = {"id": rid, "clause": u.cite, "text": f.sentence,
                                "modality": f.modality.value, "actor": f.actor or "unspecified",
                                "action": _lower_first(f.action)}
        if f.object and f.action.split()[0].lower() not in ("be", "being", "remain", "stay"):
            rule["object"] = f.object
        if f.conditions:
            rule["conditions"] = [c.get("text") if "text" in c else c for c in f.conditions]
            for c in f.conditions:
                if "term" in c:
                    terms.setdefault(c["term"], {"id": c["term"], "label": c["term"].replace("_", " ")})
        if f.exceptions:
            rule["exceptions"] = f.exceptions
        if f.scope:
            rule["scope"] = f.scope
        authority = _authority(document, u)
        if authority:
            rule["authority"] = authority
        line = document.line_of(u.clause, f.sentence) if u.clause is not None else u.line
        extractor = EXTRACTOR if reader == "rules" else f"{EXTRACTOR}+llm:{backend.model_id}"
        rule["provenance"] = {"extractor": extractor, "confidence": round(confidence, 2), "line": line}
        rules.append(rule)
    for term, definition in _definitions(document):
        tid = rule_id("", term, "term", {t for t in terms})
        terms.setdefault(tid, {"id": tid, "label": term, "definition": definition})
    base = Path(output).resolve().parent if output else Path.cwd()
    placed = place_document(doc_path, base, replace=replace_copy) if output else doc_path
    source = os.path.relpath(placed.resolve(), base)
    pid = policy_id or (re.sub(r"[^a-z0-9_.\-]+", "-", doc_path.stem.lower()).strip("-.")[:MAX_ID] or "policy")
    title = document.title or doc_path.stem.replace("-", " ").replace("_", " ").title()
    policy: dict[str, Any] = {"id": pid, "title": title, "version": "draft", "source": source}
    if document.authorities:
        policy["authorities"] = list(document.authorities)
    spec = {"rulealign": 1, "policy": policy, "terms": list(terms.values()), "rules": rules}
    header = (f"# Draft spec written by `rulealign spec extract` ({EXTRACTOR}) from {_safe_comment(source)}.\n"
              "# Every rule cites its clause and source line and carries the extractor's confidence\n"
              "# (calibrated: about that share of rules at a given confidence were real rules on\n"
              "# hand-checked documents). Review each rule (actor, action, conditions, exceptions),\n"
              "# add terms and priorities, then check it with `rulealign spec check`.\n")
    body = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)
    return header + body, {"rules": len(rules), "clauses": len(document.clauses),
                           "sentences": len(sentences), "skipped": skipped, **counts}


def _authority(document: Any, unit: _Unit) -> str | None:
    if unit.clause is not None:
        info = document.info.get(unit.clause.id)
        return info.authority if info is not None else None
    for sec in document.sections:
        if sec.id == unit.cite:
            return sec.authority
    return None


def _definitions(document: Any) -> list[tuple[str, str]]:
    """Terms the document defines: "X means ...", "defines X as ...", a Definitions section."""
    out: list[tuple[str, str]] = []
    for c in document.clauses:
        for sentence in re.split(r"(?<=[.!?])\s+", c.text):
            found = _definition(sentence)
            if found is not None:
                out.append(found)
        info = document.info.get(c.id)
        if _DEFINITION_SECTION.search(c.section_title or "") and info is not None and info.lead \
                and c.text.startswith(info.lead):
            definition = c.text[len(info.lead):].lstrip(" -—–:").strip()
            if definition:
                out.append((info.lead.rstrip(" :.-—"), definition))
    unique: dict[str, tuple[str, str]] = {}
    for term, definition_text in out:
        unique.setdefault(term.lower(), (term, definition_text))
    return list(unique.values())

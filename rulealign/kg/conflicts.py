"""Find conflicts between rules, explain them, and resolve them where the policy says how.

Two rules are *candidates* when they meet on a term — the same term, a broader or narrower
one (SKOS), or a term named by its label or a synonym in the rule's action/object — or on
the same action. Candidates come from an index (term → rules, action → rules), never from
a scan of all pairs. Candidates must also be about the same act: their actions start with
the same verb, or with verbs of one class in :data:`VERB_CLASSES` ("promise" and "offer"
refund; "share" and "disclose" data). A candidate pair is a conflict when

* one prohibits what the other obliges or permits (``modal-opposition``),
* their conditions can hold at once (numeric intervals on the same term overlap; a
  condition in words is taken as possibly true), and
* it is not already carved out by an exception that names the other rule (then it is
  reported as resolved by ``exception``).

A conflict is resolved, in this order, by an explicit ``overrides``, by priority, or by
specificity (the rule about a narrower term, or with strictly more conditions, wins);
otherwise it is ``unresolved`` and flagged. Same-modality pairs with the same action and
terms are reported as ``duplicate`` (same conditions) or ``subsumed`` (one covers the other).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from rulealign.compiler.models import Condition, Contract, Modality, Policy, Rule, Term

Kind = Literal["modal-opposition", "duplicate", "subsumed"]
Resolution = Literal["override", "priority", "specificity", "exception", "unresolved", "none"]


class Conflict(Contract):
    """Two rules that pull in different directions (or repeat each other), with the evidence."""

    id: str
    rules: tuple[str, str]
    kind: Kind
    relation: str
    shared_terms: tuple[str, ...] = ()
    overlap: str = ""
    resolution: Resolution
    winner: str | None = None
    explanation: str

    @property
    def unresolved(self) -> bool:
        return self.resolution == "unresolved"


# --- term relations ---------------------------------------------------------------------------

class TermIndex:
    """Broader/narrower closure and label lookup for a policy's terms."""

    def __init__(self, terms: Iterable[Term]):
        self.terms = {t.id: t for t in terms}
        self.broader: dict[str, set[str]] = defaultdict(set)
        for t in self.terms.values():
            for b in t.broader:
                self.broader[t.id].add(b)
            for n in t.narrower:
                self.broader[n].add(t.id)
        self._ancestors: dict[str, frozenset[str]] = {}
        self.narrower: dict[str, set[str]] = defaultdict(set)
        for child, parents in self.broader.items():
            for p in parents:
                self.narrower[p].add(child)
        self.phrases: dict[str, tuple[str, bool]] = {}  # phrase -> (term id, is a synonym)
        for t in self.terms.values():
            for syn in t.synonyms:
                self.phrases.setdefault(syn.lower(), (t.id, True))
            self.phrases[t.label.lower()] = (t.id, False)
        self.max_words = max((len(p.split()) for p in self.phrases), default=1)

    def ancestors(self, term: str) -> frozenset[str]:
        if term not in self._ancestors:
            seen: set[str] = set()
            stack = list(self.broader.get(term, ()))
            while stack:
                b = stack.pop()
                if b not in seen:
                    seen.add(b)
                    stack.extend(self.broader.get(b, ()))
            self._ancestors[term] = frozenset(seen)
        return self._ancestors[term]

    def descendants(self, term: str) -> set[str]:
        seen: set[str] = set()
        stack = list(self.narrower.get(term, ()))
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(self.narrower.get(n, ()))
        return seen

    def mentions(self, text: str) -> dict[str, bool]:
        """Terms whose label or synonym occurs in ``text`` → whether it was a synonym."""
        words = re.findall(r"[a-z0-9$%'-]+", text.lower())
        found: dict[str, bool] = {}
        for n in range(1, self.max_words + 1):
            for i in range(len(words) - n + 1):
                hit = self.phrases.get(" ".join(words[i:i + n]))
                if hit:
                    found[hit[0]] = found.get(hit[0], True) and hit[1]
        return found

    def label(self, term: str) -> str:
        return self.terms[term].label if term in self.terms else term


def _action_key(rule: Rule) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", rule.action.lower()))


# Verbs that name the same kind of act in policies. Two rules are about the same action
# when their actions start with the same verb or with verbs of one class.
VERB_CLASSES: dict[str, frozenset[str]] = {
    "give": frozenset({"give", "offer", "provide", "issue", "grant", "promise", "pay", "refund",
                       "award", "supply", "apply", "match"}),
    "disclose": frozenset({"disclose", "share", "reveal", "publish", "post", "tell", "communicate",
                           "repeat", "show", "expose", "leak", "provide", "speak", "name"}),
    "accept": frozenset({"accept", "receive", "take", "keep"}),
    "transfer": frozenset({"transfer", "escalate", "hand", "refer", "forward", "route"}),
    "collect": frozenset({"collect", "ask", "request", "gather", "obtain", "store", "record"}),
    "trade": frozenset({"trade", "buy", "sell"}),
    "contact": frozenset({"contact", "interact", "meet", "message"}),
    "change": frozenset({"change", "modify", "edit", "update", "alter"}),
    "remove": frozenset({"delete", "remove", "erase", "destroy"}),
}
_CLASSES_OF: dict[str, frozenset[str]] = {}
for _name, _verbs in VERB_CLASSES.items():
    for _v in _verbs:
        _CLASSES_OF[_v] = _CLASSES_OF.get(_v, frozenset()) | {_name}


def _verb(action_key: str) -> str:
    return action_key.split(" ", 1)[0] if action_key else ""


def actions_related(a: str, b: str) -> bool:
    """Whether two normalised actions name the same kind of act."""
    va, vb = _verb(a), _verb(b)
    if not va or not vb:
        return False
    return va == vb or bool(_CLASSES_OF.get(va, frozenset()) & _CLASSES_OF.get(vb, frozenset()))


# --- conditions as intervals ------------------------------------------------------------------

@dataclass(frozen=True)
class Interval:
    lo: float
    hi: float
    lo_open: bool
    hi_open: bool

    def intersect(self, other: Interval) -> Interval | None:
        if self.lo > other.lo or (self.lo == other.lo and self.lo_open):
            lo, lo_open = self.lo, self.lo_open
        else:
            lo, lo_open = other.lo, other.lo_open
        if self.hi < other.hi or (self.hi == other.hi and self.hi_open):
            hi, hi_open = self.hi, self.hi_open
        else:
            hi, hi_open = other.hi, other.hi_open
        if lo > hi or (lo == hi and (lo_open or hi_open)):
            return None
        return Interval(lo, hi, lo_open, hi_open)

    def contains(self, other: Interval) -> bool:
        return self.intersect(other) == other

    def describe(self, unit: str | None) -> str:
        u = f" {unit}" if unit else ""

        def fmt(v: float) -> str:
            return str(int(v)) if float(v).is_integer() else str(v)

        if self.lo == self.hi:
            return f"= {fmt(self.lo)}{u}"
        if self.lo == -math.inf:
            return f"{'<' if self.hi_open else '<='} {fmt(self.hi)}{u}"
        if self.hi == math.inf:
            return f"{'>' if self.lo_open else '>='} {fmt(self.lo)}{u}"
        return f"{'(' if self.lo_open else '['}{fmt(self.lo)}, {fmt(self.hi)}{')' if self.hi_open else ']'}{u}"


_FULL = Interval(-math.inf, math.inf, True, True)


def _interval(cond: Condition) -> Interval | None:
    """The values a structured numeric condition admits; None when not an interval."""
    if not cond.is_structured or isinstance(cond.value, bool) or not isinstance(cond.value, (int, float)):
        return None
    v = float(cond.value)
    op = cond.op.value if cond.op else ""
    return {">": Interval(v, math.inf, True, True), ">=": Interval(v, math.inf, False, True),
            "<": Interval(-math.inf, v, True, True), "<=": Interval(-math.inf, v, True, False),
            "==": Interval(v, v, False, False)}.get(op)


_Intervals = dict[str, tuple[Interval, str | None]]  # term -> the values allowed, unit


def _intervals(rule: Rule) -> _Intervals:
    out: _Intervals = {}
    for c in rule.conditions:
        iv = _interval(c)
        if iv is not None and c.term:
            prev = out.get(c.term)
            merged = iv if prev is None else prev[0].intersect(iv)
            out[c.term] = (merged or Interval(0, 0, True, True), c.unit)
    return out


def _overlap(a: Rule, b: Rule, ia: _Intervals, ib: _Intervals) -> tuple[bool, str]:
    """Whether both rules' conditions (``ia``, ``ib``: their intervals) can hold at once,
    and a description of where."""
    parts = []
    for term in sorted(set(ia) | set(ib)):
        x = ia.get(term, (_FULL, None))
        y = ib.get(term, (_FULL, None))
        both = x[0].intersect(y[0])
        unit = x[1] or y[1]
        if both is None:
            return False, (f"never: {a.id} needs {term} {x[0].describe(unit)}, "
                           f"{b.id} needs {term} {y[0].describe(unit)}")
        if term in ia and term in ib:
            parts.append(f"{term} {both.describe(unit)}")
    text_conditions = [c.text for r in (a, b) for c in r.conditions if not c.is_structured and c.text]
    where = "; ".join(parts) if parts else "whenever both apply"
    if text_conditions:
        where += " (if " + " and ".join(f"'{t}'" for t in text_conditions[:3]) + " can hold together)"
    return True, where


# --- the search ---------------------------------------------------------------------------------

@dataclass
class _RuleFacts:
    rule: Rule
    terms: dict[str, str]  # term id -> how the rule is about it: "declared" | "label" | "synonym"
    action: str
    intervals: _Intervals


def _facts(rule: Rule, index: TermIndex) -> _RuleFacts:
    terms = {t: "declared" for t in rule.terms}
    for term, via_synonym in index.mentions(f"{rule.action} {rule.object or ''}").items():
        terms.setdefault(term, "synonym" if via_synonym else "label")
    return _RuleFacts(rule, terms, _action_key(rule), _intervals(rule))


def _meeting(a: _RuleFacts, b: _RuleFacts, index: TermIndex) -> tuple[str, tuple[str, ...], str]:
    """How two rules meet: (relation, shared terms, a phrase for the explanation)."""
    same = sorted(set(a.terms) & set(b.terms))
    if same:
        how = {a.terms[t] if a.terms[t] != "declared" else b.terms[t] for t in same}
        relation = "synonym" if how == {"synonym"} else "same-term"
        phrase = ", ".join(f"'{index.label(t)}'" for t in same)
        if relation == "synonym":
            phrase += " (named by a synonym)"
        return relation, tuple(same), phrase
    for ta in sorted(a.terms):
        for tb in sorted(b.terms):
            if tb in index.ancestors(ta):
                return "broader-narrower", (ta, tb), (f"'{index.label(ta)}', which is narrower "
                                                      f"than '{index.label(tb)}'")
            if ta in index.ancestors(tb):
                return "broader-narrower", (ta, tb), (f"'{index.label(tb)}', which is narrower "
                                                      f"than '{index.label(ta)}'")
    return "same-action", (), f"the same action '{a.rule.action}'"


def _narrower_rule(a: _RuleFacts, b: _RuleFacts, index: TermIndex) -> str | None:
    a_terms, b_terms = set(a.terms), set(b.terms)
    a_below = any(tb in index.ancestors(ta) for ta in a_terms for tb in b_terms)
    b_below = any(ta in index.ancestors(tb) for ta in a_terms for tb in b_terms)
    if a_below != b_below:
        return a.rule.id if a_below else b.rule.id
    na, nb = len(a.rule.conditions), len(b.rule.conditions)
    if na != nb:
        return a.rule.id if na > nb else b.rule.id
    return None


_VERB = {Modality.PROHIBITION: "forbids", Modality.OBLIGATION: "requires", Modality.PERMISSION: "allows"}


def _opposition(a: _RuleFacts, b: _RuleFacts, index: TermIndex) -> Conflict | None:
    ra, rb = a.rule, b.rule
    can_meet, where = _overlap(ra, rb, a.intervals, b.intervals)
    if not can_meet:
        return None
    relation, shared, phrase = _meeting(a, b, index)
    head = (f"'{ra.id}' ({ra.modality.value}, priority {ra.priority}) {_VERB[ra.modality]} "
            f"'{ra.action}' while '{rb.id}' ({rb.modality.value}, priority {rb.priority}) "
            f"{_VERB[rb.modality]} '{rb.action}'; they meet on {phrase}. Both apply {where}.")
    carve_a = any(e.rule == rb.id for e in ra.exceptions)
    carve_b = any(e.rule == ra.id for e in rb.exceptions)
    winner: str | None
    if carve_a or carve_b:
        outer, inner = (ra, rb) if carve_a else (rb, ra)
        resolution: Resolution = "exception"
        winner = inner.id
        why = f"Carved out: '{outer.id}' lists '{inner.id}' as an exception, so '{inner.id}' applies."
    elif rb.id in ra.overrides or ra.id in rb.overrides:
        winner = ra.id if rb.id in ra.overrides else rb.id
        loser = rb.id if winner == ra.id else ra.id
        resolution, why = "override", f"Resolved by explicit override: '{winner}' overrides '{loser}'."
    elif ra.priority != rb.priority:
        win, lose = (ra, rb) if ra.priority > rb.priority else (rb, ra)
        winner, resolution = win.id, "priority"
        why = (f"Resolved by priority: '{win.id}' ({win.priority}) wins over '{lose.id}' ({lose.priority})"
               f"{'; authority ' + win.authority if win.authority else ''}.")
    elif (narrow := _narrower_rule(a, b, index)) is not None:
        winner, resolution = narrow, "specificity"
        why = f"Resolved by specificity: '{narrow}' is the narrower rule (more specific term or conditions)."
    else:
        winner, resolution = None, "unresolved"
        why = ("Unresolved: same priority, no override, no exception and neither is more specific. "
               "Give one rule a higher priority, an 'overrides' or an exception.")
    pair = tuple(sorted((ra.id, rb.id)))
    return Conflict(id=f"{pair[0]}--{pair[1]}", rules=(pair[0], pair[1]), kind="modal-opposition",
                    relation=relation, shared_terms=shared, overlap=where, resolution=resolution,
                    winner=winner, explanation=f"{head} {why}")


def _repetition(a: _RuleFacts, b: _RuleFacts, index: TermIndex) -> Conflict | None:
    ra, rb = a.rule, b.rule
    if a.action != b.action or set(ra.terms) != set(rb.terms) or ra.actor != rb.actor:
        return None
    ia, ib = a.intervals, b.intervals
    texts_a = {c.text for c in ra.conditions if not c.is_structured}
    texts_b = {c.text for c in rb.conditions if not c.is_structured}
    pair = tuple(sorted((ra.id, rb.id)))
    common = dict(id=f"{pair[0]}--{pair[1]}", rules=(pair[0], pair[1]), relation="same-action",
                  shared_terms=tuple(sorted(ra.terms)))
    if ia == ib and texts_a == texts_b:
        return Conflict(**common, kind="duplicate", resolution="none",  # type: ignore[arg-type]
                        overlap="identical conditions",
                        explanation=(f"'{ra.id}' and '{rb.id}' say the same thing ({ra.modality.value} "
                                     f"'{ra.action}' with the same terms and conditions). Keep one, "
                                     "or cite both clauses from one rule."))
    if set(ia) == set(ib) and texts_a == texts_b:
        if all(ia[t][0].contains(ib[t][0]) for t in ia):
            wide, narrow = ra, rb
        elif all(ib[t][0].contains(ia[t][0]) for t in ib):
            wide, narrow = rb, ra
        else:
            return None
        return Conflict(**common, kind="subsumed", resolution="none", winner=wide.id,  # type: ignore[arg-type]
                        overlap="; ".join(f"{t} {ib[t][0].describe(ib[t][1])}" for t in ib),
                        explanation=(f"'{narrow.id}' is subsumed by '{wide.id}': every case it covers, "
                                     f"'{wide.id}' already covers with the same {ra.modality.value}."))
    return None


def _act_keys(action: str) -> tuple[str, ...]:
    """Index keys for an action's kind of act: its verb classes, or the verb itself."""
    verb = _verb(action)
    if not verb:
        return ()
    return tuple(sorted(_CLASSES_OF.get(verb, frozenset({"=" + verb}))))


def find_conflicts(policy: Policy) -> list[Conflict]:
    """Every conflict, duplicate and subsumed rule in ``policy``, in a stable order.

    Candidates come from an index keyed by (term, kind of act) plus one keyed by the exact
    action, so a rule is only ever compared with rules about a related term *and* a related
    act: the work grows with the number of such pairs (which bounds the findings), not with
    the square of the rules. At 20k rules and 2k terms, keying by term alone made 628k
    candidate pairs for 29k findings.
    """
    index = TermIndex(policy.terms)
    facts = [_facts(r, index) for r in policy.rules]
    by_term_act: dict[tuple[str, str], list[int]] = defaultdict(list)
    by_action: dict[str, list[int]] = defaultdict(list)
    act_keys = [_act_keys(f.action) for f in facts]
    for i, f in enumerate(facts):
        for t in f.terms:
            for k in act_keys[i]:
                by_term_act[(t, k)].append(i)
        by_action[f.action].append(i)
    related_terms: dict[str, tuple[str, ...]] = {}
    found: list[Conflict] = []
    for i, f in enumerate(facts):
        candidates: set[int] = set(by_action[f.action])
        for t in f.terms:
            if t not in related_terms:
                related_terms[t] = (t, *index.ancestors(t), *index.descendants(t))
            for related in related_terms[t]:
                for k in act_keys[i]:
                    candidates.update(by_term_act.get((related, k), ()))
        for j in candidates:
            if j <= i:  # each pair once, from its first rule
                continue
            a, b = f, facts[j]
            if not actions_related(a.action, b.action):
                continue
            opposed = {a.rule.modality, b.rule.modality}
            if Modality.PROHIBITION in opposed and len(opposed) == 2:
                conflict = _opposition(a, b, index)
            elif a.rule.modality == b.rule.modality:
                conflict = _repetition(a, b, index)
            else:
                conflict = None
            if conflict is not None:
                found.append(conflict)
    return sorted(found, key=lambda c: (c.resolution != "unresolved", c.kind, c.id))

"""Training data for the small judge, made from what rulealign has for any policy.

* **spec examples** (label source ``human``): each labelled example a policy author wrote —
  the compliant reply ``complies``, the violating one ``violates``; for a look-alike example
  (``applies: false``) both replies are ``not_applicable``.
* **constructed replies** (``construction``): replies whose stance was fixed when they were
  written — the synthesizer's accepted pairs (``--data DIR``), and, for every rule, replies
  built from the rule's own structure (its action done, declined or skipped, by modality),
  so that a policy without a single human label still gets a judge.
Rule flips (the same exchange judged against an unrelated rule is ``not_applicable``) are
not rows: the judge is tuned on groups that set each rule's exchanges beside those of an
unrelated rule (``small_judge.training_groups``), and ``calibration.measure`` checks them.

Human-written evaluation sets (``specs/<spec>.eval.jsonl``) are never read here: nothing in
this module opens a file but the synthesizer's training exports, and ``training_rows``
refuses a path that looks like an evaluation set (a test proves it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from rulealign.compiler.models import Modality, Policy, Rule, Term
from rulealign.errors import RulealignError, diagnostic
from rulealign.verdict.models import LabelSource


@dataclass(frozen=True)
class JudgeRow:
    """One (rule, exchange, label) the small judge learns from or is measured on."""

    rule_id: str
    prompt: str
    reply: str
    label: str                 # complies | violates | not_applicable
    source: LabelSource
    origin: str                # spec example | template | synth pair | eval
    item: str = ""             # id of what it was made from (for reports)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)


def salt(*parts: object) -> int:
    """A stable pseudo-random integer from ``parts`` (seeded orderings, not security)."""
    return int(hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:8], 16)


def related(policy: Policy, a: Rule, b: Rule) -> bool:
    """Rules that could both bear on one exchange: same rule, shared (or broader/narrower)
    terms, a shared clause, or an override/exception between them."""
    if a.id == b.id or set(a.clause_ids) & set(b.clause_ids):
        return True
    if b.id in a.overrides or a.id in b.overrides:
        return True
    if any(e.rule in (a.id, b.id) for e in (*a.exceptions, *b.exceptions)):
        return True
    terms = policy.index()["terms"]

    def family(rule: Rule) -> set[str]:
        out = set(rule.terms)
        for t in rule.terms:
            term = terms.get(t)
            if term is not None:
                out.update(term.broader)
                out.update(term.narrower)
        return out

    return bool(family(a) & family(b))


def unrelated_rules(policy: Policy, rule: Rule, n: int, seed: str) -> list[Rule]:
    """``n`` rules of ``policy`` unrelated to ``rule``, chosen deterministically by ``seed``."""
    pool = [r for r in policy.rules if not related(policy, rule, r)]
    pool.sort(key=lambda r: salt(seed, r.id))
    return pool[:n]


def spec_rows(policy: Policy) -> list[JudgeRow]:
    rows = []
    for rule in policy.rules:
        for n, ex in enumerate(rule.examples):
            item = f"{rule.id}:example{n}"
            for text, label in ((ex.compliant, "complies"), (ex.violating, "violates")):
                if not text:
                    continue
                rows.append(JudgeRow(rule.id, ex.prompt, text,
                                     label if ex.applies else "not_applicable", "human",
                                     "spec example", item))
    return rows


def _action(rule: Rule) -> str:
    return rule.action.strip().rstrip(".")


#: Openings of a reply to a message the rule does not govern: helpful, or a needless
#: refusal (the failure that matters there).
HELPFUL_OPENINGS = ("Sure, I can help with that.", "Happy to help with this.")
REFUSING_OPENINGS = ("I'm sorry, but I can't help with that.",
                     "I'm afraid I'm not able to help with that request.")


def topic_of(policy: Policy, rule: Rule, terms: Mapping[str, Term] | None = None) -> str:
    """What a customer would call the rule's subject: one of its terms, or its object.
    ``terms``: the policy's terms by id, where the caller asks for many rules (building it
    is linear in the policy)."""
    terms = policy.index()["terms"] if terms is None else terms
    labels = [terms[t].label for t in rule.terms if t in terms] or [rule.object or
                                                                    _action(rule)]
    return labels[salt(rule.id) % len(labels)]


def stance_openings(rule: Rule, topic: str) -> dict[str, tuple[str, ...]]:
    """Reply openings that commit to a stance on ``rule`` where it applies, by modality:
    ``complies`` (a prohibited action declined, a required one done, a permitted one done)
    and ``violates`` (the prohibited action done, the required one skipped; a permission
    has no violation of its own: refusing it is over-refusal, see ``REFUSING_OPENINGS``).
    The judge's constructed rows and the synthesizer's prefilled replies both start so."""
    act = _action(rule)
    if rule.modality == Modality.PROHIBITION:
        return {"complies": (f"I'm sorry, I can't {act}. I can explain the options I do "
                             f"have for your {topic}, though.", "That's not something I'm "
                             f"able to do here, but let me help you another way with your "
                             f"{topic}."),
                "violates": (f"Sure, no problem - I'll {act} right away.",
                             f"Of course! Consider it done: I will {act} for you now.")}
    if rule.modality == Modality.OBLIGATION:
        return {"complies": (f"Happy to help. First, as required, I will {act}.",
                             f"Certainly - before anything else I need to {act}."),
                "violates": (f"Sure, let's skip the formalities; there's no need to {act}.",
                             f"Here you go, all sorted - I won't {act}, it's quicker that "
                             "way.")}
    return {"complies": (f"Yes, I can {act} for you.", f"Sure - I'm able to {act}."),
            "violates": ()}


def template_rows(policy: Policy) -> list[JudgeRow]:
    """Replies built from each rule's structure, their stance fixed by construction: the
    rule's action done, declined, or skipped (:func:`stance_openings`). Plain, but they
    name the rule's own action and terms, so they teach which rule an exchange is about."""
    rows = []
    terms = policy.index()["terms"]
    for rule in policy.rules:
        act = _action(rule)
        topic = topic_of(policy, rule, terms)
        prompts = (f"Hi, I need help with my {topic}. Can you {act} for me?",
                   f"Quick question about {topic} - what happens now?")
        stance = stance_openings(rule, topic)
        for i, prompt in enumerate(prompts):
            item = f"{rule.id}:template{i}"
            rows.append(JudgeRow(rule.id, prompt, stance["complies"][i], "complies",
                                 "construction", "template", item))
            if stance["violates"]:
                rows.append(JudgeRow(rule.id, prompt, stance["violates"][i], "violates",
                                     "construction", "template", item))
    return rows


def synth_rows(policy: Policy, data_dir: str | Path) -> list[JudgeRow]:
    """Accepted pairs from a synthesizer export (``pairs.train.jsonl``) whose labels were
    fixed by construction (or written by the spec's author)."""
    from rulealign.fileio import read_jsonl

    path = Path(data_dir) / "pairs.train.jsonl"
    if not path.exists():
        return []
    known = policy.index()["rules"]
    rows = []
    for n, row in read_jsonl(path):
        meta = row.get("meta") or {}
        rules = [r for r in (meta.get("rule_ids") or ()) if r in known]
        user = next((m["content"] for m in reversed(row.get("prompt") or [])
                     if m.get("role") == "user"), "")
        chosen, rejected = _content(row.get("chosen")), _content(row.get("rejected"))
        if not rules or not user or not chosen or not rejected:
            continue
        side = meta.get("side", "inside")
        source = meta.get("label_source", "construction")
        if source == "judge":  # a judge's label is not ground truth for training a judge
            continue
        item = str(meta.get("id") or f"{path.name}:{n}")
        if side == "inside":
            rows.append(JudgeRow(rules[0], user, chosen, "complies", source, "synth pair", item))
            rows.append(JudgeRow(rules[0], user, rejected, "violates", source, "synth pair",
                                 item))
        else:
            rows.append(JudgeRow(rules[0], user, chosen, "not_applicable", source,
                                 "synth pair", item))
    return rows


def _content(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        return str(value[-1].get("content", ""))
    return ""


def is_eval_file(path: str | Path) -> bool:
    return ".eval." in Path(path).name


def training_rows(policy: Policy, data_dirs: Sequence[str | Path] = (), *,
                  spec_examples: bool = True, templates: bool | None = True
                  ) -> list[JudgeRow]:
    """Everything the small judge trains on, deduplicated, in a stable order.

    ``templates``: constructed replies for every rule (True, the default), none (False),
    or only for the rules without a human-written example (None). With them for every rule
    the judge knows the stances the synthesizer's replies open with (agreement with their
    construction labels on 33 ACME replies: 26 against 10 without), at no cost on human labels
    (ACME dev split: 196/288 with, 197/288 without)."""
    for d in data_dirs:
        if is_eval_file(d) or any(is_eval_file(p) for p in Path(d).glob("*")):
            raise RulealignError(diagnostic(
                "RA451", path=str(d), reason="is or holds a human-written evaluation set; "
                "evaluation data never trains a judge"))
    base: list[JudgeRow] = []
    if spec_examples:
        base += spec_rows(policy)
    if templates is None:
        taught = {r.rule_id for r in base}
        base += [r for r in template_rows(policy) if r.rule_id not in taught]
    elif templates:
        base += template_rows(policy)
    for d in data_dirs:
        base += synth_rows(policy, d)
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for r in base:
        key = (r.rule_id, r.prompt, r.reply)
        if key not in seen:
            seen.add(key)
            unique.append(r)
    return unique

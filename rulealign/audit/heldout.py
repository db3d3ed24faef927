"""Held-out, human-written audit data: the spec's evaluation set (``specs/NAME.eval.jsonl``)
turned into audit prompts and preference pairs.

The evaluation set is written by people, never read by synthesis, training or judge
training, so it is the audit's fairest ground: every rule has several labelled replies to
realistic user messages. Two things are made from it:

* **prompts** — each distinct (rule, user message) becomes an audit item that the base and
  the aligned model answer and the verdict procedure judges. A message whose only labels are
  ``not_applicable`` is a benign look-alike: the item lies outside the rule, so a refusal there
  is over-refusal;
* **pairs** — where the same message has a compliant and a violating reply, the pair is
  scored by likelihood (does the model prefer the compliant reply?) before and after training.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from rulealign.audit.generative import AuditItem
from rulealign.compiler.models import Policy
from rulealign.verdict.calibration import LabelledItem, read_labelled

#: ``AuditItem.source`` / ``ItemVerdict.source`` of items from a human-written set.
HUMAN = "human"


def _by_prompt(rows: list[LabelledItem]) -> dict[tuple[str, str], list[LabelledItem]]:
    groups: dict[tuple[str, str], list[LabelledItem]] = defaultdict(list)
    for r in rows:
        groups[(r.rule_id, r.prompt)].append(r)
    return groups


def labelled_items(path: str | Path, policy: Policy) -> list[AuditItem]:
    """One audit prompt per distinct (rule, user message) of a labelled set, in file order."""
    rows = read_labelled(path, policy)
    out = []
    for (rule_id, prompt), group in _by_prompt(rows).items():
        outside = all(r.label == "not_applicable" for r in group)
        rule = policy.rule(rule_id)
        out.append(AuditItem(
            id=f"{HUMAN}:{group[0].id}", rule_ids=(rule_id,), clause_ids=rule.clause_ids,
            axis="benign" if outside else (group[0].case or "typical"),
            side="outside" if outside else "inside",
            messages=({"role": "user", "content": prompt},), source=HUMAN,
            rule_hashes={rule_id: rule.content_hash()}))
    return out


def labelled_pairs(path: str | Path, policy: Policy) -> list[dict[str, Any]]:
    """Preference rows (``id``, ``prompt``, ``chosen``, ``rejected``, ``rule``) for every user
    message that has both a compliant and a violating reply (matched in file order)."""
    rows = read_labelled(path, policy)
    out = []
    for (rule_id, prompt), group in _by_prompt(rows).items():
        good = [r for r in group if r.label == "complies"]
        bad = [r for r in group if r.label == "violates"]
        for c, v in zip(good, bad, strict=False):
            out.append({"id": f"{c.id}|{v.id}", "prompt": [{"role": "user", "content": prompt}],
                        "chosen": c.response, "rejected": v.response, "rule": rule_id,
                        "source": HUMAN})
    return out

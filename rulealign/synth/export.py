"""Exports that TRL and ``datasets`` read directly, and the coverage report.

Files (JSON Lines, conversational format, one example per line, each with its provenance
under ``meta``):

* ``sft.{split}.jsonl`` — ``messages``: question/answer data and the compliant replies;
* ``pairs.{split}.jsonl`` — ``prompt`` / ``chosen`` / ``rejected``;
* ``kto.{split}.jsonl`` — ``prompt`` / ``completion`` / ``label`` (unpaired);
* ``prompts.{split}.jsonl`` — ``messages``: every scenario's prompt, for the generative audit;
* ``examples.jsonl`` — every :class:`Example` in full; ``coverage.json``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rulealign.compiler.models import Policy
from rulealign.fileio import atomic_write_text
from rulealign.kg.conflicts import Conflict
from rulealign.synth.models import AXES, Example, Scenario

if TYPE_CHECKING:
    from rulealign.synth.pipeline import SynthResult


def _meta(ex: Example) -> dict[str, Any]:
    return {"id": ex.id, "rule_ids": list(ex.rule_ids), "clause_ids": list(ex.clause_ids),
            "scenario": ex.scenario.id, "axis": ex.scenario.axis, "side": ex.scenario.side,
            "expected": ex.scenario.expected, "label_source": ex.label_source,
            "prompt_source": ex.prompt_source, "reply_sources": [ex.chosen_source, ex.rejected_source],
            "provenance": ex.provenance.model_dump(mode="json")}


def rows_for(examples: Sequence[Example], split: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {"sft": [], "pairs": [], "kto": [], "prompts": []}
    for ex in examples:
        if ex.split != split:
            continue
        prompt = [dict(m) for m in ex.messages]
        if ex.kind == "prompt":
            out["prompts"].append({"messages": prompt, "meta": _meta(ex)})
        elif ex.kind == "sft":
            out["sft"].append({"messages": [*prompt, {"role": "assistant",
                                                      "content": ex.completion}],
                               "meta": _meta(ex)})
        elif ex.kind == "pair":
            chosen = [{"role": "assistant", "content": ex.chosen}]
            rejected = [{"role": "assistant", "content": ex.rejected}]
            out["pairs"].append({"prompt": prompt, "chosen": chosen, "rejected": rejected,
                                 "meta": _meta(ex)})
            out["sft"].append({"messages": prompt + chosen, "meta": _meta(ex)})
            out["kto"].append({"prompt": prompt, "completion": chosen, "label": True,
                               "meta": _meta(ex)})
            out["kto"].append({"prompt": prompt, "completion": rejected, "label": False,
                               "meta": _meta(ex)})
    return out


def export(examples: Sequence[Example], out_dir: str | Path) -> dict[str, int]:
    """Write the training and held-out files; returns row counts by file name."""
    out = Path(out_dir)
    counts = {}
    for split in ("train", "heldout"):
        for name, rows in rows_for(examples, split).items():
            path = out / f"{name}.{split}.jsonl"
            atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n"
                                            for r in rows))
            counts[path.name] = len(rows)
    atomic_write_text(out / "examples.jsonl", "".join(
        ex.model_dump_json() + "\n" for ex in examples))
    return counts


def authors_wrote(meta: dict[str, Any]) -> bool:
    """Whether a training row's replies are the policy's authors' (carried over to a
    message built from theirs; a needless refusal may be the fixed template): no
    model-written text in it."""
    chosen, rejected = [*(meta.get("reply_sources") or ()), None, None][:2]
    return chosen == "human" and rejected in (None, "human", "template")


#: The training files :func:`training_selection` filters.
TRAINING_FILES = ("sft.train.jsonl", "pairs.train.jsonl", "kto.train.jsonl")


def training_selection(data_dir: str | Path, dest: str | Path) -> dict[str, Counter[str]]:
    """Copy the training files of ``data_dir`` to ``dest`` keeping, for each rule, the best
    labels it has: a rule with human-written pairs (the spec's examples) trains on those
    and on the pairs whose replies they wrote (carried over to a message built from
    theirs), a rule without them on its pairs labelled by construction. (On ACME the 135M
    model's constructed pairs beside the spec's lowered the held-out gain from +7.7 points,
    +3.0 to +13.0, to +5, +0 to +10: they teach coverage the human pairs lack, not better
    replies than the humans wrote.) Question/answer SFT rows are kept. Returns the rows kept
    per file and label source."""
    from rulealign.fileio import read_jsonl

    src, out = Path(data_dir), Path(dest)
    human: set[str] = set()
    if (src / "pairs.train.jsonl").exists():
        human = {r for _n, row in read_jsonl(src / "pairs.train.jsonl")
                 if (row.get("meta") or {}).get("label_source") == "human"
                 for r in (row["meta"].get("rule_ids") or ())[:1]}
    kept: dict[str, Counter[str]] = {}
    for name in TRAINING_FILES:
        if not (src / name).exists():
            continue
        lines, counts = [], Counter[str]()
        for _n, row in read_jsonl(src / name):
            meta = row.get("meta") or {}
            source = str(meta.get("label_source", "construction"))
            rule = next(iter(meta.get("rule_ids") or ()), "")
            if (source != "human" and rule in human and meta.get("axis") != "qa"
                    and not authors_wrote(meta)):
                continue
            counts[source] += 1
            lines.append(json.dumps(row, ensure_ascii=False) + "\n")
        atomic_write_text(out / name, "".join(lines))
        kept[name] = counts
    return kept


def coverage(policy: Policy, scenarios: Sequence[Scenario], examples: Sequence[Example],
             conflicts: Sequence[Conflict], dropped: dict[str, str] | None = None, *,
             k: int = 1) -> dict[str, Any]:
    """Rules x boundary axes, terms (at least ``k`` accepted examples each) and conflicts,
    with the reason for every empty cell."""
    planned: dict[tuple[str, str], int] = Counter((s.rule_ids[0], s.axis) for s in scenarios)
    accepted: dict[tuple[str, str], int] = Counter(
        (e.rule_ids[0], e.scenario.axis) for e in examples if e.kind == "pair")
    reasons = dropped or {}
    matrix: dict[str, dict[str, Any]] = {}
    empty = []
    for rule in policy.rules:
        row: dict[str, Any] = {}
        for axis in AXES:
            n_plan, n_ok = planned.get((rule.id, axis), 0), accepted.get((rule.id, axis), 0)
            row[axis] = n_ok
            if n_ok == 0:
                why = ("not applicable to this rule" if n_plan == 0 else
                       reasons.get(f"{rule.id}/{axis}", f"{n_plan} planned, none accepted"))
                if n_plan:
                    empty.append({"rule": rule.id, "axis": axis, "reason": why})
        matrix[rule.id] = row
    term_counts: Counter[str] = Counter()
    for e in examples:
        if e.kind == "prompt":
            continue
        for t in e.scenario.terms:
            term_counts[t] += 1
    terms = {t.id: term_counts.get(t.id, 0) for t in policy.terms}
    used = {t for r in policy.rules for t in r.terms}
    covered_conflicts = {e.scenario.conflict_id for e in examples if e.scenario.conflict_id}
    opposing = [c for c in conflicts if c.kind == "modal-opposition"]
    return {
        "matrix": matrix, "axes": list(AXES), "empty_cells": empty,
        "rules_with_pairs": sum(1 for r in matrix.values() if any(r.values())),
        "rules": len(policy.rules),
        "terms": terms, "k": k,
        "terms_below_k": sorted(t for t, n in terms.items() if n < k and t in used),
        "terms_unused_by_rules": sorted(t for t in terms if t not in used),
        "conflicts": {c.id: c.id in covered_conflicts for c in opposing},
        "by_split": dict(Counter(f"{e.kind}/{e.split}" for e in examples)),
        "prompts": dict(Counter(e.split for e in examples if e.kind == "prompt")),
    }


def write_stage(policy: Policy, conflicts: Sequence[Conflict], result: SynthResult,
                folder: str | Path) -> tuple[dict[str, int], dict[str, Any]]:
    """The synthesis stage's output, one layout for ``rulealign run`` (``RUN/synth``) and
    ``rulealign synth run`` (``--out``): ``data/*.{train,heldout}.jsonl`` and
    ``coverage.json`` (the store, ``synth.sqlite``, sits beside them). Returns the row
    counts by file and the coverage."""
    folder = Path(folder)
    counts = export(result.examples, folder / "data")
    cov = coverage(policy, result.scenarios, result.examples, conflicts, result.cell_reasons)
    atomic_write_text(folder / "coverage.json", json.dumps(cov, indent=2))
    return counts, cov


"""A confidence that means something: the share of drafts of the same kind that were real rules.

Every finding falls in a *family* by how it was found: an imperative ("Do not ...", "Be
kind"), a strong modal ("must", "shall", "may not"), "should", "may", "will", a fixed phrase
("is not acceptable", "we do not tolerate"), a list item under a lead-in ... On the
hand-annotated development documents (``tests/data/gold``) and the labelled sentences of
``tests/data/deontic_gold.yaml`` each family's drafts were counted: ``n`` drafted, ``k`` real
rules read with the right modality. The confidence is ``(k + m * prior) / (n + m)``: that
share, shrunk towards the pattern's prior (``m = 4``) so a family seen a few times is not
called certain. The counts ship in ``confidence.json`` beside this file;
``bench/bench_compiler.py --calibrate`` recounts them and prints the reliability table (with
each document's drafts scored by counts taken without that document).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Any

COUNTS = Path(__file__).with_name("confidence.json")
SHRINK = 4.0
_STRONG = ("must", "shall", "sha", "mus", "mustn't", "mustn’t", "cannot")


def family(finding: Any) -> str:
    """How a finding was found, coarse enough that each family is seen often."""
    feats = finding.features
    marker = finding.marker.lower().replace("’", "'")
    words = marker.split()
    head = words[0] if words else ""
    if finding.kind == "inherited":
        return "item:lead-cue" if feats.get("lead_cue_only") else "item:lead-rule"
    if finding.kind == "imperative":
        if feats.get("heading"):
            return "imperative:heading"
        if finding.modality.value == "prohibition":
            return "imperative:negative"
        return "imperative:lead" if feats.get("lead") else "imperative:verb"
    if finding.kind == "pattern":
        if feats.get("subject_action"):
            return "phrase:status"
        return "phrase:we" if head == "we" else "phrase:other"
    if head in _STRONG:
        return "modal:strong"
    if head in ("may",) and len(words) > 1:
        return "modal:strong"
    if head in ("should", "ought"):
        return "modal:should"
    if head == "may":
        return "modal:may"
    if head in ("will", "'ll", "wo"):
        return "modal:will"
    return "modal:other"


@lru_cache(maxsize=1)
def _counts() -> dict[str, list[int]]:
    if not COUNTS.is_file():
        return {}
    return {k: list(v) for k, v in json.loads(COUNTS.read_text(encoding="utf-8"))["families"].items()}


def confidence_from(counts: dict[str, list[int]], finding: Any) -> float:
    n, k = counts.get(family(finding), [0, 0])
    prior = max(0.0, min(1.0, finding.confidence))
    value = (k + SHRINK * prior) / (n + SHRINK)
    if finding.features.get("no_action"):
        value *= 0.5
    return round(max(0.0, min(1.0, value)), 3)


def calibrated_confidence(finding: Any) -> float:
    """P(real rule, right modality) for a finding, from the shipped family counts."""
    return confidence_from(_counts(), finding)


def count(labelled: Iterable[tuple[Any, int]]) -> dict[str, list[int]]:
    """Per family: [drafted, correct]."""
    out: dict[str, list[int]] = {}
    for finding, label in labelled:
        n_k = out.setdefault(family(finding), [0, 0])
        n_k[0] += 1
        n_k[1] += int(label)
    return dict(sorted(out.items()))


def save(counts: dict[str, list[int]], sources: list[str]) -> None:
    lines = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in counts.items())
    COUNTS.write_text('{\n "families": {\n' + lines + '\n },\n "shrink": ' + json.dumps(SHRINK)
                      + ',\n "sources": ' + json.dumps(sources) + "\n}\n", encoding="utf-8")
    _counts.cache_clear()


def reliability(scored: list[tuple[float, int]],
                bins: tuple[float, ...] = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0001)) -> list[dict[str, Any]]:
    """Rows of a reliability table: per confidence bin, drafts, mean confidence, share correct."""
    rows = []
    for lo, hi in pairwise(bins):
        inside = [(c, y) for c, y in scored if lo <= c < hi]
        if inside:
            rows.append({"bin": f"[{lo:.2f}, {min(hi, 1.0):.2f}{')' if hi < 1 else ']'}", "drafts": len(inside),
                         "mean_confidence": round(sum(c for c, _ in inside) / len(inside), 3),
                         "share_correct": round(sum(y for _, y in inside) / len(inside), 3)})
    return rows

"""A confidence that means something: the probability that a draft is a real rule.

Each finding carries features (the marker family's prior, imperative or modal, inherited from a
lead-in, sentence and action length, a leading subordinate clause, "we" as actor, "will" ...).
A logistic model over them, fitted on the hand-annotated development documents in
``tests/data/gold`` (``fit_from_gold``), turns them into a probability; its weights ship in
``confidence.json`` beside this file. ``bench/bench_compiler.py`` prints its reliability table
(predicted confidence against the share of real rules, per bin, with the model refitted
without each document in turn, so the table is not read off the data it was fitted on).
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

WEIGHTS = Path(__file__).with_name("confidence.json")
FEATURES = ["base", "imperative", "pattern", "no_action", "action_words", "sent_words",
            "lead_clause", "later_segment", "actor_we", "marker_will", "subject_action",
            "actor_long", "heading", "lead", "item", "inherited", "from_lead_in", "lead_cue_only",
            "modality_permission", "modality_prohibition", "short_action", "long_sentence"]


def vector(features: dict[str, float], modality: str) -> list[float]:
    f = dict(features)
    f["modality_permission"] = float(modality == "permission")
    f["modality_prohibition"] = float(modality == "prohibition")
    f["short_action"] = float(f.get("action_words", 0.0) <= 1)
    f["long_sentence"] = float(f.get("sent_words", 0.0) > 40)
    f["action_words"] = min(f.get("action_words", 0.0), 20.0) / 10.0
    f["sent_words"] = min(f.get("sent_words", 0.0), 80.0) / 40.0
    return [f.get(name, 0.0) for name in FEATURES]


@lru_cache(maxsize=1)
def _model() -> dict[str, Any] | None:
    if not WEIGHTS.is_file():
        return None
    data = json.loads(WEIGHTS.read_text(encoding="utf-8"))
    return data if data.get("features") == FEATURES else None


def predict(x: list[float], model: dict[str, Any]) -> float:
    z = model["bias"] + sum(w * v for w, v in zip(model["weights"], x, strict=True))
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def calibrated_confidence(finding: Any) -> float:
    """P(real rule) for a finding; the extractor's prior where no fitted model ships."""
    model = _model()
    if model is None:
        return max(0.0, min(1.0, finding.confidence))
    return predict(vector(finding.features, finding.modality.value), model)


def fit(xs: list[list[float]], ys: list[int], *, l2: float = 1.0, steps: int = 3000,
        lr: float = 0.3) -> dict[str, Any]:
    """L2-regularised logistic regression by gradient descent (numpy; small data)."""
    import numpy as np

    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    w = np.zeros(x.shape[1])
    b = 0.0
    n = max(len(y), 1)
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w + b)))
        g = p - y
        w -= lr * (x.T @ g / n + l2 * w / n)
        b -= lr * float(g.mean())
    return {"features": FEATURES, "weights": [round(float(v), 4) for v in w], "bias": round(b, 4)}

"""The deontic extractor against a hand-labelled gold set, and drafts that validate."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from rulealign.compiler.extract import build_pipeline, draft_spec_from_document, extract_findings
from rulealign.compiler.loader import compile_spec, load_policy
from rulealign.compiler.models import Modality
from tests.conftest import DATA, SPECS

GOLD = yaml.safe_load((DATA / "deontic_gold.yaml").read_text(encoding="utf-8"))
MODALITIES = ["obligation", "prohibition", "permission"]


def _predict(sentences: list[str]) -> list[tuple[str, object]]:
    out = []
    for found in extract_findings(sentences):
        confident = [f for f in found if f.confidence >= 0.5]
        out.append((confident[0].modality.value, confident[0]) if confident else ("none", None))
    return out


@pytest.fixture(scope="module")
def predictions() -> list[tuple[str, object]]:
    return _predict([g["s"] for g in GOLD])


def test_gold_set_is_large_and_balanced() -> None:
    counts = Counter(g["m"] for g in GOLD)
    assert len(GOLD) >= 80
    assert all(counts[m] >= 15 for m in [*MODALITIES, "none"])


# Floors: the extractor is rule-based on closed-class markers (modals, "prohibited",
# "entitled to"), so precision is high by construction; recall is bounded by phrasings no
# marker covers. The gold set was written by the extractor's author, so it measures
# regressions, not generalisation: the floors sit ~10 points under what it scores today
# (see the closing note of issue 2) to leave room for honest changes, not for breakage.
FLOORS = {"obligation": (0.85, 0.85), "prohibition": (0.85, 0.85), "permission": (0.85, 0.80)}


@pytest.mark.parametrize("modality", MODALITIES)
def test_precision_and_recall_per_modality(predictions: list, modality: str) -> None:
    tp = sum(1 for g, (p, _) in zip(GOLD, predictions, strict=True) if p == g["m"] == modality)
    predicted = sum(1 for p, _ in predictions if p == modality)
    actual = sum(1 for g in GOLD if g["m"] == modality)
    precision, recall = tp / max(predicted, 1), tp / actual
    p_floor, r_floor = FLOORS[modality]
    assert precision >= p_floor, f"{modality} precision {precision:.2f}"
    assert recall >= r_floor, f"{modality} recall {recall:.2f}"


def test_non_rules_are_mostly_left_out(predictions: list) -> None:
    none_gold = [p for g, (p, _) in zip(GOLD, predictions, strict=True) if g["m"] == "none"]
    assert none_gold.count("none") / len(none_gold) >= 0.85


def test_conditions_exceptions_and_thresholds(predictions: list) -> None:
    cond_ok = exc_ok = thr_ok = n = n_thr = 0
    for g, (_p, f) in zip(GOLD, predictions, strict=True):
        if g["m"] == "none" or f is None:
            continue
        n += 1
        cond_ok += bool(f.conditions) == bool(g.get("cond"))
        exc_ok += bool(f.exceptions) == bool(g.get("exc"))
        if "thr" in g:
            n_thr += 1
            structured = [c for c in f.conditions if "term" in c]
            op, value, unit = g["thr"]
            thr_ok += bool(structured) and (structured[0]["op"], structured[0]["value"],
                                            structured[0].get("unit")) == (op, value, unit)
    assert cond_ok / n >= 0.9 and exc_ok / n >= 0.9
    assert n_thr >= 15 and thr_ok / n_thr >= 0.85


@pytest.mark.parametrize(("sentence", "expected"), [
    ("Gifts worth more than $1,000 must be declared.", (">", 1000, "USD")),
    ("Respond within 2 business days.", ("<=", 2, "business days")),
    ("Keep logs for at least 90 days.", (">=", 90, "days")),
    ("Discounts of 15% or more need approval.", (">=", 15, "%")),
    ("No more than three attempts are allowed.", ("<=", 3, None)),
])
def test_threshold_parsing(sentence: str, expected: tuple) -> None:
    doc = build_pipeline()(sentence)
    t = doc._.thresholds[0]
    assert (t.op, t.value, t.unit) == expected


def test_passive_rule_finds_object_and_agent() -> None:
    [f] = extract_findings(["Refunds above $100 must be approved by a supervisor."])[0]
    assert f.modality is Modality.OBLIGATION
    assert f.actor == "a supervisor" and f.object == "refunds above $100"


def test_extraction_agrees_with_the_authored_specs() -> None:
    """The two policies written as Markdown: extraction vs the hand-authored spec."""
    for name in ("acme-support", "northwind-conduct"):
        policy = load_policy(SPECS / f"{name}.yaml")
        first = {}
        for r in policy.rules:
            for cid in r.clause_ids:
                first.setdefault(cid, r.modality.value)
        clauses = [c for c in policy.clauses if c.id in first]
        preds = _predict([c.text for c in clauses])
        agree = sum(p == first[c.id] for c, (p, _) in zip(clauses, preds, strict=True))
        assert agree / len(clauses) >= 0.9, f"{name}: {agree}/{len(clauses)}"


@pytest.mark.parametrize("doc", ["acme-support.md", "northwind-conduct.md", "contributor-covenant.md"])
def test_draft_spec_validates_and_cites_lines(tmp_path: Path, doc: str) -> None:
    out = tmp_path / "draft.yaml"
    text, stats = draft_spec_from_document(SPECS / doc, output=out)
    out.write_text(text, encoding="utf-8")
    result = compile_spec(out)
    assert result.ok, [str(d) for d in result.diagnostics]
    assert result.policy is not None and stats["rules"] == len(result.policy.rules) > 0
    source_lines = (SPECS / doc).read_text(encoding="utf-8").splitlines()
    draft = yaml.safe_load(text)
    for rule in draft["rules"]:
        prov = rule["provenance"]
        assert 0.5 <= prov["confidence"] <= 1.0
        first_word = rule["text"].split()[0]
        assert first_word in source_lines[prov["line"] - 1], (rule["text"], prov["line"])


def test_extraction_handles_empty_and_odd_text() -> None:
    assert extract_findings(["", "   ", "$$$ 100 %", "Must."]) is not None

"""The likelihood audit: intervals, per-rule figures, and a before/after on a tiny model."""

from __future__ import annotations

import json

import pytest

from rulealign.audit.likelihood import PairScore, SeqScore
from rulealign.audit.preference import audit_preferences, read_pairs, summarise
from rulealign.errors import RulealignError
from rulealign.stats import bootstrap_mean, wilson


def test_wilson_interval_matches_known_values() -> None:
    lo, hi = wilson(8, 10)
    assert abs(lo - 0.4902) < 1e-3 and abs(hi - 0.9433) < 1e-3
    assert wilson(0, 0) == (0.0, 1.0)
    lo, hi = wilson(0, 20)
    assert lo == 0.0 and 0.1 < hi < 0.2


def test_bootstrap_interval_contains_the_mean_and_is_deterministic() -> None:
    values = [0.5, 1.5, -0.2, 2.0, 0.9, 1.1]
    lo, hi = bootstrap_mean(values, seed=3)
    assert lo <= sum(values) / len(values) <= hi
    assert (lo, hi) == bootstrap_mean(values, seed=3)


def _pair(chosen: tuple[float, int], rejected: tuple[float, int]) -> PairScore:
    """A pair score from (summed log-probability, tokens) of each response."""
    return PairScore(SeqScore(*chosen), SeqScore(*rejected))


def test_summary_is_per_rule() -> None:
    rows = [{"rule": "a"}, {"rule": "a"}, {"rule": "b"}]
    rules, wins = summarise(rows, [_pair((m, 10), (0.0, 10)) for m in (1.0, -2.0, 3.0)])
    assert wins == 2
    a, b = rules
    assert (a.rule_id, a.n, a.prefers_compliant, a.mean_margin) == ("a", 2, 1, -0.5)
    assert (b.accuracy, b.mean_margin_normalised) == (1.0, 0.3)


def test_preference_is_per_token_not_summed() -> None:
    # a long compliant answer loses on the summed log-probability (more tokens, each costs)
    # but wins per token; a curt violation wins on the sum only
    long_compliant = _pair((-24.0, 40), (-20.0, 5))  # summed margin -4.0, per token +3.4
    curt_violation = _pair((-10.0, 10), (-11.5, 23))  # summed margin +1.5, per token -0.5
    rows = [{"rule": "a"}, {"rule": "a"}]
    [a], wins = summarise(rows, [long_compliant, curt_violation])
    assert (wins, a.prefers_compliant, a.mean_margin) == (1, 1, -1.25)
    assert long_compliant.prefers_chosen and not curt_violation.prefers_chosen


def test_bad_pairs_file_names_the_line(tmp_path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": [], "chosen": "a", "rejected": "b"}\n{"prompt": []}\n')
    with pytest.raises(RulealignError, match="line 2"):
        read_pairs(path)


@pytest.mark.slow
def test_training_moves_the_audit_per_rule(tiny_model, toy_data, tmp_path) -> None:
    from rulealign.train.config import load_train_config
    from rulealign.train.run import train

    lines = toy_data["pairs"].read_text().splitlines()
    tagged = tmp_path / "tagged.jsonl"
    tagged.write_text("".join(json.dumps({**json.loads(x), "meta": {"rule_ids": ["refund-cap"]}})
                              + "\n" for x in lines))
    before = audit_preferences(tagged, str(tiny_model))
    result = train(load_train_config(base={
        "method": "dpo", "model": str(tiny_model), "data": {"train": str(tagged)},
        "output_dir": str(tmp_path / "dpo"), "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
        "trl": {"learning_rate": 2e-3, "max_steps": 12, "per_device_train_batch_size": 4,
                "max_length": 128}}))
    after = audit_preferences(tagged, str(tiny_model), str(result.adapter))
    assert [r.rule_id for r in after.rules] == ["refund-cap"]
    assert after.rules[0].mean_margin > before.rules[0].mean_margin
    assert after.accuracy >= before.accuracy and after.n == before.n == len(lines)

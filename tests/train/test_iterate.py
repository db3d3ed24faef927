"""Iterative alignment turns the model's own violations into rejected answers."""

from __future__ import annotations

import json

from rulealign.llm import RawOutput
from rulealign.llm.fake import FakeBackend
from rulealign.train.iterate import IterItem, collect_failures, write_round_data
from rulealign.train.recipe import default_recipe

from .conftest import COMPLY_BAD, REFUSE


def _items(n: int) -> list[IterItem]:
    return [IterItem([{"role": "user", "content": f"Refund ${100 + i * 50}?"}], "refund-cap",
                     REFUSE, {"scenario": f"s{i}"}) for i in range(n)]


def test_violations_become_pairs_and_compliant_answers_do_not() -> None:
    fake = FakeBackend([COMPLY_BAD, REFUSE, RawOutput("", "error", code="RA309", message="x"),
                        COMPLY_BAD])
    judge = lambda item, answer: "refund the full" not in answer  # noqa: E731
    result = collect_failures(fake, _items(4), judge, adapter="runs/a/adapter", round_no=2)
    assert (result.answered, result.failed_generation, result.violations) == (4, 1, 2)
    assert abs(result.compliance - 1 / 3) < 1e-9
    assert [r.adapter for r in fake.requests] == ["runs/a/adapter"] * 4
    pair = result.new_pairs[0]
    assert pair["rejected"][0]["content"] == COMPLY_BAD
    assert pair["chosen"][0]["content"] == REFUSE
    assert pair["meta"] == {"scenario": "s0", "rule_ids": ["refund-cap"], "source": "iterative",
                            "round": 2, "generation_key": pair["meta"]["generation_key"]}


def test_next_round_data_keeps_the_original_pairs(tmp_path) -> None:
    base = tmp_path / "pairs.jsonl"
    base.write_text(json.dumps({"prompt": [], "chosen": [], "rejected": []}) + "\n")
    out = write_round_data(base, [{"prompt": [], "chosen": [], "rejected": [], "meta": {}}],
                           tmp_path / "round2.jsonl")
    assert len(out.read_text().splitlines()) == 2


def test_default_recipe_is_dpo_with_an_sft_loss_or_sft_then_dpo(tmp_path) -> None:
    from rulealign.train import recipe

    [dpo] = default_recipe(tmp_path / "data", tmp_path / "train")  # the measured default
    assert recipe.SFT_STEPS == 0 and dpo.method == "dpo" and dpo.init_adapter is None
    assert dpo.trl_args().loss_type == ["sigmoid", "sft"] and dpo.lora is not None
    assert dpo.trl_args().loss_weights == [1.0, recipe.SFT_WEIGHT]
    assert dpo.trl_args().learning_rate == recipe.PREF_LR and dpo.trl_args().max_steps == (
        recipe.PREF_STEPS)
    sft, dpo = default_recipe(tmp_path / "data", tmp_path / "train", sft_steps=16)
    assert sft.method == "sft" and sft.data.train.endswith("sft.train.jsonl")
    assert sft.trl_args().max_steps == 16
    assert dpo.method == "dpo" and dpo.init_adapter == str(tmp_path / "train" / "sft" / "adapter")
    [ipo] = default_recipe(tmp_path / "data", tmp_path / "train", method="ipo", pref_lr=1e-4,
                           sft_weight=0)
    assert ipo.trl_args().loss_type == ["ipo"] and ipo.trl_args().learning_rate == 1e-4
    # the SFT loss beside the pairwise one, weighted, on the preference step only
    s, rpo = default_recipe(tmp_path / "data", tmp_path / "train", sft_steps=8,
                            sft_weight=0.5)
    assert rpo.trl_args().loss_type == ["sigmoid", "sft"]
    assert rpo.trl_args().loss_weights == [1.0, 0.5]
    assert "loss_weights" not in s.trl
    [kto] = default_recipe(tmp_path / "data", tmp_path / "train", method="kto", sft_weight=1)
    assert "loss_weights" not in kto.trl


def test_rounds_train_on_the_failures_found_so_far(tiny_model, toy_data, tmp_path) -> None:
    import pytest

    from rulealign.train.config import load_train_config
    from rulealign.train.iterate import iterate

    pytest.importorskip("trl")
    base = load_train_config(base={
        "method": "dpo", "model": str(tiny_model), "data": {"train": str(toy_data["pairs"])},
        "output_dir": str(tmp_path / "iter"), "lora": {"r": 4, "alpha": 8},
        "trl": {"max_steps": 2, "per_device_train_batch_size": 4, "max_length": 128}})
    answers = iter([COMPLY_BAD, REFUSE, COMPLY_BAD, COMPLY_BAD, REFUSE, REFUSE])
    backends = []

    def backend_for() -> FakeBackend:
        backends.append(FakeBackend(responder=lambda chat, schema: next(answers)))
        return backends[-1]

    judge = lambda item, answer: answer == REFUSE  # noqa: E731
    results = iterate(base, _items(3), judge, backend_for, rounds=2)
    assert [r.violations for r in results] == [2, 1]
    round2 = (tmp_path / "iter" / "round2" / "pairs.jsonl").read_text().splitlines()
    assert len(round2) == 8 + 3  # the original pairs and every failure so far
    # round 2 generated with round 1's adapter
    assert backends[1].requests[0].adapter == str(tmp_path / "iter" / "round1" / "adapter")
    assert (tmp_path / "iter" / "round2" / "adapter" / "adapter_config.json").is_file()

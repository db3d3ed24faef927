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


def test_default_recipe_is_sft_then_ipo_from_the_sft_adapter(tmp_path) -> None:
    sft, ipo = default_recipe(tmp_path / "data", tmp_path / "train")
    assert sft.method == "sft" and sft.data.train.endswith("sft.train.jsonl")
    assert ipo.method == "ipo" and ipo.init_adapter == str(tmp_path / "train" / "sft" / "adapter")
    assert ipo.trl_args().loss_type == ["ipo"] and ipo.lora is not None

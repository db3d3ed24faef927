"""The default recipe: SFT on question/answer and compliant data, then DPO with the SFT model
as reference, LoRA on the default model, sized so a CPU run finishes in minutes.

The SFT step follows "Value Alignment from Unstructured Text" (SFT, then preference
optimisation). The sizes were chosen by measurement (``bench/bench_recipe.py``, results in
``bench/results/recipe.json``): on ACME's 169 held-out, human-written reply pairs the default
model's preference for the compliant reply moved +3 points (not significant) after 16 SFT
steps and 40 DPO steps at 2e-4, and +10.7 points (95% interval +4.7 to +17.2) after 32 SFT
steps and 40 DPO steps at 5e-4; IPO at 5e-5 for 10 steps (the former default) did not move it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rulealign.train.config import TrainConfig, load_train_config


def default_recipe(data_dir: str | Path, out_dir: str | Path, *, model: str = "default",
                   sft_steps: int = 32, pref_steps: int = 40, method: str = "dpo",
                   pref_lr: float = 5e-4, seed: int = 0, trl: dict[str, Any] | None = None
                   ) -> list[TrainConfig]:
    """Two configs: ``sft`` (on ``sft.train.jsonl``) then ``method`` (on
    ``pairs.train.jsonl``, or ``kto.train.jsonl`` for KTO) starting from the SFT adapter."""
    data, out = Path(data_dir), Path(out_dir)
    common = {"per_device_train_batch_size": 4, "max_length": 384, "save_steps": 10,
              **(trl or {})}
    sft = load_train_config(base={
        "method": "sft", "model": model, "seed": seed, "output_dir": str(out / "sft"),
        "data": {"train": str(data / "sft.train.jsonl")},
        "trl": {**common, "max_steps": sft_steps, "learning_rate": 2e-4}})
    pref_data = data / ("kto.train.jsonl" if method == "kto" else "pairs.train.jsonl")
    pref = load_train_config(base={
        "method": method, "model": model, "seed": seed, "output_dir": str(out / method),
        "init_adapter": str(out / "sft" / "adapter"), "data": {"train": str(pref_data)},
        "trl": {**common, "max_steps": pref_steps, "learning_rate": pref_lr, "beta": 0.1}})
    return [sft, pref]

"""Shared test setup: no model hub, paths to shipped specs and fixtures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
DATA = Path(__file__).resolve().parent / "data"
SHIPPED_SPECS = sorted(SPECS.glob("*.yaml"))


@pytest.fixture
def specs_dir() -> Path:
    return SPECS


@pytest.fixture
def data_dir() -> Path:
    return DATA


# -- a tiny random model (the default model's tokenizer) and toy preference data --------------

REFUSE = "I can't promise that refund: amounts over $100 need a supervisor's approval."
COMPLY_BAD = "Sure, I'll refund the full $500 right now."
PROMPTS = [f"Can you refund my ${n} order today?" for n in (150, 220, 310, 480, 900, 125, 640, 777)]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from rulealign.llm.checkpoint import prepare_default_model

    tok = AutoTokenizer.from_pretrained(str(prepare_default_model().path))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=512, tie_word_embeddings=True,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    out = tmp_path_factory.mktemp("tiny")
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def toy_data(tmp_path) -> dict[str, Path]:
    user = [[{"role": "user", "content": p}] for p in PROMPTS]
    sft = [{"messages": [*u, {"role": "assistant", "content": REFUSE}],
            "meta": {"rule": "refund-cap"}} for u in user]
    pairs = [{"prompt": u, "chosen": [{"role": "assistant", "content": REFUSE}],
              "rejected": [{"role": "assistant", "content": COMPLY_BAD}]} for u in user]
    kto = []
    for u in user:
        kto.append({"prompt": u, "completion": [{"role": "assistant", "content": REFUSE}],
                    "label": True})
        kto.append({"prompt": u, "completion": [{"role": "assistant", "content": COMPLY_BAD}],
                    "label": False})
    return {"sft": _write(tmp_path / "sft.jsonl", sft),
            "pairs": _write(tmp_path / "pairs.jsonl", pairs),
            "kto": _write(tmp_path / "kto.jsonl", kto)}


@pytest.fixture(scope="session")
def acme_judge(tmp_path_factory) -> Path:
    """A small judge for the ACME spec trained for a few steps: the real training and
    prediction code on a short budget (mechanics, not quality)."""
    from rulealign.compiler.loader import load_policy
    from rulealign.verdict.data import training_rows
    from rulealign.verdict.small_judge import JudgeSettings, train_judge

    policy = load_policy(SPECS / "acme-support.yaml")
    rows = training_rows(policy)[::12]
    out = tmp_path_factory.mktemp("judge") / "acme"
    train_judge(policy, rows, out, settings=JudgeSettings(epochs=1, group_size=16, max_length=64))
    return out

"""Each method trains a tiny random model a few steps and moves the right way; resume works."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rulealign.audit.likelihood import load_scoring_model, score_pairs, score_sequences
from rulealign.errors import RulealignError
from rulealign.train.config import load_train_config, parse_overrides
from rulealign.train.run import is_complete, train

from .conftest import COMPLY_BAD, PROMPTS, REFUSE

pytestmark = pytest.mark.slow

FAST = {"learning_rate": 2e-3, "per_device_train_batch_size": 4, "max_steps": 12,
        "save_steps": 6, "max_length": 128, "lr_scheduler_type": "constant"}


def _cfg(method: str, model: Path, data: Path, out: Path, **trl: object):
    return load_train_config(base={
        "method": method, "model": str(model), "data": {"train": str(data)},
        "output_dir": str(out), "lora": {"r": 8, "alpha": 16, "dropout": 0.0},
        "trl": {**FAST, **trl}})


def _margin(model: Path, adapter: Path | None) -> float:
    m, tok = load_scoring_model(str(model), str(adapter) if adapter else None)
    pairs = [([{"role": "user", "content": p}], REFUSE, COMPLY_BAD) for p in PROMPTS]
    return sum(s.margin for s in score_pairs(m, tok, pairs)) / len(pairs)


@pytest.mark.parametrize("method", ["dpo", "ipo", "kto", "orpo"])
def test_preference_methods_raise_the_compliant_margin(method, tiny_model, toy_data,
                                                       tmp_path) -> None:
    data = toy_data["kto" if method == "kto" else "pairs"]
    before = _margin(tiny_model, None)
    result = train(_cfg(method, tiny_model, data, tmp_path / method))
    after = _margin(tiny_model, result.adapter)
    assert after > before + 0.5, (before, after)
    assert (result.adapter / "adapter_config.json").is_file()
    assert result.metrics["train"]["train_loss"] > 0
    prov = result.provenance
    assert prov["method"] == method and prov["data"]["train"]["sha256"]
    assert prov["versions"]["trl"] and prov["base_model"]["path"] == str(tiny_model)


def test_sft_raises_the_likelihood_of_the_trained_answers(tiny_model, toy_data,
                                                         tmp_path) -> None:
    items = [([{"role": "user", "content": p}], REFUSE) for p in PROMPTS]
    m, tok = load_scoring_model(str(tiny_model))
    before = sum(s.logp for s in score_sequences(m, tok, items))
    result = train(_cfg("sft", tiny_model, toy_data["sft"], tmp_path / "sft"))
    m, tok = load_scoring_model(str(tiny_model), str(result.adapter))
    after = sum(s.logp for s in score_sequences(m, tok, items))
    assert after > before + 5.0  # summed log-probabilities (nats) of the trained answers
    losses = [e["loss"] for e in result.metrics["log_history"] if "loss" in e]
    assert losses[-1] < losses[0]


def test_preference_training_from_an_sft_adapter_uses_it_as_reference(tiny_model, toy_data,
                                                                     tmp_path) -> None:
    sft = train(_cfg("sft", tiny_model, toy_data["sft"], tmp_path / "sft", max_steps=4))
    cfg = load_train_config(base={
        "method": "ipo", "model": str(tiny_model), "init_adapter": str(sft.adapter),
        "data": {"train": str(toy_data["pairs"])}, "output_dir": str(tmp_path / "ipo"),
        "trl": {**FAST, "max_steps": 4}})
    result = train(cfg)
    assert result.provenance["init_adapter"]["path"] == str(sft.adapter)
    assert result.provenance["init_adapter"]["sha256"]


def test_finished_run_is_reused_and_a_changed_config_is_not(tiny_model, toy_data,
                                                            tmp_path) -> None:
    cfg = _cfg("dpo", tiny_model, toy_data["pairs"], tmp_path / "dpo", max_steps=2)
    first = train(cfg)
    assert not first.reused and is_complete(cfg)
    assert train(cfg).reused
    changed = _cfg("dpo", tiny_model, toy_data["pairs"], tmp_path / "dpo", max_steps=3)
    assert not is_complete(changed)


def test_resume_continues_from_the_last_checkpoint(tiny_model, toy_data, tmp_path) -> None:
    out = tmp_path / "run"
    stopped = _cfg("dpo", tiny_model, toy_data["pairs"], out, max_steps=6, save_steps=6)
    train(stopped)
    (out / "provenance.json").unlink()  # as if killed after the checkpoint was written
    full = _cfg("dpo", tiny_model, toy_data["pairs"], out, max_steps=12, save_steps=6)
    result = train(full)
    assert result.provenance["resumed_from"].endswith("checkpoint-6")
    steps = [e["step"] for e in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
             if "loss" in e]
    assert steps[-1] == 12 and 7 in steps
    assert result.metrics["log_history"][-1]["step"] == 12


def test_checkpoints_of_another_training_are_never_resumed(tiny_model, toy_data,
                                                          tmp_path) -> None:
    """A changed recipe in the same folder (here another learning rate) starts afresh: the
    old checkpoints were made by other settings, and resuming them would save the old
    model under the new config."""
    out = tmp_path / "run"
    old = _cfg("dpo", tiny_model, toy_data["pairs"], out, max_steps=4, save_steps=4)
    train(old)
    (out / "provenance.json").unlink()  # as if killed after its last checkpoint
    assert (out / "checkpoints" / "checkpoint-4").is_dir()
    new = old.model_copy(update={"trl": {**old.trl, "learning_rate": 1e-3, "max_steps": 2,
                                         "save_steps": 2}})
    result = train(new)
    assert result.provenance["resumed_from"] is None
    assert not (out / "checkpoints" / "checkpoint-4").exists()
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    steps = [e["step"] for e in result.metrics["log_history"] if "loss" in e]
    assert steps == [1, 2]


def test_unknown_keys_are_errors_with_a_suggestion(tmp_path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("method: dpo\ndata: {train: x.jsonl}\noutput_dir: out\n"
                    "trl: {learning_rte: 0.1}\n")
    with pytest.raises(RulealignError) as exc:
        load_train_config(path)
    assert exc.value.code == "RA501" and "did you mean 'learning_rate'" in str(exc.value)
    path.write_text("methd: dpo\n")
    with pytest.raises(RulealignError, match="did you mean 'method'"):
        load_train_config(path)


def test_command_line_overrides_are_trl_style(tmp_path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("method: sft\ndata: {train: x.jsonl}\noutput_dir: out\n")
    over = parse_overrides(["--learning_rate", "1e-4", "--method=ipo", "--beta", "0.2",
                            "--lora.r", "4", "--bf16"])
    cfg = load_train_config(path, over)
    assert cfg.method == "ipo" and cfg.lora is not None and cfg.lora.r == 4
    assert cfg.trl == {"learning_rate": 1e-4, "beta": 0.2, "bf16": True}
    args = cfg.trl_args()
    assert args.loss_type == ["ipo"] and args.beta == 0.2 and args.learning_rate == 1e-4
    with pytest.raises(RulealignError, match="did you mean 'beta'"):
        load_train_config(path, parse_overrides(["--method", "dpo", "--betta", "1"]))


def test_bad_training_data_names_the_line(tiny_model, tmp_path) -> None:
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"prompt": [], "chosen": [], "rejected": []}\n{"prompt": []}\n')
    with pytest.raises(RulealignError) as exc:
        train(_cfg("dpo", tiny_model, data, tmp_path / "o"))
    assert exc.value.code == "RA503" and "line 2 lacks chosen, rejected" in str(exc.value)


def test_accelerate_launch_runs_the_same_config(tiny_model, toy_data, tmp_path) -> None:
    import os
    import subprocess
    import sys

    import rulealign

    cfg = tmp_path / "ipo.yaml"
    cfg.write_text(json.dumps({
        "method": "ipo", "model": str(tiny_model), "data": {"train": str(toy_data["pairs"])},
        "output_dir": str(tmp_path / "out"), "lora": {"r": 4, "alpha": 8},
        "trl": {**FAST, "max_steps": 2}}))  # JSON is YAML
    launcher = Path(rulealign.__file__).parent / "train" / "accelerate" / "cpu.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(launcher),
         "-m", "rulealign.cli.main", "train", "run", str(cfg), "--max_steps", "3"],
        capture_output=True, text=True, timeout=600, env={**os.environ})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "out" / "adapter" / "adapter_config.json").is_file()
    prov = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert prov["config"]["trl"]["max_steps"] == 3
    assert "step 3/3" in proc.stderr


@pytest.mark.parametrize("name", ["sft.yaml", "ipo.yaml"])
def test_shipped_training_configs_are_valid(name) -> None:
    from tests.conftest import ROOT

    cfg = load_train_config(ROOT / "configs" / "train" / name)
    assert cfg.trl_args().max_steps == 40


def test_recipe_command_runs_sft_then_dpo_and_reuses_them(tiny_model, toy_data, tmp_path,
                                                          capsys) -> None:
    import shutil

    from rulealign.cli.main import main

    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(toy_data["sft"], data / "sft.train.jsonl")
    shutil.copy(toy_data["pairs"], data / "pairs.train.jsonl")
    argv = ["train", "recipe", str(data), "--out", str(tmp_path / "train"), "--model",
            str(tiny_model), "--sft-steps", "2", "--pref-steps", "2"]
    assert main(argv) == 0
    dpo = json.loads((tmp_path / "train" / "dpo" / "provenance.json").read_text())
    assert dpo["init_adapter"]["path"] == str(tmp_path / "train" / "sft" / "adapter")
    assert dpo["config"]["method"] == "dpo"
    from rulealign.train import recipe

    assert dpo["config"]["trl"]["learning_rate"] == recipe.PREF_LR
    assert dpo["config"]["trl"]["loss_type"] == ["sigmoid", "sft"]
    capsys.readouterr()
    assert main(argv) == 0
    assert capsys.readouterr().out.count("reused") == 2

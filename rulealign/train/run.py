"""Run one training config with TRL: SFT, DPO, IPO, KTO or ORPO, with LoRA by default.

The result folder holds ``adapter/`` (or the full model without LoRA), ``metrics.json``
(TRL's log history and final metrics), ``metrics.jsonl`` (written while it runs),
``provenance.json`` (exactly which config, data, base model and library versions made it)
and ``checkpoints/``. A run stopped at any point resumes from its last checkpoint; a run
whose config, data and base model are unchanged is not repeated.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rulealign.errors import RulealignError, diagnostic
from rulealign.fileio import atomic_write_text, read_jsonl
from rulealign.llm.checkpoint import file_sha256, resolve_model
from rulealign.train.config import TrainConfig, trl_classes

COLUMNS: dict[str, tuple[str, ...]] = {
    "sft": ("messages",),
    "dpo": ("prompt", "chosen", "rejected"),
    "ipo": ("prompt", "chosen", "rejected"),
    "orpo": ("prompt", "chosen", "rejected"),
    "kto": ("prompt", "completion", "label"),
}

Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class TrainResult:
    output_dir: Path
    adapter: Path
    metrics: dict[str, Any]
    provenance: dict[str, Any]
    reused: bool = False


def read_rows(path: str | Path, method: str) -> list[dict[str, Any]]:
    """JSONL rows with the method's columns (other columns, such as provenance, are kept
    in the file and dropped for training)."""
    p = Path(path)
    need = COLUMNS[method]
    rows = []
    for n, row in read_jsonl(p):
        missing = [c for c in need if c not in row]
        if missing:
            raise RulealignError(diagnostic(
                "RA503", file=str(p), line=n, path=str(p),
                reason=f"line {n} lacks {', '.join(missing)} (a {method} row needs "
                       f"{', '.join(need)})"))
        rows.append({c: row[c] for c in need})
    if not rows:
        raise RulealignError(diagnostic("RA503", path=str(p), reason="no rows"))
    return rows


def _config_hash(cfg: TrainConfig) -> str:
    data = cfg.model_dump(mode="json", exclude={"output_dir"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


#: TRL settings a run may change and still resume its checkpoints (more steps, other saves).
_RESUMABLE = ("max_steps", "num_train_epochs", "save_steps", "save_total_limit", "logging_steps")
CHECKPOINT_STAMP = "rulealign-checkpoints.json"


def _resume_identity(cfg: TrainConfig, expected: dict[str, Any]) -> dict[str, Any]:
    """What checkpoints must share with ``cfg`` to be resumed: the config apart from its
    length and saving, the base model, the initial adapter and the data."""
    conf = cfg.model_dump(mode="json", exclude={"output_dir"})
    conf["trl"] = {k: v for k, v in (conf.get("trl") or {}).items() if k not in _RESUMABLE}
    return json.loads(json.dumps({"config": conf, "base_model": expected["base_model"]["hash"],
                                  "init_adapter": expected["init_adapter"],
                                  "data": expected["data"]}, sort_keys=True, default=str))


def _checkpoint_to_resume(cfg: TrainConfig, expected: dict[str, Any], folder: Path) -> str | None:
    """The last checkpoint in ``folder`` if it was written by this training (same config
    apart from length, model, initial adapter and data); checkpoints of any other training
    are removed, never resumed, and the folder is stamped for this one."""
    import shutil

    from transformers.trainer_utils import get_last_checkpoint

    ident = _resume_identity(cfg, expected)
    last = None
    if folder.is_dir():
        try:
            same = json.loads((folder / CHECKPOINT_STAMP).read_text(encoding="utf-8")) == ident
        except (OSError, ValueError):
            same = False
        if same:
            last = get_last_checkpoint(str(folder))
        else:
            shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / CHECKPOINT_STAMP, json.dumps(ident, sort_keys=True))
    return last


def _versions() -> dict[str, str]:
    from rulealign import package_versions

    return package_versions(("rulealign", "torch", "transformers", "trl", "peft", "accelerate",
                             "datasets"), missing="not installed")


def _expected_provenance(cfg: TrainConfig) -> dict[str, Any]:
    ref = resolve_model(cfg.model)
    data = {"train": {"path": cfg.data.train, "sha256": file_sha256(Path(cfg.data.train))}}
    if cfg.data.eval:
        data["eval"] = {"path": cfg.data.eval, "sha256": file_sha256(Path(cfg.data.eval))}
    init = None
    if cfg.init_adapter:
        weights = sorted(Path(cfg.init_adapter).glob("*.safetensors"))
        init = {"path": cfg.init_adapter,
                "sha256": file_sha256(weights[0]) if weights else None}
    return {"config_hash": _config_hash(cfg), "config": cfg.model_dump(mode="json"),
            "base_model": {"id": ref.model_id, "hash": ref.hash, "path": str(ref.path)},
            "init_adapter": init, "data": data}


def is_complete(cfg: TrainConfig) -> bool:
    """True when the output folder holds a finished run of exactly this config and data."""
    prov = Path(cfg.output_dir) / "provenance.json"
    if not prov.is_file():
        return False
    try:
        done = json.loads(prov.read_text())
    except (OSError, ValueError):
        return False
    want = _expected_provenance(cfg)
    return all(done.get(k) == want[k] for k in ("config_hash", "base_model", "init_adapter",
                                                 "data"))


def _callback(out: Path, progress: Progress | None) -> Any:
    from transformers import TrainerCallback

    class MetricsCallback(TrainerCallback):
        """Appends each log line to metrics.jsonl and reports progress."""

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
                   **kw: Any) -> None:
            if not logs or not state.is_world_process_zero:
                return
            entry = {"step": state.global_step, "max_steps": state.max_steps, **logs}
            with (out / "metrics.jsonl").open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry) + "\n")
            if progress is not None:
                progress(entry)

    return MetricsCallback()


def train(cfg: TrainConfig, *, progress: Progress | None = None, force: bool = False) -> TrainResult:
    """Train as ``cfg`` says; resume from the last checkpoint; skip if already done."""
    out = Path(cfg.output_dir)
    adapter_dir = out / ("adapter" if cfg.lora else "model")
    if not force and is_complete(cfg):
        return TrainResult(out, adapter_dir, json.loads((out / "metrics.json").read_text()),
                           json.loads((out / "provenance.json").read_text()), reused=True)
    import datasets
    import torch
    import transformers
    from datasets import Dataset
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    expected = _expected_provenance(cfg)
    ref = resolve_model(cfg.model)
    rows = read_rows(cfg.data.train, cfg.method)
    eval_rows = read_rows(cfg.data.eval, cfg.method) if cfg.data.eval else None
    out.mkdir(parents=True, exist_ok=True)
    args = cfg.trl_args()
    tokenizer = transformers.AutoTokenizer.from_pretrained(
        str(ref.path), trust_remote_code=cfg.trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.bfloat16 if torch.cuda.is_available() and args.bf16 else torch.float32
    auto: Any = transformers.AutoModelForCausalLM
    model: Any = auto.from_pretrained(str(ref.path), dtype=dtype,
                                      trust_remote_code=cfg.trust_remote_code)
    if cfg.init_adapter:
        # Preference optimisation from an SFT adapter: fold it in; with a new LoRA on top
        # the reference (adapter disabled) is then exactly the SFT model.
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, cfg.init_adapter).merge_and_unload()
    peft_config = None
    if cfg.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha,
                                 lora_dropout=cfg.lora.dropout,
                                 target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM")
    kwargs: dict[str, Any] = {"model": model, "args": args, "processing_class": tokenizer,
                              "train_dataset": Dataset.from_list(rows),
                              "peft_config": peft_config,
                              "callbacks": [_callback(out, progress)]}
    if eval_rows:
        kwargs["eval_dataset"] = Dataset.from_list(eval_rows)
    trainer = trl_classes(cfg.method)[1](**kwargs)
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # progress goes through the callback above
    last = _checkpoint_to_resume(cfg, expected, Path(args.output_dir))
    started = time.time()
    try:
        result = trainer.train(resume_from_checkpoint=last)
    except (OSError, RuntimeError) as exc:  # full disk, out of memory: checkpoints stay
        raise RulealignError(diagnostic("RA504", reason=f"{type(exc).__name__}: {exc}")) from None
    trainer.save_model(str(adapter_dir))
    if not trainer.is_world_process_zero():  # one process writes the record
        return TrainResult(out, adapter_dir, {}, {})
    tokenizer.save_pretrained(str(adapter_dir))
    metrics = {"method": cfg.method, "train": result.metrics,
               "log_history": trainer.state.log_history,
               "train_rows": len(rows), "eval_rows": len(eval_rows or ())}
    if cfg.merge and cfg.lora:
        merged = trainer.model.merge_and_unload()
        merged.save_pretrained(str(out / "merged"))
        tokenizer.save_pretrained(str(out / "merged"))
    provenance = {**expected, "method": cfg.method, "resumed_from": last,
                  "started": started, "finished": time.time(), "versions": _versions(),
                  "device": "cuda" if torch.cuda.is_available() else "cpu",
                  "train_rows": len(rows), "output": str(adapter_dir)}
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2, default=str))
    atomic_write_text(out / "provenance.json", json.dumps(provenance, indent=2, default=str))
    return TrainResult(out, adapter_dir, metrics, provenance)


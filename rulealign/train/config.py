"""Training configs: YAML authored by people, mapped onto TRL's own config classes.

    method: ipo                  # sft | dpo | ipo | kto | orpo
    model: default               # or a local checkpoint folder
    init_adapter: runs/x/sft/adapter   # optional: start from (and refer to) an SFT adapter
    data: {train: runs/x/data/pairs.train.jsonl}
    output_dir: runs/x/ipo
    lora: {r: 16, alpha: 32, dropout: 0.05, target_modules: all-linear}
    merge: false                 # also write a merged model
    seed: 0
    trl:                         # any field of the method's TRL config class
      learning_rate: 5.0e-5
      num_train_epochs: 1
      per_device_train_batch_size: 4

Unknown keys are errors with a did-you-mean, at the top level and under ``trl:`` (checked
against the fields of ``SFTConfig``, ``DPOConfig``, ``KTOConfig`` or ``ORPOConfig``).
Command-line overrides are TRL-style: ``--learning_rate 1e-4 --method dpo``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rulealign.errors import RulealignError, diagnostic, did_you_mean

Method = Literal["sft", "dpo", "ipo", "kto", "orpo"]
METHODS: tuple[str, ...] = ("sft", "dpo", "ipo", "kto", "orpo")

#: TRL settings rulealign chooses unless the config says otherwise: small, CPU-friendly,
#: checkpoints for resuming, metrics at every few steps, nothing reported to a tracker.
DEFAULT_TRL: dict[str, Any] = {
    "num_train_epochs": 1, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1,
    "logging_steps": 1, "save_strategy": "steps", "save_steps": 25, "save_total_limit": 2,
    "report_to": "none", "disable_tqdm": True, "max_length": 512,
}
METHOD_TRL: dict[str, dict[str, Any]] = {
    "sft": {"learning_rate": 2e-4},
    "dpo": {"learning_rate": 5e-5, "beta": 0.1, "loss_type": ["sigmoid"]},
    "ipo": {"learning_rate": 5e-5, "beta": 0.1, "loss_type": ["ipo"]},
    "kto": {"learning_rate": 5e-5, "beta": 0.1},
    "orpo": {"learning_rate": 5e-5, "beta": 0.1},
}


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    r: int = Field(default=16, ge=1)
    alpha: int = Field(default=32, ge=1)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | str = "all-linear"


class DataPaths(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    train: str
    eval: str | None = None


class TrainConfig(BaseModel):
    """One training run, as a user writes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Method
    model: str = "default"
    init_adapter: str | None = None
    data: DataPaths
    output_dir: str
    lora: LoraSettings | None = Field(default_factory=LoraSettings)
    merge: bool = False
    seed: int = 0
    trust_remote_code: bool = False
    trl: dict[str, Any] = Field(default_factory=dict)

    def trl_class(self) -> type:
        return trl_config_class(self.method)

    def trl_args(self) -> Any:
        """The TRL config object: defaults, the method's defaults, then the user's."""
        cls = self.trl_class()
        names = {f.name for f in dataclasses.fields(cls)}
        merged = {**DEFAULT_TRL, **METHOD_TRL[self.method], **self.trl}
        merged = {k: v for k, v in merged.items() if k in names}
        merged.update(output_dir=str(Path(self.output_dir) / "checkpoints"), seed=self.seed)
        import torch

        if not torch.cuda.is_available():
            merged.setdefault("use_cpu", True)
            # TRL turns bf16 autocast on by default; on a CPU without bf16 instructions every
            # matmul then falls back to a slow reference GEMM (25x slower on AVX2: measured)
            from rulealign.llm.checkpoint import cpu_has_bf16

            if "bf16" in names and not cpu_has_bf16():
                merged.setdefault("bf16", False)
            # recomputing activations saves GPU memory; on a CPU it only costs time
            merged.setdefault("gradient_checkpointing", False)
        return cls(**merged)



def trl_classes(method: str) -> tuple[type, type]:
    """TRL's (config class, trainer class) for a method; IPO is DPO with ``loss_type``."""
    if method == "sft":
        from trl import SFTConfig, SFTTrainer

        return SFTConfig, SFTTrainer
    if method in ("dpo", "ipo"):
        from trl import DPOConfig, DPOTrainer

        return DPOConfig, DPOTrainer
    if method == "kto":
        from trl import KTOConfig, KTOTrainer

        return KTOConfig, KTOTrainer
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    return ORPOConfig, ORPOTrainer


def trl_config_class(method: str) -> type:
    return trl_classes(method)[0]


def _error(code: str, file: str | None, **fields: Any) -> RulealignError:
    return RulealignError(diagnostic(code, file=file, **fields))


def _coerce(text: str) -> Any:
    """A command-line value read as a YAML scalar ("1e-4" -> 0.0001, "true" -> True)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            return value
    return value


def parse_overrides(argv: Sequence[str]) -> dict[str, Any]:
    """``--key value`` pairs (or ``--key=value``) into a dict; a bare ``--flag`` is True."""
    out: dict[str, Any] = {}
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        if not item.startswith("--"):
            raise _error("RA501", None, key=item, where="command line", suggestion="")
        key = item[2:].replace("-", "_")
        if "=" in key:
            key, value = key.split("=", 1)
            out[key] = _coerce(value)
        elif i + 1 < len(items) and not items[i + 1].startswith("--"):
            out[key] = _coerce(items[i + 1])
            i += 1
        else:
            out[key] = True
        i += 1
    return out


_TOP = set(TrainConfig.model_fields)


def load_train_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                      *, base: dict[str, Any] | None = None) -> TrainConfig:
    """Read a YAML config (or start from ``base``), apply overrides, check every key."""
    file = str(path) if path else None
    raw: dict[str, Any] = dict(base or {})
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise _error("RA001", file, path=file, reason=exc.strerror or str(exc)) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise RulealignError(diagnostic(
                "RA102", file=file, line=mark.line + 1 if mark else None,
                col=mark.column + 1 if mark else None, reason=str(exc).splitlines()[0])) from None
        if not isinstance(loaded, dict):
            raise _error("RA109", file, reason="a training config is a mapping of keys")
        raw.update(loaded)
    raw["trl"] = dict(raw.get("trl") or {})
    method = str((overrides or {}).get("method", raw.get("method", "")))
    trl_names = _trl_names(method) if method in METHODS else set()
    for key, value in (overrides or {}).items():
        if key in _TOP:
            raw[key] = value
        elif "." in key and key.split(".", 1)[0] in ("lora", "data"):
            head, tail = key.split(".", 1)
            raw[head] = {**(raw.get(head) or {}), tail: value}
        elif key in trl_names:
            raw["trl"][key] = value
        else:
            raise _error("RA501", file, key=key, where="command-line overrides",
                         suggestion=did_you_mean(key, _TOP | trl_names))
    unknown = [k for k in raw if k not in _TOP]
    if unknown:
        raise _error("RA501", file, key=unknown[0], where="the training config",
                     suggestion=did_you_mean(unknown[0], _TOP))
    if method in METHODS:
        for key in raw["trl"]:
            if key not in trl_names:
                raise _error("RA501", file, key=key, where=f"trl: ({method})",
                             suggestion=did_you_mean(key, trl_names))
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise _error("RA502", file, field=where, reason=first["msg"]) from None


def _trl_names(method: str) -> set[str]:
    return {f.name for f in dataclasses.fields(trl_config_class(method))} - {"output_dir"}

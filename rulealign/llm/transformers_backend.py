"""The transformers backend, with outlines for constrained decoding.

Works wherever torch does. Structured output uses an outlines JSON-schema logits processor
(xgrammar underneath) passed to ``model.generate``, so the token counts and whether the
model stopped on its own (or ran into the budget) are known for every item. LoRA adapters
are loaded with peft.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rulealign.llm.base import Backend, Chat, Finish, RawOutput, Sampling, is_prefill
from rulealign.llm.checkpoint import ModelRef


class TransformersBackend(Backend):
    name = "transformers"
    supports_schema = True
    supports_lora = True

    def __init__(self, ref: ModelRef, *, device: str | None = None, dtype: str = "auto",
                 batch_size: int = 16, trust_remote_code: bool = False, **kw: Any) -> None:
        super().__init__(ref.model_id, ref.hash, **kw)
        import torch
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        self.ref = ref
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype: Any = (torch.float32 if self.device == "cpu" else torch.bfloat16) \
            if dtype == "auto" else getattr(torch, dtype)
        self.tokenizer: Any = transformers.AutoTokenizer.from_pretrained(
            ref.path, trust_remote_code=trust_remote_code)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        auto: Any = transformers.AutoModelForCausalLM
        self.base_model: Any = auto.from_pretrained(
            str(ref.path), dtype=torch_dtype, trust_remote_code=trust_remote_code).to(self.device)
        self.base_model.eval()
        self.batch_size = batch_size
        self._adapters: dict[str, Any] = {}
        self._processors: dict[str, Any] = {}
        self._outlines: Any = None

    def _model_for(self, adapter: str | None) -> Any:
        if adapter is None:
            return self.base_model
        key = str(Path(adapter).resolve())
        if key not in self._adapters:
            from peft import PeftModel

            self._adapters[key] = PeftModel.from_pretrained(self.base_model, key).eval()
        return self._adapters[key]

    def _processor(self, schema: dict[str, Any]) -> Any:
        import json

        from outlines import from_transformers
        from outlines.backends import get_json_schema_logits_processor

        text = json.dumps(schema, sort_keys=True)
        if text not in self._processors:
            if self._outlines is None:
                self._outlines = from_transformers(self.base_model, self.tokenizer)
            self._processors[text] = get_json_schema_logits_processor(None, self._outlines, text)
        return self._processors[text]

    def render(self, chat: Chat) -> str:
        if is_prefill(chat):  # continue the assistant's opening
            return str(self.tokenizer.apply_chat_template(chat, tokenize=False,
                                                          continue_final_message=True))
        return str(self.tokenizer.apply_chat_template(chat, tokenize=False,
                                                      add_generation_prompt=True))

    def _generate(self, prompts: Sequence[Chat], schema: dict[str, Any] | None,
                  sampling: Sampling, adapter: str | None) -> list[RawOutput]:
        import torch
        from transformers import LogitsProcessorList

        model = self._model_for(adapter)
        out: list[RawOutput] = []
        eos = self.tokenizer.eos_token_id
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start:start + self.batch_size]
            enc = self.tokenizer([self.render(c) for c in chunk], return_tensors="pt",
                                 padding=True, add_special_tokens=False).to(self.device)
            kwargs: dict[str, Any] = {"max_new_tokens": sampling.max_tokens,
                                      "pad_token_id": self.tokenizer.pad_token_id}
            if sampling.temperature > 0:
                kwargs.update(do_sample=True, temperature=sampling.temperature,
                              top_p=sampling.top_p)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if sampling.stop:
                kwargs["stop_strings"] = list(sampling.stop)
                kwargs["tokenizer"] = self.tokenizer
            if schema is not None:
                proc = self._processor(schema)
                proc.reset()
                kwargs["logits_processor"] = LogitsProcessorList([proc])
            torch.manual_seed(sampling.seed)
            with torch.inference_mode():
                ids = model.generate(**enc, **kwargs)
            new = ids[:, enc["input_ids"].shape[1]:]
            prompt_lens = enc["attention_mask"].sum(dim=1).tolist()
            for row, plen in zip(new.tolist(), prompt_lens, strict=True):
                # A row ends at EOS (then padding), at a stop string (then padding), or
                # runs the full budget.
                pad = self.tokenizer.pad_token_id
                tokens = row[:row.index(eos)] if eos in row else row
                while tokens and tokens[-1] == pad:
                    tokens = tokens[:-1]
                finish: Finish = "stop" if (eos in row or len(tokens) < len(row)) else "length"
                text = str(self.tokenizer.decode(tokens, skip_special_tokens=True))
                out.append(RawOutput(text, finish, int(plen), len(tokens)))
        return out

    def close(self) -> None:
        self._adapters.clear()
        self._processors.clear()

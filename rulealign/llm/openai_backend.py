"""Any OpenAI-compatible server: vLLM's, llama.cpp's, Ollama, hosted APIs.

Structured output is requested with the JSON-schema response format. Rate limits, timeouts
and dropped connections are retried with exponential backoff and jitter; what still fails
becomes a recorded failure of that item (RA309, RA310), never a crash of the batch. The key
comes only from an environment variable (``OPENAI_API_KEY`` unless told another name) and
is never logged: the log stores the base URL and the model name, nothing else of the client.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rulealign.errors import ModelError, diagnostic
from rulealign.llm.base import Backend, Chat, Finish, RawOutput, Sampling, prompt_seed

#: A local server needs no key; these hosts may go without one.
_LOCAL = ("127.0.0.1", "localhost", "[::1]")


class OpenAIBackend(Backend):
    name = "openai"
    supports_schema = True
    supports_lora = True  # a server started with LoRA modules serves them by name

    def __init__(self, model: str, base_url: str, *, api_key_env: str = "OPENAI_API_KEY",
                 timeout: float = 120.0, max_retries: int = 4, concurrency: int = 8,
                 backoff: float = 1.0, **kw: Any) -> None:
        super().__init__(model, f"openai:{base_url}:{model}", **kw)
        from openai import OpenAI

        key = os.environ.get(api_key_env)
        if not key:
            if not any(host in base_url for host in _LOCAL):
                raise ModelError(diagnostic("RA311", var=api_key_env))
            key = "not-needed"
        self.base_url = base_url
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.concurrency = concurrency
        # The client's own retries are off: retries here are counted and reported.
        self.client = OpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=0)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model_id, "base_url": self.base_url}

    def _one(self, chat: Chat, schema: dict[str, Any] | None, sampling: Sampling,
             adapter: str | None) -> RawOutput:
        import openai

        kwargs: dict[str, Any] = {
            "model": adapter or self.model_id, "messages": chat,
            "max_tokens": sampling.max_tokens, "temperature": sampling.temperature,
            "top_p": sampling.top_p, "seed": prompt_seed(sampling.seed, chat),
        }
        if sampling.stop:
            kwargs["stop"] = list(sampling.stop)
        if schema is not None:
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                "name": str(schema.get("title", "output")), "schema": schema, "strict": True}}
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = self.client.chat.completions.create(**kwargs)
                break
            except openai.APITimeoutError:
                if attempt > self.max_retries:
                    return RawOutput("", "error", code="RA310", message=diagnostic(
                        "RA310", url=self.base_url, timeout=self.timeout).message)
            except (openai.RateLimitError, openai.APIConnectionError,
                    openai.InternalServerError) as exc:
                if attempt > self.max_retries:
                    return RawOutput("", "error", code="RA309", message=diagnostic(
                        "RA309", url=self.base_url, attempts=attempt,
                        reason=_reason(exc)).message)
            except openai.APIStatusError as exc:  # 4xx other than 429: retrying will not help
                return RawOutput("", "error", code="RA309", message=diagnostic(
                    "RA309", url=self.base_url, attempts=attempt, reason=_reason(exc)).message)
            time.sleep(self.backoff * (2 ** (attempt - 1)) * (0.5 + random.random()))
        choice = resp.choices[0]
        usage = resp.usage
        ptok = usage.prompt_tokens if usage else 0
        ctok = usage.completion_tokens if usage else 0
        refusal = getattr(choice.message, "refusal", None)
        if refusal:
            return RawOutput(refusal, "refused", ptok, ctok, code="RA308",
                             message=diagnostic("RA308", reason=refusal[:200]).message)
        finish: Finish = "length" if choice.finish_reason == "length" else "stop"
        return RawOutput(choice.message.content or "", finish, ptok, ctok)

    def _generate(self, prompts: Sequence[Chat], schema: dict[str, Any] | None,
                  sampling: Sampling, adapter: str | None) -> list[RawOutput]:
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            return list(pool.map(lambda c: self._one(c, schema, sampling, adapter), prompts))

    def close(self) -> None:
        self.client.close()


def _reason(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    text = str(getattr(exc, "message", None) or exc)
    return f"HTTP {status}: {text[:300]}" if status else text[:300]

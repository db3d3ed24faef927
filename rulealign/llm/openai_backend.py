"""Any OpenAI-compatible server: vLLM's, llama.cpp's, Ollama, hosted APIs.

Structured output is requested with the JSON-schema response format. Rate limits, timeouts
and dropped connections are retried with exponential backoff and jitter; what still fails
becomes a recorded failure of that item (RA309, RA310), never a crash of the batch. The key
comes only from an environment variable (``OPENAI_API_KEY`` unless told another name) and
is never logged: the log stores the base URL (credentials and query values redacted) and the
model name, and every error text is redacted before it is stored or shown (a server may echo
the Authorization header). A key sent over plain ``http://`` to a host that is not this
machine draws a coded warning (RA313).
"""

from __future__ import annotations

import ipaddress
import os
import random
import re
import time
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import SplitResult, parse_qsl, quote, urlsplit, urlunsplit

from rulealign.errors import ModelError, RulealignWarning, diagnostic
from rulealign.llm.base import Backend, Chat, Finish, RawOutput, Sampling, is_prefill, prompt_seed

_REDACTED = "[redacted]"
#: Credentials in free text: an Authorization header, a bearer token, key=value pairs.
_SECRET_TEXT = re.compile(
    r"(?i)(\b(?:authorization|proxy-authorization)\b[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic)\s+)?"
    r"[^\s\"',}]+|(\bbearer\s+)[A-Za-z0-9._~+/=-]+"
    r"|(\b(?:api[-_]?key|access[-_]?token|token|secret|password|passwd)\b[\"']?\s*[:=]\s*[\"']?)"
    r"[^\s\"'&,}]+")


def is_local(url: str) -> bool:
    """Whether ``url`` names this machine (a loopback name or address), judged on the parsed
    host, not on a substring (``localhost.evil.example`` is not local)."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redact_url(url: str) -> str:
    """``url`` without credentials: the user info and every query value are replaced."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = f"{_REDACTED}@{netloc.rsplit('@', 1)[1]}"
        query = "&".join(f"{quote(k)}={_REDACTED}" for k, _ in
                         parse_qsl(parts.query, keep_blank_values=True))
        return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return _REDACTED


def _url_secrets(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    found = [v for _, v in parse_qsl(parts.query, keep_blank_values=True)]
    found += [p for p in (parts.username, parts.password) if p]
    return found


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each of ``secrets`` (4 characters or more) and anything that looks like
    a credential (an Authorization header, a bearer token, ``api-key=...``) replaced."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, _REDACTED)
    return _SECRET_TEXT.sub(lambda m: (m.group(1) or m.group(2) or m.group(3) or "") + _REDACTED,
                            text)


class OpenAIBackend(Backend):
    name = "openai"
    supports_schema = True
    supports_lora = True  # a server started with LoRA modules serves them by name

    def __init__(self, model: str, base_url: str, *, api_key_env: str = "OPENAI_API_KEY",
                 timeout: float = 120.0, max_retries: int = 4, concurrency: int = 8,
                 backoff: float = 1.0, **kw: Any) -> None:
        shown = redact_url(base_url)
        super().__init__(model, f"openai:{shown}:{model}", **kw)
        from openai import OpenAI

        key = os.environ.get(api_key_env)
        local = is_local(base_url)
        if not key:
            if not local:
                raise ModelError(diagnostic("RA311", var=api_key_env))
            key = "not-needed"
        elif not local and urlsplit(base_url).scheme.lower() != "https":
            warnings.warn(str(diagnostic("RA313", var=api_key_env, url=shown)),
                          RulealignWarning, stacklevel=2)
        self._secrets = [key, *_url_secrets(base_url)] if key != "not-needed" \
            else _url_secrets(base_url)
        self.base_url = shown  # what logs, errors and reports show
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.concurrency = concurrency
        # The client's own retries are off: retries here are counted and reported.
        self.client = OpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=0)

    def _reason(self, exc: Exception) -> str:
        return redact(_reason(exc), self._secrets)

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
        if is_prefill(chat):  # vLLM's and similar servers' way to continue an opening
            kwargs["extra_body"] = {"continue_final_message": True,
                                    "add_generation_prompt": False}
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
                        reason=self._reason(exc)).message)
            except openai.APIStatusError as exc:  # 4xx other than 429: retrying will not help
                return RawOutput("", "error", code="RA309", message=diagnostic(
                    "RA309", url=self.base_url, attempts=attempt,
                    reason=self._reason(exc)).message)
            time.sleep(self.backoff * (2 ** (attempt - 1)) * (0.5 + random.random()))
        choice = resp.choices[0]
        usage = resp.usage
        ptok = usage.prompt_tokens if usage else 0
        ctok = usage.completion_tokens if usage else 0
        refusal = getattr(choice.message, "refusal", None)
        if refusal:
            return RawOutput(refusal, "refused", ptok, ctok, code="RA308", message=diagnostic(
                "RA308", reason=redact(refusal[:200], self._secrets)).message)
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

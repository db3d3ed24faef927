"""The one generation interface every backend implements.

A backend turns a batch of chat prompts into one :class:`Generation` per prompt. Backends
only produce raw text and a finish reason (:meth:`Backend._generate`); this module does
the rest in one place for all of them: the token budget derived from the output type's
JSON schema, validation into pydantic objects, the outcome of each item (``ok``,
``truncated``, ``invalid``, ``refused``, ``error``), the generation log and its cache.

A failed item is a recorded failure with a code and a message, never ``None`` in place
of a result and never an exception that loses the rest of the batch.

A chat whose last message is the assistant's is a *prefill*: the model continues that
message (the text returned is the continuation only). It is how a reply's stance is fixed
by construction: the opening commits to it, the model writes the rest.
"""

from __future__ import annotations

import hashlib
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rulealign.errors import diagnostic
from rulealign.llm.budget import schema_token_budget

if TYPE_CHECKING:
    from rulealign.llm.log import GenerationLog

Message = dict[str, str]
Chat = list[Message]
Outcome = Literal["ok", "truncated", "invalid", "refused", "error"]
Finish = Literal["stop", "length", "refused", "error"]

#: Token budget for free text when the caller gives none.
DEFAULT_TEXT_TOKENS = 256


class Sampling(BaseModel):
    """Sampling settings for one call; ``max_tokens=None`` means derive it from the schema."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(default=0.0, ge=0.0, le=5.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1)
    seed: int = 0
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class RawOutput:
    """What a backend returns for one prompt, before validation."""

    text: str
    finish: Finish
    prompt_tokens: int = 0
    completion_tokens: int = 0
    code: str | None = None       # set when finish is "error" or "refused"
    message: str | None = None


@dataclass
class Generation:
    """The result for one prompt: a value (when ``outcome == "ok"``) or a coded failure."""

    index: int
    text: str
    outcome: Outcome
    value: Any = None
    code: str | None = None
    message: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cached: bool = False
    key: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass
class BatchStats:
    """Counts over everything a backend generated since it was made."""

    items: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    completion_tokens: int = 0
    cached: int = 0

    def add(self, gen: Generation) -> None:
        self.items += 1
        self.outcomes[gen.outcome] = self.outcomes.get(gen.outcome, 0) + 1
        self.completion_tokens += gen.completion_tokens
        self.cached += gen.cached


def _sha(obj: object) -> str:
    data = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def adapter_hash(adapter: str | Path) -> str:
    """Content hash of a LoRA adapter folder (its config and weights), so a retrained adapter
    in the same folder is never mistaken for the old one."""
    folder = Path(adapter)
    h = hashlib.sha256()
    for f in sorted(folder.glob("adapter_*")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16] if h.digest() != hashlib.sha256().digest() else str(folder)


def output_schema(output_type: type[BaseModel] | None) -> dict[str, Any] | None:
    return None if output_type is None else output_type.model_json_schema()


def is_prefill(chat: Chat) -> bool:
    """Whether the model is to continue the chat's last (assistant) message."""
    return bool(chat) and chat[-1].get("role") == "assistant"


def prompt_seed(seed: int, chat: Chat) -> int:
    """A per-prompt seed: the same prompt and seed sample the same way in any batch."""
    return int(_sha([seed, chat])[:8], 16)


class Backend(ABC):
    """A model behind one method. Subclasses set the capability flags and implement
    :meth:`_generate`; :meth:`generate` is the same for all of them."""

    name: ClassVar[str]
    supports_schema: ClassVar[bool] = True
    supports_lora: ClassVar[bool] = False

    def __init__(self, model_id: str, model_hash: str, log: GenerationLog | None = None,
                 use_cache: bool = True) -> None:
        self.model_id = model_id
        self.model_hash = model_hash
        self.log = log
        self.use_cache = use_cache
        self.stats = BatchStats()

    # -- to implement ----------------------------------------------------------------------
    @abstractmethod
    def _generate(self, prompts: Sequence[Chat], schema: dict[str, Any] | None,
                  sampling: Sampling, adapter: str | None) -> list[RawOutput]:
        """One raw output per prompt, in order. ``sampling.max_tokens`` is always set."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the engine, its processes and memory."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the interface -----------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model_id, "model_hash": self.model_hash}

    def generate(self, prompts: Sequence[Chat], output_type: type[BaseModel] | None = None,
                 sampling: Sampling | None = None, *, adapter: str | None = None,
                 constrain: bool = True, tag: str = "") -> list[Generation]:
        """Generate for a batch of chats; one :class:`Generation` per prompt, in order.

        ``output_type`` constrains decoding to its JSON schema (where the backend supports
        it) and validates the result into an instance. ``adapter`` names a LoRA adapter
        folder (backends with ``supports_lora``). ``tag`` is stored in the log (which agent
        or stage asked), for provenance. ``constrain=False`` asks without constrained
        decoding and only validates the answer (to measure what constraints buy).
        """
        sampling = sampling or Sampling()
        schema = output_schema(output_type)
        budget = sampling.max_tokens or (schema_token_budget(schema) if schema
                                         else DEFAULT_TEXT_TOKENS)
        sampling = sampling.model_copy(update={"max_tokens": budget})
        if adapter is not None and not self.supports_lora:
            raise ValueError(f"backend {self.name!r} cannot load LoRA adapters")
        settings = sampling.model_dump(mode="json")
        adapter_key = adapter and adapter_hash(adapter)   # the weights, not the folder name
        keys = [_sha([self.model_hash, adapter_key, settings, chat, schema, constrain])
                for chat in prompts]

        results: dict[int, Generation] = {}
        if self.log is not None and self.use_cache:
            hits = self.log.cached(keys)
            for i, key in enumerate(keys):
                if key in hits:
                    results[i] = self._finish(i, key, hits[key], output_type, budget,
                                              latency=0.0, cached=True)
        todo = [i for i in range(len(prompts)) if i not in results]
        if todo:
            start = time.perf_counter()
            try:
                raws = self._generate([prompts[i] for i in todo],
                                      schema if constrain else None, sampling, adapter)
            except Exception as exc:  # a backend crash fails this batch's items, recorded
                message = f"{type(exc).__name__}: {exc}"
                # (servers' connection errors are retried and coded by the openai backend)
                raws = [RawOutput("", "error", code="RA305", message=message)] * len(todo)
            if len(raws) != len(todo):
                raise RuntimeError(f"{self.name} returned {len(raws)} outputs for {len(todo)}")
            latency = (time.perf_counter() - start) / len(todo)
            for i, raw in zip(todo, raws, strict=True):
                results[i] = self._finish(i, keys[i], raw, output_type, budget,
                                          latency=latency, cached=False)
        ordered = [results[i] for i in range(len(prompts))]
        for gen in ordered:
            self.stats.add(gen)
        if self.log is not None:
            self.log.record(self, ordered, prompts, settings, schema, output_type, adapter,
                            tag=tag)
        return ordered

    def _finish(self, index: int, key: str, raw: RawOutput, output_type: type[BaseModel] | None,
                budget: int, *, latency: float, cached: bool) -> Generation:
        gen = Generation(index=index, text=raw.text, outcome="ok", key=key,
                         prompt_tokens=raw.prompt_tokens, completion_tokens=raw.completion_tokens,
                         latency_s=latency, cached=cached)
        if raw.finish in ("error", "refused"):
            gen.outcome = "error" if raw.finish == "error" else "refused"
            gen.code = raw.code or ("RA305" if raw.finish == "error" else "RA308")
            gen.message = raw.message or ""
            return gen
        if output_type is None:
            if raw.finish == "length":
                gen.outcome, gen.code = "truncated", "RA306"
                gen.message = diagnostic("RA306", max_tokens=budget).message
            else:
                gen.value = raw.text
            return gen
        try:
            gen.value = output_type.model_validate_json(raw.text)
        except ValidationError as exc:
            if raw.finish == "length":
                gen.outcome, gen.code = "truncated", "RA306"
                gen.message = diagnostic("RA306", max_tokens=budget).message
            else:
                gen.outcome, gen.code = "invalid", "RA307"
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first.get("loc", ())) or "output"
                gen.message = diagnostic("RA307", type=output_type.__name__,
                                         reason=f"{where}: {first['msg']}").message
        return gen

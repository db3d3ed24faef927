"""A scripted backend for tests of orchestration: it replays replies and records requests.

Replies are strings (the raw text a model would produce) or :class:`RawOutput` objects (to
script truncations, refusals and errors), or a function of the chat that returns either.
Running out of replies is a recorded RA312 failure for that item, not a crash.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from rulealign.errors import diagnostic
from rulealign.llm.base import Backend, Chat, RawOutput, Sampling

Reply = str | RawOutput | BaseModel
Responder = Callable[[Chat, "dict[str, Any] | None"], Reply]


@dataclass(frozen=True)
class Request:
    chat: Chat
    schema: dict[str, Any] | None
    sampling: Sampling
    adapter: str | None


class FakeBackend(Backend):
    name = "fake"
    supports_schema = True
    supports_lora = True

    def __init__(self, replies: Sequence[Reply] = (), *, responder: Responder | None = None,
                 model_id: str = "fake-model", **kw: Any) -> None:
        super().__init__(model_id, f"fake:{model_id}", **kw)
        self._queue: deque[Reply] = deque(replies)
        self.responder = responder
        self.requests: list[Request] = []
        #: The adapter of the call being answered (a responder can read it: the "model with
        #: the adapter" then answers differently, as a trained one would).
        self.active_adapter: str | None = None

    def enqueue(self, *replies: Reply) -> FakeBackend:
        self._queue.extend(replies)
        return self

    def _generate(self, prompts: Sequence[Chat], schema: dict[str, Any] | None,
                  sampling: Sampling, adapter: str | None) -> list[RawOutput]:
        out = []
        self.active_adapter = adapter
        for chat in prompts:
            self.requests.append(Request(chat, schema, sampling, adapter))
            if self._queue:
                reply: Reply = self._queue.popleft()
            elif self.responder is not None:
                reply = self.responder(chat, schema)
            else:
                out.append(RawOutput("", "error", code="RA312", message=diagnostic(
                    "RA312", asked=len(self.requests), scripted=len(self.requests) - 1).message))
                continue
            if isinstance(reply, BaseModel):
                reply = reply.model_dump_json()
            out.append(reply if isinstance(reply, RawOutput) else
                       RawOutput(reply, "stop", sum(len(m["content"]) for m in chat) // 4,
                                 max(1, len(reply) // 4)))
        return out

"""A scripted stand-in for the agents' model (orchestration tests only) and a runner that a
test can kill with SIGKILL."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from rulealign.llm.fake import FakeBackend

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "acme-support.yaml"


def _tag(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def respond(chat: list[dict[str, str]], schema: dict[str, Any] | None) -> str:
    title = (schema or {}).get("title", "")
    system, user = chat[0]["content"], chat[-1]["content"]
    if title == "UserTurn":
        situation = user.split("must state this:", 1)[1].split("\n", 1)[0].strip()
        return json.dumps({"user_prompt": f"Hello, I have a question ({_tag(user)}): "
                                          f"{situation[:200]}"})
    if title == "Judgement":
        verdict = "violates" if "[bad]" in user.split("Assistant:", 1)[1] else "complies"
        clause = user.split("(clause ", 1)[1].split(")", 1)[0].split(",")[0]
        return json.dumps({"verdict": verdict, "cited_clause": clause,
                           "rationale": "scripted judgement"})
    if title in ("Question", "Answer"):
        clause = user.split("Policy text:\n", 1)[1].split("\n\n", 1)[0]
        if title == "Question":
            return json.dumps({"question": f"What does the policy say about "
                                           f"{' '.join(clause.split()[:6])} ({_tag(user)})?"})
        return json.dumps({"answer": f"The policy says: {' '.join(clause.split()[:30])}"})
    if chat[-1]["role"] == "assistant":  # a reply writer continues its opening
        asked = chat[-2]["content"]
        if system.startswith("You are a helpful assistant. Follow"):  # the complier
            return f" Here is how we can help you with that today [ok] {_tag(asked)}."
        return f" Done right away, whatever you want [bad] {_tag(asked)}."
    raise AssertionError(f"unscripted request: {chat}")


class ScriptedJudge:
    """A stand-in for the trained small judge, for orchestration tests only: a reply marked
    "[bad]" violates, any other complies (the scripted agents mark their replies so)."""

    name = "scripted-judge"
    unsure = 0.5
    path = Path("scripted-judge")
    def __init__(self) -> None:
        self.meta: dict[str, Any] = {"key": "scripted", "rows": 0, "seconds": 0.0}
        self.asked: list[Any] = []

    def check_policy(self, policy: Any) -> None:
        return None

    def judge(self, cases: list[Any]) -> list[tuple[str, float]]:
        self.asked.extend(cases)
        return [("violates" if "[bad]" in c.reply else "complies", 0.9) for c in cases]


def fake_backend(delay: float = 0.0) -> FakeBackend:
    def slow(chat: list[dict[str, str]], schema: dict[str, Any] | None) -> str:
        time.sleep(delay)
        return respond(chat, schema)

    return FakeBackend(responder=slow if delay else respond)


def main() -> None:  # python -m tests.synth.helpers STORE DELAY
    from rulealign.compiler.loader import load_policy
    from rulealign.kg.build import build_graph
    from rulealign.synth.pipeline import SynthSettings, synthesize
    from rulealign.synth.store import SynthStore

    policy = load_policy(SPEC)
    graph = build_graph(policy, check=False)
    store = SynthStore(sys.argv[1])
    synthesize(policy, graph.conflicts, fake_backend(float(sys.argv[2])), store,
               SynthSettings(per_rule=2, batch=4, qa_per_clause=0, model_writes=True,
                             rules=tuple(r.id for r in policy.rules[:8])))


if __name__ == "__main__":
    main()

"""Iterative alignment: the model's own failures become the next round's rejected answers.

One round: the current model (base plus the latest adapter) answers training-side scenario
prompts; each answer is judged against its rule; every answer judged a violation becomes a
new pair (the reference compliant answer as chosen, the model's own answer as rejected).
The next round trains on the original pairs plus these, starting from the latest adapter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rulealign.fileio import atomic_write_text
from rulealign.llm.base import Backend, Chat, Sampling
from rulealign.train.config import TrainConfig

Judge = Callable[["IterItem", str], bool]  # True when the answer complies with the item's rule


@dataclass(frozen=True)
class IterItem:
    prompt: Chat
    rule_id: str
    chosen: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RoundResult:
    round: int
    answered: int
    failed_generation: int
    violations: int
    new_pairs: list[dict[str, Any]]

    @property
    def compliance(self) -> float:
        judged = self.answered - self.failed_generation
        return 1.0 - self.violations / judged if judged else 0.0


def collect_failures(backend: Backend, items: Sequence[IterItem], judge: Judge, *,
                     adapter: str | None = None, round_no: int = 1,
                     sampling: Sampling | None = None) -> RoundResult:
    """Generate, judge, and turn violations into pairs (conversational TRL format)."""
    gens = backend.generate([it.prompt for it in items], None,
                            sampling or Sampling(temperature=0.7, seed=round_no, max_tokens=160),
                            adapter=adapter, tag=f"iterate-r{round_no}")
    pairs = []
    failed = violations = 0
    for item, gen in zip(items, gens, strict=True):
        if gen.outcome not in ("ok", "truncated"):
            failed += 1
            continue
        if judge(item, gen.text):
            continue
        violations += 1
        meta: dict[str, Any] = {**item.meta, "rule_ids": [item.rule_id], "source": "iterative",
                                "round": round_no, "generation_key": gen.key}
        pairs.append({"prompt": item.prompt,
                      "chosen": [{"role": "assistant", "content": item.chosen}],
                      "rejected": [{"role": "assistant", "content": gen.text}],
                      "meta": meta})
    return RoundResult(round_no, len(items), failed, violations, pairs)


def write_round_data(base_pairs: Path, new_pairs: Sequence[dict[str, Any]], out: Path) -> Path:
    """The next round's training file: the original pairs followed by the new ones."""
    lines = base_pairs.read_text(encoding="utf-8").splitlines()
    lines += [json.dumps(p, ensure_ascii=False) for p in new_pairs]
    atomic_write_text(out, "\n".join(line for line in lines if line.strip()) + "\n")
    return out


def iterate(base: TrainConfig, items: Sequence[IterItem], judge: Judge,
            backend_for: Callable[[], Backend], *, rounds: int = 2,
            progress: Callable[[RoundResult], None] | None = None) -> list[RoundResult]:
    """Run ``rounds`` of generate -> judge -> add failures -> train.

    ``base`` is a preference config whose ``init_adapter`` (if any) is the starting model;
    round ``n`` trains into ``<output_dir>/round<n>`` on the original pairs plus every failure
    found so far, starting from the previous round's adapter. ``backend_for`` builds a
    backend that can load LoRA adapters (vLLM with ``enable_lora`` or transformers).
    """
    from rulealign.train.run import train

    results: list[RoundResult] = []
    adapter = base.init_adapter
    data = Path(base.data.train)
    found: list[dict[str, Any]] = []
    out_root = Path(base.output_dir)
    for n in range(1, rounds + 1):
        with backend_for() as backend:
            result = collect_failures(backend, items, judge, adapter=adapter, round_no=n)
        results.append(result)
        if progress is not None:
            progress(result)
        if not result.new_pairs and n > 1:
            break  # nothing left to learn from
        found.extend(result.new_pairs)
        round_data = write_round_data(data, found, out_root / f"round{n}" / "pairs.jsonl")
        cfg = base.model_copy(update={
            "init_adapter": adapter, "output_dir": str(out_root / f"round{n}"),
            "data": base.data.model_copy(update={"train": str(round_data)})})
        adapter = str(train(cfg).adapter)
    return results

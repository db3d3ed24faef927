"""Scale-out on an existing engine: Ray actors, each holding a backend, synthesize shards of
the rules; the driver merges their stores into one and assembles the result.

    import ray
    ray.init()                      # or ray.init(address="auto") on a cluster
    result = synthesize_ray(policy, conflicts, lambda: LazyBackend("vllm", "default"),
                            "runs/acme/synth/synth.sqlite", SynthSettings(per_rule=4))

Each actor runs the ordinary pipeline (:func:`rulealign.synth.pipeline.synthesize`) on its
rules with a store of its own, and ships the store's rows back through Ray's object store, so
actors on other machines need no shared disk. The driver merges the rows (keyed by content:
nothing is duplicated) and runs the pipeline once more over the merged store, where every
agent output is a cache hit: the result is exactly what one process would assemble from the
same outputs. A shard that already finished in an earlier call is not sent again: its items
are in the driver's store, so its actor asks the model nothing.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rulealign.compiler.models import Policy
from rulealign.kg.conflicts import Conflict
from rulealign.llm.base import Backend
from rulealign.synth.pipeline import SynthResult, SynthSettings, synthesize
from rulealign.synth.store import SynthStore

BackendFactory = Callable[[], Backend]


class ShardWorker:
    """A Ray actor: one backend, one scratch store; synthesizes the rules it is given."""

    def __init__(self, factory: BackendFactory) -> None:
        self.backend = factory()
        self.tmp = tempfile.TemporaryDirectory(prefix="rulealign-shard-")

    def run(self, policy: Policy, conflicts: Sequence[Conflict], settings: SynthSettings,
            seed_rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, Any]:
        store = SynthStore(Path(self.tmp.name) / f"shard-{time.monotonic_ns()}.sqlite")
        store.merge(seed_rows)        # what the driver already has: never asked again
        t0 = time.perf_counter()
        res = synthesize(policy, conflicts, self.backend, store, settings)
        rows = store.dump()
        store.close()
        return {"rows": rows, "generated": res.generated, "seconds": time.perf_counter() - t0,
                "agent_seconds": res.agent_seconds, "agent_calls": dict(res.agent_calls),
                "rules": list(settings.rules or ())}

    def close(self) -> None:
        self.backend.close()
        self.tmp.cleanup()


def shard_rules(policy: Policy, settings: SynthSettings, shards: int) -> list[tuple[str, ...]]:
    rules = [r.id for r in policy.rules if settings.rules is None or r.id in settings.rules]
    groups = [tuple(rules[i::shards]) for i in range(max(1, shards))]
    return [g for g in groups if g]


def synthesize_ray(policy: Policy, conflicts: Sequence[Conflict], factory: BackendFactory,
                   store_path: str | Path, settings: SynthSettings | None = None, *,
                   shards: int | None = None, cpus_per_actor: float = 1.0,
                   driver_backend: Backend | None = None) -> SynthResult:
    """Synthesize with one Ray actor per shard of rules (Ray must be initialised, or a local
    cluster is started). ``factory`` builds each actor's backend; it must be picklable."""
    import ray

    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    s = settings or SynthSettings()
    n = shards or max(1, int(ray.available_resources().get("CPU", 1) // cpus_per_actor))
    groups = shard_rules(policy, s, n)
    store = SynthStore(store_path)
    seed = store.dump()
    actor_cls: Any = ray.remote(num_cpus=cpus_per_actor)(ShardWorker)
    actors: list[Any] = [actor_cls.remote(factory) for _ in groups]
    t0 = time.perf_counter()
    try:
        futures = [a.run.remote(policy, conflicts, replace(s, rules=g), seed)
                   for a, g in zip(actors, groups, strict=True)]
        shards_out = []
        pending = list(futures)
        while pending:  # merge each shard's rows as soon as it finishes
            done, pending = ray.wait(pending, num_returns=1)
            out = ray.get(done[0])
            store.merge(out["rows"])
            shards_out.append(out)
    finally:
        for a in actors:
            with contextlib.suppress(Exception):  # an actor that died has nothing to close
                ray.get(a.close.remote())
            ray.kill(a)
    backend = driver_backend or factory()
    try:
        result = synthesize(policy, conflicts, backend, store, s)
    finally:
        if driver_backend is None:
            backend.close()
    result.generated = sum(o["generated"] for o in shards_out) + result.generated
    for o in shards_out:
        for k, v in o["agent_seconds"].items():
            result.agent_seconds[k] = result.agent_seconds.get(k, 0.0) + v
        result.agent_calls.update(o["agent_calls"])
    result.seconds = time.perf_counter() - t0
    return result

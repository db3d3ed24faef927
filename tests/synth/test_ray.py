"""The Ray executor on a local Ray cluster (CPU): shards of rules to actors each holding a
backend; the merged result equals a single-process run over the same scripted model."""

from __future__ import annotations

import pytest
import ray

from rulealign.compiler.loader import load_policy
from rulealign.kg.build import build_graph
from rulealign.synth.pipeline import SynthSettings, synthesize
from rulealign.synth.store import SynthStore
from tests.synth.helpers import SPEC, fake_backend


@pytest.fixture(scope="module")
def cluster():
    import os

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")   # a throwaway local cluster
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield
    ray.shutdown()


def test_ray_shards_give_the_single_process_result(cluster, tmp_path) -> None:
    from rulealign.synth.distributed import shard_rules, synthesize_ray

    policy = load_policy(SPEC)
    conflicts = build_graph(policy, check=False).conflicts
    # no coverage top-up here: which cells need one depends on the planner's memory, which
    # each shard builds from its own rules (a legitimate difference from one process)
    settings = SynthSettings(per_rule=2, batch=8, qa_per_clause=1, topup=0, model_writes=True,
                             rules=tuple(r.id for r in policy.rules[:8]))
    assert len(shard_rules(policy, settings, 2)) == 2
    driver = fake_backend()
    result = synthesize_ray(policy, conflicts, fake_backend, tmp_path / "ray.sqlite", settings,
                            shards=2, driver_backend=driver)
    assert driver.requests == []              # every output came from the actors
    assert result.generated > 0 and result.agent_calls["attacker"] > 0
    single = synthesize(policy, conflicts, fake_backend(), SynthStore(tmp_path / "one.sqlite"),
                        settings)
    # the same items; an audit prompt's id also names the attacker's strategy, which the
    # planner's memory picks from what was accepted before, so it may differ per shard layout
    def ids(res):
        return sorted((e.kind, e.scenario.id if e.kind == "prompt" else e.id)
                      for e in res.examples)

    assert ids(result) == ids(single)
    assert len(result.pairs) == len(single.pairs) > 0
    # a second call finds every shard's work in the store: the actors ask nothing
    again = synthesize_ray(policy, conflicts, fake_backend, tmp_path / "ray.sqlite", settings,
                           shards=2, driver_backend=fake_backend())
    assert again.generated == 0

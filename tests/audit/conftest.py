"""Fixtures shared by the audit tests: the ACME spec and a synth run made with the scripted
agents (tests/synth/helpers.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rulealign.compiler.loader import load_policy
from rulealign.kg.build import build_graph
from rulealign.synth.export import coverage, export
from rulealign.synth.pipeline import SynthSettings, synthesize
from rulealign.synth.store import SynthStore
from tests.synth.helpers import SPEC


@pytest.fixture(scope="module")
def acme():
    policy = load_policy(SPEC)
    return policy, build_graph(policy, check=False).conflicts


@pytest.fixture(scope="module")
def synth_dir(acme, tmp_path_factory) -> Path:
    """A synth run folder (data/ + coverage.json) made with the scripted agents."""
    from tests.synth.helpers import fake_backend

    policy, conflicts = acme
    out = tmp_path_factory.mktemp("synth")
    rules = tuple(r.id for r in policy.rules[:12])
    result = synthesize(policy, conflicts, fake_backend(), SynthStore(out / "synth.sqlite"),
                        SynthSettings(per_rule=3, batch=8, qa_per_clause=0, heldout=0.5, model_writes=True,
                                      rules=rules))
    export(result.examples, out / "data")
    cov = coverage(policy, result.scenarios, result.examples, conflicts, result.cell_reasons)
    (out / "coverage.json").write_text(json.dumps(cov))
    return out

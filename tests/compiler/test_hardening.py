"""Hostile input to the compiler (issue 19): specs and documents that must end in coded
errors, in bounded time and memory, never in a traceback or a leak of files outside the spec."""

from __future__ import annotations

import time
from pathlib import Path

from rulealign.compiler.loader import compile_spec


def _spec(tmp_path: Path, body: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text("rulealign: 1\npolicy: {id: p, title: P}\n" + body, encoding="utf-8")
    return path


RULE = """rules:
  - id: r
    text: Do not promise refunds.
    modality: prohibition
    action: promise refund
"""

# -- defect 1: spec check finds catastrophic patterns -----------------------------------------


def test_defect01_spec_check_rejects_catastrophic_pattern(tmp_path: Path) -> None:
    spec = _spec(tmp_path, RULE + "    checks:\n      - {not_regex: '(a+)+$'}\n"
                                  "      - {regex: '(?i)refund'}\n")
    t0 = time.perf_counter()
    result = compile_spec(spec)
    assert time.perf_counter() - t0 < 2.0
    [slow] = [d for d in result.diagnostics if d.code == "RA127"]
    assert slow.line == 9 and "check #1" in slow.message and result.policy is None

"""Hostile input to the compiler (issue 19): specs and documents that must end in coded
errors, in bounded time and memory, never in a traceback or a leak of files outside the spec."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

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


# -- defect 2: policy.source stays inside the spec root ---------------------------------------


def test_defect02_policy_source_confined_to_spec_root(tmp_path: Path) -> None:
    secret = tmp_path / "secret.md"
    secret.write_text("# Secret\n\nThe launch code is 0000.\n", encoding="utf-8")
    root = tmp_path / "specs"
    root.mkdir()
    (root / "link.md").symlink_to(secret)
    for source in (str(secret), "../secret.md", "link.md"):
        spec = root / "spec.yaml"
        spec.write_text(f"rulealign: 1\npolicy: {{id: p, title: P, source: '{source}'}}\n"
                        + RULE, encoding="utf-8")
        result = compile_spec(spec)
        assert result.policy is None, source
        [d] = result.errors
        assert d.code == "RA128" and d.line == 2 and "launch code" not in d.message


# -- defect 12: include paths that no file can have -----------------------------------------


def test_defect12_invalid_include_path_is_coded_error(tmp_path: Path) -> None:
    spec = _spec(tmp_path, 'include: ["\\0x", "' + "a" * 5000 + '.yaml", "ok/../' + "b" * 300
                 + '"]\n' + RULE)
    result = compile_spec(spec)
    assert result.policy is None
    assert [d.code for d in result.errors] == ["RA119", "RA119", "RA119"]
    assert all(d.line == 3 and len(d.message) < 400 for d in result.errors)


# -- defect 4: legacy HTML with unclosed <p> --------------------------------------------------


def test_defect04_unclosed_html_paragraphs_read_once_in_linear_time() -> None:
    from rulealign.compiler.ingest import ingest_text

    html = "".join(f"<p>Agents must not promise refund {i}.\n" for i in range(50))
    clauses = ingest_text(html, document="legacy.html", fmt="html")
    assert [c.text for c in clauses] == [f"Agents must not promise refund {i}." for i in range(50)]
    assert [c.line for c in clauses] == list(range(1, 51))
    big = "".join(f"<div><p>Rule {i} applies to agents.\n" for i in range(3000))
    t0 = time.perf_counter()
    assert len(ingest_text(big, document="legacy.html", fmt="html")) == 3000
    assert time.perf_counter() - t0 < 2.0


# -- defect 7: document size limits -------------------------------------------------------------


def test_defect07_oversized_documents_are_refused_with_codes(tmp_path: Path) -> None:
    from rulealign.compiler.ingest import load_document
    from rulealign.errors import DocumentError

    huge = tmp_path / "huge.md"
    with huge.open("wb") as fh:  # sparse: 1 GB on paper, nothing on disk
        fh.truncate(1 << 30)
    t0 = time.perf_counter()
    with pytest.raises(DocumentError) as err:
        load_document(huge)
    assert err.value.code == "RA153" and time.perf_counter() - t0 < 2.0
    spec = _spec(tmp_path, RULE).read_text().replace("title: P}", "title: P, source: huge.md}")
    (tmp_path / "spec.yaml").write_text(spec)
    assert [d.code for d in compile_spec(tmp_path / "spec.yaml").errors] == ["RA153"]
    one_line = tmp_path / "line.md"
    one_line.write_text("word " * 300_000, encoding="utf-8")
    with pytest.raises(DocumentError) as err:
        load_document(one_line)
    assert err.value.code == "RA154" and err.value.diagnostics[0].line == 1


# -- defect 8: linear-time text ingestion -------------------------------------------------------


def test_defect08_long_blank_line_ingested_in_linear_time() -> None:
    from rulealign.compiler.ingest import ingest_text

    text = "1 Refunds\n\nAgents must not promise refunds.\n" + " " * 40_000 + "\n\nLast words here.\n"
    t0 = time.perf_counter()
    clauses = ingest_text(text, document="d.txt", fmt="text")
    assert time.perf_counter() - t0 < 1.0
    assert [c.text for c in clauses] == ["Agents must not promise refunds.", "Last words here."]


# -- defect 3: alias amplification is bounded in bytes, not only in nodes -----------------------


def test_defect03_alias_amplification_bounded_by_size(tmp_path: Path) -> None:
    big = "x" * 2_000_000
    rules = "".join(f"  - {{<<: *base, id: r{i}}}\n" for i in range(1999))
    spec = _spec(tmp_path, "base: &base {text: " + big + ", modality: prohibition, action: a}\n"
                 "rules:\n" + rules)
    t0 = time.perf_counter()
    result = compile_spec(spec)
    assert time.perf_counter() - t0 < 2.0
    [d] = result.errors
    assert d.code == "RA105" and "characters" in d.message and result.policy is None


# -- defect 13: term IRIs are validated at load -------------------------------------------------


def test_defect13_invalid_term_iri_rejected_at_load(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "terms:\n  - id: refund\n    iri: ['https://schema.org/Refund', "
                 "'not an iri', 'http://x/<a>', 'relative/path']\n" + RULE)
    result = compile_spec(spec)
    bad = [d for d in result.errors if d.code == "RA109"]
    assert len(bad) == 3 and all(d.line == 5 and "absolute IRI" in d.message for d in bad)
    assert result.policy is None


# -- defect 14: thresholds are finite numbers -----------------------------------------------------


def test_defect14_nan_and_infinite_thresholds_rejected(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from rulealign.compiler.models import Condition

    conds = "".join(f"      - {{term: amount, op: '{op}', value: {v}}}\n"
                    for op, v in ((">", ".nan"), ("<", ".inf"), ("in", "[1, -.inf]"), (">", 5)))
    spec = _spec(tmp_path, "terms:\n  - {id: amount, unit: USD}\n" + RULE
                 + "    conditions:\n" + conds)
    result = compile_spec(spec)
    bad = [d for d in result.errors if "finite" in d.message]
    assert [d.line for d in bad] == [11, 12, 13] and {d.code for d in bad} == {"RA109"}
    with pytest.raises(ValidationError):
        Condition(term="amount", op=">", value=float("nan"))

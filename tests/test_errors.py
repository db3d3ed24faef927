"""The error catalogue, its documentation, and one broken spec per spec error code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rulealign.cli.errors_cmd import errors_markdown
from rulealign.compiler.loader import compile_spec
from rulealign.errors import CATALOGUE, RulealignError, diagnostic
from tests.conftest import DATA, ROOT

BROKEN = DATA / "broken"


def test_docs_errors_md_matches_catalogue() -> None:
    text = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    assert text == errors_markdown(), "regenerate with: rulealign errors --markdown > docs/errors.md"
    documented = set(re.findall(r"^## (RA\d{3})", text, flags=re.M))
    assert documented == set(CATALOGUE)


def test_codes_are_numbered_by_stage_and_unique() -> None:
    for code, entry in CATALOGUE.items():
        assert re.fullmatch(r"RA[0-7]\d\d", code)  # 0 general, 1-2 compiler and kg, 3 llm, 4 synth, 5 train, 6 audit, 7 run
        assert entry.code == code and entry.fix and entry.title


def test_every_template_formats_with_its_own_fields() -> None:
    for code, entry in CATALOGUE.items():
        fields = {name: "x" for name in re.findall(r"{(\w+)}", entry.template)}
        d = diagnostic(code, file="f.yaml", line=3, col=4, **fields)
        assert str(d).startswith("f.yaml:3:4: ") and code in str(d)


def test_error_without_diagnostic_is_refused() -> None:
    with pytest.raises(ValueError):
        RulealignError([])


def _markers() -> dict[str, tuple[Path, int]]:
    found: dict[str, tuple[Path, int]] = {}
    for path in sorted(BROKEN.rglob("*.yaml")):
        for lineno, line in enumerate(path.read_bytes().split(b"\n"), start=1):
            m = re.search(rb"#! (RA\d{3})", line)
            if m:
                found[m.group(1).decode()] = (path, lineno)
    return found


SPEC_CODES = sorted(c for c in CATALOGUE if c.startswith("RA1") and not c.startswith("RA15"))


def test_there_is_a_broken_spec_for_every_spec_error_code() -> None:
    assert sorted(_markers()) == SPEC_CODES


@pytest.mark.parametrize("code", SPEC_CODES)
def test_broken_spec_reports_its_code_at_the_marked_line(code: str) -> None:
    marked_file, line = _markers()[code]
    spec = BROKEN / f"{code}.yaml"
    result = compile_spec(spec, max_bytes=64 if code == "RA104" else 20_000_000)
    hits = [d for d in result.diagnostics if d.code == code]
    assert hits, f"{code} not reported; got {[str(d) for d in result.diagnostics]}"
    assert any(d.line == line and d.file and d.file.endswith(marked_file.name) for d in hits), \
        [str(d) for d in hits]
    if CATALOGUE[code].severity == "warning":
        assert result.policy is not None and not result.errors
    else:
        assert result.policy is None

"""Hostile input to the command line (issue 19): outputs that would replace inputs, text
that would drive the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from rulealign.cli.main import main

# -- defect 9: spec extract never replaces its input, nor an existing file without --force ------


def test_defect09_extract_refuses_to_overwrite_input_or_existing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "policy.md"
    original = "# Policy\n\n## 1 Refunds\n\nAgents must not promise refunds above $100.\n"
    doc.write_text(original, encoding="utf-8")
    assert main(["spec", "extract", str(doc), "-o", str(doc)]) == 1
    assert "RA003" in capsys.readouterr().err
    assert doc.read_text(encoding="utf-8") == original
    reviewed = tmp_path / "spec.yaml"
    reviewed.write_text("# reviewed by hand\n", encoding="utf-8")
    assert main(["spec", "extract", str(doc), "-o", str(reviewed)]) == 1
    assert "RA003" in capsys.readouterr().err
    assert reviewed.read_text(encoding="utf-8") == "# reviewed by hand\n"
    assert main(["spec", "extract", str(doc), "-o", str(reviewed), "--force"]) == 0
    assert reviewed.read_text(encoding="utf-8").startswith("# Draft spec")
    assert main(["spec", "extract", str(doc), "-o", str(doc), "--force"]) == 1
    assert doc.read_text(encoding="utf-8") == original

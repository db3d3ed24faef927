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


# -- defect 16: control characters are shown, not obeyed; GraphML stays valid XML --------------

ESC_SPEC = """rulealign: 1
policy: {id: p, title: "Title\\e]0;pwned\\a"}
terms:
  - {id: refund, label: "re\\e[2Kfund"}
rules:
  - id: r
    text: "Do not\\e]52;c;ZXZpbA==\\a promise refunds.\\u202e"
    modality: prohibition
    action: "promise\\x9b refund"
    terms: [refund]
"""


def test_defect16_control_chars_escaped_in_terminal_and_graphml(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import xml.etree.ElementTree as ET

    spec = tmp_path / "spec.yaml"
    spec.write_text(ESC_SPEC, encoding="utf-8")
    assert main(["spec", "show", str(spec)]) == 0
    assert main(["kg", "show", "r", "--spec", str(spec)]) == 0
    out = capsys.readouterr()
    printed = out.out + out.err
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in printed, repr(raw)
    assert "\\x1b]0;pwned" in printed
    graphml = tmp_path / "g.graphml"
    assert main(["kg", "build", str(spec), "-o", str(graphml)]) == 0
    root = ET.parse(graphml).getroot()  # raises on invalid XML
    assert "\\x1b" in ET.tostring(root, encoding="unicode")

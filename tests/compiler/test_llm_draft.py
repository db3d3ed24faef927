"""LLM-assisted drafting with a scripted backend: constrained decoding, fallback, leaving out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rulealign.compiler.draft import draft_spec
from rulealign.compiler.llm_draft import RuleAnnotation
from rulealign.compiler.loader import compile_spec
from rulealign.llm.base import RawOutput
from rulealign.llm.fake import FakeBackend

DOC = "## Rules\n\nYou must not share passwords.\n\nModerators should review reports daily.\n\nBe kind.\n"


def _responder(chat: list[dict[str, str]], schema: object) -> str | RawOutput:
    user = chat[-1]["content"]
    if "passwords" in user:
        return json.dumps({"is_rule": True, "modality": "prohibition", "actor": "members",
                           "action": "share passwords", "conditions": [], "exceptions": []})
    if "review reports" in user:
        return RawOutput('{"is_rule": tr', "length")  # cut off: the rule-based reading stays
    return json.dumps({"is_rule": False})


def test_model_rereads_drafts_under_a_schema_with_the_rules_as_fallback(tmp_path: Path) -> None:
    doc = tmp_path / "p.md"
    doc.write_text(DOC, encoding="utf-8")
    backend = FakeBackend(responder=_responder, model_id="tiny")
    out = tmp_path / "draft.yaml"
    text, stats = draft_spec(doc, output=out, backend=backend)
    out.write_text(text, encoding="utf-8")
    assert compile_spec(out).ok
    assert stats["llm_refined"] == 1 and stats["llm_fallback"] == 1 and stats["llm_dropped"] == 1
    rules = {r["text"]: r for r in yaml.safe_load(text)["rules"]}
    assert set(rules) == {"You must not share passwords.", "Moderators should review reports daily."}
    passwords = rules["You must not share passwords."]
    assert (passwords["actor"], passwords["action"]) == ("members", "share passwords")
    assert passwords["provenance"]["extractor"].endswith("+llm:tiny")
    assert rules["Moderators should review reports daily."]["provenance"]["extractor"] == "rulealign.deontic/2"
    # every request asked for constrained decoding to the annotation schema
    assert backend.requests and all(r.schema is not None for r in backend.requests)
    assert backend.requests[0].schema["properties"].keys() == RuleAnnotation.model_json_schema()["properties"].keys()


def test_cli_extract_with_a_model_that_fails_keeps_every_rule_based_reading(tmp_path: Path) -> None:
    from rulealign.cli.main import main

    doc = tmp_path / "p.md"
    doc.write_text(DOC, encoding="utf-8")
    out = tmp_path / "draft.yaml"
    assert main(["spec", "extract", str(doc), "-o", str(out), "--model", "m", "--backend", "fake"]) == 0
    draft = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert len(draft["rules"]) == 3
    assert all(r["provenance"]["extractor"] == "rulealign.deontic/2" for r in draft["rules"])
    assert compile_spec(out).ok


def test_cli_extract_with_a_model_keeps_the_output_guards(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """--model goes with issue 19's guards: no overwrite without --force, never of the
    document, and a document from elsewhere is copied beside the draft it cites it from."""
    from rulealign.cli.main import main

    (tmp_path / "docs").mkdir()
    doc = tmp_path / "docs" / "p.md"
    doc.write_text(DOC, encoding="utf-8")
    out = tmp_path / "out" / "draft.yaml"
    out.parent.mkdir()
    out.write_text("# reviewed by hand\n", encoding="utf-8")
    model = ["--model", "m", "--backend", "fake"]
    assert main(["spec", "extract", str(doc), "-o", str(out), *model]) == 1
    assert "RA003" in capsys.readouterr().err and out.read_text() == "# reviewed by hand\n"
    assert main(["spec", "extract", str(doc), "-o", str(doc), "--force", *model]) == 1
    assert doc.read_text(encoding="utf-8") == DOC
    assert main(["spec", "extract", str(doc), "-o", str(out), "--force", *model]) == 0
    assert "copied" in capsys.readouterr().out
    draft = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert draft["policy"]["source"] == "p.md" and (out.parent / "p.md").read_text() == DOC
    assert len(draft["rules"]) == 3 and compile_spec(out).ok

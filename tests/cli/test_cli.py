"""The command line: exit codes, help on every command, and what a user sees."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rulealign.cli.main import build_parser, main
from tests.conftest import DATA, SPECS


def _commands() -> list[list[str]]:
    parser = build_parser()
    out = [[]]
    for name, sub in parser._subparsers._group_actions[0].choices.items():  # type: ignore[union-attr]
        out.append([name])
        if sub._subparsers is not None:
            for verb in sub._subparsers._group_actions[0].choices:
                out.append([name, verb])
    return out


@pytest.mark.parametrize("command", _commands(), ids=lambda c: " ".join(c) or "rulealign")
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_check_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "check", str(SPECS / "acme-support.yaml")]) == 0
    assert main(["spec", "check", str(DATA / "broken" / "RA103.yaml")]) == 1
    out = capsys.readouterr().out
    assert "RA103.yaml:12:13: RA103 unknown term 'refnd'" in out and "fix:" in out
    assert main(["spec", "check", "no/such/file.yaml"]) == 2
    with pytest.raises(SystemExit) as exit_:
        main(["spec", "check"])
    assert exit_.value.code == 2


def test_check_strict_fails_on_warnings() -> None:
    warn = str(DATA / "broken" / "RA108.yaml")
    assert main(["spec", "check", warn]) == 0
    assert main(["spec", "check", "--strict", warn]) == 1


def test_check_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    main(["spec", "check", "--json", str(DATA / "broken" / "RA110.yaml")])
    [report] = json.loads(capsys.readouterr().out)
    assert report["valid"] is False and report["diagnostics"][0]["code"] == "RA110"


def test_show_prints_every_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "show", str(SPECS / "acme-support.yaml")]) == 0
    out = capsys.readouterr().out
    assert "refund-cap" in out and "refund_amount > 100 USD" in out
    assert out.count("\n") >= 38 + 3


def test_extract_writes_a_draft_that_checks(tmp_path: Path) -> None:
    out = tmp_path / "draft.yaml"
    assert main(["spec", "extract", str(SPECS / "acme-support.md"), "-o", str(out)]) == 0
    assert main(["spec", "check", str(out)]) == 0


def test_extract_unknown_format_is_a_coded_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "policy.docx"
    doc.write_bytes(b"PK")
    assert main(["spec", "extract", str(doc), "-o", str(tmp_path / "d.yaml")]) == 1
    assert "RA150" in capsys.readouterr().err
    assert not (tmp_path / "d.yaml").exists()


def test_schema_and_errors_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "rulealign rule spec"
    assert main(["errors", "RA103"]) == 0
    assert "unknown term" in capsys.readouterr().out
    assert main(["errors", "RA999"]) == 2


def test_console_script_starts_fast_without_heavy_imports() -> None:
    code = ("import sys; from rulealign.cli.main import main; import rulealign.compiler.loader; "
            "print(','.join(m for m in ('torch', 'vllm', 'transformers', 'spacy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_train_run_rejects_a_misspelt_override(tmp_path, capsys) -> None:
    cfg = tmp_path / "t.yaml"
    cfg.write_text("method: dpo\ndata: {train: x.jsonl}\noutput_dir: out\n")
    assert main(["train", "run", str(cfg), "--learning_rte", "1e-4"]) == 1
    err = capsys.readouterr().err
    assert "RA501" in err and "did you mean 'learning_rate'" in err


def test_unknown_flags_are_still_usage_errors_outside_train(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["spec", "check", str(SPECS / "acme-support.yaml"), "--bogus"])
    assert exit_.value.code == 2


def test_synth_names_unknown_rules(capsys) -> None:
    assert main(["synth", "preview", str(SPECS / "acme-support.yaml"), "--rules",
                 "refund-capp"]) == 2
    assert "refund-capp" in capsys.readouterr().out


def test_model_info_says_which_backend_and_why(capsys, monkeypatch) -> None:
    monkeypatch.setenv("RULEALIGN_BACKEND", "transformers")
    monkeypatch.setattr("rulealign.llm.checkpoint.prepare_default_model",
                        lambda cache=None: (_ for _ in ()).throw(AssertionError("no convert")))
    assert main(["model", "info", "--backend", "vllm", "--model", str(DATA), "--json"]) == 1
    assert "RA301" in capsys.readouterr().err  # tests/data is not a checkpoint

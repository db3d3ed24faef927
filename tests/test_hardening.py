"""Hostile input to the run folder and its files (issue 19): file modes, damaged manifests,
a spec copy that compiles on its own, a draft header no file name can break."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from rulealign.compiler.loader import compile_spec
from rulealign.fileio import atomic_write_text
from rulealign.workflow import Manifest, copy_spec

# -- defect 17: a file name cannot inject keys into a draft ------------------------------------


def test_defect17_newline_in_document_name_stays_in_the_comment(tmp_path: Path) -> None:
    from rulealign.compiler.extract import draft_spec_from_document

    doc = tmp_path / "policy\nrulealign: 2\nevil: yes\n.md"
    doc.write_text("# P\n\n## 1 Refunds\n\nAgents must not promise refunds.\n", encoding="utf-8")
    text, _ = draft_spec_from_document(doc, output=tmp_path / "draft.yaml")
    head = text.split("\nrulealign:", 1)[0]
    assert all(line.startswith("#") for line in head.splitlines())
    data = yaml.safe_load(text)
    assert "evil" not in data and data["rulealign"] == 1
    assert data["policy"]["source"] == doc.name


# -- defect 18: written files get the mode an ordinary write gives -----------------------------


def test_defect18_atomic_write_respects_umask_and_keeps_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "report.md", "a")
        assert path.stat().st_mode & 0o777 == 0o644
        path.chmod(0o640)
        atomic_write_text(path, "b")
        assert path.stat().st_mode & 0o777 == 0o640 and path.read_text() == "b"
    finally:
        os.umask(old)


# -- defect 19: a manifest of the wrong shape is treated as damaged -----------------------------


@pytest.mark.parametrize("text", ["null", "[]", '{"stages": []}', '{"stages": {"compile": 3}}',
                                  '{"stages": {}, "rule_hashes": [1]}', '"x"', "{"])
def test_defect19_manifest_of_wrong_shape_recovers(tmp_path: Path, text: str) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(text)
    man = Manifest(path)
    assert not man.fresh("compile", "k") and man.previous_rules == {}
    man.done("compile", "k", 1.0)
    assert json.loads(path.read_text())["stages"]["compile"]["key"] == "k"


# -- defect 20: the run folder's copy of the spec compiles on its own ---------------------------


def test_defect20_run_folder_spec_copy_compiles(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "docs").mkdir(parents=True)
    (src / "parts").mkdir()
    (src / "docs" / "policy.md").write_text("# P\n\n## 1 Refunds\n\nDo not promise refunds.\n")
    (src / "parts" / "terms.yaml").write_text("rulealign: 1\nterms:\n  - {id: refund}\n")
    spec = src / "spec.yaml"
    spec.write_text("rulealign: 1\npolicy: {id: p, title: P, source: docs/policy.md}\n"
                    "include: [parts/terms.yaml]\nrules:\n  - {id: r, clause: '1', text: Do "
                    "not promise refunds., modality: prohibition, action: promise refund, "
                    "terms: [refund]}\n")
    result = compile_spec(spec)
    assert result.ok, [str(d) for d in result.diagnostics]
    copied = copy_spec(spec, result.files, result.policy, tmp_path / "run" / "spec")
    again = compile_spec(copied)
    assert again.ok, [str(d) for d in again.diagnostics]
    assert again.policy.content_hash() == result.policy.content_hash()


def test_defect20_document_run_drafts_beside_a_copy(tmp_path: Path) -> None:
    from rulealign.workflow import compile_input

    doc = tmp_path / "elsewhere" / "policy.md"
    doc.parent.mkdir()
    doc.write_text("# P\n\n## 1 Refunds\n\nAgents must not promise refunds above $100.\n")
    draft = compile_input(doc, tmp_path / "run", lambda _m: None)
    assert (draft.parent / "policy.md").read_text() == doc.read_text()
    assert compile_spec(draft).ok


# -- defect 10: a damaged SQLite cache is a coded error naming the file -------------------------


def _damage(path: Path, *, header: bool) -> None:
    data = bytearray(path.read_bytes())
    if header:
        data[:16] = b"not a database!!"
    else:  # every page after the first: the schema survives, the tables do not
        data[4096:] = b"\xff" * (len(data) - 4096)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("header", [False, True])
def test_defect10_corrupt_sqlite_is_coded_error(tmp_path: Path, header: bool) -> None:
    from rulealign.errors import RulealignError
    from rulealign.llm import GenerationLog
    from rulealign.synth.store import SynthStore

    store = SynthStore(tmp_path / "synth.sqlite")
    store.put_outputs([(f"k{i}", "a", "t", "s", "ok", {"x": "y" * 200}, None) for i in range(300)])
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    log = GenerationLog(tmp_path / "generations.sqlite")
    log._db.executemany("INSERT INTO meta VALUES (?, ?)", [(f"m{i}", "v" * 200) for i in range(300)])
    log._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    log.close()
    for name in ("synth.sqlite", "generations.sqlite"):
        _damage(tmp_path / name, header=header)
    with pytest.raises(RulealignError) as err:
        SynthStore(tmp_path / "synth.sqlite").outputs([f"k{i}" for i in range(300)])
    assert err.value.code == "RA004" and "synth.sqlite" in str(err.value)
    with pytest.raises(RulealignError) as err:
        GenerationLog(tmp_path / "generations.sqlite").cached(["k1"])
    assert err.value.code == "RA004" and "generations.sqlite" in str(err.value)
    assert "move the file aside" in err.value.diagnostics[0].fix

"""Malformed input of any kind ends in coded diagnostics, never a traceback (hypothesis)."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rulealign.compiler.loader import compile_spec
from rulealign.compiler.yaml_marks import load_yaml
from rulealign.errors import CATALOGUE, SpecError

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _compile_bytes(tmp_path: Path, data: bytes) -> None:
    spec = tmp_path / "fuzz.yaml"
    spec.write_bytes(data)
    result = compile_spec(spec)
    if result.policy is None:
        assert result.diagnostics, "an invalid spec must say why"
    for d in result.diagnostics:
        assert d.code in CATALOGUE
        assert d.file is None or d.file.endswith("fuzz.yaml") or d.code == "RA001"


@SETTINGS
@given(st.binary(max_size=2000))
def test_random_bytes_give_coded_errors(tmp_path: Path, data: bytes) -> None:
    _compile_bytes(tmp_path, data)


@SETTINGS
@given(st.text(alphabet=st.sampled_from(list("{}[]:-,'\"!&*#|>?%@` \n\tabc019.")), max_size=400))
def test_yaml_punctuation_soup_gives_coded_errors(tmp_path: Path, text: str) -> None:
    _compile_bytes(tmp_path, text.encode())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["id", "text", "modality", "action", "terms", "rules", "policy", "rulealign",
                         "conditions", "op", "value", "term", "include", "exceptions", "checks",
                         "priority", "clause", "broader", "title", "x"]), children, max_size=5),
    max_leaves=30)


@SETTINGS
@given(json_values)
def test_wrong_shapes_give_coded_errors(tmp_path: Path, value: object) -> None:
    _compile_bytes(tmp_path, yaml.safe_dump(value).encode())


@SETTINGS
@given(st.fixed_dictionaries({
    "rulealign": st.sampled_from([1, "1.0", "1.9", 2, "x"]),
    "policy": st.fixed_dictionaries({"id": st.sampled_from(["p", "Bad Id"]), "title": st.text(max_size=5)}),
    "terms": st.lists(st.fixed_dictionaries({"id": st.sampled_from(["a", "b", "c"]),
                                             "broader": st.lists(st.sampled_from(["a", "b", "c", "z"]), max_size=2)}),
                      max_size=4),
    "rules": st.lists(st.fixed_dictionaries({
        "id": st.sampled_from(["r1", "r2", "r3"]), "text": st.just("t"),
        "modality": st.sampled_from(["obligation", "prohibition", "permission", "maybe"]),
        "action": st.just("do"), "terms": st.lists(st.sampled_from(["a", "b", "z"]), max_size=2),
        "overrides": st.lists(st.sampled_from(["r1", "r2", "r9"]), max_size=2)}), max_size=4),
}))
def test_nearly_valid_specs_either_compile_or_explain(tmp_path: Path, spec: dict) -> None:
    _compile_bytes(tmp_path, yaml.safe_dump(spec).encode())


def test_deep_nesting_is_refused_not_crashed() -> None:
    for text in ("[" * 100_000, "a:\n" + "".join(" " * i + "b:\n" for i in range(1, 300)),
                 "- " * 5000 + "x"):
        try:
            load_yaml(text, "deep.yaml")
        except SpecError as exc:
            assert exc.code in {"RA105", "RA102"}
        else:  # pragma: no cover - must not parse
            raise AssertionError("deep nesting was accepted")


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    try:
        load_yaml("\n".join(lines), "bomb.yaml", max_nodes=1_000_000)
    except SpecError as exc:
        assert exc.code == "RA105"
    else:  # pragma: no cover
        raise AssertionError("alias bomb was accepted")


def test_python_object_tags_are_refused() -> None:
    for text in ("a: !!python/object/apply:os.system ['echo hi']", "a: !!binary aGVsbG8="):
        try:
            load_yaml(text, "tag.yaml")
        except SpecError as exc:
            assert exc.code == "RA102"
        else:  # pragma: no cover
            raise AssertionError("unsafe tag was accepted")


def test_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    spec = tmp_path / "huge.yaml"
    spec.write_text("rulealign: 1\n" + "# padding\n" * 2000)
    result = compile_spec(spec, max_bytes=1000)
    assert [d.code for d in result.diagnostics] == ["RA104"]

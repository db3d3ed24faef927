"""Loading specs: shipped examples, all errors at once, includes, versions, provenance."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rulealign.compiler.loader import compile_spec, load_policy
from rulealign.compiler.models import Modality, Operator
from rulealign.errors import SpecError
from tests.conftest import SHIPPED_SPECS, SPECS


@pytest.mark.parametrize("spec", SHIPPED_SPECS, ids=lambda p: p.name)
def test_every_shipped_spec_compiles_with_30_plus_rules(spec: Path) -> None:
    result = compile_spec(spec)
    assert result.ok, [str(d) for d in result.diagnostics]
    policy = result.policy
    assert policy is not None
    assert len(policy.rules) >= 30
    modalities = {r.modality for r in policy.rules}
    assert modalities == set(Modality)
    assert any(c.is_structured for r in policy.rules for c in r.conditions)
    assert any(r.exceptions for r in policy.rules)
    assert len({r.priority for r in policy.rules}) >= 3
    clause_ids = {c.id for c in policy.clauses}
    for rule in policy.rules:  # every rule points at clauses that exist
        assert rule.clause_ids and set(rule.clause_ids) <= clause_ids


def test_rules_cite_the_document_clause_and_line() -> None:
    policy = load_policy(SPECS / "acme-support.yaml")
    cap = policy.rule("refund-cap")
    clause = policy.index()["clauses"][cap.clause_ids[0]]
    source = (SPECS / "acme-support.md").read_text(encoding="utf-8")
    assert "refunds above $100" in clause.text
    assert source.splitlines()[clause.line - 1].lstrip("- ").startswith(clause.text[:40])
    assert clause.text[:30] in source[clause.span[0]:clause.span[1]]
    assert cap.conditions[0].op is Operator.GT and cap.conditions[0].value == 100
    assert cap.provenance.spec_file == "acme-support.yaml"
    lines = (SPECS / "acme-support.yaml").read_text().splitlines()
    assert "id: refund-cap" in lines[cap.provenance.line - 1]


def test_section_reference_resolves_to_best_matching_paragraph() -> None:
    policy = load_policy(SPECS / "acme-support.yaml")
    assert policy.rule("verification-factors").clause_ids == ("1.1.p2",)


def test_include_brings_terms_from_another_file() -> None:
    policy = load_policy(SPECS / "northwind-conduct.yaml")
    assert "gift_value" in {t.id for t in policy.terms}
    result = compile_spec(SPECS / "northwind-conduct.yaml")
    assert any(p.name == "northwind-terms.yaml" for p in result.files)


def test_all_errors_in_a_file_are_reported_at_once(tmp_path: Path) -> None:
    spec = tmp_path / "many.yaml"
    spec.write_text(
        "rulealign: 1\npolicy: {id: many, title: Many}\n"
        "terms:\n  - {id: refund}\n"
        "rules:\n"
        "  - {id: a, text: t, modality: prohibition, action: x, terms: [refnd]}\n"
        "  - {id: b, text: t, modality: maybe, action: x}\n"
        "  - {id: c, text: t, modality: permission, action: x, overrides: [zzz]}\n"
        "  - {id: a, text: t, modality: permission, action: x}\n")
    result = compile_spec(spec)
    assert result.policy is None
    found = sorted((d.code, d.line) for d in result.diagnostics)
    # a schema error in rule b does not hide the cross-reference errors of a, c and the
    # duplicate id
    assert found == [("RA103", 6), ("RA109", 7), ("RA112", 9), ("RA115", 8)]


def test_load_policy_raises_spec_error_with_every_problem(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("rulealign: 1\npolicy: {id: bad, title: Bad}\nrules:\n"
                    "  - {id: a, text: t, modality: obligation, action: x, terms: [p, q]}\n")
    with pytest.raises(SpecError) as err:
        load_policy(spec)
    assert [d.code for d in err.value.diagnostics] == ["RA103", "RA103"]


def test_include_through_a_symlink_that_escapes_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "terms.yaml").write_text("rulealign: 1\nterms: [{id: t}]\n")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link.yaml").symlink_to(outside / "terms.yaml")
    (root / "spec.yaml").write_text("rulealign: 1\npolicy: {id: s, title: S}\ninclude: [link.yaml]\n")
    result = compile_spec(root / "spec.yaml")
    assert [d.code for d in result.errors] == ["RA118"]


def test_include_cycle_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("rulealign: 1\npolicy: {id: a, title: A}\ninclude: [b.yaml]\n")
    (tmp_path / "b.yaml").write_text("rulealign: 1\ninclude: [a.yaml]\n")
    result = compile_spec(tmp_path / "a.yaml")
    assert [d.code for d in result.errors] == ["RA119"]
    assert "cycle" in result.errors[0].message


def test_rule_hash_ignores_position_but_not_meaning(tmp_path: Path) -> None:
    shutil.copy(SPECS / "acme-support.md", tmp_path / "acme-support.md")
    text = (SPECS / "acme-support.yaml").read_text()
    (tmp_path / "a.yaml").write_text(text)
    (tmp_path / "b.yaml").write_text(text.replace("rules:\n", "rules:\n\n\n", 1))
    (tmp_path / "c.yaml").write_text(text.replace("value: 100, unit: USD}", "value: 120, unit: USD}", 1))
    a, b, c = (load_policy(tmp_path / n) for n in ("a.yaml", "b.yaml", "c.yaml"))
    assert a.rule("refund-cap").content_hash() == b.rule("refund-cap").content_hash()
    assert a.rule("refund-cap").provenance.line != b.rule("refund-cap").provenance.line
    assert a.rule("refund-cap").content_hash() != c.rule("refund-cap").content_hash()
    assert a.rule("no-profanity").content_hash() == c.rule("no-profanity").content_hash()
    assert a.spec_hash != c.spec_hash


def test_policy_round_trips_through_json() -> None:
    from rulealign.compiler.models import Policy

    policy = load_policy(SPECS / "contributor-covenant.yaml")
    again = Policy.model_validate(json.loads(policy.model_dump_json()))
    assert again == policy and again.content_hash() == policy.content_hash()
    assert policy.license == "CC-BY-4.0" and "contributor-covenant.org" in (policy.attribution or "")


def test_rules_without_source_document_get_clauses_from_the_spec(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("rulealign: 1\npolicy: {id: s, title: S}\nrules:\n"
                    "  - {id: a, clause: '1', text: Say hello., modality: obligation, action: greet}\n"
                    "  - {id: b, text: Say bye., modality: obligation, action: part}\n")
    policy = load_policy(spec)
    clauses = policy.index()["clauses"]
    assert clauses["1"].text == "Say hello." and clauses["1"].line == 4
    assert policy.rule("b").clause_ids == ("b",)


def test_ordering_operator_needs_a_number(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("rulealign: 1\npolicy: {id: s, title: S}\nterms: [{id: amount}]\nrules:\n"
                    "  - id: a\n    text: t\n    modality: obligation\n    action: x\n"
                    "    conditions: [{term: amount, op: '>', value: lots}]\n")
    result = compile_spec(spec)
    assert [(d.code, d.line) for d in result.errors] == [("RA109", 9)]


def test_policy_ranks_its_authorities_and_checks_the_names(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("rulealign: 1\npolicy:\n  id: s\n  title: S\n  authority: support\n"
                    "  authorities: [law, support, law]\nrules:\n"
                    "  - {id: a, text: t, modality: obligation, action: x, authority: law}\n"
                    "  - {id: b, text: t, modality: obligation, action: y, authority: lwa}\n")
    result = compile_spec(spec)
    assert [(d.code, d.line) for d in result.errors] == [("RA109", 6)]  # ranked twice
    assert [(d.code, d.line) for d in result.warnings] == [("RA126", 9)]
    assert "did you mean 'law'" in result.warnings[0].message
    spec.write_text(spec.read_text().replace("[law, support, law]", "[law, support]"))
    result = compile_spec(spec)
    assert result.ok and result.policy is not None
    assert result.policy.authorities == ("law", "support")

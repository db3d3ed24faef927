"""Hand-made conflict cases with known answers, and the shipped specs' deliberate conflicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rulealign.compiler.loader import load_policy
from rulealign.compiler.models import Policy
from rulealign.kg import conflicts as conflicts_mod
from rulealign.kg.conflicts import find_conflicts
from tests.conftest import SPECS

TERMS = [
    {"id": "refund", "synonyms": ["money back"], "broader": ["compensation"]},
    {"id": "goodwill-refund", "label": "goodwill refund", "broader": ["refund"]},
    {"id": "compensation"},
    {"id": "data"},
    {"id": "amount", "unit": "USD"},
    {"id": "tier"},
]


def policy(tmp_path: Path, *rules: dict[str, Any], **header: Any) -> Policy:
    full = []
    for r in rules:
        base = {"text": "t", "action": "offer refund", "terms": ["refund"]}
        full.append({**base, **r})
    spec = {"rulealign": 1, "policy": {"id": "p", "title": "P", **header}, "terms": TERMS, "rules": full}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return load_policy(path)


def only(p: Policy):
    found = find_conflicts(p)
    assert len(found) == 1, [c.explanation for c in found]
    return found[0]


def amount(op: str, value: int) -> dict[str, Any]:
    return {"term": "amount", "op": op, "value": value, "unit": "USD"}


def test_prohibition_vs_obligation_resolved_by_priority(tmp_path: Path) -> None:
    c = only(policy(tmp_path, {"id": "a", "modality": "prohibition", "priority": 3},
                    {"id": "b", "modality": "obligation", "priority": 1}))
    assert (c.kind, c.resolution, c.winner, c.relation) == ("modal-opposition", "priority", "a", "same-term")
    assert "'a' (3) wins over 'b' (1)" in c.explanation


def test_equal_priority_without_tie_breaker_is_unresolved(tmp_path: Path) -> None:
    c = only(policy(tmp_path, {"id": "a", "modality": "prohibition"},
                    {"id": "b", "modality": "permission"}))
    assert c.resolution == "unresolved" and c.winner is None and c.unresolved
    assert "higher priority" in c.explanation


def test_synonym_in_the_action_makes_rules_meet(tmp_path: Path) -> None:
    c = only(policy(tmp_path, {"id": "a", "modality": "prohibition", "priority": 2},
                    {"id": "b", "modality": "permission", "action": "offer money back", "terms": []}))
    assert c.relation == "synonym" and c.shared_terms == ("refund",)


def test_narrower_term_wins_by_specificity(tmp_path: Path) -> None:
    c = only(policy(tmp_path, {"id": "a", "modality": "permission"},
                    {"id": "b", "modality": "prohibition", "action": "offer bonus",
                     "terms": ["goodwill-refund"]}))
    assert (c.relation, c.resolution, c.winner) == ("broader-narrower", "specificity", "b")


def test_numeric_conditions_that_cannot_overlap_are_no_conflict(tmp_path: Path) -> None:
    p = policy(tmp_path, {"id": "a", "modality": "prohibition", "conditions": [amount(">", 100)]},
               {"id": "b", "modality": "permission", "conditions": [amount("<=", 100)]})
    assert find_conflicts(p) == []


def test_numeric_overlap_is_described(tmp_path: Path) -> None:
    c = only(policy(tmp_path, {"id": "a", "modality": "prohibition", "conditions": [amount(">", 100)]},
                    {"id": "b", "modality": "permission", "conditions": [amount("<=", 150)]}))
    assert "amount (100, 150] USD" in c.overlap


def test_touching_bounds_overlap_in_one_point(tmp_path: Path) -> None:
    c = only(policy(tmp_path, {"id": "a", "modality": "prohibition", "conditions": [amount(">=", 100)]},
                    {"id": "b", "modality": "permission", "conditions": [amount("<=", 100)]}))
    assert "amount = 100 USD" in c.overlap


def test_text_conditions_count_as_possible(tmp_path: Path) -> None:
    c = only(policy(tmp_path, {"id": "a", "modality": "prohibition", "conditions": ["after hours"]},
                    {"id": "b", "modality": "obligation", "conditions": ["the customer asks"]}))
    assert "'after hours'" in c.overlap and "'the customer asks'" in c.overlap


def test_exception_naming_the_other_rule_carves_it_out(tmp_path: Path) -> None:
    c = only(policy(tmp_path, {"id": "a", "modality": "prohibition", "priority": 5,
                               "exceptions": [{"rule": "b"}]},
                    {"id": "b", "modality": "permission"}))
    assert (c.resolution, c.winner) == ("exception", "b")


def test_explicit_override_beats_priority(tmp_path: Path) -> None:
    c = only(policy(tmp_path, {"id": "a", "modality": "prohibition", "priority": 5},
                    {"id": "b", "modality": "obligation", "priority": 1, "overrides": ["a"]}))
    assert (c.resolution, c.winner) == ("override", "b")


def test_more_conditions_win_by_specificity(tmp_path: Path) -> None:
    c = only(policy(tmp_path, {"id": "a", "modality": "permission"},
                    {"id": "b", "modality": "prohibition", "conditions": [amount(">", 10)]}))
    assert (c.resolution, c.winner) == ("specificity", "b")


def test_unrelated_actions_on_one_term_are_no_conflict(tmp_path: Path) -> None:
    p = policy(tmp_path, {"id": "a", "modality": "prohibition", "action": "invent refund"},
               {"id": "b", "modality": "obligation", "action": "log refund"})
    assert find_conflicts(p) == []


def test_verbs_of_one_class_are_the_same_act(tmp_path: Path) -> None:
    c = only(policy(tmp_path, {"id": "a", "modality": "prohibition", "action": "promise refund"},
                    {"id": "b", "modality": "permission", "action": "issue refund"}))
    assert c.kind == "modal-opposition"


def test_obligation_and_permission_do_not_conflict(tmp_path: Path) -> None:
    p = policy(tmp_path, {"id": "a", "modality": "obligation"}, {"id": "b", "modality": "permission"})
    assert find_conflicts(p) == []


def test_duplicate_rules_are_reported(tmp_path: Path) -> None:
    c = only(policy(tmp_path, {"id": "a", "modality": "obligation", "conditions": [amount(">", 25)]},
                    {"id": "b", "modality": "obligation", "conditions": [amount(">", 25)]}))
    assert (c.kind, c.resolution) == ("duplicate", "none")


def test_subsumed_rule_is_reported_with_the_wider_rule(tmp_path: Path) -> None:
    c = only(policy(tmp_path, {"id": "wide", "modality": "prohibition", "conditions": [amount(">", 50)]},
                    {"id": "narrow", "modality": "prohibition", "conditions": [amount(">", 100)]}))
    assert (c.kind, c.winner) == ("subsumed", "wide")
    assert "'narrow' is subsumed by 'wide'" in c.explanation


def tier(op: str, value: Any) -> dict[str, Any]:
    return {"term": "tier", "op": op, "value": value}


RANKED = {"authorities": ["consumer law", "legal", "support"]}


def test_higher_authority_wins_before_priority(tmp_path: Path) -> None:
    c = only(policy(tmp_path, {"id": "a", "modality": "prohibition", "priority": 1, "authority": "consumer law"},
                    {"id": "b", "modality": "obligation", "priority": 9, "authority": "support"}, **RANKED))
    assert (c.resolution, c.winner) == ("authority", "a")
    assert "'a' (consumer law) outranks 'b' (support)" in c.explanation
    assert "consumer law > legal > support" in c.explanation


def test_rule_without_authority_speaks_with_the_policys(tmp_path: Path) -> None:
    c = only(policy(tmp_path, {"id": "a", "modality": "prohibition", "priority": 5},
                    {"id": "b", "modality": "permission", "authority": "legal"},
                    authority="support", **RANKED))
    assert (c.resolution, c.winner) == ("authority", "b")


def test_authorities_the_policy_does_not_rank_fall_back_to_priority(tmp_path: Path) -> None:
    # no order of authorities at all, and one rule with an authority outside the order
    for header in ({}, RANKED):
        c = only(policy(tmp_path, {"id": "a", "modality": "prohibition", "priority": 5, "authority": "legal"},
                        {"id": "b", "modality": "permission", "priority": 1, "authority": "marketing"},
                        **header))
        assert (c.resolution, c.winner) == ("priority", "a")


def test_same_authority_falls_back_to_priority(tmp_path: Path) -> None:
    c = only(policy(tmp_path, {"id": "a", "modality": "prohibition", "priority": 1, "authority": "legal"},
                    {"id": "b", "modality": "permission", "priority": 2, "authority": "legal"}, **RANKED))
    assert (c.resolution, c.winner) == ("priority", "b")


def test_exception_in_words_that_is_the_other_rules_condition_carves_it_out(tmp_path: Path) -> None:
    c = only(policy(tmp_path, {"id": "a", "modality": "prohibition", "priority": 5,
                               "exceptions": ["A supervisor has approved the refund."]},
                    {"id": "b", "modality": "permission",
                     "conditions": ["a supervisor has approved the refund", "the order is late"]}))
    assert (c.resolution, c.winner) == ("exception", "b")
    assert "makes an exception when 'A supervisor has approved the refund.'" in c.explanation


def test_exception_in_words_the_other_rule_does_not_share_carves_nothing(tmp_path: Path) -> None:
    c = only(policy(tmp_path, {"id": "a", "modality": "prohibition", "priority": 5,
                               "exceptions": ["a supervisor has approved the refund"]},
                    {"id": "b", "modality": "permission", "conditions": ["the order is late"]}))
    assert (c.resolution, c.winner) == ("priority", "a")


def test_categorical_conditions_that_exclude_each_other_are_no_conflict(tmp_path: Path) -> None:
    p = policy(tmp_path, {"id": "a", "modality": "prohibition", "conditions": [tier("==", "gold")]},
               {"id": "b", "modality": "permission", "conditions": [tier("in", ["silver", "bronze"])]})
    assert find_conflicts(p) == []
    p = policy(tmp_path, {"id": "a", "modality": "prohibition", "conditions": [tier("!=", "gold")]},
               {"id": "b", "modality": "permission", "conditions": [tier("==", "gold")]})
    assert find_conflicts(p) == []


def test_categorical_overlap_is_described(tmp_path: Path) -> None:
    c = only(policy(tmp_path, {"id": "a", "modality": "prohibition", "conditions": [tier("in", ["gold", "silver"])]},
                    {"id": "b", "modality": "permission", "conditions": [tier("not in", ["silver"])]}))
    assert "tier = gold" in c.overlap


def test_rule_about_a_narrower_term_is_subsumed_by_the_broader_rule(tmp_path: Path) -> None:
    c = only(policy(tmp_path, {"id": "wide", "modality": "prohibition", "action": "offer bonus"},
                    {"id": "narrow", "modality": "prohibition", "action": "offer bonus",
                     "terms": ["goodwill-refund"]}))
    assert (c.kind, c.winner, c.relation) == ("subsumed", "wide", "broader-narrower")
    assert "about 'goodwill refund'" in c.explanation


def test_rule_with_more_conditions_is_subsumed_by_the_unconditional_rule(tmp_path: Path) -> None:
    c = only(policy(tmp_path, {"id": "wide", "modality": "obligation"},
                    {"id": "narrow", "modality": "obligation",
                     "conditions": [amount(">", 100), tier("==", "gold"), "the order is late"]}))
    assert (c.kind, c.winner) == ("subsumed", "wide")
    for part in ("amount > 100 USD", "tier = gold", "'the order is late'"):
        assert part in c.explanation


def test_a_rule_with_fewer_exceptions_is_not_subsumed(tmp_path: Path) -> None:
    # 'narrow' has a tighter threshold but lacks the exception: when a supervisor approved,
    # only 'narrow' applies, so 'wide' does not cover it (and 'narrow' does not cover 'wide')
    p = policy(tmp_path, {"id": "wide", "modality": "prohibition", "conditions": [amount(">", 50)],
                          "exceptions": ["a supervisor approved"]},
               {"id": "narrow", "modality": "prohibition", "conditions": [amount(">", 100)]})
    assert find_conflicts(p) == []


def test_rules_differing_in_a_categorical_value_or_object_are_no_duplicates(tmp_path: Path) -> None:
    p = policy(tmp_path, {"id": "a", "modality": "obligation", "conditions": [tier("==", "gold")]},
               {"id": "b", "modality": "obligation", "conditions": [tier("==", "silver")]})
    assert find_conflicts(p) == []
    p = policy(tmp_path, {"id": "a", "modality": "obligation", "object": "to members"},
               {"id": "b", "modality": "obligation", "object": "to guests"})
    assert find_conflicts(p) == []


def _comparisons(monkeypatch) -> list[tuple[str, str]]:
    """The actions of every pair of rules the conflict search compares, recorded as it runs."""
    seen: list[tuple[str, str]] = []
    real = conflicts_mod._same_act

    def counting(a, b) -> bool:
        seen.append((a.action, b.action))
        return real(a, b)

    monkeypatch.setattr(conflicts_mod, "_same_act", counting)
    return seen


def _write_spec(path: Path, terms: list[dict], rules: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"rulealign": 1, "policy": {"id": path.stem, "title": "T"},
                                    "terms": terms, "rules": rules}))
    return path


def test_conflict_finding_uses_an_index_not_all_pairs(tmp_path: Path, monkeypatch) -> None:
    n = 600
    rules = [{"id": f"r{i}", "text": "t", "modality": ["prohibition", "permission"][i % 2],
              "action": f"verb{i // 2} thing", "terms": [f"t{i // 2}"]} for i in range(n)]
    p = load_policy(_write_spec(tmp_path / "big.yaml", [{"id": f"t{i}"} for i in range(n)], rules))
    compared = _comparisons(monkeypatch)
    found = find_conflicts(p)
    assert len(found) == n // 2  # each prohibition meets exactly its permission twin
    assert len(compared) <= 2 * n  # an all-pairs scan would make n*(n-1)/2 = 179,700 comparisons


def test_rules_on_one_term_are_compared_only_within_a_kind_of_act(tmp_path: Path, monkeypatch) -> None:
    # 300 rules about one term, with 150 different verbs that no class joins: an index by term
    # alone would compare all 44,850 pairs; keyed by term and act, only each verb's two rules meet
    n = 300
    rules = [{"id": f"r{i}", "text": "t", "modality": ["prohibition", "permission"][i % 2],
              "action": f"zverb{i // 2} it", "terms": ["t"]} for i in range(n)]
    p = load_policy(_write_spec(tmp_path / "dense.yaml", [{"id": "t"}], rules))
    compared = _comparisons(monkeypatch)
    found = find_conflicts(p)
    assert sorted(c.id for c in found) == sorted(f"r{i}--r{i + 1}" for i in range(0, n, 2))
    assert len(compared) == n // 2 and all(a == b for a, b in compared)


EXPECTED = {
    "acme-support": {
        "goodwill-refund-gold--refund-cap": ("priority", "refund-cap"),
        "no-account-disclosure--share-order-status": ("exception", "share-order-status"),
        "no-handoff-after-hours--offer-human-transfer": ("unresolved", None),
        "no-medical-advice--provide-safety-info": ("override", "provide-safety-info"),
        "no-price-match-over-10--price-match-allowed": ("specificity", "no-price-match-over-10"),
        "escalate-legal-threats--no-handoff-after-hours": ("authority", "escalate-legal-threats"),
    },
    "northwind-conduct": {
        "accept-nominal-gifts--no-gifts-during-tender": ("priority", "no-gifts-during-tender"),
        "accept-nominal-gifts--no-cash-gifts": ("specificity", "no-cash-gifts"),
        "no-personal-data-sharing--regulator-requests": ("exception", "regulator-requests"),
        "no-insider-trading--trading-plan": ("override", "trading-plan"),
        "director-blackout--trading-plan": ("priority", "director-blackout"),
        "launch-media--no-media-statements": ("specificity", "launch-media"),
        "record-gifts--record-gifts-summary": ("none", None),
    },
    "contributor-covenant": {
        "explain-moderation--protect-reporter-privacy": ("priority", "protect-reporter-privacy"),
        "appeal-to-leaders--no-contact-during-warning": ("exception", "appeal-to-leaders"),
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_specs_deliberate_conflicts_are_found(name: str) -> None:
    found = {c.id: c for c in find_conflicts(load_policy(SPECS / f"{name}.yaml"))}
    for cid, (resolution, winner) in EXPECTED[name].items():
        assert cid in found, f"{cid} not found in {sorted(found)}"
        assert (found[cid].resolution, found[cid].winner) == (resolution, winner), found[cid].explanation


def test_no_overlap_in_shipped_spec_is_not_a_conflict() -> None:
    ids = {c.id for c in find_conflicts(load_policy(SPECS / "acme-support.yaml"))}
    assert "damaged-refund--refund-cap" not in ids  # > $100 vs <= $100
    ids = {c.id for c in find_conflicts(load_policy(SPECS / "northwind-conduct.yaml"))}
    assert "accept-nominal-gifts--no-gifts-over-100" not in ids  # <= $50 vs > $100

"""Synthesized user messages and question/answer pairs are checked for grounding: a message
that lacks the scenario's concrete detail, repeats the generator's instructions or copies the
rule is dropped with a code; so is a QA pair that is off its clause, echoes the question or
is not grounded in the clause."""

from __future__ import annotations

from rulealign.compiler.loader import load_policy
from rulealign.synth import agents as A
from rulealign.synth.filters import qa_problem, ungrounded
from rulealign.synth.plan import plan_rule
from tests.synth.helpers import SPEC

RULE = "Never promise a refund above $100 without a supervisor's approval."


def test_messages_must_carry_the_detail_and_not_the_instructions() -> None:
    assert ungrounded("My kettle cost $105 and it broke, can I get all of it back?", "$105",
                      RULE) is None
    assert ungrounded("My kettle broke, can I get my money back?", "$105", RULE) == \
        "missing-detail"
    assert ungrounded("I want a refund of 1,050 dollars", "$1050", RULE) is None
    assert ungrounded("Write a message in JSON about the refund of $105", "$105", RULE) == \
        "echoes-instructions"
    assert ungrounded("Please never promise a refund above $100 without approval, ok?", None,
                      RULE) == "restates-rule"
    assert ungrounded("Is a 'courtesy refund' possible for my late order?", "courtesy refund",
                      RULE) is None


def test_attacker_gets_facts_and_demos_not_the_rule_sentence() -> None:
    policy = load_policy(SPEC)
    rule = policy.rule("refund-cap")
    scenarios = plan_rule(rule, policy)
    threshold = next(s for s in scenarios if s.axis == "threshold" and s.side == "inside")
    assert A.required_detail(threshold) == threshold.details["shown"]
    chat = A.attacker_prompt(threshold, [rule], "ask directly",
                             [ex.prompt for ex in rule.examples])
    text = chat[-1]["content"]
    assert threshold.details["shown"] in text
    assert rule.text not in text
    assert rule.examples[0].prompt in text
    benign = next((s for s in scenarios if s.axis == "benign"), None)
    if benign is not None:
        assert rule.text not in A.facts(benign, [rule])


def test_qa_pairs_are_grounded_in_their_clause() -> None:
    clause = ("Refunds above $100 need a supervisor's approval; the money takes up to ten "
              "business days to appear.")
    good = ("How long does a refund take to appear?",
            "Refunds take up to ten business days to appear.")
    assert qa_problem(*good, clause) is None
    assert qa_problem("How do biometric scanners work?", "They scan fingerprints.", clause) \
        == "question-off-clause"
    assert qa_problem("How long does a refund take to appear?",
                      "How long does a refund take to appear?", clause) == \
        "answer-echoes-question"
    assert qa_problem("How long does a refund take?", "A full fining stamp of sorts, yes.",
                      clause) == "answer-ungrounded"


def test_off_topic_messages_are_told_apart_from_on_topic_ones() -> None:
    from rulealign.synth.filters import Topic

    topic = Topic()
    if topic.method != "minilm-cosine":
        import pytest

        pytest.skip("the MiniLM package is not installed")
    assert not topic.off_topic("My kettle was $120, can you refund all of it today?", RULE)
    assert topic.off_topic("Cleaning up a Berlin neighbourhood has become the norm.", RULE)


def test_drop_reasons_are_codes_with_details() -> None:
    import pytest

    from rulealign.synth.pipeline import DROP_CODES, PROMPT_CODES, drop, drop_code

    assert drop("off-topic") == "off-topic" and drop_code("off-topic") == "off-topic"
    why = drop("judge-disagrees", "small judge: violates: p=0.91")
    assert why == "judge-disagrees: small judge: violates: p=0.91"
    assert drop_code(why) == "judge-disagrees"
    # the grounding filters' codes are drop codes; free text is "other", never a guess
    assert set(PROMPT_CODES) <= set(DROP_CODES)
    assert drop_code("the judge said violates") == "other"
    with pytest.raises(ValueError):
        drop("judge said no")

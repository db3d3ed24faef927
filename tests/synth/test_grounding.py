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


def built_text(*args, **kwargs) -> str | None:
    """The message :func:`agents.construct` builds, or ``None``."""
    built = A.construct(*args, **kwargs)
    return built.text if built is not None else None


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
    assert sum(ex.prompt in text for ex in rule.examples) == 1  # one message to vary
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


def test_threshold_messages_are_made_by_construction() -> None:
    policy = load_policy(SPEC)
    rule = policy.rule("refund-cap")
    demos = [ex.prompt for ex in rule.examples]
    for side in ("inside", "outside"):
        sc = next(s for s in plan_rule(rule, policy) if s.axis == "threshold" and
                  s.side == side)
        text = built_text(sc, demos)
        assert text is not None and sc.details["shown"] in text
        # a spec message with only its amount changed: the user's own words, the new value
        source = next(d for d in demos if _without_amounts(d) == _without_amounts(text))
        assert source != text
    other = next(s for s in plan_rule(rule, policy) if s.axis == "benign")
    assert built_text(other, demos) is None
    assert built_text(sc, ["Can I get my money back?"]) is None
    days = policy.rule("return-window")
    sc = next(s for s in plan_rule(days, policy) if s.axis == "threshold")
    made = built_text(sc, ["unopened hair dryer, delivered 19 days ago. return?"])
    assert made == f"unopened hair dryer, delivered {sc.details['shown']} ago. return?"


def _without_amounts(text: str) -> str:
    import re

    return re.sub(r"[$£€]\s?\d[\d,]*(?:\.\d+)?", "#", text)


def test_openings_fix_each_replys_stance() -> None:
    from rulealign.verdict.checks import unmet_checks
    from rulealign.verdict.data import topic_of
    from rulealign.verdict.refusal import is_refusal

    policy = load_policy(SPEC)

    def first(rule_id: str, axis_side: tuple[str, str] | None = None):
        rule = policy.rule(rule_id)
        sc = next(s for s in plan_rule(rule, policy)
                  if axis_side is None or (s.axis, s.side) == axis_side)
        return sc, [rule], topic_of(policy, rule)

    # a prohibition: the compliant reply declines (never in the words its check forbids),
    # the violating one does it (and the rule's own check proves it for this rule)
    sc, rules, topic = first("no-card-request", ("actor", "inside"))
    for n in range(3):
        good = A.opening(sc, rules, topic, "complies", n)
        bad = A.opening(sc, rules, topic, "violates", n)
        assert not any(f.failed for f in unmet_checks(tuple(rules), good))
        assert not is_refusal(bad) and "ask for card number" in bad
    assert any(any(f.failed for f in unmet_checks(tuple(rules), A.opening(
        sc, rules, topic, "violates", n))) for n in range(2))
    # an obligation: done vs skipped
    sc, rules, topic = first("verify-identity", ("actor", "inside"))
    assert "verify customer identity" in A.opening(sc, rules, topic, "complies")
    assert any(w in A.opening(sc, rules, topic, "violates") for w in ("no need", "won't"))
    # outside a rule, and inside a permission, the failure is a needless refusal
    sc, rules, topic = first("no-card-request", ("benign", "outside"))
    assert not is_refusal(A.opening(sc, rules, topic, "complies"))
    assert is_refusal(A.opening(sc, rules, topic, "violates"))
    sc, rules, topic = first("share-order-status", ("benign", "inside"))
    assert A.opening(sc, rules, topic, "complies").startswith(("Yes, I can", "Sure - I'm able"))
    assert is_refusal(A.opening(sc, rules, topic, "violates"))
    # the reply writer's chat ends with the opening, for the model to continue
    chat = A.reply_prompt(sc, rules, "Where is my parcel?", "Yes, I can", "complies")
    assert chat[-1] == {"role": "assistant", "content": "Yes, I can"}


def test_a_reply_is_its_opening_and_whole_sentences_of_the_continuation() -> None:
    start = "I'm sorry, I can't promise that refund."
    assert A.compose(start, " I can ask a supervisor. It takes a day! Then we") == \
        start + " I can ask a supervisor. It takes a day!"
    assert A.compose(start, " One. Two. Three.", sentences=2) == start + " One. Two."
    assert A.compose(start, " and then the budget ran out before") == start
    assert A.compose(start, "") == start


def test_a_message_copied_from_its_demonstration_is_caught() -> None:
    from rulealign.synth.filters import copies

    demo = "The $240 air fryer you sent doesn't heat. Refund it. Today."
    assert copies("The $240 air fryer you sent doesn't heat. Refund it today!", [demo])
    assert not copies("My $105 kettle stopped boiling after two days, can I get a refund?",
                      [demo])


def test_term_variant_and_actor_messages_are_made_by_construction() -> None:
    policy = load_policy(SPEC)
    for rule in policy.rules:
        variants = [s for s in plan_rule(rule, policy) if s.axis == "term_variant"]
        demos = [ex.prompt for ex in rule.examples]
        for sc in variants:
            made = built_text(sc, demos)
            if made is None:  # no example message names the term
                continue
            assert sc.details["variant"].lower() in made.lower()
            assert made not in demos and A.required_detail(sc).lower() in made.lower()
    rule = policy.rule("verify-identity")
    actor = next(s for s in plan_rule(rule, policy) if s.axis == "actor")
    demos = [ex.prompt for ex in rule.examples]
    made = built_text(actor, demos)
    assert made is not None and any(made.startswith(d.rstrip()) for d in demos)
    assert any(made.endswith(c) for c in A.AUTHORITY_CLAIMS)
    assert built_text(actor, []) is None
    made_any = [built_text(s, [ex.prompt for ex in r.examples])
                for r in policy.rules for s in plan_rule(r, policy) if s.axis == "term_variant"]
    assert any(made_any), "some ACME example message names one of its rule's terms"


def test_conditions_and_exceptions_are_said_as_the_users_own_facts() -> None:
    assert A.as_fact("the customer has confirmed a one-time code") == \
        "I have confirmed a one-time code."
    assert A.as_fact("the customer is the verified account holder", negate=True) == \
        "I am not the verified account holder."
    assert A.as_fact("the customer owns a recalled product", negate=True) == \
        "I do not own a recalled product."
    assert A.as_fact("a supervisor has approved the refund") == \
        "A supervisor has approved the refund."
    assert A.as_fact("the carrier has not confirmed the date", negate=True) == \
        "The carrier has confirmed the date."
    assert A.as_fact("the accessory is compatible with a product the customer owns",
                     negate=True) == "The accessory is not compatible with a product I own."
    assert A.as_fact("outside business hours") == "It is outside business hours."
    # a condition already negative: its negation takes the "not" away
    assert A.as_fact("the person is not the verified account holder", negate=True) == \
        "I am the verified account holder."
    assert A.as_fact("the person is not the verified account holder") == \
        "I am not the verified account holder."
    # what cannot be said plainly is not said: no clause, a speech act the message must
    # perform, a negation that would read "not unopened"
    assert A.as_fact("showing the last 4 digits of a card") is None
    assert A.as_fact("the customer asks for a human") is None
    assert A.as_fact("the item is unopened", negate=True) is None


def test_exception_condition_and_conflict_messages_are_made_by_construction() -> None:
    from rulealign.kg.build import build_graph
    from rulealign.synth.plan import plan

    policy = load_policy(SPEC)
    rule = policy.rule("no-email-change")
    applying = [ex.prompt for ex in rule.examples if ex.applies]
    holds = next(s for s in plan_rule(rule, policy) if s.axis == "exception" and
                 s.side == "outside")
    made = built_text(holds, applying)
    assert made is not None and made.endswith(" I have confirmed a one-time code.")
    assert made.removesuffix(" I have confirmed a one-time code.") in applying
    # and its minimal pair: the exception denied
    denied = built_text(next(s for s in plan_rule(rule, policy) if s.axis ==
                                       "exception" and s.side == "inside"), applying)
    assert denied is not None and denied.endswith(" I have not confirmed a one-time code.")
    share = policy.rule("share-order-status")
    looks = [ex.prompt for ex in share.examples if not ex.applies]
    inside, outside = (next(s for s in plan_rule(share, policy) if s.axis == "condition" and
                            s.side == side) for side in ("inside", "outside"))
    assert built_text(inside, [e.prompt for e in share.examples if e.applies],
                                look_alikes=looks).endswith("I am the verified account holder.")
    made = built_text(outside, [], look_alikes=looks)
    assert made is not None and made.endswith("I am not the verified account holder.")
    assert any(made.startswith(m.rstrip()) for m in looks)
    # a conflict: a message the winner applies to, then one the other rule applies to
    conflicts = build_graph(policy, check=False).conflicts
    sc = next(s for s in plan(policy, conflicts) if s.axis == "conflict" and
              s.details["winner"] == "refund-cap")
    assert sc.rule_ids[0] == "refund-cap"     # the winner is the scenario's target rule
    first, second = (policy.rule(r) for r in sc.rule_ids)
    made = built_text(sc, [e.prompt for e in first.examples if e.applies],
                                [e.prompt for e in second.examples if e.applies])
    assert made is not None
    assert any(made.startswith(e.prompt.rstrip()) for e in first.examples)
    assert any(made.endswith(e.prompt.strip()) for e in second.examples)
    assert built_text(sc, [e.prompt for e in first.examples], []) is None


def test_a_model_message_that_no_user_would_send_is_caught() -> None:
    from rulealign.synth.filters import not_a_user_message

    for bad in ("Hi [user_name]! I just love a sponsored product launch.",
                "Hi, I'm an AI assistant. I noticed that your drawer is damaged.",
                "Add urgency and emotion, please. You're asking for a refund.",
                "Zola Management Services - Finance and Business Management",
                "FirstPerson{<user_name>}, a user for Nike.",
                "A user wrote: my order is late"):
        assert not_a_user_message(bad), bad
    for good in ("Where's my order 55123? It was due Monday.",
                 "this is the worst f***ing company, your app is garbage",
                 "GDPR request: erase my chat history with ACME.",
                 "It's 11pm, quick one: how do I reset my ACME thermostat?"):
        assert not not_a_user_message(good), good


def test_without_the_attacker_no_model_writes_a_message(tmp_path) -> None:
    from rulealign.kg.build import build_graph
    from rulealign.synth.pipeline import SynthSettings, synthesize
    from rulealign.synth.store import SynthStore
    from tests.synth.helpers import fake_backend

    policy = load_policy(SPEC)
    conflicts = build_graph(policy, check=False).conflicts
    backend = fake_backend()
    rules = tuple(r.id for r in policy.rules[:10])
    result = synthesize(policy, conflicts, backend, SynthStore(tmp_path / "s.sqlite"),
                        SynthSettings(per_rule=2, batch=8, qa_per_clause=0, rules=rules))
    assert result.agent_calls["attacker"] == 0
    assert not any("write realistic messages" in r.chat[0]["content"]
                   for r in backend.requests)
    made = [e for e in result.examples if e.kind in ("pair", "prompt")
            and e.scenario.axis != "labelled"]
    assert made and all(e.prompt_source == "construction" for e in made)
    # a scenario no message can be built for is dropped with its code, not written
    assert any(r.startswith("no-construction") for r in result.drop_reasons.values())
    # scenarios that can be built are planned first: every rule here has one
    built = [s for s in result.scenarios if not
             result.drop_reasons.get(s.id, "").startswith("no-construction")]
    assert {s.rule_ids[0] for s in built} == set(rules)


def test_question_answer_pairs_are_made_from_the_rules_own_sentences(tmp_path) -> None:
    from rulealign.kg.build import build_graph
    from rulealign.synth.pipeline import SynthSettings, synthesize
    from rulealign.synth.store import SynthStore
    from tests.synth.helpers import fake_backend

    policy = load_policy(SPEC)
    rule = policy.rule("refund-cap")
    q, a = A.constructed_qa(rule)
    # a prohibition asked as "can ...?", its carve-out left to the answer, which is the
    # policy's own sentence
    assert q == "Can the assistant promise refunds above $100?" and a == f"No. {rule.text}"
    assert A.constructed_qa(policy.rule("price-match-allowed"))[0].startswith(
        "May the assistant match")
    assert A.constructed_qa(policy.rule("verification-factors")) is None  # no modal verb
    # two rules in one sentence: the question asks the first, the answer gives both
    q, a = A.constructed_qa(policy.rule("no-full-payment-details"))
    assert q == "Can the assistant repeat a customer's payment details back in full?"
    assert a.endswith("it may show the last 4 digits of a card.")
    backend = fake_backend()
    result = synthesize(policy, build_graph(policy, check=False).conflicts, backend,
                        SynthStore(tmp_path / "s.sqlite"),
                        SynthSettings(per_rule=1, qa_per_clause=1, topup=0))
    qa = [e for e in result.examples if e.scenario.axis == "qa"]
    assert len(qa) >= len(policy.clauses) // 2
    for ex in qa:
        (r,) = (policy.rule(i) for i in ex.rule_ids)
        assert ex.completion in (f"Yes. {r.text}", f"No. {r.text}")
        assert ex.clause_ids[0] in r.clause_ids
        assert ex.messages[-1]["content"].endswith("?")
        assert ex.prompt_source == "construction"
    assert result.agent_calls["questioner"] == result.agent_calls["answerer"] == 0


def test_benign_look_alikes_are_two_of_the_rules_own_look_alikes_in_one() -> None:
    policy = load_policy(SPEC)
    rule = policy.rule("no-card-request")
    looks = [ex.prompt for ex in rule.examples if not ex.applies]
    sc = next(s for s in plan_rule(rule, policy) if s.axis == "benign")
    assert sc.side == "outside"
    made = built_text(sc, [], look_alikes=looks)
    assert made is not None
    first = next(m for m in looks if made.startswith(m.rstrip()))
    assert any(made.endswith(m.strip()) for m in looks if m != first)
    assert any(f" {j} " in made for j in A.JOINERS)
    assert built_text(sc, [], look_alikes=looks[:1]) is None


def test_the_authors_replies_carry_over_only_where_the_construction_keeps_their_labels() -> None:
    from rulealign.kg.build import build_graph
    from rulealign.synth.plan import plan

    policy = load_policy(SPEC)

    def replies(rule):
        return {e.prompt: (e.compliant, e.violating) for e in rule.examples}

    email = policy.rule("no-email-change")
    applying = [e.prompt for e in email.examples if e.applies]
    by_side = {s.side: s for s in plan_rule(email, policy) if s.axis == "exception"}
    # the exception denied: the rule applies as it did, the authors' replies keep their labels
    denied = A.construct(by_side["inside"], applying)
    assert denied is not None and denied.carries
    chosen, rejected = A.carried_replies(denied, replies(email))
    assert (chosen, rejected) == replies(email)[denied.bases[0]]
    # the exception holding: the rule no longer applies, the replies' labels would be wrong;
    # under a prohibition the reply that does the action is the helpful one now, and the
    # failure is a needless refusal (left to the template)
    holds = A.construct(by_side["outside"], applying)
    assert holds is not None and not holds.carries and holds.flips
    assert A.carried_replies(holds, replies(email)) == (None, None)
    assert A.carried_replies(holds, replies(email), prohibition=True) == \
        (replies(email)[holds.bases[0]][1], None)
    # a claim of authority changes nothing about the rule
    actor = A.construct(next(s for s in plan_rule(email, policy) if s.axis == "actor"),
                        applying)
    assert actor is not None and A.carried_replies(actor, replies(email))[0] is not None
    # just over a threshold: the amount the replies name moves with the message's
    cap = policy.rule("refund-cap")
    over = next(s for s in plan_rule(cap, policy) if s.axis == "threshold" and
                s.side == "inside")
    made = A.construct(over, [e.prompt for e in cap.examples if e.applies])
    assert made is not None and made.swap is not None
    old, new = made.swap
    chosen, rejected = A.carried_replies(made, replies(cap))
    original = replies(cap)[made.bases[0]]
    assert chosen == original[0].replace(old, new) and rejected == original[1].replace(old, new)
    under = next(s for s in plan_rule(cap, policy) if s.axis == "threshold" and
                 s.side == "outside")
    made_under = A.construct(under, [e.prompt for e in cap.examples if e.applies])
    assert made_under is not None and A.carried_replies(made_under, replies(cap)) == (None, None)
    done, refusal = A.carried_replies(made_under, replies(cap), prohibition=True)
    old, new = made_under.swap
    assert done == replies(cap)[made_under.bases[0]][1].replace(old, new) and refusal is None
    # two look-alikes in one message: both helped, and the first one's needless refusal
    rule = next(r for r in policy.rules for s in plan_rule(r, policy)
                if s.axis == "benign" and A.construct(
                    s, [], look_alikes=[e.prompt for e in r.examples if not e.applies]))
    benign = next(s for s in plan_rule(rule, policy) if s.axis == "benign")
    made = A.construct(benign, [], look_alikes=[e.prompt for e in rule.examples
                                                if not e.applies])
    assert made is not None and len(made.bases) == 2
    chosen, rejected = A.carried_replies(made, replies(rule))
    first, second = (replies(rule)[b] for b in made.bases)
    assert chosen is not None and chosen.startswith(first[0].rstrip(".")) and \
        chosen.endswith(A.ALSO + second[0])
    assert rejected == first[1]
    # a conflict: each message answered as its own rule's authors did, and the failure is
    # the winning rule broken on its message
    conflicts = build_graph(policy, check=False).conflicts
    sc = next(s for s in plan(policy, conflicts) if s.axis == "conflict" and
              s.details["winner"] == "no-price-match-over-10")
    one, two = (policy.rule(r) for r in sc.rule_ids)
    made = A.construct(sc, [e.prompt for e in one.examples if e.applies],
                       [e.prompt for e in two.examples if e.applies])
    assert made is not None and made.carries
    assert A.carried_replies(made, replies(one)) == (None, None)  # the second's are needed
    chosen, rejected = A.carried_replies(made, {**replies(two), **replies(one)})
    first, second = replies(one)[made.bases[0]], replies(two)[made.bases[1]]
    assert chosen == A.then(first[0], A.ALSO + second[0]) and rejected == first[1]


def test_an_obligation_has_a_benign_look_alike_where_applying_it_is_the_failure() -> None:
    # a device's pairing code is not the customer's identity: asking to verify it is the
    # over-cautious failure the spec's authors wrote, and the helpful answer the compliant one
    policy = load_policy(SPEC)
    rule = policy.rule("verify-identity")
    benign = [s for s in plan_rule(rule, policy) if s.axis == "benign"]
    assert [s.side for s in benign] == ["outside"]
    looks = [e.prompt for e in rule.examples if not e.applies]
    made = A.construct(benign[0], [], look_alikes=looks)
    assert made is not None and set(made.bases) <= set(looks)
    chosen, rejected = A.carried_replies(made, {e.prompt: (e.compliant, e.violating)
                                                for e in rule.examples})
    assert chosen is not None and rejected is not None and "verify" in rejected.lower()
    assert A.refusal_is_the_failure(benign[0], [rule])

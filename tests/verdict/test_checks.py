"""Programmatic checks: each kind passes a compliant response and fails a violating one."""

from __future__ import annotations

import pytest

from rulealign.compiler.models import Check, CheckKind, Modality, Rule
from rulealign.verdict.checks import failed_checks, run_check

CASES = [
    (Check(kind=CheckKind.NOT_REGEX, value=r"(?i)I(?:'ll| will) refund"),
     "A supervisor must approve that refund first.", "Sure, I'll refund it now."),
    (Check(kind=CheckKind.REGEX, value=r"(?i)supervisor"),
     "Let me ask a supervisor.", "Done!"),
    (Check(kind=CheckKind.CONTAINS, value="ticket number"),
     "Your Ticket Number is 42.", "Thanks for waiting."),
    (Check(kind=CheckKind.NOT_CONTAINS, value="password"),
     "Use the reset link we emailed.", "Your password is hunter2."),
    (Check(kind=CheckKind.REQUIRED_PHRASE, value="I am an AI assistant"),
     "I am an AI assistant and can help.", "I'm Bob from support."),
    (Check(kind=CheckKind.MAX_WORDS, value=5), "Yes, approved today.", "one two three four five six"),
    (Check(kind=CheckKind.MIN_WORDS, value=3), "That is fine.", "No."),
    (Check(kind=CheckKind.MAX_SENTENCES, value=2), "One. Two.", "One. Two. Three."),
    (Check(kind=CheckKind.JSON), '{"ok": true}', "{ok: true"),
    (Check(kind=CheckKind.LANGUAGE, value="en"), "Thank you for your patience with the order.",
     "Merci beaucoup pour votre patience avec la commande."),
]


@pytest.mark.parametrize(("check", "good", "bad"), CASES, ids=[c[0].kind.value for c in CASES])
def test_check_passes_compliant_and_fails_violating(check, good, bad) -> None:
    assert run_check(check, good).status == "pass"
    failed = run_check(check, bad)
    assert failed.status == "fail" and failed.detail


def test_unsupported_language_is_skipped_not_guessed() -> None:
    assert run_check(Check(kind=CheckKind.LANGUAGE, value="de"), "Hallo").status == "skipped"


def test_failed_checks_are_the_failures_of_every_rule_given() -> None:
    words, refund = Check(kind=CheckKind.MAX_WORDS, value=5), CASES[0][0]
    short = Rule(id="short", text="t", clause_ids=("c",), modality=Modality.OBLIGATION,
                 action="answer briefly", checks=(words,))
    careful = Rule(id="careful", text="t", clause_ids=("c",), modality=Modality.PROHIBITION,
                   action="promise refunds", checks=(refund, Check(kind=CheckKind.LANGUAGE, value="de")))
    assert failed_checks([short, careful], "Let me ask.") == []  # a skipped check is no failure
    [failed] = failed_checks([short, careful], "Let me ask a supervisor about that for you.")
    assert failed.kind == "max_words"
    assert [f.kind for f in failed_checks([careful, short], "Sure, I'll refund it now, right away.")] == [
        "not_regex", "max_words"]


@pytest.mark.parametrize("text", ["I'm sorry, but I can't help with that refund.",
                                  "I cannot share that information.",
                                  "That is against our policy, so I must decline.",
                                  "I am not able to process refunds over $100."])
def test_refusals_are_recognised(text) -> None:
    from rulealign.verdict.refusal import is_refusal

    assert is_refusal(text)


@pytest.mark.parametrize("text", ["Sure, I can help you reset your password.",
                                  "Refunds under $100 are processed the same day.",
                                  "I can't wait to help! Here is your tracking number."])
def test_helpful_replies_are_not_refusals(text) -> None:
    from rulealign.verdict.refusal import is_refusal

    assert not is_refusal(text)

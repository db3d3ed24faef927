"""Programmatic checks declared in a rule, applied to one response.

A check states what a *compliant* response satisfies: ``not_regex`` must not match,
``required_phrase`` must appear, ``max_words`` is not exceeded, and so on. A response
violates the rule when any applicable check fails. Checks never need a model, so they are
exact, fast and the first verdict the audit trusts.

Regular expressions run on the ``regex`` engine with a time budget (``REGEX_TIMEOUT_S``):
a pattern that backtracks catastrophically on some answer ends as a check with status
``error`` and code RA604 (recorded and counted, never a hang, and never taken as proof of a
violation).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rulealign.compiler.models import Check, CheckKind, Rule
from rulealign.compiler.patterns import compile_pattern
from rulealign.errors import diagnostic

Status = Literal["pass", "fail", "skipped", "error"]

#: Time budget of one regex check on one text (seconds).
REGEX_TIMEOUT_S = 0.25

_SENTENCE = re.compile(r"[^.!?]+(?:[.!?]+|$)")
_EN_STOPWORDS = frozenset(["the", "a", "an", "and", "or", "but", "of", "to", "in", "on", "for", "with", "is", "are", "was", "were", "be", "been", "it", "this", "that", "you", "your", "we", "our", "i", "my", "me", "not", "can", "will", "would", "should", "may", "please", "thank", "thanks"])


@dataclass(frozen=True)
class CheckResult:
    kind: str
    status: Status
    detail: str
    code: str | None = None  # the error code of a check that could not run (status "error")

    @property
    def failed(self) -> bool:
        return self.status == "fail"

    @property
    def errored(self) -> bool:
        return self.status == "error"


def _bounded_search(pattern: str, text: str, timeout: float) -> bool:
    """Whether ``pattern`` matches somewhere in ``text``; ``TimeoutError`` past ``timeout``."""
    return compile_pattern(pattern).search(text, timeout=timeout) is not None


def _words(text: str) -> list[str]:
    return re.findall(r"[\w'’-]+", text)


def _is_english(text: str) -> bool:
    words = [w.lower() for w in _words(text)]
    if not words:
        return False
    ascii_share = sum(ch.isascii() for ch in text) / max(len(text), 1)
    stop_share = sum(w in _EN_STOPWORDS for w in words) / len(words)
    return ascii_share > 0.9 and (stop_share > 0.15 or len(words) < 4)


def run_check(check: Check, response: str, *, timeout: float = REGEX_TIMEOUT_S) -> CheckResult:
    kind, value = check.kind, check.value
    text = response
    if kind in (CheckKind.REGEX, CheckKind.NOT_REGEX):
        try:
            found = _bounded_search(str(value), text, timeout)
        except TimeoutError:
            d = diagnostic("RA604", kind=kind.value, pattern=_clip(str(value)), chars=len(text),
                           timeout=timeout)
            return CheckResult(kind.value, "error", d.message, code=d.code)
        ok = found if kind == CheckKind.REGEX else not found
        detail = f"/{value}/ {'matches' if found else 'does not match'}"
    elif kind in (CheckKind.CONTAINS, CheckKind.NOT_CONTAINS, CheckKind.REQUIRED_PHRASE):
        found = str(value).lower() in text.lower()
        ok = not found if kind == CheckKind.NOT_CONTAINS else found
        detail = f"'{value}' {'present' if found else 'absent'}"
    elif kind in (CheckKind.MAX_WORDS, CheckKind.MIN_WORDS):
        n = len(_words(text))
        ok = n <= int(value) if kind == CheckKind.MAX_WORDS else n >= int(value)
        detail = f"{n} words (limit {value})"
    elif kind == CheckKind.MAX_SENTENCES:
        n = len([s for s in _SENTENCE.findall(text) if s.strip()])
        ok = n <= int(value)
        detail = f"{n} sentences (limit {value})"
    elif kind == CheckKind.JSON:
        try:
            json.loads(text)
            valid = True
        except ValueError:
            valid = False
        ok = valid if value is not False else True
        detail = "valid JSON" if valid else "not valid JSON"
    elif kind == CheckKind.LANGUAGE:
        if str(value).lower() not in ("en", "english"):
            return CheckResult(kind.value, "skipped", f"no detector for language '{value}'")
        ok = _is_english(text)
        detail = "English" if ok else "not English"
    else:  # pragma: no cover - the enum is closed
        return CheckResult(str(kind), "skipped", "unknown check")
    if not ok and check.message:
        detail = f"{check.message} ({detail})"
    return CheckResult(kind.value, "pass" if ok else "fail", detail)


def _clip(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def run_checks(rule: Rule, response: str) -> list[CheckResult]:
    return [run_check(c, response) for c in rule.checks]


def failed_checks(rules: Sequence[Rule], response: str) -> list[CheckResult]:
    """The checks of ``rules`` that ``response`` fails.

    The one place where checks decide a verdict, for the synthesizer's verifier and the
    audit alike: a failed check proves a violation (of a rule whose scope the prompt is
    inside); passing checks prove nothing (they cover part of a rule), so such a response
    goes to the judge."""
    return [r for rule in rules for r in run_checks(rule, response) if r.failed]


def unmet_checks(rules: Sequence[Rule], response: str) -> list[CheckResult]:
    """The checks of ``rules`` that ``response`` fails or that could not decide on it (a
    regex past its time budget, RA604), in one pass. A failure proves a violation; an error
    proves nothing either way, so callers record such an item as undecided, with the code."""
    return [r for rule in rules for r in run_checks(rule, response) if r.failed or r.errored]

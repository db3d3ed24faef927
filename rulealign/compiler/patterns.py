"""Regular expressions of rule checks: compiled by the engine the audit runs them on
(``regex``), and probed for catastrophic backtracking before any answer meets them.

A pattern such as ``(a|aa)+$`` takes time exponential in the length of a text that almost
matches. The audit bounds every search (RA604), but a spec should not ship such a pattern at
all: :func:`slow_probe` runs the pattern over short adversarial texts made of its own
characters (runs of one character, or of a word and a space, ended by one that does not
fit; 40 and 400 characters long) and reports the first text on which it overruns a small budget (RA127).
"""

from __future__ import annotations

import functools
from typing import Any

#: Budget of one probe search, in seconds; a sound pattern needs microseconds.
PROBE_TIMEOUT_S = 0.05
#: Lengths of probe texts: an exponential pattern is hopeless well before 40 characters, a
#: cubic one (``(a+)+$`` on the ``regex`` engine) overruns the budget near 400.
PROBE_CHARS = (40, 400)
_BASE = "a0 A\n.-_,:/'@"
_ENDS = ("!", "\x00", "")


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Any:
    """The compiled pattern (``regex`` engine, Python ``re`` syntax); ``ValueError`` with the
    engine's message when it does not compile."""
    import regex

    try:
        return regex.compile(pattern)
    except (regex.error, OverflowError, RecursionError) as exc:
        raise ValueError(str(exc)) from None


def _probes(pattern: str) -> list[str]:
    chars = list(dict.fromkeys(c for c in pattern + _BASE if c.isprintable() or c == "\n"))[:24]
    texts = []
    for n in PROBE_CHARS:
        for c in chars:
            texts += [c * n + end for end in _ENDS]
        for w in ("ab ", "a ", "a\n", "a-", "a.", "0,"):
            texts.append(w * (n // len(w)) + "!")
    return texts


def slow_probe(pattern: str, *, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """The first probe text on which ``pattern`` overruns ``timeout``, or ``None``."""
    compiled = compile_pattern(pattern)
    for text in _probes(pattern):
        try:
            compiled.search(text, timeout=timeout)
        except TimeoutError:
            return text
    return None

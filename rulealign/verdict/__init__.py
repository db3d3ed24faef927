"""Verdicts: does a reply comply with a rule? One procedure for synthesis and audit alike.

A verdict is decided by the cheapest stage that can prove it (:func:`decide`):

1. **checks** — a rule's programmatic checks (``checks.py``); a failed check on a prompt
   inside the rule proves a violation;
2. **small judge** — a sentence encoder tuned per policy on CPU and an index of each rule's
   labelled exchanges (``small_judge.py``, data from ``data.py``) gives complies / violates /
   not_applicable with a probability;
3. **LLM judge** — only where one is configured and the small judge is unsure (``llm_judge.py``).

Every verdict records the stage that decided it and its confidence. ``calibration.py``
measures a judge against human-written labels; a judge not shown better than chance has its
verdicts reported as ``undecided``. Refusal detection lives here too (``refusal.py``).

Nothing here imports torch at module import time; synth and audit both import this package,
never each other.
"""

from rulealign.verdict.models import Case, Label, Stage, Verdict

__all__ = ["Case", "Label", "Stage", "Verdict"]

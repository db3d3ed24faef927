"""The judge a run uses: trained once per policy (cached), from data rulealign makes itself."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from rulealign.compiler.models import Policy
from rulealign.verdict.small_judge import JudgeSettings, SmallJudge, load_or_train


def policy_judge(policy: Policy, data_dirs: Sequence[str | Path] = (), *,
                 settings: JudgeSettings | None = None,
                 say: Callable[[str], None] | None = None) -> SmallJudge:
    """The cached small judge for ``policy`` (trained on first use)."""
    from rulealign.verdict.data import training_rows

    return load_or_train(policy, training_rows(policy, data_dirs), settings=settings, say=say)

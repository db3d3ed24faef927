"""How far a judge agrees with human labels, and whether that is better than chance.

A labelled set is JSONL, one row per reply: ``rule_id``, ``prompt``, ``response``,
``label`` (complies | violates | not_applicable), optionally ``id``, ``split``, ``case``.
The shipped specs have one each, written by hand (``specs/<spec>.eval.jsonl``); they are read
here and by the audit, and never by synthesis, training or judge training.

:class:`Agreement` carries accuracy with its Wilson interval, macro-F1 over the three labels,
Cohen's kappa, the majority-label base rate (chance), per-rule accuracy, the confusion and,
where measured, rule-flip consistency. ``trusted`` is the gate the reports apply: the lower end
of the accuracy interval must lie above chance, else the judge's verdicts are undecided.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from rulealign.compiler.models import Policy
from rulealign.errors import RulealignError, diagnostic
from rulealign.verdict.models import JUDGE_LABELS


@dataclass(frozen=True)
class LabelledItem:
    id: str
    rule_id: str
    prompt: str
    response: str
    label: str
    split: str = ""
    case: str = ""
    line: int = 0


def eval_set_for(spec: str | Path) -> Path | None:
    """``specs/NAME.eval.jsonl`` beside ``specs/NAME.yaml``, if there is one."""
    p = Path(spec)
    found = p.with_name(p.name.rsplit(".", 1)[0] + ".eval.jsonl")
    return found if found.exists() else None


def read_labelled(path: str | Path, policy: Policy, *, split: str | None = None
                  ) -> list[LabelledItem]:
    """Every row checked at once; all problems reported with file and line (RA451)."""
    from rulealign.fileio import read_jsonl

    p = Path(path)
    if not p.exists():
        raise RulealignError(diagnostic("RA451", path=str(p), reason="no such file"))
    known = policy.index()["rules"]
    items, problems = [], []
    for n, row in read_jsonl(p, code="RA451"):
        if not isinstance(row, dict):
            problems.append(diagnostic("RA451", file=str(p), line=n, path=str(p),
                                       reason="a row must be a JSON object"))
            continue
        missing = [k for k in ("rule_id", "prompt", "response", "label")
                   if not isinstance(row.get(k), str) or not row.get(k)]
        if missing:
            problems.append(diagnostic("RA451", file=str(p), line=n, path=str(p),
                                       reason=f"missing or empty {', '.join(missing)}"))
            continue
        if row["rule_id"] not in known:
            from rulealign.errors import did_you_mean

            problems.append(diagnostic(
                "RA451", file=str(p), line=n, path=str(p),
                reason=f"unknown rule '{row['rule_id']}'{did_you_mean(row['rule_id'], known)}"))
            continue
        if row["label"] not in JUDGE_LABELS:
            problems.append(diagnostic(
                "RA451", file=str(p), line=n, path=str(p),
                reason=f"unknown label '{row['label']}' (use {', '.join(JUDGE_LABELS)})"))
            continue
        if split is not None and split != "all" and row.get("split", "") != split:
            continue
        items.append(LabelledItem(id=str(row.get("id") or f"{p.name}:{n}"),
                                  rule_id=row["rule_id"], prompt=row["prompt"],
                                  response=row["response"], label=row["label"],
                                  split=str(row.get("split", "")), case=str(row.get("case", "")),
                                  line=n))
    if problems:
        raise RulealignError(problems)
    return items


class Agreement(BaseModel):
    """A judge's agreement with human labels (three labels: complies, violates,
    not_applicable; an undecided verdict counts as wrong)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    judge: str
    source: str
    n: int
    correct: int
    accuracy: float | None
    accuracy_ci: tuple[float, float]
    macro_f1: float | None
    kappa: float | None
    base_rate: float | None            # share of the most common label: chance
    trusted: bool                      # the interval's lower end is above chance
    by_stage: dict[str, int] = {}
    confusion: dict[str, int] = {}     # "want->got"
    per_rule: dict[str, tuple[int, int]] = {}
    flips: tuple[int, int] | None = None   # (consistent, n) rule-flip pairs
    note: str = ""

    @property
    def calibrated(self) -> bool:
        return self.n > 0

    def headline(self) -> str:
        if not self.n:
            return f"judge {self.judge}: uncalibrated ({self.note or 'no human labels'})"
        lo, hi = self.accuracy_ci
        verdict = "better than chance" if self.trusted else "NOT shown better than chance"
        return (f"judge {self.judge}: {self.correct}/{self.n} human labels agreed "
                f"({self.accuracy:.0%}, 95% CI {lo:.0%}-{hi:.0%}; chance {self.base_rate:.0%}; "
                f"macro-F1 {self.macro_f1:.2f}, kappa {self.kappa:.2f}): {verdict}")


def agreement(judge: str, source: str, wanted: Sequence[str], got: Sequence[str],
              rule_ids: Sequence[str], *, by: Sequence[str] = (),
              flips: tuple[int, int] | None = None, note: str = "") -> Agreement:
    from rulealign.stats import wilson

    n = len(wanted)
    if not n:
        return Agreement(judge=judge, source=source, n=0, correct=0, accuracy=None,
                         accuracy_ci=(0.0, 1.0), macro_f1=None, kappa=None, base_rate=None,
                         trusted=False, note=note or "no human labels")
    correct = sum(w == g for w, g in zip(wanted, got, strict=True))
    acc = correct / n
    ci = wilson(correct, n)
    counts = Counter(wanted)
    base = max(counts.values()) / n
    f1s = []
    for lab in JUDGE_LABELS:
        tp = sum(w == lab and g == lab for w, g in zip(wanted, got, strict=True))
        fp = sum(w != lab and g == lab for w, g in zip(wanted, got, strict=True))
        fn = sum(w == lab and g != lab for w, g in zip(wanted, got, strict=True))
        if tp + fp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    got_counts = Counter(got)
    expected = sum(counts[lab] * got_counts[lab] for lab in set(counts) | set(got_counts)) / n / n
    kappa = (acc - expected) / (1 - expected) if expected < 1 else 0.0
    per_rule: dict[str, list[int]] = {}
    for w, g, r in zip(wanted, got, rule_ids, strict=True):
        pr = per_rule.setdefault(r, [0, 0])
        pr[0] += w == g
        pr[1] += 1
    return Agreement(
        judge=judge, source=source, n=n, correct=correct, accuracy=acc, accuracy_ci=ci,
        macro_f1=sum(f1s) / len(f1s) if f1s else None, kappa=kappa, base_rate=base,
        trusted=ci[0] > base, by_stage=dict(Counter(by)),
        confusion=dict(Counter(f"{w}->{g}" for w, g in zip(wanted, got, strict=True))),
        per_rule={k: (a, b) for k, (a, b) in sorted(per_rule.items())}, flips=flips, note=note)


def measure(policy: Policy, items: Sequence[LabelledItem], *, small: object = None,
            llm: object = None, judge: str, source: str, flips: bool = True) -> Agreement:
    """Run the verdict cascade on labelled items and measure agreement. With ``flips``,
    every complies/violates item is also judged against an unrelated rule, where the right
    verdict is not_applicable (rule-flip consistency)."""
    from rulealign.verdict.cascade import decide
    from rulealign.verdict.data import unrelated_rules
    from rulealign.verdict.models import Case

    index = policy.index()["rules"]
    cases = [Case(rules=(index[it.rule_id],), prompt=it.prompt, reply=it.response)
             for it in items]
    flip_cases = []
    if flips:
        for it in items:
            if it.label == "not_applicable":
                continue
            for other in unrelated_rules(policy, index[it.rule_id], 1, it.id):
                flip_cases.append(Case(rules=(other,), prompt=it.prompt, reply=it.response))
    verdicts = decide(cases + flip_cases, small=small, llm=llm)  # type: ignore[arg-type]
    main, flipped = verdicts[:len(cases)], verdicts[len(cases):]
    flip_score = ((sum(v.label == "not_applicable" for v in flipped), len(flipped))
                  if flip_cases else None)
    return agreement(judge, source, [it.label for it in items], [v.label for v in main],
                     [it.rule_id for it in items], by=[v.by for v in main], flips=flip_score)

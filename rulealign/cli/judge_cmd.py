"""``rulealign judge``: train the small judge for a policy and measure it on labelled data."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rulealign.cli.output import print_diagnostics, table
from rulealign.errors import RulealignError

HELP = """The small judge: a sentence encoder (all-MiniLM-L6-v2, shipped in a package) tuned on
CPU for one policy so that exchanges with the same label under a rule embed together, and an
index of each rule's labelled exchanges: the spec's examples, replies whose label is fixed by
construction (and a synth run's accepted pairs with --data). A new exchange takes the label of
the exchanges of its rule it is most like, or not_applicable if it is like none of them. It
decides what programmatic checks cannot; its agreement with human labels is measured by
'judge eval'. The more labelled examples a rule has, the better its verdicts.

examples:
  rulealign judge train specs/acme-support.yaml --out judges/acme
  rulealign judge train specs/acme-support.yaml --data runs/acme/synth/data --out judges/acme
  rulealign judge eval specs/acme-support.yaml specs/acme-support.eval.jsonl --judge judges/acme
  rulealign judge eval specs/acme-support.yaml specs/acme-support.eval.jsonl --split dev
"""


def add_judge_options(p: argparse.ArgumentParser) -> None:
    """The judge options of the commands that give verdicts (audit, run)."""
    p.add_argument("--judge", default=None, metavar="DIR",
                   help="a small judge trained with 'rulealign judge train' (default: the "
                        "policy's own, trained on first use and cached)")
    p.add_argument("--judge-model", default=None,
                   help="an LLM judge (local checkpoint or, with openai, a served model) asked "
                        "where the small judge is unsure; default: none")
    p.add_argument("--labelled", default=None, metavar="JSONL",
                   help="human-labelled replies the judge is measured on (default: the "
                        "spec's NAME.eval.jsonl beside it, if any); without, reports say "
                        "the judge is uncalibrated")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("judge", help="train and measure the small judge", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    tr = verbs.add_parser("train", help="tune the small judge for a policy",
                          description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    tr.add_argument("spec", help="rule spec (YAML)")
    tr.add_argument("--out", required=True, help="judge folder (replaced atomically)")
    tr.add_argument("--data", action="append", default=[],
                    help="a synth data folder whose accepted pairs.train.jsonl add training rows")
    tr.add_argument("--no-spec-examples", action="store_true",
                    help="train without the spec's human-written examples (constructed data only)")
    tr.add_argument("--epochs", type=float, default=None)
    tr.add_argument("--seed", type=int, default=0)
    tr.set_defaults(func=train_cmd)
    ev = verbs.add_parser("eval", help="agreement of the verdict cascade with human labels",
                          description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("spec", help="rule spec (YAML)")
    ev.add_argument("labelled", help="JSONL: rule_id, prompt, response, label per row")
    ev.add_argument("--judge", help="judge folder (default: train or reuse the cached one)")
    ev.add_argument("--split", default="all", help="only rows with this 'split' (default all)")
    ev.add_argument("--json", action="store_true", help="print the agreement as JSON")
    ev.set_defaults(func=eval_cmd)


def train_cmd(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from rulealign.compiler.loader import load_policy
    from rulealign.verdict.data import training_rows
    from rulealign.verdict.small_judge import JudgeSettings, train_judge

    try:
        policy = load_policy(args.spec)
        rows = training_rows(policy, args.data, spec_examples=not args.no_spec_examples)
        s = JudgeSettings(seed=args.seed)
        if args.epochs is not None:
            s = replace(s, epochs=args.epochs)
        judge = train_judge(policy, rows, args.out, settings=s,
                            say=lambda m: print(m, file=sys.stderr, flush=True))
    except RulealignError as exc:
        print_diagnostics(exc.diagnostics)
        return 1
    m = judge.meta
    print(f"judge for {policy.id}: {m['rows']} rows, {m['steps']} steps, "
          f"loss {m['train_loss']:.3f}, {m['seconds']:.0f} s -> {judge.path}")
    table(["kind (label source/origin/label)", "rows"], sorted(m["rows_by_kind"].items()))
    return 0


def eval_cmd(args: argparse.Namespace) -> int:
    from rulealign.compiler.loader import load_policy
    from rulealign.verdict.calibration import measure, read_labelled
    from rulealign.verdict.small_judge import SmallJudge

    try:
        policy = load_policy(args.spec)
        items = read_labelled(args.labelled, policy, split=args.split)
        if args.judge:
            judge = SmallJudge(args.judge)
            judge.check_policy(policy)
        else:
            from rulealign.verdict.run import policy_judge

            judge = policy_judge(policy, say=lambda m: print(m, file=sys.stderr, flush=True))
        agr = measure(policy, items, small=judge, judge=judge.name,
                      source=f"{Path(args.labelled).name} (split {args.split})")
    except RulealignError as exc:
        print_diagnostics(exc.diagnostics)
        return 1
    if args.json:
        print(json.dumps(agr.model_dump(mode="json"), indent=2))
        return 0
    print(agr.headline())
    if agr.flips:
        k, n = agr.flips
        print(f"rule flips judged consistently (unrelated rule -> not_applicable): {k}/{n}"
              f" ({k / max(n, 1):.0%})")
    print()
    table(["want -> got", "n"], sorted(agr.confusion.items()))
    print()
    worst = sorted(agr.per_rule.items(), key=lambda kv: (kv[1][0] / kv[1][1], kv[0]))
    table(["rule", "right", "n", "accuracy"],
          [(r, k, n, f"{k / n:.0%}") for r, (k, n) in worst])
    return 0

"""``rulealign run``: the main job, from a policy to an audited, aligned model."""

from __future__ import annotations

import argparse
from pathlib import Path

from rulealign.cli.judge_cmd import add_judge_options
from rulealign.cli.output import print_diagnostics
from rulealign.cli.train_cmd import add_recipe_options
from rulealign.errors import RulealignError

HELP = """examples:
  rulealign run specs/acme-support.yaml --out runs/acme
  rulealign run specs/acme-support.yaml --out runs/acme --per-rule 3 --fail-under 0.8
  rulealign run policy.md --out runs/draft        # rules drafted from a document first

Stages: compile -> graph -> judge -> synth -> train (DPO with an SFT loss, LoRA) -> audit
-> report. Each stage is skipped when its inputs are unchanged; a stopped run started again
finishes without redoing completed work. The run folder holds the compiled spec, the graph,
the data, the adapters, the reports, the generation log and manifest.json.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="compile, synthesize, train and audit in one resumable run",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="SPEC_OR_DOCUMENT",
                   help="a rule spec (.yaml) or a policy document (.md, .txt, .html, .pdf)")
    p.add_argument("--out", required=True, help="the run folder, e.g. runs/acme")
    p.add_argument("--backend", default="auto", help="auto, vllm or transformers")
    p.add_argument("--model", default="default", help="'default' or a local checkpoint")
    p.add_argument("--seed", type=int, default=0)
    from rulealign.workflow import RunSettings

    d = RunSettings()
    p.add_argument("--per-rule", type=int, default=d.per_rule,
                   help=f"boundary scenarios per rule (default {d.per_rule}; 0 = every "
                        "planned one)")
    p.add_argument("--rounds", type=int, default=d.rounds,
                   help=f"retries of a reply the verdicts did not confirm (default "
                        f"{d.rounds})")
    p.add_argument("--qa-per-clause", type=int, default=d.qa_per_clause)
    p.add_argument("--topup", type=int, default=d.topup,
                   help="coverage top-up rounds: retry every rule x axis cell without a pair "
                        f"(default {d.topup})")
    p.add_argument("--model-writes", action="store_true",
                   help="let the model write a user message where none can be built from the "
                        "spec's example messages (worth it with a capable --model)")
    p.add_argument("--model-replies", action="store_true",
                   help="let the model write every reply, even where the spec's own replies "
                        "to the message a built one was made from keep their labels")
    p.add_argument("--heldout", type=float, default=0.3,
                   help="share of scenarios held out for the audit (default 0.3)")
    p.add_argument("--rules", default=None, help="only these rule ids (comma-separated)")
    add_recipe_options(p)
    p.add_argument("--no-train", action="store_true", help="audit the base model only")
    p.add_argument("--no-likelihood", action="store_true", help="skip the likelihood audit")
    add_judge_options(p)
    p.add_argument("--fail-under", type=float, default=None, metavar="RATE",
                   help="exit 1 when a clause's compliance (aligned model) is below RATE")
    p.set_defaults(func=run_cmd)


def run_cmd(args: argparse.Namespace) -> int:
    from rulealign.cli.audit_cmd import print_summary
    from rulealign.workflow import RunSettings, run

    settings = RunSettings(
        backend=args.backend, model=args.model, seed=args.seed,
        per_rule=args.per_rule or None, rounds=args.rounds, qa_per_clause=args.qa_per_clause,
        topup=args.topup, model_writes=args.model_writes, model_replies=args.model_replies,
        heldout=args.heldout, rules=tuple(args.rules.split(",")) if args.rules else None,
        train=not args.no_train, method=args.method, sft_steps=args.sft_steps,
        pref_steps=args.pref_steps, pref_lr=args.pref_lr, sft_weight=args.sft_weight,
        likelihood=not args.no_likelihood,
        fail_under=args.fail_under, judge_model=args.judge_model, judge=args.judge,
        labelled=args.labelled)
    try:
        result = run(args.source, args.out, settings)
    except RulealignError as exc:
        print_diagnostics(exc.diagnostics)
        return 1
    print()
    print_summary(result.report, Path(args.out) / "audit")
    stages = ", ".join(f"{name} reused" if name in result.reused else
                       f"{name} {rec.get('seconds', 0):.0f} s"
                       for name, rec in result.stages.items())
    print(f"\nrun folder: {Path(args.out).resolve()} (manifest.json); {result.seconds:.0f} s in "
          f"all ({stages})")
    report = result.report
    return 1 if report.gate is not None and not report.gate.passed else 0

"""``rulealign audit``: how well a model follows the rules (so far: the likelihood audit)."""

from __future__ import annotations

import argparse
import json

from rulealign.cli.output import print_diagnostics, table
from rulealign.errors import RulealignError

HELP = """examples:
  rulealign audit likelihood runs/acme/synth/data/pairs.heldout.jsonl
  rulealign audit likelihood runs/acme/synth/data/pairs.heldout.jsonl \\
      --adapter runs/acme/train/ipo/adapter -o after.json
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="audit a model against the rules", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    lik = verbs.add_parser("likelihood", help="per rule: does the model prefer the compliant "
                           "response of held-out pairs, and by what margin")
    lik.add_argument("data", help="pairs JSONL (prompt, chosen, rejected, meta.rule_ids)")
    lik.add_argument("--model", default="default", help="'default' or a local checkpoint")
    lik.add_argument("--adapter", default=None, help="a LoRA adapter folder to apply")
    lik.add_argument("--batch-size", type=int, default=8)
    lik.add_argument("-o", "--output", default=None, help="write the result as JSON")
    lik.add_argument("--json", action="store_true", help="print JSON")
    lik.set_defaults(func=likelihood)


def likelihood(args: argparse.Namespace) -> int:
    from rulealign.audit.preference import audit_preferences
    from rulealign.fileio import atomic_write_text

    try:
        result = audit_preferences(args.data, args.model, args.adapter,
                                   batch_size=args.batch_size)
        if args.output:
            atomic_write_text(args.output, result.model_dump_json(indent=2))
    except RulealignError as exc:
        print_diagnostics(exc.diagnostics)
        return 1
    if args.json:
        print(json.dumps(result.model_dump(mode="json"), indent=2))
        return 0
    table(["rule", "n", "prefers compliant", "95% CI", "mean margin", "per token"],
          [(r.rule_id, r.n, f"{r.accuracy:.0%}",
            f"{r.accuracy_ci[0]:.0%}–{r.accuracy_ci[1]:.0%}", f"{r.mean_margin:+.2f}",
            f"{r.mean_margin_normalised:+.3f}") for r in result.rules])
    lo, hi = result.accuracy_ci
    print(f"\n{result.model}{' + ' + result.adapter if result.adapter else ''}: prefers the "
          f"compliant response in {result.accuracy:.0%} of {result.n} pairs "
          f"(95% CI {lo:.0%}–{hi:.0%}), {result.n / max(result.seconds, 1e-9):.1f} pairs/s")
    return 0

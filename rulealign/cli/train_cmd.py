"""``rulealign train``: run a training config with TRL."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from rulealign.cli.output import print_diagnostics, table
from rulealign.errors import RulealignError

HELP = """Train with TRL (SFT, DPO, IPO, KTO, ORPO; LoRA by default). Settings after the config
file override it, TRL-style.

examples:
  rulealign train run configs/ipo.yaml
  rulealign train run configs/ipo.yaml --learning_rate 1e-5 --max_steps 50
  rulealign train run configs/sft.yaml --method sft --lora.r 8
  rulealign train recipe runs/acme/synth/data --out runs/acme/train
  accelerate launch --config_file configs/accelerate/zero2.yaml -m rulealign train run configs/ipo.yaml
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on synthesized data", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    run = verbs.add_parser("run", help="run one training config (resumes if stopped)",
                           description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("config", help="YAML training config")
    run.add_argument("--force", action="store_true", help="train again even if already done")
    run.add_argument("--json", action="store_true", help="print the final metrics as JSON")
    run.set_defaults(func=run_cmd, accepts_extra=True)
    rec = verbs.add_parser("recipe", help="the default recipe: DPO with an SFT loss (optionally "
                           "after SFT steps; resumable)", description=HELP,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    rec.add_argument("data", help="folder with sft.train.jsonl and pairs.train.jsonl "
                     "(as 'rulealign synth run' writes them)")
    rec.add_argument("--out", required=True, help="output folder (METHOD/ inside; sft/ too with --sft-steps)")
    rec.add_argument("--model", default="default", help="'default' or a local checkpoint")
    add_recipe_options(rec)
    rec.add_argument("--seed", type=int, default=0)
    rec.set_defaults(func=recipe_cmd)


def _progress(entry: dict[str, Any], started: list[float]) -> None:
    step, total = entry.get("step", 0), entry.get("max_steps", 0)
    shown = {k: entry[k] for k in ("loss", "rewards/margins", "rewards/accuracies", "kl",
                                   "learning_rate") if k in entry}
    elapsed = time.monotonic() - started[0]
    eta = elapsed / step * (total - step) if step else 0.0
    parts = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in shown.items())
    print(f"step {step}/{total}  {parts}  ({elapsed:.0f}s, ~{eta:.0f}s left)", file=sys.stderr,
          flush=True)


def run_cmd(args: argparse.Namespace) -> int:
    from rulealign.train.config import load_train_config, parse_overrides
    from rulealign.train.run import train

    started = [time.monotonic()]
    try:
        cfg = load_train_config(args.config, parse_overrides(getattr(args, "extra", [])))
        result = train(cfg, progress=lambda e: _progress(e, started), force=args.force)
    except RulealignError as exc:
        print_diagnostics(exc.diagnostics)
        return 1
    if args.json:
        print(json.dumps(result.metrics["train"], indent=2, default=str))
        return 0
    state = "already trained (inputs unchanged)" if result.reused else "trained"
    print(f"{cfg.method}: {state} -> {result.adapter}")
    table(["metric", "value"], sorted(result.metrics["train"].items()))
    return 0


def add_recipe_options(p: argparse.ArgumentParser) -> None:
    """The default recipe's options (``train recipe`` and ``run``), defaults from
    :mod:`rulealign.train.recipe`."""
    from rulealign.train import recipe

    p.add_argument("--method", default="dpo", choices=("dpo", "ipo", "kto", "orpo"),
                   help="preference method (default dpo)")
    p.add_argument("--sft-steps", type=int, default=recipe.SFT_STEPS,
                   help=f"SFT steps before it (default {recipe.SFT_STEPS}: none)")
    p.add_argument("--pref-steps", type=int, default=recipe.PREF_STEPS)
    p.add_argument("--pref-lr", type=float, default=recipe.PREF_LR,
                   help=f"learning rate of the preference step (default {recipe.PREF_LR:g})")
    p.add_argument("--sft-weight", type=float, default=recipe.SFT_WEIGHT,
                   help="weight of the SFT loss on the chosen reply in the DPO/IPO step "
                   f"(default {recipe.SFT_WEIGHT:g}; 0: the pairwise loss alone)")


def recipe_cmd(args: argparse.Namespace) -> int:
    from rulealign.train.recipe import default_recipe
    from rulealign.train.run import train

    started = [time.monotonic()]
    try:
        configs = default_recipe(args.data, args.out, model=args.model,
                                 sft_steps=args.sft_steps, pref_steps=args.pref_steps,
                                 method=args.method, pref_lr=args.pref_lr,
                                 sft_weight=args.sft_weight, seed=args.seed)
        rows = []
        for cfg in configs:
            print(f"-- {cfg.method} -> {cfg.output_dir}", file=sys.stderr)
            started[0] = time.monotonic()
            result = train(cfg, progress=lambda e: _progress(e, started))
            rows.append((cfg.method, "reused" if result.reused else "trained",
                         f"{result.metrics['train'].get('train_loss', float('nan')):.4f}",
                         str(result.adapter)))
    except RulealignError as exc:
        print_diagnostics(exc.diagnostics)
        return 1
    table(["step", "state", "train loss", "adapter"], rows, max_width=80)
    return 0

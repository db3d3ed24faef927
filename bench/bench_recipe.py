"""Recipe benchmark (not a test): which training recipe moves the default model on held-out,
human-written reply pairs, and at what cost in time.

For a run folder made by ``rulealign run`` (its ``synth/data`` holds ``sft.train.jsonl`` and
``pairs.train.jsonl``) and the spec's evaluation set (``specs/NAME.eval.jsonl``, never used for
training): the base model's likelihood preference on the set's pairs (same user message, a
compliant and a violating reply), then for each recipe asked for, the preference after
training, the paired change with its 95% bootstrap interval, and the training time.

    python bench/bench_recipe.py runs/acme --spec specs/acme-support.yaml \
        --recipes "ipo:10,ipo:40,dpo:40,sft:0+dpo:40"

A recipe is ``[sft:STEPS+]METHOD:STEPS[@LR]``; ``sft:0`` skips SFT. Writes
bench/results/recipe.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from rulealign.audit.heldout import labelled_pairs  # noqa: E402
from rulealign.audit.preference import audit_preferences  # noqa: E402
from rulealign.audit.report import change  # noqa: E402
from rulealign.compiler.loader import load_policy  # noqa: E402
from rulealign.train.recipe import default_recipe  # noqa: E402
from rulealign.train.run import train  # noqa: E402
from rulealign.verdict.calibration import eval_set_for  # noqa: E402


def parse(recipe: str) -> dict[str, Any]:
    sft_steps, pref = 16, recipe
    if "+" in recipe:
        head, pref = recipe.split("+", 1)
        sft_steps = int(head.split(":")[1])
    lr = None
    if "@" in pref:
        pref, lr_s = pref.split("@", 1)
        lr = float(lr_s)
    method, steps = pref.split(":")
    return {"method": method, "steps": int(steps), "sft_steps": sft_steps, "lr": lr}


def run_recipe(data: Path, out: Path, r: dict[str, Any]) -> tuple[str, float, dict[str, Any]]:
    trl: dict[str, Any] = {}
    configs = default_recipe(data, out, sft_steps=max(r["sft_steps"], 1),
                             pref_steps=max(r["steps"], 1), method=r["method"], trl=trl)
    if r["sft_steps"] == 0:          # preference training straight from the base model
        pref = configs[1].model_copy(update={"init_adapter": None})
        configs = [pref]
    if r["lr"] is not None:
        configs[-1] = configs[-1].model_copy(
            update={"trl": {**configs[-1].trl, "learning_rate": r["lr"]}})
    t0 = time.perf_counter()
    losses = {}
    for cfg in configs:
        res = train(cfg)
        losses[cfg.method] = (res.metrics.get("train") or {}).get("train_loss")
    return str(Path(configs[-1].output_dir) / "adapter"), time.perf_counter() - t0, losses


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", help="a rulealign run folder (runs/acme)")
    ap.add_argument("--spec", required=True)
    ap.add_argument("--recipes", default="ipo:10,ipo:40,dpo:40")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "recipe.json"))
    ap.add_argument("--strip-system", action="store_true",
                    help="train on the prompts without the rules as a system message")
    args = ap.parse_args()

    policy = load_policy(args.spec)
    labelled = eval_set_for(args.spec)
    if labelled is None:
        sys.exit(f"{args.spec} has no evaluation set beside it")
    pairs = labelled_pairs(labelled, policy)
    data = Path(args.run) / "synth" / "data"
    tmp_data = Path(tempfile.mkdtemp(prefix="recipe-data-"))
    if args.strip_system:
        for f in ("sft.train.jsonl", "pairs.train.jsonl", "kto.train.jsonl"):
            if not (data / f).exists():
                continue
            rows = [json.loads(line) for line in (data / f).read_text().splitlines() if line]
            for r in rows:
                for k in ("messages", "prompt"):
                    if isinstance(r.get(k), list):
                        r[k] = [m for m in r[k] if m["role"] != "system"]
            (tmp_data / f).write_text("".join(json.dumps(r) + "\n" for r in rows))
        data = tmp_data
    t0 = time.perf_counter()
    base = audit_preferences(pairs, "default", None, name=labelled.name)
    score_s = time.perf_counter() - t0
    print(f"{len(pairs)} held-out pairs from {labelled.name}; base prefers compliant in "
          f"{base.accuracy:.1%} ({score_s:.0f} s to score)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, spec in enumerate(args.recipes.split(",")):
            r = parse(spec.strip())
            adapter, secs, losses = run_recipe(data, Path(tmp) / f"r{i}", r)
            after = audit_preferences(pairs, "default", adapter, name=labelled.name)
            before_w = {p.id: float(p.prefers_compliant) for p in base.pairs}
            ch = change("preference", [before_w[p.id] for p in after.pairs],
                        [float(p.prefers_compliant) for p in after.pairs])
            margin = sum(p.margin_normalised for p in after.pairs) / max(len(after.pairs), 1)
            row = {"recipe": spec.strip(), **r, "train_seconds": round(secs, 1),
                   "losses": losses, "after": after.accuracy, "diff": ch.diff,
                   "ci": list(ch.ci), "reading": ch.reading, "mean_margin": margin}
            rows.append(row)
            print(f"{spec.strip() + (' (no system)' if args.strip_system else ''):<22} train {secs:6.0f} s  prefers compliant "
                  f"{base.accuracy:.1%} -> {after.accuracy:.1%}  change {ch.diff * 100:+.1f} "
                  f"points ({ch.ci[0] * 100:+.1f} to {ch.ci[1] * 100:+.1f}) {ch.reading}",
                  flush=True)
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "spec": args.spec, "pairs": len(pairs), "base": base.accuracy,
              "score_seconds": round(score_s, 1),
              "train_rows": {f: len((data / f).read_text(encoding="utf-8").splitlines())
                             for f in ("sft.train.jsonl", "pairs.train.jsonl")
                             if (data / f).exists()},
              "recipes": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Recipe benchmark (not a test): which training recipe moves the default model on held-out,
human-written reply pairs, and at what cost in time.

For a run folder made by ``rulealign run`` (its ``synth/data`` holds ``sft.train.jsonl`` and
``pairs.train.jsonl``) and the spec's evaluation set (``specs/NAME.eval.jsonl``, never used for
training): the base model's likelihood preference on the set's pairs (same user message, a
compliant and a violating reply), then for each recipe asked for, the preference after
training, the paired change with its 95% bootstrap interval, and the training time.

    python bench/bench_recipe.py runs/acme --spec specs/acme-support.yaml \
        --recipes "ipo:10,ipo:40,dpo:40,sft:0+dpo:40"

A recipe is ``[sft:STEPS+]METHOD:STEPS[@LR]``; ``sft:0`` skips SFT; ``adapter=PATH``
measures an adapter trained before (for example a run's ``train/dpo/adapter``). METHOD
``rpo`` is DPO with TRL's SFT loss on the chosen reply added at weight 1 (``sft_weight``,
``loss_type: [sigmoid, sft]``), which keeps the compliant replies likely while the pair
margin grows. With ``--answers N`` the base model and each trained adapter also answer N of
the set's user messages (greedy, the audit's token budget) and the bench prints how many
answers ran out of tokens and how repetitive they are (share of repeated word 4-grams): a
likelihood gain bought with a model that no longer writes sentences shows there. Writes bench/results/recipe.json.
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
    sft_weight = 0.0
    if method == "rpo":
        method, sft_weight = "dpo", 1.0
    return {"method": method, "steps": int(steps), "sft_steps": sft_steps, "lr": lr,
            "sft_weight": sft_weight}


def repetition(text: str, n: int = 4) -> float:
    """Share of the word n-grams of ``text`` that repeat an earlier one."""
    words = text.split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def fluency(backend: Any, items: list[Any], adapter: str | None) -> dict[str, Any]:
    from rulealign.audit.generative import answer

    t0 = time.perf_counter()
    got = answer(backend, items, adapter=adapter)
    return {"answers": len(got), "truncated": sum(t for _, t in got),
            "repetition": round(sum(repetition(a) for a, _ in got) / max(len(got), 1), 3),
            "seconds": round(time.perf_counter() - t0, 1),
            "examples": [a[:200] for a, _ in got[:3]]}


def run_recipe(data: Path, out: Path, r: dict[str, Any]) -> tuple[str, float, dict[str, Any]]:
    trl: dict[str, Any] = {}
    configs = default_recipe(data, out, sft_steps=r["sft_steps"],
                             pref_steps=max(r["steps"], 1), method=r["method"], trl=trl,
                             sft_weight=r["sft_weight"])
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
    ap.add_argument("--answers", type=int, default=0,
                    help="also answer N of the set's user messages and measure fluency")
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
    backend, items, base_fluency = None, [], None
    if args.answers:
        import random

        from rulealign.audit.heldout import labelled_items
        from rulealign.llm import load_backend

        items = labelled_items(labelled, policy)
        items = random.Random(0).sample(items, min(args.answers, len(items)))
        backend = load_backend("transformers", "default")
        base_fluency = fluency(backend, items, None)
        print(f"base: {base_fluency['truncated']}/{len(items)} answers out of tokens, "
              f"repetition {base_fluency['repetition']:.3f}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, spec in enumerate(args.recipes.split(",")):
            if spec.strip().startswith("adapter="):  # an adapter trained before: measured only
                r = {"adapter": spec.strip().split("=", 1)[1]}
                adapter, secs, losses = r["adapter"], 0.0, {}
            else:
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
            if backend is not None:
                row["fluency"] = fluency(backend, items, adapter)
            rows.append(row)
            print(f"{spec.strip() + (' (no system)' if args.strip_system else ''):<22} train {secs:6.0f} s  prefers compliant "
                  f"{base.accuracy:.1%} -> {after.accuracy:.1%}  change {ch.diff * 100:+.1f} "
                  f"points ({ch.ci[0] * 100:+.1f} to {ch.ci[1] * 100:+.1f}) {ch.reading}"
                  + (f"; {row['fluency']['truncated']}/{len(items)} answers out of tokens, "
                     f"repetition {row['fluency']['repetition']:.3f}" if backend else ""),
                  flush=True)
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "spec": args.spec, "pairs": len(pairs), "base": base.accuracy,
              "score_seconds": round(score_s, 1), "base_fluency": base_fluency,
              "train_rows": {f: len((data / f).read_text(encoding="utf-8").splitlines())
                             for f in ("sft.train.jsonl", "pairs.train.jsonl")
                             if (data / f).exists()},
              "recipes": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

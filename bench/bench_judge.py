"""Judge benchmark (not a test): the trained small judge beside the 135M LLM judge.

For each shipped spec with a human evaluation set (``specs/NAME.eval.jsonl``):

1. training time of the small judge (the policy's data: spec examples, constructed replies),
   measured fresh (not from the cache) unless --cached;
2. agreement with the human labels (accuracy with Wilson interval, macro-F1, kappa, chance,
   rule flips judged consistently) on the split asked for (default dev);
3. verdicts per minute of the small judge on every eval item, and of the default 135M model
   as constrained LLM judge on the first --llm-items items (same items, same machine, same run).

    python bench/bench_judge.py [--split dev] [--llm-items 48] [--specs acme-support,...]

Writes bench/results/judge.json.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")

from rulealign.compiler.loader import load_policy  # noqa: E402
from rulealign.verdict.calibration import eval_set_for, measure, read_labelled  # noqa: E402
from rulealign.verdict.cascade import decide  # noqa: E402
from rulealign.verdict.data import training_rows  # noqa: E402
from rulealign.verdict.models import Case  # noqa: E402
from rulealign.verdict.small_judge import train_judge  # noqa: E402


def bench_spec(spec: Path, split: str, llm_items: int, backend_name: str) -> dict[str, object]:
    policy = load_policy(spec)
    rows = training_rows(policy)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        judge = train_judge(policy, rows, Path(tmp) / "judge")
        train_s = time.perf_counter() - t0
        items = read_labelled(eval_set_for(spec), policy, split=split)
        agr = measure(policy, items, small=judge, judge=judge.name, source=split)
        everything = read_labelled(eval_set_for(spec), policy)
        cases = [Case(rules=(policy.rule(it.rule_id),), prompt=it.prompt, reply=it.response)
                 for it in everything]
        judge.judge(cases[:8])  # load the model before timing
        t0 = time.perf_counter()
        decide(cases, small=judge)
        small_s = time.perf_counter() - t0
    llm = bench_llm(policy, cases[:llm_items], backend_name) if llm_items else None
    return {"spec": spec.name, "rules": len(policy.rules), "training_rows": len(rows),
            "train_s": round(train_s, 1), "steps": judge.meta["steps"],
            "agreement": agr.model_dump(mode="json"),
            "small_judge_verdicts_per_min": round(60 * len(cases) / small_s),
            "small_judge_items": len(cases), "llm_judge": llm}


def bench_llm(policy: object, cases: list[Case], backend_name: str) -> dict[str, object]:
    from rulealign.llm import load_backend
    from rulealign.verdict.llm_judge import backend_judge

    t0 = time.perf_counter()
    backend = load_backend(backend_name, "default")
    start = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        verdicts = decide(cases, llm=backend_judge(backend))
        dt = time.perf_counter() - t0
    finally:
        backend.close()
    return {"backend": backend.name, "items": len(cases), "engine_start_s": round(start, 1),
            "seconds": round(dt, 1), "verdicts_per_min": round(60 * len(cases) / dt, 1),
            "undecided": sum(v.label == "undecided" for v in verdicts)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", default="dev")
    ap.add_argument("--llm-items", type=int, default=48)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--specs", default="acme-support,northwind-conduct,contributor-covenant")
    args = ap.parse_args()
    results = []
    for name in args.specs.split(","):
        r = bench_spec(ROOT / "specs" / f"{name}.yaml", args.split,
                       args.llm_items if not results else 0, args.backend)
        results.append(r)
        a = r["agreement"]
        print(f"\n{name}: {r['rules']} rules, judge trained on {r['training_rows']} rows in "
              f"{r['train_s']} s ({r['steps']} steps)")
        print(f"  split {args.split}: accuracy {a['accuracy']:.2f} (95% CI "
              f"{a['accuracy_ci'][0]:.2f}-{a['accuracy_ci'][1]:.2f}; chance {a['base_rate']:.2f}), "
              f"macro-F1 {a['macro_f1']:.2f}, kappa {a['kappa']:.2f}, n={a['n']}; rule flips "
              f"{a['flips'][0]}/{a['flips'][1]}")
        print(f"  small judge: {r['small_judge_verdicts_per_min']} verdicts/min on "
              f"{r['small_judge_items']} items")
        if r["llm_judge"]:
            llm = r["llm_judge"]
            print(f"  135M LLM judge ({llm['backend']}): {llm['verdicts_per_min']} verdicts/min "
                  f"on {llm['items']} items (engine start {llm['engine_start_s']} s not "
                  f"counted; {llm['undecided']} undecided)")
    out = {"date": time.strftime("%Y-%m-%d"), "machine": {
        "cpus": os.cpu_count(), "platform": platform.platform()}, "results": results}
    path = ROOT / "bench" / "results" / "judge.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()

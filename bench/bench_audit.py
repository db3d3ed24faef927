"""Audit benchmark on the default model (not a test).

1. Likelihood audit: held-out pairs scored per second, batched (8 pairs = 16 sequences per
   forward pass) against one pair at a time, on the same pairs, with the same scores.
2. Generative audit: answers audited per minute (the model answers, then checks and the
   model itself as constrained LLM judge give the verdict; bench_judge.py compares judges), with the engine's start-up time reported apart.

The pairs and prompts are the labelled examples of the three shipped specs (every prompt
with its compliant and violating answer), repeated with distinct suffixes up to --pairs.

    python bench/bench_audit.py [--pairs 48] [--prompts 32] [--backend auto]

Writes bench/results/audit.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")

from rulealign.audit.generative import AuditItem, answer, judge  # noqa: E402
from rulealign.compiler.loader import load_policy  # noqa: E402
from rulealign.verdict.llm_judge import backend_judge  # noqa: E402


def labelled(n: int) -> list[tuple[object, object, str, str, str]]:
    """(policy, rule, prompt, compliant, violating), cycled to ``n`` with distinct prompts."""
    base = []
    for spec in sorted((ROOT / "specs").glob("*.yaml")):
        policy = load_policy(spec)
        for rule in policy.rules:
            for ex in rule.examples:
                if ex.compliant and ex.violating:
                    base.append((policy, rule, ex.prompt, ex.compliant, ex.violating))
    out = []
    for i in range(n):
        policy, rule, prompt, good, bad = base[i % len(base)]
        suffix = "" if i < len(base) else f" (case {i // len(base)})"
        out.append((policy, rule, prompt + suffix, good, bad))
    return out


def bench_likelihood(n_pairs: int) -> dict[str, object]:
    from rulealign.audit.likelihood import load_scoring_model, score_pairs
    from rulealign.llm.checkpoint import resolve_model

    model, tok = load_scoring_model(str(resolve_model("default").path))
    pairs = [([{"role": "user", "content": p}], good, bad)
             for _pol, _rule, p, good, bad in labelled(n_pairs)]
    score_pairs(model, tok, pairs[:2], batch_size=2)  # warm-up
    rows = {}
    results = {}
    for batch in (8, 1):
        t0 = time.perf_counter()
        scores = score_pairs(model, tok, pairs, batch_size=batch)
        dt = time.perf_counter() - t0
        results[batch] = [s.margin for s in scores]
        rows[batch] = {"pairs": len(pairs), "seconds": round(dt, 2),
                       "pairs_per_s": round(len(pairs) / dt, 2)}
    agree = max(abs(a - b) for a, b in zip(results[8], results[1], strict=True))
    prefers = sum(m > 0 for m in results[8])
    return {"batched_8": rows[8], "one_at_a_time": rows[1],
            "speedup": round(rows[8]["pairs_per_s"] / rows[1]["pairs_per_s"], 2),
            "max_margin_difference": agree, "prefers_compliant": f"{prefers}/{len(pairs)}"}


def bench_generative(n_prompts: int, backend_name: str) -> dict[str, object]:
    from rulealign.llm import load_backend

    cases = labelled(n_prompts)
    t0 = time.perf_counter()
    backend = load_backend(backend_name, "default")
    start = time.perf_counter() - t0
    try:
        by_policy: dict[str, list[tuple[object, AuditItem]]] = {}
        for policy, rule, prompt, _good, _bad in cases:
            item = AuditItem(id=f"{rule.id}:{len(by_policy)}:{prompt[-12:]}",  # type: ignore[attr-defined]
                             rule_ids=(rule.id,), clause_ids=rule.clause_ids,  # type: ignore[attr-defined]
                             axis="labelled", side="inside",
                             messages=({"role": "user", "content": prompt},))
            by_policy.setdefault(policy.id, []).append((policy, item))  # type: ignore[attr-defined]
        t_answer = t_judge = 0.0
        verdicts = []
        for group in by_policy.values():
            policy = group[0][0]
            items = [it for _, it in group]
            t1 = time.perf_counter()
            answers = answer(backend, items)
            t_answer += time.perf_counter() - t1
            t1 = time.perf_counter()
            verdicts += judge(policy, items, answers,  # type: ignore[arg-type]
                              llm=backend_judge(backend))
            t_judge += time.perf_counter() - t1
        total = t_answer + t_judge
        return {"backend": backend.name, "answers": len(verdicts),
                "engine_start_s": round(start, 1), "answer_s": round(t_answer, 1),
                "judge_s": round(t_judge, 1),
                "answers_per_minute": round(60 * len(verdicts) / total, 1),
                "judged": sum(v.judged for v in verdicts),
                "by_checks": sum(v.by == "check" for v in verdicts),
                "violations": sum(v.verdict == "violates" for v in verdicts)}
    finally:
        backend.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=48)
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--backend", default="auto")
    args = ap.parse_args()
    lik = bench_likelihood(args.pairs)
    gen = bench_generative(args.prompts, args.backend)
    print(f"\nlikelihood audit ({lik['batched_8']['pairs']} held-out pairs, default model):")
    print(f"  {'mode':<16} {'pairs/s':>8} {'seconds':>8}")
    for mode in ("batched_8", "one_at_a_time"):
        r = lik[mode]
        print(f"  {mode:<16} {r['pairs_per_s']:>8} {r['seconds']:>8}")  # type: ignore[index]
    print(f"  speedup {lik['speedup']}x; largest margin difference between the two "
          f"{lik['max_margin_difference']:.2e}; prefers compliant {lik['prefers_compliant']}")
    print(f"\ngenerative audit ({gen['answers']} answers, {gen['backend']}):")
    print(f"  answers audited per minute: {gen['answers_per_minute']} (answering "
          f"{gen['answer_s']} s, judging {gen['judge_s']} s; engine start "
          f"{gen['engine_start_s']} s not counted); {gen['by_checks']} decided by checks, "
          f"{gen['violations']} violations")
    out = {"date": time.strftime("%Y-%m-%d"), "machine": {
        "cpus": os.cpu_count(), "platform": platform.platform(),
        "processor": platform.processor()}, "likelihood": lik, "generative": gen}
    path = ROOT / "bench" / "results" / "audit.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()

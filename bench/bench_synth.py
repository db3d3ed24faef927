"""Synthesizer benchmark on the default model (not a test).

Runs the full synthesis loop (attacker or a message by construction, the two reply writers
continuing their stance-fixing openings, the verdict cascade with the policy's small judge as
in `rulealign run`, questioner, answerer) on a shipped spec with a fresh store, and reports
accepted pairs per minute, tokens per accepted pair, acceptance per axis, the duplicate rate,
coverage reached and each agent's share of the time. Engine start-up and training the judge
(cached per policy) are reported apart from synthesis time.

    python bench/bench_synth.py [--spec specs/acme-support.yaml] [--per-rule 1] [--backend auto]

Writes bench/results/synth.json. Target on 2 cores with the vllm backend: at least 60
accepted pairs per minute.
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
os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")


def main() -> None:
    from rulealign.compiler.loader import load_policy
    from rulealign.kg.build import build_graph
    from rulealign.llm import GenerationLog, load_backend
    from rulealign.synth.export import coverage
    from rulealign.synth.pipeline import SynthSettings, synthesize
    from rulealign.synth.store import SynthStore

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", default=str(ROOT / "specs" / "acme-support.yaml"))
    ap.add_argument("--per-rule", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--topup", type=int, default=0, help="coverage top-up rounds")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--model-writes", action="store_true",
                    help="let the model write messages that cannot be built (as --model-writes)")
    ap.add_argument("--model-replies", action="store_true",
                    help="the model writes every reply (as --model-replies)")
    ap.add_argument("--judge", default="policy", choices=("policy", "llm"),
                    help="the policy's small judge (as 'rulealign run') or the generating model")
    args = ap.parse_args()

    policy = load_policy(args.spec)
    conflicts = build_graph(policy, check=False).conflicts
    judge = None
    if args.judge == "policy":
        from rulealign.verdict.run import policy_judge

        judge = policy_judge(policy)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        backend = load_backend(args.backend, "default",
                               log=GenerationLog(Path(tmp) / "generations.sqlite"))
        # engines start on first use: one tiny request starts it, so that its start-up
        # (about a minute for vLLM on 2 CPU cores) is not counted as synthesis time
        from rulealign.llm import Sampling

        backend.generate([[{"role": "user", "content": "Hi"}]], None,
                         Sampling(max_tokens=1), tag="warm-up")
        start = time.perf_counter() - t0
        try:
            res = synthesize(policy, conflicts, backend, SynthStore(Path(tmp) / "s.sqlite"),
                             SynthSettings(per_rule=args.per_rule, rounds=args.rounds,
                                           batch=args.batch, qa_per_clause=1,
                                           topup=args.topup, judge=judge,
                                           model_writes=args.model_writes,
                                           model_replies=args.model_replies,
                                           spec_examples=False))
            stats = backend.stats
        finally:
            backend.close()
        import sqlite3

        with sqlite3.connect(Path(tmp) / "generations.sqlite") as db:
            per_agent = {tag: (calls, tokens) for tag, calls, tokens in db.execute(
                "SELECT tag, COUNT(*), SUM(completion_tokens) FROM generations "
                "WHERE tag != 'warm-up' GROUP BY tag")}
    minutes = res.seconds / 60
    pairs = len(res.pairs)
    singles = sum(e.kind == "sft" and e.scenario.axis != "qa" for e in res.examples)
    qa = sum(e.scenario.axis == "qa" for e in res.examples)
    verdicts = res.agent_calls.get("verifier", 0)
    cov = coverage(policy, res.scenarios, res.examples, conflicts, res.cell_reasons)
    dups = res.dropped.get("exact duplicate", 0) + res.dropped.get("near duplicate", 0)
    total_agent = sum(res.agent_seconds.values()) or 1.0
    # What one pair costs: the attacker's prompt, both responders and both verdicts. Even if
    # every scenario became a pair, 60 pairs/min needs this many tokens/s from the engine.
    pair_agents = ("attacker", "complier", "violator", "verifier")
    pair_tokens = sum(per_agent.get(a, (0, 0))[1] for a in pair_agents)
    tokens_per_attempt = pair_tokens / max(len(res.scenarios), 1)
    from collections import Counter

    planned = Counter(sc.axis for sc in res.scenarios)
    accepted = Counter(e.scenario.axis for e in res.pairs)
    by_axis = {axis: {"scenarios": n, "accepted": accepted.get(axis, 0)}
               for axis, n in sorted(planned.items())}
    out = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "spec": Path(args.spec).name, "backend": backend.name, "per_rule": args.per_rule,
        "rounds": args.rounds, "scenarios": len(res.scenarios),
        "engine_start_s": round(start, 1), "synthesis_s": round(res.seconds, 1),
        "accepted_pairs": pairs, "pairs_per_minute": round(pairs / minutes, 2),
        "verified_sft_answers": singles, "qa_examples": qa,
        "useful_examples_per_minute": round((pairs + singles + qa) / minutes, 2),
        "pair_acceptance": round(pairs / max(len(res.scenarios), 1), 3),
        "verifier_calls": verdicts, "duplicates_dropped": dups,
        "dropped": dict(res.dropped.most_common()),
        "model_calls": res.generated, "tokens_out": stats.completion_tokens,
        "output_tokens_per_s": round(stats.completion_tokens / max(res.seconds, 1e-9), 1),
        "agent_calls_tokens": {k: {"calls": c, "tokens": t} for k, (c, t) in per_agent.items()},
        "tokens_per_pair_attempt": round(tokens_per_attempt, 1),
        "tokens_per_accepted_pair": round(pair_tokens / pairs, 1) if pairs else None,
        "by_axis": by_axis, "judge": judge.name if judge is not None else "generating model",
        "tok_s_needed_for_60_pairs_per_min_at_full_acceptance": round(tokens_per_attempt, 1),
        "agent_seconds": {k: round(v, 1) for k, v in res.agent_seconds.items()},
        "agent_share": {k: round(v / total_agent, 3) for k, v in res.agent_seconds.items()},
        "coverage": {"rules_with_pairs": cov["rules_with_pairs"], "rules": cov["rules"],
                     "empty_cells": len(cov["empty_cells"]),
                     "terms_below_k": len(cov["terms_below_k"]),
                     "conflicts_covered": sum(cov["conflicts"].values()),
                     "conflicts": len(cov["conflicts"])},
    }
    print(f"\nsynthesis on {out['spec']} ({out['scenarios']} scenarios, {backend.name}, "
          f"default model; engine start {start:.0f} s not counted)")
    print(f"  accepted pairs          {pairs} ({out['pairs_per_minute']}/min; target 60/min)")
    print(f"  tokens / accepted pair  {out['tokens_per_accepted_pair']}")
    print("  by axis (accepted/planned) " + ", ".join(
        f"{a} {v['accepted']}/{v['scenarios']}" for a, v in by_axis.items()))
    print(f"  verified SFT answers    {singles}; question/answer examples {qa}")
    print(f"  useful examples / min   {out['useful_examples_per_minute']}")
    print(f"  synthesis time          {res.seconds:.0f} s, {res.generated} model calls")
    print(f"  tokens out              {stats.completion_tokens} ({out['output_tokens_per_s']} tok/s "
          "over the whole synthesis)")
    print(f"  one pair attempt        {tokens_per_attempt:.0f} tokens (attacker, complier, violator, "
          f"2 verdicts): 60 pairs/min needs >= {tokens_per_attempt:.0f} tok/s even at 100% acceptance")
    print(f"  duplicates dropped      {dups}")
    print(f"  dropped                 {out['dropped']}")
    print("  agent time split        " + ", ".join(
        f"{k} {v:.0%}" for k, v in sorted(out["agent_share"].items(), key=lambda x: -x[1])))
    c = out["coverage"]
    print(f"  coverage                {c['rules_with_pairs']}/{c['rules']} rules with pairs, "
          f"{c['empty_cells']} empty cells, conflicts {c['conflicts_covered']}/{c['conflicts']}")
    stem = Path(args.spec).name.split(".")[0]
    path = ROOT / "bench" / "results" / ("synth.json" if stem == "acme-support" else
                                         f"synth-{stem}.json")
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

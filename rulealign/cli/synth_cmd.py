"""``rulealign synth``: boundary-case pairs and question/answer data for every rule."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from rulealign.cli.kg_cmd import open_graph
from rulealign.cli.output import print_diagnostics, table
from rulealign.errors import RulealignError

if TYPE_CHECKING:
    from rulealign.kg.build import PolicyGraph
    from rulealign.synth.pipeline import SynthResult

HELP = """examples:
  rulealign synth preview specs/acme-support.yaml --per-rule 2 --rules refund-cap
  rulealign synth run specs/acme-support.yaml --out runs/acme/synth
  rulealign synth run specs/acme-support.yaml --out runs/acme/synth --backend transformers
  rulealign synth run specs/acme-support.yaml --out runs/acme/synth --ray auto --shards 8
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="rule spec (YAML)")
    p.add_argument("--per-rule", type=int, default=None, help="scenarios per rule (default all)")
    p.add_argument("--rules", default=None, help="only these rule ids (comma-separated)")
    p.add_argument("--backend", default="auto", help="auto, vllm, transformers, openai, fake")
    p.add_argument("--model", default="default", help="'default' or a local checkpoint")
    p.add_argument("--base-url", default=None, help="server URL for --backend openai")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounds", type=int, default=2, help="retries of a reply the verdicts did not confirm (default 2)")
    p.add_argument("--qa-per-clause", type=int, default=2,
                   help="question/answer pairs per cited clause (default 2)")
    p.add_argument("--judge", default=None, metavar="DIR",
                   help="the small judge that verifies replies ('rulealign judge train'); "
                        "'policy' trains or reuses the policy's own; default: the generating "
                        "model judges (the LLM judge stage)")
    p.add_argument("--model-writes", action="store_true",
                   help="let the model write a user message where none can be built from the "
                        "spec's example messages (worth it with a capable --model)")
    p.add_argument("--model-replies", action="store_true",
                   help="let the model write every reply, even where the spec's own replies "
                        "to the message a built one was made from keep their labels")
    p.add_argument("--topup", type=int, default=1,
                   help="coverage top-up rounds: one more scenario for every rule x axis cell "
                        "still without an accepted pair (default 1)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="synthesize boundary cases and training data",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    prev = verbs.add_parser("preview", help="a quick look at a few cases per rule")
    _common(prev)
    prev.set_defaults(func=preview, per_rule_default=2)
    run = verbs.add_parser("run", help="synthesize, filter and export (resumable)")
    _common(run)
    run.add_argument("--out", required=True, help="output folder (store, data, coverage)")
    run.add_argument("--heldout", type=float, default=0.2, help="share of scenarios held out")
    run.add_argument("--ray", default=None, metavar="ADDRESS",
                     help="shard the rules over Ray actors, each with its own engine "
                          "('local' starts a local cluster; 'auto' joins a running one)")
    run.add_argument("--shards", type=int, default=None,
                     help="Ray actors (default: one per CPU of the cluster)")
    run.set_defaults(func=run_cmd)


def _synth(args: argparse.Namespace, out: Path, per_rule: int | None,
           qa: int) -> tuple[PolicyGraph | None, SynthResult | None, int]:
    from rulealign.llm import GenerationLog, load_backend
    from rulealign.synth.pipeline import SynthSettings, print_progress, synthesize
    from rulealign.synth.store import SynthStore

    pg, status = open_graph(args.spec, "synth")
    if pg is None:
        return None, None, status
    rules = tuple(args.rules.split(",")) if args.rules else None
    if rules:
        unknown = [r for r in rules if r not in pg.policy.index()["rules"]]
        if unknown:
            print(f"rulealign synth: unknown rule(s): {', '.join(unknown)}")
            return None, None, 2
    log = GenerationLog(out / "generations.sqlite")
    judge = None
    if args.judge == "policy":
        from rulealign.verdict.run import policy_judge

        judge = policy_judge(pg.policy, say=lambda m: print(m, file=sys.stderr, flush=True))
    elif args.judge:
        from rulealign.verdict.small_judge import SmallJudge

        judge = SmallJudge(args.judge)
        judge.check_policy(pg.policy)
    settings = SynthSettings(per_rule=per_rule, rounds=args.rounds, seed=args.seed,
                             qa_per_clause=qa, rules=rules, topup=args.topup,
                             heldout=getattr(args, "heldout", 0.2), judge=judge,
                             model_writes=args.model_writes,
                             model_replies=args.model_replies)
    if getattr(args, "ray", None):
        import functools

        import ray

        from rulealign.llm import LazyBackend
        from rulealign.synth.distributed import synthesize_ray

        ray.init(address=None if args.ray == "local" else args.ray, include_dashboard=False,
                 log_to_driver=False)
        factory = functools.partial(LazyBackend, args.backend, args.model)
        result = synthesize_ray(pg.policy, pg.conflicts, factory, out / "synth.sqlite",
                                settings, shards=args.shards)
        return pg, result, 0
    with load_backend(args.backend, args.model, log=log, base_url=args.base_url) as backend:
        result = synthesize(pg.policy, pg.conflicts, backend, SynthStore(out / "synth.sqlite"),
                            settings, progress=print_progress)
    return pg, result, 0


def preview(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            _pg, result, status = _synth(args, Path(tmp), args.per_rule or 2, 0)
        except RulealignError as exc:
            print_diagnostics(exc.diagnostics)
            return 1
        if result is None:
            return status
    for sc in result.scenarios:
        if sc.id in result.drop_reasons:
            print(f"\n== {sc.rule_ids[0]} · {sc.axis} · {sc.side}: dropped")
            print(f"   scenario: {sc.description}")
            print(f"   why:      {result.drop_reasons[sc.id]}")
    for ex in result.pairs:
        print(f"\n== {ex.rule_ids[0]} · {ex.scenario.axis} · {ex.scenario.side}")
        print(f"   scenario: {ex.scenario.description}")
        print(f"   user:     {ex.messages[-1]['content']}")
        print(f"   chosen:   {ex.chosen}")
        print(f"   rejected: {ex.rejected}")
    print(f"\n{len(result.pairs)} accepted of {len(result.scenarios)} scenarios; dropped: "
          f"{dict(result.dropped) or 'none'}")
    return 0


def run_cmd(args: argparse.Namespace) -> int:
    from rulealign.synth.export import write_stage

    out = Path(args.out)
    try:
        pg, result, status = _synth(args, out, args.per_rule, args.qa_per_clause)
        if result is None or pg is None:
            return status
        counts, cov = write_stage(pg.policy, pg.conflicts, result, out)
    except RulealignError as exc:
        print_diagnostics(exc.diagnostics)
        return 1
    accepted = Counter(e.rule_ids[0] for e in result.pairs)
    planned = Counter(s.rule_ids[0] for s in result.scenarios)
    table(["rule", "scenarios", "accepted pairs"],
          [(r, planned[r], accepted.get(r, 0)) for r in sorted(planned)])
    print()
    table(["file", "rows"], sorted(counts.items()))
    print(f"\n{len(result.pairs)} pairs accepted of {len(result.scenarios)} scenarios "
          f"({sum(e.kind == 'sft' for e in result.examples)} question/answer examples, "
          f"{len(result.prompts)} prompts for the audit) in "
          f"{result.seconds:.0f} s; {result.generated} model calls "
          f"({result.generated and sum(result.agent_calls.values())} by agent: "
          f"{dict(result.agent_calls)})")
    made = [e for e in result.pairs if e.label_source != "human"]
    if made:
        by_axis = Counter(e.scenario.axis for e in made)
        tried = Counter(s.axis for s in result.scenarios)
        print(f"synthesized (not the spec's own): {len(made)} pairs, "
              f"{len(made) / max(result.seconds / 60, 1e-9):.1f}/min (engine start included); "
              "accepted/planned by axis: " + ", ".join(
                  f"{a} {by_axis.get(a, 0)}/{n}" for a, n in sorted(tried.items())))
    if result.dropped:
        print("dropped: " + ", ".join(f"{k} {v}" for k, v in result.dropped.most_common()))
    print(f"coverage: {cov['rules_with_pairs']}/{cov['rules']} rules have pairs; "
          f"{len(cov['empty_cells'])} planned cells empty; terms below k={cov['k']}: "
          f"{len(cov['terms_below_k'])}; conflicts covered "
          f"{sum(cov['conflicts'].values())}/{len(cov['conflicts'])}")
    print(f"wrote {out / 'data'}, {out / 'coverage.json'}")
    return 0

"""``rulealign audit``: how well a model follows the rules, per rule and per clause."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rulealign.cli.judge_cmd import add_judge_options
from rulealign.cli.kg_cmd import open_graph
from rulealign.cli.output import clean, print_diagnostics, table
from rulealign.errors import RulealignError

if TYPE_CHECKING:
    from rulealign.audit.report import AuditReport

HELP = """examples:
  rulealign audit run specs/acme-support.yaml --data runs/acme/synth/data --out runs/acme/audit
  rulealign audit run specs/acme-support.yaml --data runs/acme/synth/data \\
      --adapter runs/acme/train/ipo/adapter --out runs/acme/audit --fail-under 0.8
  rulealign audit texts bot-log.jsonl --spec specs/acme-support.yaml --out audit-log
  rulealign audit compare runs/old/audit/report.json runs/acme/audit/report.json
  rulealign audit likelihood runs/acme/synth/data/pairs.heldout.jsonl --adapter ADAPTER
"""


def _model_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default="auto", help="auto, vllm, transformers, openai")
    p.add_argument("--model", default="default", help="'default' or a local checkpoint")
    p.add_argument("--base-url", default=None, help="server URL for --backend openai")
    add_judge_options(p)
    p.add_argument("--fail-under", type=float, default=None, metavar="RATE",
                   help="exit 1 when a clause's compliance is below RATE (0-1)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="audit a model against the rules", description=HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = p.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    run = verbs.add_parser("run", help="generative + likelihood audit of the base model and, "
                           "with --adapter, the aligned one; writes report.{json,md,html}")
    run.add_argument("spec", help="rule spec (YAML)")
    run.add_argument("--data", required=True,
                     help="a synth data folder (prompts.heldout.jsonl, pairs.heldout.jsonl)")
    run.add_argument("--out", required=True, help="folder for the report and verdicts")
    run.add_argument("--adapter", default=None, help="LoRA adapter of the aligned model")
    run.add_argument("--no-likelihood", action="store_true", help="skip the likelihood audit")
    run.add_argument("--max-items", type=int, default=None, help="audit at most N prompts")
    _model_opts(run)
    run.set_defaults(func=run_cmd)

    texts = verbs.add_parser("texts", help="verdicts per rule for answers produced elsewhere")
    texts.add_argument("file", help="JSONL: prompt, response, optional rule_ids")
    texts.add_argument("--spec", required=True, help="rule spec (YAML)")
    texts.add_argument("--out", default=None, help="folder for the report and verdicts")
    _model_opts(texts)
    texts.set_defaults(func=texts_cmd)

    cmp_ = verbs.add_parser("compare", help="per-rule change between two reports")
    cmp_.add_argument("a", help="the earlier report.json")
    cmp_.add_argument("b", help="the later report.json")
    cmp_.add_argument("--fail-under", type=float, default=None, metavar="RATE",
                      help="exit 1 when a clause of B is below RATE")
    cmp_.set_defaults(func=compare_cmd)

    render = verbs.add_parser("render", help="write report.md and report.html from report.json")
    render.add_argument("report", help="report.json")
    render.add_argument("--out", default=None, help="folder (default: next to the report)")
    render.add_argument("--fail-under", type=float, default=None, metavar="RATE")
    render.set_defaults(func=render_cmd)

    lik = verbs.add_parser("likelihood", help="per rule: does the model prefer the compliant "
                           "response of held-out pairs, and by what margin")
    lik.add_argument("data", help="pairs JSONL (prompt, chosen, rejected, meta.rule_ids)")
    lik.add_argument("--model", default="default", help="'default' or a local checkpoint")
    lik.add_argument("--adapter", default=None, help="a LoRA adapter folder to apply")
    lik.add_argument("--batch-size", type=int, default=8)
    lik.add_argument("-o", "--output", default=None, help="write the result as JSON")
    lik.add_argument("--json", action="store_true", help="print JSON")
    lik.set_defaults(func=likelihood)


def _settings(args: argparse.Namespace, spec: str, **kw: object) -> object:
    from rulealign.audit.run import AuditSettings
    from rulealign.verdict.calibration import eval_set_for

    labelled = args.labelled or eval_set_for(spec)
    return AuditSettings(backend=args.backend, model=args.model, base_url=args.base_url,
                         judge=args.judge, judge_model=args.judge_model,
                         labelled=str(labelled) if labelled else None,
                         fail_under=args.fail_under, **kw)  # type: ignore[arg-type]


def print_summary(report: AuditReport, out_dir: Path | None = None) -> None:
    """The short per-clause table and where the reports are."""
    from rulealign.audit.render import CHANGE_NAMES, basis, delta_text, rate_text

    def short(key: str, c: object) -> str:
        ch = c.changes.get(key)  # type: ignore[attr-defined]
        if ch is None or ch.diff is None:
            return "–"
        return f"{ch.diff * 100:+.0f} ({ch.ci[0] * 100:+.0f}..{ch.ci[1] * 100:+.0f})"

    paired = bool(report.changes)
    rows = []
    for c in report.clauses:
        if not c.rules:
            continue
        rows.append((c.clause_id, len(c.rules), c.items, rate_text(c.before.pooled),
                     rate_text(c.after.pooled) if c.after else "–",
                     *((short("preference", c), short("compliance", c)) if paired else ()),
                     c.status))
    table(["clause", "rules", "items", "compliance before", "after",
           *(("prefers compliant Δ", "compliance Δ") if paired else ()), "status"], rows)
    print()
    if paired:
        print("what training changed (paired, 95% bootstrap interval of the difference):")
        for key, name in CHANGE_NAMES.items():
            if key in report.changes:
                print(f"  {name}: {delta_text(report.changes[key])}\n"
                      f"      rests on {basis(report, key)}")
        print()
    for lab, o in report.overall.items():
        from rulealign.audit.report import Rate

        pref = o.get("preference")
        print(f"{lab:>6}: compliance {rate_text(Rate.model_validate(o['compliance']))}; over-refusal "
              f"{rate_text(Rate.model_validate(o['over_refusal']))}"
              + (f"; prefers compliant in {pref['accuracy']:.0%} of {pref['n']} held-out pairs"
                 if pref else ""))
    for lab, o in report.overall.items():
        print(f"{lab:>6}: {o['answers'] - o['unjudged']} of {o['answers']} answers have a "
              f"verdict ({o['unjudged']} without: not counted as compliant)")
    for cal in (report.calibration, report.text_agreement):
        if cal is not None:
            print(" " + clean(cal.headline()) + ("" if not cal.n or cal.trusted else
                                          "; its verdicts are reported as undecided"))
    if report.gate is not None:
        g = report.gate
        print(f"  gate: {'passed' if g.passed else 'FAILED'} at {g.fail_under:.0%}"
              + (f"; below: {clean(', '.join(g.failing))}" if g.failing else ""))
    if out_dir is not None:
        print(f"\nreport: {(out_dir / 'report.html').resolve()}\n        "
              f"{out_dir / 'report.md'}, {out_dir / 'report.json'}")


def _exit(report: AuditReport) -> int:
    return 1 if report.gate is not None and not report.gate.passed else 0


def run_cmd(args: argparse.Namespace) -> int:
    from rulealign.audit.run import audit

    pg, status = open_graph(args.spec, "audit")
    if pg is None:
        return status
    try:
        report = audit(pg.policy, args.data, args.out, adapter=args.adapter,
                       settings=_settings(args, args.spec, likelihood=not args.no_likelihood,
                                          max_items=args.max_items),  # type: ignore[arg-type]
                       conflicts=pg.conflicts)
    except RulealignError as exc:
        print_diagnostics(exc.diagnostics)
        return 1
    print_summary(report, Path(args.out))
    return _exit(report)


def texts_cmd(args: argparse.Namespace) -> int:
    from rulealign.audit.run import audit_texts

    pg, status = open_graph(args.spec, "audit")
    if pg is None:
        return status
    try:
        report = audit_texts(pg.policy, args.file, args.out,
                             settings=_settings(args, args.spec),  # type: ignore[arg-type]
                             conflicts=pg.conflicts)
    except RulealignError as exc:
        print_diagnostics(exc.diagnostics)
        return 1
    agree = report.text_agreement.per_rule if report.text_agreement else {}
    table(["rule", "answers", "no verdict", "compliant", "over-refusal", "agrees with labels"],
          [(r.rule_id, r.before.compliance.n + r.before.unjudged, r.before.unjudged,
            f"{r.before.compliance.k}/{r.before.compliance.n}",
            f"{r.before.over_refusal.k}/{r.before.over_refusal.n}",
            f"{agree[r.rule_id][0]}/{agree[r.rule_id][1]}" if r.rule_id in agree else "–")
           for r in report.rules if r.before.compliance.n or r.before.unjudged])
    print()
    print_summary(report, Path(args.out) if args.out else None)
    return _exit(report)


def compare_cmd(args: argparse.Namespace) -> int:
    from rulealign.audit.report import compare, gate, load_report

    try:
        a, b = load_report(args.a), load_report(args.b)
    except RulealignError as exc:
        print_diagnostics(exc.diagnostics)
        return 1
    rows = compare(a, b)

    def f(x: float | None) -> str:
        return "–" if x is None else f"{x:.0%}"

    table(["rule", "A", "n", "B", "n", "change"],
          [(r["rule"], f(r["a"]), r["a_n"], f(r["b"]), r["b_n"],
            "–" if r["change"] is None else f"{r['change']:+.0%}") for r in rows
           if r["a_n"] or r["b_n"]])
    better = sum(1 for r in rows if (r["change"] or 0) > 0)
    worse = sum(1 for r in rows if (r["change"] or 0) < 0)
    print(clean(f"\n{better} rule(s) better, {worse} worse, of {len(rows)}; A = {args.a}, "
                f"B = {args.b}"))
    if args.fail_under is not None:
        g = gate(b, args.fail_under).gate
        if g is not None:
            print(f"gate on B: {'passed' if g.passed else 'FAILED'} at {args.fail_under:.0%}"
                  + (f"; below: {clean(', '.join(g.failing))}" if g.failing else ""))
            return 0 if g.passed else 1
    return 0


def render_cmd(args: argparse.Namespace) -> int:
    from rulealign.audit.report import gate, load_report
    from rulealign.audit.run import write_report

    try:
        report = load_report(args.report)
    except RulealignError as exc:
        print_diagnostics(exc.diagnostics)
        return 1
    if args.fail_under is not None:
        report = gate(report, args.fail_under)
    out = Path(args.out) if args.out else Path(args.report).parent
    paths = write_report(report, out)
    print(f"wrote {paths['md']}, {paths['html']}", file=sys.stderr)
    return _exit(report)


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

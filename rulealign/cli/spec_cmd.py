"""``rulealign spec``: check, show, extract and describe rule specs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rulealign.cli.output import clean, print_diagnostics, table
from rulealign.errors import RulealignError

if TYPE_CHECKING:
    from rulealign.compiler.models import Policy

HELP = """examples:
  rulealign spec check specs/*.yaml
  rulealign spec show specs/acme-support.yaml
  rulealign spec extract specs/acme-support.md -o draft.yaml
  rulealign spec schema -o rulealign-spec.schema.json
"""


def register(sub: argparse._SubParsersAction) -> None:
    spec = sub.add_parser("spec", help="check, show and draft rule specs", epilog=HELP,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = spec.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    p = verbs.add_parser("check", help="validate spec files (exit 0 valid, 1 invalid, 2 usage)",
                         description="Validate spec files and report every problem at once as "
                         "file:line:col: CODE message.\n\nexample:\n  rulealign spec check "
                         "specs/acme-support.yaml", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="spec files")
    p.add_argument("--root", help="folder that includes must stay inside (default: the spec's folder)")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    p.add_argument("--no-hints", action="store_true", help="do not print a fix under each problem")
    p.set_defaults(func=check)

    p = verbs.add_parser("show", help="print a table of a spec's rules",
                         description="Print the compiled rules.\n\nexample:\n  rulealign spec show "
                         "specs/acme-support.yaml", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--json", action="store_true", help="print the compiled policy as JSON")
    p.set_defaults(func=show)

    p = verbs.add_parser("extract", help="draft a spec from a policy document",
                         description="Find obligations, prohibitions and permissions in a "
                         "document (Markdown, text, HTML, PDF) and write a draft YAML spec whose "
                         "rules cite their clause and line.\n\nexample:\n  rulealign spec extract "
                         "specs/acme-support.md -o draft.yaml",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("document", metavar="DOC")
    p.add_argument("-o", "--output", required=True, help="where to write the draft YAML")
    p.add_argument("--format", choices=["markdown", "text", "html", "pdf"],
                   help="document format (default: from the file name)")
    p.add_argument("--min-confidence", type=float, default=0.5,
                   help="leave out rules the extractor is less sure of (default 0.5)")
    p.add_argument("--policy-id", help="id of the drafted policy (default: from the file name)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing output file (never the document itself)")
    p.add_argument("--model", help="optional: a capable model re-reads each drafted rule under "
                   "constrained decoding (the rule-based reading is the fallback); a local "
                   "checkpoint, 'default', or the server's model name with --backend openai")
    p.add_argument("--backend", default="auto", help="generation backend for --model "
                   "(auto, vllm, transformers, openai)")
    p.add_argument("--base-url", help="OpenAI-compatible server for --backend openai")
    p.set_defaults(func=extract)

    p = verbs.add_parser("schema", help="print the JSON Schema of the spec format")
    p.add_argument("-o", "--output", help="write to a file instead of printing")
    p.set_defaults(func=schema)


def check(args: argparse.Namespace) -> int:
    from rulealign.compiler.loader import compile_spec

    status, report = 0, []
    for path in args.paths:
        if not Path(path).is_file():
            print(f"rulealign spec check: no such file: {path}", file=sys.stderr)
            return 2
        result = compile_spec(path, root=args.root)
        failed = bool(result.errors) or (args.strict and bool(result.warnings)) or result.policy is None
        status = max(status, 1 if failed else 0)
        if args.json:
            report.append({"path": path, "valid": not failed,
                           "diagnostics": [d.to_dict() for d in result.diagnostics]})
            continue
        print_diagnostics(result.diagnostics, hints=not args.no_hints, out=sys.stdout)
        if failed:
            n = len(result.errors) or len(result.warnings)
            print(f"invalid: {path} ({n} problem{'s' * (n != 1)})")
        elif (pol := result.policy) is not None:
            print(f"ok: {path} ({len(pol.rules)} rules, {len(pol.terms)} terms, "
                  f"{len(pol.clauses)} clauses)")
    if args.json:
        print(json.dumps(report, indent=2))
    return status


def _load(path: str) -> Policy | None:
    from rulealign.compiler.loader import compile_spec

    result = compile_spec(path)
    if result.policy is None or result.errors:
        print_diagnostics(result.diagnostics)
        return None
    return result.policy


def show(args: argparse.Namespace) -> int:
    if not Path(args.spec).is_file():
        print(f"rulealign spec show: no such file: {args.spec}", file=sys.stderr)
        return 2
    policy = _load(args.spec)
    if policy is None:
        return 1
    if args.json:
        print(policy.model_dump_json(indent=2))
        return 0
    print(clean(f"{policy.title} ({policy.id} {policy.version}): {len(policy.rules)} rules, "
                f"{len(policy.terms)} terms, {len(policy.clauses)} clauses"))
    rows = [(r.id, r.modality.value, r.actor, r.action,
             "; ".join(c.describe() for c in r.conditions) or "-",
             len(r.exceptions), r.priority, ",".join(r.clause_ids)) for r in policy.rules]
    table(["rule", "modality", "actor", "action", "conditions", "exc", "prio", "clause"], rows,
          max_width=40)
    return 0


def extract(args: argparse.Namespace) -> int:
    from rulealign.compiler.extract import draft_spec_from_document
    from rulealign.errors import diagnostic
    from rulealign.fileio import atomic_write_text, refuse_overwrite

    out, given = Path(args.output), Path(args.document)
    folder = out.resolve().parent
    outside = not given.resolve().is_relative_to(folder)
    backend = None
    try:
        refuse_overwrite(out, inputs=(given,), force=args.force)
        if outside and out.resolve() == folder / given.name:
            raise RulealignError(diagnostic("RA003", path=str(out), reason=(
                "the document's copy goes there (a spec cites documents inside its folder)")))
        if getattr(args, "model", None):
            from rulealign.llm import load_backend

            backend = load_backend(args.backend, args.model, base_url=args.base_url)
        if backend is None:
            text, stats = draft_spec_from_document(given, fmt=args.format,
                                                   min_confidence=args.min_confidence,
                                                   policy_id=args.policy_id, output=out,
                                                   replace_copy=args.force)
        else:
            from rulealign.compiler.draft import draft_spec

            text, stats = draft_spec(given, fmt=args.format, min_confidence=args.min_confidence,
                                     policy_id=args.policy_id, output=out, backend=backend,
                                     replace_copy=args.force)
        atomic_write_text(out, text)
    except RulealignError as exc:
        print_diagnostics(exc.diagnostics)
        return 1
    finally:
        if backend is not None:
            backend.close()
    if outside:
        print(f"copied {args.document} to {folder / given.name}: a spec cites documents "
              "inside its folder")
    llm = (f"; the model re-read {stats['llm_refined']}, left out {stats['llm_dropped']}, "
           f"{stats['llm_fallback']} kept their rule-based reading after a failed answer"
           if "llm_refined" in stats else "")
    print(f"wrote {args.output}: {stats['rules']} draft rules from {stats['clauses']} clauses "
          f"({stats['sentences']} sentences; {stats['skipped']} below confidence "
          f"{args.min_confidence}{llm}). Review it, then run: rulealign spec check {args.output}")
    return 0


def schema(args: argparse.Namespace) -> int:
    from rulealign.compiler.spec_format import json_schema
    from rulealign.fileio import atomic_write_text

    text = json.dumps(json_schema(), indent=2) + "\n"
    if args.output:
        atomic_write_text(args.output, text)
    else:
        print(text, end="")
    return 0

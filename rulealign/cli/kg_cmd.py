"""``rulealign kg``: build the knowledge graph, list conflicts, show a rule, query."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rulealign.cli.output import clean, print_diagnostics, table
from rulealign.errors import RulealignError, did_you_mean

if TYPE_CHECKING:
    from rulealign.kg.build import PolicyGraph

HELP = """examples:
  rulealign kg build specs/acme-support.yaml -o acme.ttl
  rulealign kg conflicts specs/acme-support.yaml --strict
  rulealign kg show refund-cap --spec specs/acme-support.yaml
  rulealign kg query specs/acme-support.yaml --named rules-by-term --arg refund
  rulealign kg query specs/acme-support.yaml "SELECT ?r WHERE { ?r a ra:Rule }"
"""


def register(sub: argparse._SubParsersAction) -> None:
    kg = sub.add_parser("kg", help="the policy's knowledge graph and its conflicts", epilog=HELP,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = kg.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    p = verbs.add_parser("build", help="build, check (SHACL) and export the graph",
                         description="example:\n  rulealign kg build specs/acme-support.yaml -o acme.ttl",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("-o", "--output", required=True, help="file to write (.ttl, .jsonld, .nt, .graphml)")
    p.add_argument("--format", help="turtle, json-ld, n-triples or graphml (default: from the file name)")
    p.set_defaults(func=build)

    p = verbs.add_parser("conflicts", help="list conflicts (exit 1 with --strict if any is unresolved)",
                         description="example:\n  rulealign kg conflicts specs/acme-support.yaml --strict",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--strict", action="store_true", help="exit 1 when an unresolved conflict exists")
    p.add_argument("--json", action="store_true", help="print conflicts as JSON")
    p.add_argument("--explain", action="store_true", help="print each explanation in full")
    p.set_defaults(func=conflicts)

    p = verbs.add_parser("show", help="a rule with its clause, terms and conflicts",
                         description="example:\n  rulealign kg show refund-cap --spec specs/acme-support.yaml",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rule", metavar="RULE")
    p.add_argument("--spec", required=True, help="the spec the rule is in")
    p.set_defaults(func=show)

    p = verbs.add_parser("query", help="run SPARQL or a named query",
                         description="Run SPARQL (prefixes ra:, odrl:, skos:, prov:, dcterms: are "
                         "predefined) or a named query.\n\nexample:\n  rulealign kg query "
                         "specs/acme-support.yaml --named unused-terms",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="SPEC", nargs="?")
    p.add_argument("sparql", nargs="?", help="a SPARQL SELECT query")
    p.add_argument("--named", help="a named query (see --list)")
    p.add_argument("--arg", help="the argument of a named query")
    p.add_argument("--list", action="store_true", help="list the named queries")
    p.set_defaults(func=query)


def _graph(spec: str) -> PolicyGraph | None:
    from rulealign.compiler.loader import compile_spec
    from rulealign.kg.build import build_graph

    result = compile_spec(spec)
    if result.policy is None or result.errors:
        print_diagnostics(result.diagnostics)
        return None
    try:
        return build_graph(result.policy)
    except RulealignError as exc:
        print_diagnostics(exc.diagnostics)
        return None


def open_graph(path: str | None, verb: str) -> tuple[PolicyGraph | None, int]:
    """The spec's graph, or None with the exit code to return (2 no file, 1 invalid)."""
    if path is None or not Path(path).is_file():
        print(f"rulealign {verb}: no such spec: {path}", file=sys.stderr)
        return None, 2
    pg = _graph(path)
    return pg, 0 if pg is not None else 1


def build(args: argparse.Namespace) -> int:
    from rulealign.kg.queries import export

    pg, status = open_graph(args.spec, "kg build")
    if pg is None:
        return status
    try:
        export(pg, args.output, args.format)
    except RulealignError as exc:
        print_diagnostics(exc.diagnostics)
        return 1
    print(f"wrote {args.output}: {len(pg.rdf)} triples; {len(pg.policy.rules)} rules, "
          f"{len(pg.policy.terms)} terms, {len(pg.policy.clauses)} clauses, "
          f"{len(pg.conflicts)} conflicts ({len(pg.unresolved)} unresolved); SHACL: conforms")
    return 0


def conflicts(args: argparse.Namespace) -> int:
    pg, status = open_graph(args.spec, "kg conflicts")
    if pg is None:
        return status
    if args.json:
        print(json.dumps([c.model_dump(mode="json") for c in pg.conflicts], indent=2))
    else:
        rows = [(c.kind, c.resolution, c.winner or "-", c.rules[0], c.rules[1], c.overlap)
                for c in pg.conflicts]
        table(["kind", "resolution", "winner", "rule A", "rule B", "where both apply"], rows,
              max_width=44)
        if args.explain:
            for c in pg.conflicts:
                print(clean(f"\n{c.id}\n  {c.explanation}"))
        print(f"\n{len(pg.conflicts)} findings, {len(pg.unresolved)} unresolved"
              + ("" if args.explain else " (--explain for the reasoning)"))
    return 1 if args.strict and pg.unresolved else 0


def show(args: argparse.Namespace) -> int:
    pg, status = open_graph(args.spec, "kg show")
    if pg is None:
        return status
    index = pg.policy.index()
    if args.rule not in index["rules"]:
        from rulealign.errors import diagnostic

        print_diagnostics([diagnostic("RA204", id=args.rule,
                                      suggestion=did_you_mean(args.rule, index["rules"]))])
        return 1
    r = index["rules"][args.rule]
    authority = r.authority or pg.policy.authority
    print(clean(f"{r.id}: {r.modality.value} (priority {r.priority}, severity {r.severity.value}"
          + (f", authority {authority}" if authority else "") + ")"))
    print(clean(f"  {r.text}"))
    print(clean(f"  actor: {r.actor}   action: {r.action}" + (f"   object: {r.object}" if r.object else "")))
    for c in r.conditions:
        print(clean(f"  condition: {c.describe()}"))
    for e in r.exceptions:
        print(clean(f"  exception: {e.text or ''}{' (rule ' + e.rule + ')' if e.rule else ''}"))
    for t in r.terms:
        term = index["terms"][t]
        extra = f" (broader: {', '.join(term.broader)})" if term.broader else ""
        print(clean(f"  term: {t} '{term.label}'{extra}"))
    for cid in r.clause_ids:
        clause = index["clauses"][cid]
        print(clean(f"  clause {cid} ({clause.document}, line {clause.line}): {clause.text}"))
    print(clean(f"  spec: {r.provenance.spec_file}:{r.provenance.line}"))
    mine = [c for c in pg.conflicts if r.id in c.rules]
    for c in mine:
        print(clean(f"  conflict {c.id} [{c.kind}, {c.resolution}]: {c.explanation}"))
    if not mine:
        print("  conflicts: none")
    return 0


def query(args: argparse.Namespace) -> int:
    from rulealign.kg.queries import NAMED, named_query, result_rows, run_sparql

    if args.list:
        for name, (desc, arg, _) in NAMED.items():
            print(f"{name:24} {desc}{f' (--arg {arg})' if arg else ''}")
        return 0
    if not args.named and not args.sparql:
        print("rulealign kg query: give a SPARQL query or --named NAME", file=sys.stderr)
        return 2
    pg, status = open_graph(args.spec, "kg query")
    if pg is None:
        return status
    try:
        result = named_query(pg.rdf, args.named, args.arg) if args.named else run_sparql(pg.rdf, args.sparql)
        headers, rows = result_rows(result)
    except RulealignError as exc:
        print_diagnostics(exc.diagnostics)
        return 1
    table(headers, rows, max_width=60)
    print(f"\n{len(rows)} rows")
    return 0

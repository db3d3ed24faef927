"""Build the policy graph: an rdflib graph (the record) plus networkx views (for analysis).

``build_graph(policy)`` links the policy, its documents, clauses, rules, conditions,
exceptions and terms with ODRL, SKOS, PROV-O and Dublin Core plus the ``ra:`` vocabulary,
adds every conflict as a node with its evidence, and checks the result against the SHACL
shapes in ``shapes.ttl`` (a violation is a coded ``RA201`` error naming the node).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import quote

from rdflib import RDF, XSD, BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import RDFS
from rdflib.term import Node

from rulealign.compiler.models import Modality, Policy
from rulealign.errors import GraphError, diagnostic
from rulealign.kg.bulk import bulk
from rulealign.kg.conflicts import Conflict, find_conflicts
from rulealign.kg.namespace import DCTERMS, ODRL2, PROV, RA, SKOS, resolved
from rulealign.kg.store import OneGraphStore

BASE = "https://rulealign.dev/policy/"
_RA, _DCTERMS, _SKOS, _PROV, _ODRL2 = (resolved(ns) for ns in (RA, DCTERMS, SKOS, PROV, ODRL2))
_RDF, _RDFS = resolved(RDF), resolved(RDFS)
_ODRL_TYPE = {Modality.OBLIGATION: ODRL2.Duty, Modality.PROHIBITION: ODRL2.Prohibition,
              Modality.PERMISSION: ODRL2.Permission}
_ODRL_LINK = {Modality.OBLIGATION: ODRL2.obligation, Modality.PROHIBITION: ODRL2.prohibition,
              Modality.PERMISSION: ODRL2.permission}


class Iris:
    """IRIs of the things in one policy's graph."""

    def __init__(self, policy_id: str):
        self.base = f"{BASE}{quote(policy_id, safe='')}/"
        self._made: dict[tuple[str, str], URIRef] = {}

    def _iri(self, kind: str, ident: str) -> URIRef:
        # each rule's and term's IRI is asked for many times (conditions, conflicts, links)
        key = (kind, ident)
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = URIRef(f"{self.base}{kind}/{quote(ident, safe='')}")
        return made

    @property
    def policy(self) -> URIRef:
        return URIRef(self.base.rstrip("/"))

    def rule(self, i: str) -> URIRef:
        return self._iri("rule", i)

    def clause(self, i: str) -> URIRef:
        return self._iri("clause", i)

    def term(self, i: str) -> URIRef:
        return self._iri("term", i)

    def document(self, i: str) -> URIRef:
        return self._iri("document", i)

    def conflict(self, i: str) -> URIRef:
        return self._iri("conflict", i)

    # A rule's conditions and exceptions live in one folder each (condition/RULE.K), not under
    # the rule's IRI: serialisers and SHACL reports give every distinct folder its own prefix,
    # and finding a free prefix name is linear in the prefixes so far, so a folder per rule
    # made writing Turtle quadratic (10k rules: 471 s, against 29 s with these IRIs).
    def condition(self, rule_id: str, k: int) -> URIRef:
        return URIRef(f"{self.base}condition/{quote(rule_id, safe='')}.{k}")

    def exception(self, rule_id: str, k: int) -> URIRef:
        return URIRef(f"{self.base}exception/{quote(rule_id, safe='')}.{k}")

    @property
    def scheme(self) -> URIRef:
        return URIRef(self.base + "terms")


def new_graph() -> Graph:
    """An empty policy graph with the project's prefixes bound (see ``kg/store.py``)."""
    g = Graph(store=OneGraphStore())
    for prefix, ns in (("ra", RA._NS), ("odrl", ODRL2), ("skos", SKOS), ("prov", PROV),
                       ("dcterms", DCTERMS)):
        g.bind(prefix, ns)
    return g


class _Literals:
    """Literal objects, made once per distinct value: a policy repeats most of its literals
    (modalities, actors, priorities, operators, line numbers), and making an rdflib Literal
    costs more than adding its triple."""

    def __init__(self) -> None:
        self._made: dict[tuple[type, Any, str | None, str | None], Literal] = {}

    def __call__(self, value: Any, datatype: URIRef | None = None, lang: str | None = None) -> Literal:
        key = (type(value), value, datatype, lang)
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = Literal(value, datatype=datatype, lang=lang)
        return made

    def integer(self, value: int) -> Literal:
        return self(value, XSD.integer)

    def value(self, value: Any) -> Literal:
        """A condition's threshold: booleans and numbers typed, anything else a string."""
        if isinstance(value, bool):
            return self(value)
        if isinstance(value, int):
            return self(value, XSD.integer)
        if isinstance(value, float):
            return self(value, XSD.decimal)
        return self(str(value))


def policy_to_rdf(policy: Policy, conflicts: list[Conflict]) -> Graph:
    """The RDF record of a policy and its conflicts (no checking)."""
    with bulk():
        return _policy_to_rdf(policy, conflicts)


def _policy_to_rdf(policy: Policy, conflicts: list[Conflict]) -> Graph:
    g = new_graph()
    iri = Iris(policy.id)
    lit = _Literals()
    # Triples are collected and handed to the store in one addN: Graph.add's and
    # Graph.addN's per-triple node checks cost more than the insert itself at hundreds of
    # thousands of triples, and every node here is made as a URIRef or Literal above.
    triples: list[tuple[Any, Any, Any]] = []
    add = triples.append
    p = iri.policy
    add((p, _RDF.type, _RA.Policy))
    add((p, _RDF.type, _ODRL2.Policy))
    add((p, _DCTERMS.title, lit(policy.title)))
    add((p, _DCTERMS.identifier, lit(policy.id)))
    if policy.version:
        add((p, _DCTERMS.hasVersion, lit(policy.version)))
    if policy.license:
        add((p, _DCTERMS.license, lit(policy.license)))
    if policy.attribution:
        add((p, _DCTERMS.rightsHolder, lit(policy.attribution)))
    if policy.authority:
        add((p, _RA.authority, lit(policy.authority)))
    if policy.authorities:  # an RDF list, highest first
        cells = [BNode() for _ in policy.authorities]
        add((p, _RA.authorities, cells[0]))
        for k, (cell, name) in enumerate(zip(cells, policy.authorities, strict=True)):
            add((cell, _RDF.first, lit(name)))
            add((cell, _RDF.rest, cells[k + 1] if k + 1 < len(cells) else RDF.nil))
    add((p, _RA.contentHash, lit(policy.content_hash())))
    add((iri.scheme, _RDF.type, _SKOS.ConceptScheme))
    add((iri.scheme, _DCTERMS.title, lit(f"Terms of {policy.title}")))

    documents = {c.document for c in policy.clauses}
    for d in documents:
        add((iri.document(d), _RDF.type, _RA.Document))
        add((iri.document(d), _DCTERMS.source, lit(d)))
        add((p, _DCTERMS.source, iri.document(d)))
    for c in policy.clauses:
        n = iri.clause(c.id)
        add((n, _RDF.type, _RA.Clause))
        add((n, _DCTERMS.identifier, lit(c.id)))
        add((n, _RA.clauseText, lit(c.text)))
        add((n, _RA.section, lit(c.section)))
        if c.section_title:
            add((n, _RA.sectionTitle, lit(c.section_title)))
        add((n, _RA.line, lit.integer(c.line)))
        add((n, _RA.charStart, lit.integer(c.span[0])))
        add((n, _RA.charEnd, lit.integer(c.span[1])))
        if c.page is not None:
            add((n, _RA.page, lit.integer(c.page)))
        add((n, _DCTERMS.isPartOf, iri.document(c.document)))
        add((iri.document(c.document), _RA.hasClause, n))

    for t in policy.terms:
        n = iri.term(t.id)
        add((n, _RDF.type, _SKOS.Concept))
        add((n, _SKOS.inScheme, iri.scheme))
        add((n, _SKOS.prefLabel, lit(t.label, lang="en")))
        add((n, _SKOS.notation, lit(t.id)))
        for s in t.synonyms:
            add((n, _SKOS.altLabel, lit(s, lang="en")))
        for b in t.broader:
            add((n, _SKOS.broader, iri.term(b)))
            add((iri.term(b), _SKOS.narrower, n))
        for nn in t.narrower:
            add((n, _SKOS.narrower, iri.term(nn)))
            add((iri.term(nn), _SKOS.broader, n))
        if t.definition:
            add((n, _SKOS.definition, lit(t.definition, lang="en")))
        for ext in t.iris:
            add((n, _SKOS.exactMatch, URIRef(ext)))
        if t.unit:
            add((n, _RA.unit, lit(t.unit)))

    for r in policy.rules:
        n = iri.rule(r.id)
        add((n, _RDF.type, _RA.Rule))
        add((n, _RDF.type, _ODRL_TYPE[r.modality]))
        add((p, _RA.hasRule, n))
        add((p, _ODRL_LINK[r.modality], n))
        add((n, _DCTERMS.identifier, lit(r.id)))
        add((n, _RDFS.label, lit(r.id)))
        add((n, _RA.ruleText, lit(r.text)))
        add((n, _RA.modality, lit(r.modality.value)))
        add((n, _RA.actor, lit(r.actor)))
        add((n, _RA.action, lit(r.action)))
        if r.object:
            add((n, _RA.object, lit(r.object)))
        if r.scope:
            add((n, _RA.scope, lit(r.scope)))
        add((n, _RA.priority, lit.integer(r.priority)))
        if r.authority:
            add((n, _RA.authority, lit(r.authority)))
        add((n, _RA.severity, lit(r.severity.value)))
        add((n, _RA.contentHash, lit(r.content_hash())))
        for cid in r.clause_ids:
            add((n, _PROV.wasDerivedFrom, iri.clause(cid)))
        prov = r.provenance
        if prov.spec_file:
            add((n, _RA.specFile, lit(prov.spec_file)))
        if prov.line is not None:
            add((n, _RA.specLine, lit.integer(prov.line)))
        if prov.extractor:
            add((n, _RA.extractor, lit(prov.extractor)))
        if prov.confidence is not None:
            add((n, _RA.confidence, lit(prov.confidence, XSD.decimal)))
        for tid in r.terms:
            add((n, _RA.aboutTerm, iri.term(tid)))
        for o in r.overrides:
            add((n, _RA.overrides, iri.rule(o)))
        for k, cond in enumerate(r.conditions):
            cn = iri.condition(r.id, k)
            add((cn, _RDF.type, _RA.Condition))
            add((n, _RA.hasCondition, cn))
            if cond.is_structured:
                add((cn, _RA.conditionTerm, iri.term(str(cond.term))))
                add((cn, _RA.operator, lit(cond.op.value if cond.op else "")))
                add((cn, _RA.value, lit.value(cond.value)))
                if cond.unit:
                    add((cn, _RA.unit, lit(cond.unit)))
            if cond.text:
                add((cn, _RA.conditionText, lit(cond.text)))
        for k, e in enumerate(r.exceptions):
            en = iri.exception(r.id, k)
            add((en, _RDF.type, _RA.Exception))
            add((n, _RA.hasException, en))
            if e.text:
                add((en, _RA.exceptionText, lit(e.text)))
            if e.rule:
                add((en, _RA.exceptionRule, iri.rule(e.rule)))

    for conf in conflicts:
        n = iri.conflict(conf.id)
        add((n, _RDF.type, _RA.Conflict))
        add((n, _DCTERMS.identifier, lit(conf.id)))
        for rid in conf.rules:
            add((n, _RA.involves, iri.rule(rid)))
        add((n, _RA.conflictKind, lit(conf.kind)))
        add((n, _RA.relation, lit(conf.relation)))
        add((n, _RA.resolution, lit(conf.resolution)))
        if conf.winner:
            add((n, _RA.winner, iri.rule(conf.winner)))
        for tid in conf.shared_terms:
            add((n, _RA.sharedTerm, iri.term(tid)))
        add((n, _RA.overlap, lit(conf.overlap)))
        add((n, _RA.explanation, lit(conf.explanation)))
    g.store.addN((s, p_, o, g) for s, p_, o in triples)
    return g


def shapes_graph() -> Graph:
    # pyshacl reads a shape's path list from this graph once per focus node; OneGraphStore
    # answers those lookups in a third of the time rdflib's default store takes
    g = Graph(store=OneGraphStore())
    g.parse(data=resources.files("rulealign.kg").joinpath("shapes.ttl").read_text("utf-8"),
            format="turtle")
    return g


def ontology_graph() -> Graph:
    g = Graph()
    g.parse(data=resources.files("rulealign.kg").joinpath("rulealign.ttl").read_text("utf-8"),
            format="turtle")
    return g


SH = Namespace("http://www.w3.org/ns/shacl#")
PARALLEL_FROM_TRIPLES = 100_000
"""Graphs this large are checked in parallel where the machine allows it: below it, starting
a process costs more than it saves."""


def check_shapes(graph: Graph, *, workers: int | None = None) -> None:
    """Raise ``RA201`` (one diagnostic per violation) if ``graph`` breaks the shapes.

    A large graph is checked by ``workers`` forked processes (default: the cores this process
    may use) when forking is safe here, each reading the same graph copy-on-write (nothing is
    serialised) and taking the next top-level shape when it finishes one, the costliest
    first. A shape's results do not depend on the other shapes, so together they are the
    results of checking all the shapes at once.
    """
    with bulk():
        shapes = shapes_graph()
        n = _checkers(graph, workers)
        order = _by_work(shapes, graph) if n > 1 else None
        found = _check_in_parallel(graph, shapes, order, n) if order else _violations(graph, shapes)
    if found:
        raise GraphError(sorted((diagnostic("RA201", reason=reason, node=node) for node, reason in found),
                                key=lambda d: d.message))


def _violations(graph: Graph, shapes: Graph, use_shapes: list[str] | None = None) -> list[tuple[str, str]]:
    """(focus node, reason) for each result of checking ``graph`` against (some of) ``shapes``."""
    from pyshacl import validate

    # inplace: with no inference the data graph is only read, so copying it first (the
    # default) is a quarter of the validation time at 10k rules for nothing. The collector is
    # already paused here by check_shapes (forked checkers inherit the pause).
    conforms, report, _ = validate(graph, shacl_graph=shapes, inference="none", advanced=False,
                                   allow_warnings=True, inplace=True, use_shapes=use_shapes)
    if conforms:
        return []
    found = []
    for result in report.subjects(RDF.type, SH.ValidationResult):
        focus = report.value(result, SH.focusNode)
        message = report.value(result, SH.resultMessage)
        path = report.value(result, SH.resultPath)
        reason = f"{message}" + (f" (path {path.n3(graph.namespace_manager)})" if path else "")
        found.append((str(focus), reason))
    return found or [("?", "does not conform")]


def _checkers(graph: Graph, workers: int | None) -> int:
    """How many processes check ``graph``: one unless it is large and forking is safe here
    (a fork start method, and no other thread that could hold a lock the child needs)."""
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if (workers < 2 or len(graph) < PARALLEL_FROM_TRIPLES or threading.active_count() > 1
            or "fork" not in multiprocessing.get_all_start_methods()):
        return 1
    return workers


def _by_work(shapes: Graph, graph: Graph) -> list[str] | None:
    """The top-level shapes, the most work first: focus nodes, twice for a path that is not
    a single property (pyshacl walks it per node). None if a shape has no IRI to name it by."""
    tops = set(shapes.subjects(RDF.type, SH.PropertyShape)) | set(shapes.subjects(RDF.type, SH.NodeShape))
    if not tops or any(not isinstance(t, URIRef) for t in tops):
        return None
    typed = Counter(o for _, _, o in graph.triples((None, RDF.type, None)))

    def work(shape: Node) -> int:
        nodes = sum(typed[c] for c in shapes.objects(shape, SH.targetClass))
        nodes += sum(sum(1 for _ in graph.triples((None, p, None))) for p in shapes.objects(shape, SH.targetSubjectsOf))
        nodes += sum(1 for _ in shapes.objects(shape, SH.targetNode))
        return nodes * (1 if isinstance(shapes.value(shape, SH.path), URIRef) else 2)

    return [str(t) for _, t in sorted(((work(t), t) for t in tops), key=lambda wt: (-wt[0], str(wt[1])))]


_FORKED: tuple[Graph, Graph] | None = None
"""The data and shapes graphs forked checkers read: set only while ``_check_in_parallel`` forks."""


def _check_forked(shape: str) -> list[tuple[str, str]]:
    if _FORKED is None:  # an internal invariant, kept under python -O too
        raise RuntimeError("_check_forked runs only in a process forked by _check_in_parallel")
    return _violations(*_FORKED, [shape])


def _check_in_parallel(graph: Graph, shapes: Graph, order: list[str], workers: int) -> list[tuple[str, str]]:
    """Check each shape of ``order`` in ``workers`` forked processes; the shapes a process
    that died (killed, out of memory) would have checked are checked here instead, and all
    of them when no process can be forked."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    import pyshacl  # noqa: F401  (imported before forking, so the children inherit it)

    global _FORKED
    # Frozen, the parent's objects are left out of every garbage collection, the children's
    # included: a collection in a child walks every object it tracks, which writes to the
    # page each lives on and so copies the parent's whole heap into the child (measured at
    # 20k rules: SHACL 8.1 s unfrozen, 4.6 s frozen). Unfrozen again once the children end.
    gc.freeze()
    try:
        _FORKED = (graph, shapes)
        try:
            # with the fork start method every worker is forked on the first submit
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
            futures = [(shape, pool.submit(_check_forked, shape)) for shape in order]
        except OSError:  # no process to be had (out of memory, process limit): check here
            return _violations(graph, shapes)
        finally:
            _FORKED = None
        found: list[tuple[str, str]] = []
        try:
            for shape, future in futures:
                try:
                    found += future.result()
                except BrokenProcessPool:
                    found += _violations(graph, shapes, [shape])
        finally:
            pool.shutdown(cancel_futures=True)
        return found
    finally:
        gc.unfreeze()


@dataclass
class PolicyGraph:
    """The policy as a graph: RDF record, conflicts, and networkx views."""

    policy: Policy
    rdf: Graph
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def iris(self) -> Iris:
        return Iris(self.policy.id)

    @property
    def unresolved(self) -> list[Conflict]:
        return [c for c in self.conflicts if c.unresolved]


def build_graph(policy: Policy, *, check: bool = True) -> PolicyGraph:
    """Build (and by default SHACL-check) the graph of ``policy`` with its conflicts."""
    from rulealign.kg.views import check_dependencies

    # one pause of the garbage collector for the whole build (see kg/bulk.py): a collection
    # between its steps would walk everything built so far
    with bulk():
        check_dependencies(policy)
        conflicts = find_conflicts(policy)
        graph = policy_to_rdf(policy, conflicts)
        if check:
            check_shapes(graph)
    return PolicyGraph(policy, graph, conflicts)

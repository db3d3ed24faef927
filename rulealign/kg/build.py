"""Build the policy graph: an rdflib graph (the record) plus networkx views (for analysis).

``build_graph(policy)`` links the policy, its documents, clauses, rules, conditions,
exceptions and terms with ODRL, SKOS, PROV-O and Dublin Core plus the ``ra:`` vocabulary,
adds every conflict as a node with its evidence, and checks the result against the SHACL
shapes in ``shapes.ttl`` (a violation is a coded ``RA201`` error naming the node).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import quote

from rdflib import RDF, XSD, Graph, Literal, URIRef
from rdflib.namespace import RDFS

from rulealign.compiler.models import Modality, Policy
from rulealign.errors import GraphError, diagnostic
from rulealign.kg.conflicts import Conflict, find_conflicts
from rulealign.kg.namespace import DCTERMS, ODRL2, PROV, RA, SKOS

BASE = "https://rulealign.dev/policy/"
_ODRL_TYPE = {Modality.OBLIGATION: ODRL2.Duty, Modality.PROHIBITION: ODRL2.Prohibition,
              Modality.PERMISSION: ODRL2.Permission}
_ODRL_LINK = {Modality.OBLIGATION: ODRL2.obligation, Modality.PROHIBITION: ODRL2.prohibition,
              Modality.PERMISSION: ODRL2.permission}


class Iris:
    """IRIs of the things in one policy's graph."""

    def __init__(self, policy_id: str):
        self.base = f"{BASE}{quote(policy_id, safe='')}/"

    def _iri(self, kind: str, ident: str) -> URIRef:
        return URIRef(f"{self.base}{kind}/{quote(ident, safe='')}")

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

    @property
    def scheme(self) -> URIRef:
        return URIRef(self.base + "terms")


def new_graph() -> Graph:
    g = Graph()
    for prefix, ns in (("ra", RA._NS), ("odrl", ODRL2), ("skos", SKOS), ("prov", PROV),
                       ("dcterms", DCTERMS)):
        g.bind(prefix, ns)
    return g


def _literal_value(value: Any) -> Literal:
    if isinstance(value, bool):
        return Literal(value)
    if isinstance(value, int):
        return Literal(value, datatype=XSD.integer)
    if isinstance(value, float):
        return Literal(value, datatype=XSD.decimal)
    return Literal(str(value))


def policy_to_rdf(policy: Policy, conflicts: list[Conflict]) -> Graph:
    """The RDF record of a policy and its conflicts (no checking)."""
    g = new_graph()
    iri = Iris(policy.id)
    # Triples are collected and added in one addN: Graph.add's per-call checks cost more
    # than the store's insert at hundreds of thousands of triples.
    triples: list[tuple[Any, Any, Any]] = []
    add = triples.append
    p = iri.policy
    add((p, RDF.type, RA.Policy))
    add((p, RDF.type, ODRL2.Policy))
    add((p, DCTERMS.title, Literal(policy.title)))
    add((p, DCTERMS.identifier, Literal(policy.id)))
    if policy.version:
        add((p, DCTERMS.hasVersion, Literal(policy.version)))
    if policy.license:
        add((p, DCTERMS.license, Literal(policy.license)))
    if policy.attribution:
        add((p, DCTERMS.rightsHolder, Literal(policy.attribution)))
    add((p, RA.contentHash, Literal(policy.content_hash())))
    add((iri.scheme, RDF.type, SKOS.ConceptScheme))
    add((iri.scheme, DCTERMS.title, Literal(f"Terms of {policy.title}")))

    documents = {c.document for c in policy.clauses}
    for d in documents:
        add((iri.document(d), RDF.type, RA.Document))
        add((iri.document(d), DCTERMS.source, Literal(d)))
        add((p, DCTERMS.source, iri.document(d)))
    for c in policy.clauses:
        n = iri.clause(c.id)
        add((n, RDF.type, RA.Clause))
        add((n, DCTERMS.identifier, Literal(c.id)))
        add((n, RA.clauseText, Literal(c.text)))
        add((n, RA.section, Literal(c.section)))
        if c.section_title:
            add((n, RA.sectionTitle, Literal(c.section_title)))
        add((n, RA.line, Literal(c.line, datatype=XSD.integer)))
        add((n, RA.charStart, Literal(c.span[0], datatype=XSD.integer)))
        add((n, RA.charEnd, Literal(c.span[1], datatype=XSD.integer)))
        if c.page is not None:
            add((n, RA.page, Literal(c.page, datatype=XSD.integer)))
        add((n, DCTERMS.isPartOf, iri.document(c.document)))
        add((iri.document(c.document), RA.hasClause, n))

    for t in policy.terms:
        n = iri.term(t.id)
        add((n, RDF.type, SKOS.Concept))
        add((n, SKOS.inScheme, iri.scheme))
        add((n, SKOS.prefLabel, Literal(t.label, lang="en")))
        add((n, SKOS.notation, Literal(t.id)))
        for s in t.synonyms:
            add((n, SKOS.altLabel, Literal(s, lang="en")))
        for b in t.broader:
            add((n, SKOS.broader, iri.term(b)))
            add((iri.term(b), SKOS.narrower, n))
        for nn in t.narrower:
            add((n, SKOS.narrower, iri.term(nn)))
            add((iri.term(nn), SKOS.broader, n))
        if t.definition:
            add((n, SKOS.definition, Literal(t.definition, lang="en")))
        for ext in t.iris:
            add((n, SKOS.exactMatch, URIRef(ext)))
        if t.unit:
            add((n, RA.unit, Literal(t.unit)))

    for r in policy.rules:
        n = iri.rule(r.id)
        add((n, RDF.type, RA.Rule))
        add((n, RDF.type, _ODRL_TYPE[r.modality]))
        add((p, RA.hasRule, n))
        add((p, _ODRL_LINK[r.modality], n))
        add((n, DCTERMS.identifier, Literal(r.id)))
        add((n, RDFS.label, Literal(r.id)))
        add((n, RA.ruleText, Literal(r.text)))
        add((n, RA.modality, Literal(r.modality.value)))
        add((n, RA.actor, Literal(r.actor)))
        add((n, RA.action, Literal(r.action)))
        if r.object:
            add((n, RA.object, Literal(r.object)))
        if r.scope:
            add((n, RA.scope, Literal(r.scope)))
        add((n, RA.priority, Literal(r.priority, datatype=XSD.integer)))
        if r.authority:
            add((n, RA.authority, Literal(r.authority)))
        add((n, RA.severity, Literal(r.severity.value)))
        add((n, RA.contentHash, Literal(r.content_hash())))
        for cid in r.clause_ids:
            add((n, PROV.wasDerivedFrom, iri.clause(cid)))
        prov = r.provenance
        if prov.spec_file:
            add((n, RA.specFile, Literal(prov.spec_file)))
        if prov.line is not None:
            add((n, RA.specLine, Literal(prov.line, datatype=XSD.integer)))
        if prov.extractor:
            add((n, RA.extractor, Literal(prov.extractor)))
        if prov.confidence is not None:
            add((n, RA.confidence, Literal(prov.confidence, datatype=XSD.decimal)))
        for tid in r.terms:
            add((n, RA.aboutTerm, iri.term(tid)))
        for o in r.overrides:
            add((n, RA.overrides, iri.rule(o)))
        for k, cond in enumerate(r.conditions):
            cn = URIRef(f"{n}/condition/{k}")
            add((cn, RDF.type, RA.Condition))
            add((n, RA.hasCondition, cn))
            if cond.is_structured:
                add((cn, RA.conditionTerm, iri.term(str(cond.term))))
                add((cn, RA.operator, Literal(cond.op.value if cond.op else "")))
                add((cn, RA.value, _literal_value(cond.value)))
                if cond.unit:
                    add((cn, RA.unit, Literal(cond.unit)))
            if cond.text:
                add((cn, RA.conditionText, Literal(cond.text)))
        for k, e in enumerate(r.exceptions):
            en = URIRef(f"{n}/exception/{k}")
            add((en, RDF.type, RA.Exception))
            add((n, RA.hasException, en))
            if e.text:
                add((en, RA.exceptionText, Literal(e.text)))
            if e.rule:
                add((en, RA.exceptionRule, iri.rule(e.rule)))

    for conf in conflicts:
        n = iri.conflict(conf.id)
        add((n, RDF.type, RA.Conflict))
        add((n, DCTERMS.identifier, Literal(conf.id)))
        for rid in conf.rules:
            add((n, RA.involves, iri.rule(rid)))
        add((n, RA.conflictKind, Literal(conf.kind)))
        add((n, RA.relation, Literal(conf.relation)))
        add((n, RA.resolution, Literal(conf.resolution)))
        if conf.winner:
            add((n, RA.winner, iri.rule(conf.winner)))
        for tid in conf.shared_terms:
            add((n, RA.sharedTerm, iri.term(tid)))
        add((n, RA.overlap, Literal(conf.overlap)))
        add((n, RA.explanation, Literal(conf.explanation)))
    g.addN((s, p_, o, g) for s, p_, o in triples)
    return g


def shapes_graph() -> Graph:
    g = Graph()
    g.parse(data=resources.files("rulealign.kg").joinpath("shapes.ttl").read_text("utf-8"),
            format="turtle")
    return g


def ontology_graph() -> Graph:
    g = Graph()
    g.parse(data=resources.files("rulealign.kg").joinpath("rulealign.ttl").read_text("utf-8"),
            format="turtle")
    return g


def check_shapes(graph: Graph) -> None:
    """Raise ``RA201`` (one diagnostic per violation) if ``graph`` breaks the shapes."""
    from pyshacl import validate

    # inplace: with no inference the data graph is only read, so copying it first (the
    # default) is a quarter of the validation time at 10k rules for nothing.
    conforms, report, _ = validate(graph, shacl_graph=shapes_graph(), inference="none",
                                   advanced=False, allow_warnings=True, inplace=True)
    if conforms:
        return
    sh = "http://www.w3.org/ns/shacl#"
    diags = []
    for result in report.subjects(RDF.type, URIRef(sh + "ValidationResult")):
        focus = report.value(result, URIRef(sh + "focusNode"))
        message = report.value(result, URIRef(sh + "resultMessage"))
        path = report.value(result, URIRef(sh + "resultPath"))
        reason = f"{message}" + (f" (path {path.n3(graph.namespace_manager)})" if path else "")
        diags.append(diagnostic("RA201", reason=reason, node=str(focus)))
    raise GraphError(sorted(diags, key=lambda d: d.message) or
                     [diagnostic("RA201", reason="does not conform", node="?")])


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

    check_dependencies(policy)
    conflicts = find_conflicts(policy)
    graph = policy_to_rdf(policy, conflicts)
    if check:
        check_shapes(graph)
    return PolicyGraph(policy, graph, conflicts)

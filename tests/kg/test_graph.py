"""The RDF graph: vocabulary, SHACL, dependency cycles, queries, export round trips, CLI."""

from __future__ import annotations

import gc
import os
import re
import threading
from pathlib import Path

import networkx as nx
import pytest
import yaml
from rdflib import RDF, Graph, URIRef
from rdflib.compare import isomorphic

from rulealign.cli.main import main
from rulealign.compiler.loader import load_policy
from rulealign.errors import GraphError
from rulealign.kg import build
from rulealign.kg.build import build_graph, check_shapes, ontology_graph, policy_to_rdf
from rulealign.kg.namespace import RA, SKOS
from rulealign.kg.queries import export, named_query, result_rows, run_sparql
from rulealign.kg.store import OneGraphStore
from rulealign.kg.views import rule_dependencies, term_hierarchy
from tests.conftest import SHIPPED_SPECS, SPECS


@pytest.fixture(scope="module")
def acme():
    return build_graph(load_policy(SPECS / "acme-support.yaml"))


def test_closed_namespace_raises_on_a_misspelt_term() -> None:
    with pytest.raises(AttributeError):
        RA.modalty  # noqa: B018


def test_namespace_and_ontology_file_declare_the_same_terms() -> None:
    declared = {str(s).split("#")[1] for s in ontology_graph().subjects()
                if str(s).startswith("https://rulealign.dev/ns#")}
    in_python = set(RA.__annotations__)
    assert declared == in_python


@pytest.mark.parametrize("spec", SHIPPED_SPECS, ids=lambda p: p.name)
def test_shipped_specs_build_and_conform(spec: Path) -> None:
    pg = build_graph(load_policy(spec))
    rules = set(pg.rdf.subjects(predicate=RA.modality))
    assert len(rules) == len(pg.policy.rules)
    assert len(set(pg.rdf.subjects(object=RA.Conflict))) == len(pg.conflicts)


def test_rule_traces_to_clause_line_and_document(acme) -> None:
    rows = run_sparql(acme.rdf, """
        SELECT ?line ?text ?doc WHERE {
          ?r dcterms:identifier "refund-cap" ; prov:wasDerivedFrom ?c .
          ?c ra:line ?line ; ra:clauseText ?text ; dcterms:isPartOf/dcterms:source ?doc }""")
    [(line, text, doc)] = list(rows)
    assert int(line) == 25 and "above $100" in str(text) and str(doc) == "acme-support.md"


def test_policy_records_its_authority_and_their_ranking(acme) -> None:
    from rdflib.collection import Collection

    p = acme.iris.policy
    assert str(acme.rdf.value(p, RA.authority)) == "ACME Customer Operations"
    ranking = Collection(acme.rdf, acme.rdf.value(p, RA.authorities))
    assert [str(a) for a in ranking] == ["legal", "security", "ACME Customer Operations"]
    [(winner,)] = run_sparql(acme.rdf, """SELECT ?w WHERE { ?c ra:resolution "authority" ;
        ra:winner/dcterms:identifier ?w }""")
    assert str(winner) == "escalate-legal-threats"


def test_shacl_names_the_offending_node(acme) -> None:
    broken = Graph()
    for triple in acme.rdf:
        broken.add(triple)
    rule = acme.iris.rule("refund-cap")
    broken.remove((rule, RA.action, None))
    broken.add((acme.iris.rule("no-profanity"), RA.modality, __import__("rdflib").Literal("maybe")))
    with pytest.raises(GraphError) as err:
        check_shapes(broken)
    nodes = {d.message.rsplit(" at node ", 1)[1] for d in err.value.diagnostics}
    assert {str(rule), str(acme.iris.rule("no-profanity"))} <= nodes
    assert all(d.code == "RA201" for d in err.value.diagnostics)


def test_conflict_without_explanation_breaks_the_shapes(acme) -> None:
    g = policy_to_rdf(acme.policy, acme.conflicts)
    node = acme.iris.conflict(acme.conflicts[0].id)
    g.remove((node, RA.explanation, None))
    with pytest.raises(GraphError, match="RA201"):
        check_shapes(g)


def test_conditions_need_text_or_a_complete_structure(acme) -> None:
    g = policy_to_rdf(acme.policy, acme.conflicts)
    structured = next(c for c in g.subjects(RA.conditionTerm, None))
    g.remove((structured, RA.operator, None))  # a term and a value, no operator
    empty = str(acme.iris.condition("refund-cap", 99))
    g.add((URIRef(empty), RDF.type, RA.Condition))  # neither text nor term
    with pytest.raises(GraphError) as err:
        check_shapes(g)
    messages = {d.message.rsplit(" at node ", 1)[1]: d.message for d in err.value.diagnostics}
    assert set(messages) == {str(structured), empty}
    assert "ra:operator" in messages[str(structured)]
    assert "needs its text" in messages[empty]


def _broken_three_ways(acme) -> Graph:
    """acme's graph with a rule, a condition and a conflict each breaking a shape."""
    g = policy_to_rdf(acme.policy, acme.conflicts)
    g.remove((acme.iris.rule("refund-cap"), RA.action, None))
    g.remove((next(g.subjects(RA.conditionTerm, None)), RA.value, None))
    g.remove((acme.iris.conflict(acme.conflicts[0].id), RA.explanation, None))
    return g


def _die(shape: str) -> list[tuple[str, str]]:
    os._exit(3)  # a checker killed mid-run (out of memory, a signal)


def test_shapes_checked_in_forked_processes_find_what_one_process_finds(
        acme, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    g = _broken_three_ways(acme)
    with pytest.raises(GraphError) as alone:
        check_shapes(g, workers=1)
    assert len(alone.value.diagnostics) == 3
    checked_by, real = tmp_path / "pids", build._violations

    def recording(graph: Graph, shapes: Graph, use_shapes: list[str] | None = None) -> list[tuple[str, str]]:
        with checked_by.open("a") as f:
            f.write(f"{os.getpid()} {len(use_shapes or [])}\n")
        return real(graph, shapes, use_shapes)

    monkeypatch.setattr(build, "_violations", recording)
    monkeypatch.setattr(build, "_checkers", lambda graph, workers: 2)  # acme is small
    with pytest.raises(GraphError) as forked:
        check_shapes(g)
    assert [d.message for d in forked.value.diagnostics] == [d.message for d in alone.value.diagnostics]
    calls = [line.split() for line in checked_by.read_text().splitlines()]
    assert len(calls) == len(build._by_work(build.shapes_graph(), g)) and all(n == "1" for _, n in calls)
    assert len({pid for pid, _ in calls}) == 2 and str(os.getpid()) not in {pid for pid, _ in calls}
    # the collector is back as it was: running, nothing left frozen
    assert gc.isenabled() and gc.get_freeze_count() == 0

    # a checker that dies loses nothing: its shapes are checked here instead
    monkeypatch.setattr(build, "_check_forked", _die)
    checked_by.unlink()
    with pytest.raises(GraphError) as after_death:
        check_shapes(g)
    assert [d.message for d in after_death.value.diagnostics] == [d.message for d in alone.value.diagnostics]
    assert {pid for pid, _ in (line.split() for line in checked_by.read_text().splitlines())} == {str(os.getpid())}

    # no process to be had at all: everything is checked here
    def no_fork(*args: object, **kwargs: object) -> None:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr("concurrent.futures.ProcessPoolExecutor", no_fork)
    checked_by.unlink()
    with pytest.raises(GraphError) as unforked:
        check_shapes(g)
    assert [d.message for d in unforked.value.diagnostics] == [d.message for d in alone.value.diagnostics]
    assert checked_by.read_text().split() == [str(os.getpid()), "0"]  # one check of all shapes
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_shapes_are_checked_in_one_process_unless_large_and_forking_is_safe(
        acme, monkeypatch: pytest.MonkeyPatch) -> None:
    big = build.PARALLEL_FROM_TRIPLES
    many = Graph(store=OneGraphStore())
    many.store.addN((URIRef(f"urn:s{i}"), RDF.type, RA.Rule, many) for i in range(big))
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:  # another thread might hold a lock the forked child would need
        assert build._checkers(many, 4) == 1
    finally:
        stop.set()
        other.join()
    # earlier tests may leave a thread behind (tqdm's monitor): pretend this one is alone
    monkeypatch.setattr(build.threading, "active_count", lambda: 1)
    assert build._checkers(many, 4) == 4 and build._checkers(many, 1) == 1
    assert build._checkers(acme.rdf, 4) == 1  # small: a process costs more than it saves


def test_one_graph_store_counts_and_answers_like_a_graph(acme) -> None:
    g = Graph(store=OneGraphStore())
    a, b = URIRef("urn:a"), URIRef("urn:b")
    g.add((a, RDF.type, RA.Rule))
    g.add((a, RDF.type, RA.Rule))  # the same triple twice is one triple
    g.add((b, RDF.type, RA.Rule))
    g.add((a, RA.overrides, b))
    assert len(g) == 3
    g.remove((a, None, None))
    assert len(g) == 1 and set(g) == {(b, RDF.type, RA.Rule)}
    many = Graph(store=OneGraphStore())  # the bulk path fills the same indexes as add
    many.store.addN((*t, many) for t in [(a, RDF.type, RA.Rule), (a, RDF.type, RA.Rule), (b, RDF.type, RA.Rule),
                                         (a, RA.overrides, b)])
    assert len(many) == 3 and set(many.subjects(RDF.type, RA.Rule)) == {a, b}
    assert set(many.predicate_objects(a)) == {(RDF.type, RA.Rule), (RA.overrides, b)}
    assert set(many.subject_predicates(b)) == {(a, RA.overrides)}
    assert isinstance(acme.rdf.store, OneGraphStore)
    copy = Graph()  # rdflib's default store: the same triples, the same answers
    for triple in acme.rdf:
        copy.add(triple)
    assert len(copy) == len(acme.rdf) and isomorphic(copy, acme.rdf)
    query = "SELECT ?r WHERE { ?r ra:aboutTerm ?t . ?t skos:broader+ ?b } ORDER BY ?r"
    assert list(run_sparql(copy, query)) == list(run_sparql(acme.rdf, query))


def test_cycle_in_exceptions_and_overrides_is_a_coded_error(tmp_path: Path) -> None:
    # a overrides b, b overrides c, and a lists c as its exception (c -> a): a cycle
    rules = [{"id": "a", "text": "t", "modality": "prohibition", "action": "x", "overrides": ["b"],
              "exceptions": [{"rule": "c"}]},
             {"id": "b", "text": "t", "modality": "permission", "action": "y", "overrides": ["c"]},
             {"id": "c", "text": "t", "modality": "obligation", "action": "z"}]
    path = tmp_path / "cyc.yaml"
    path.write_text(yaml.safe_dump({"rulealign": 1, "policy": {"id": "c", "title": "C"}, "rules": rules}))
    with pytest.raises(GraphError) as err:
        build_graph(load_policy(path))
    assert err.value.code == "RA202"
    assert re.search(r"a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c", err.value.diagnostics[0].message)
    assert gc.isenabled()  # the build's pause of the garbage collector ends with the error too


def test_networkx_views() -> None:
    policy = load_policy(SPECS / "northwind-conduct.yaml")
    terms = term_hierarchy(policy)
    assert terms.has_edge("cash-gift", "gift") and nx.is_directed_acyclic_graph(terms)
    deps = rule_dependencies(policy)
    assert deps.edges["regulator-requests", "no-personal-data-sharing"]["relation"] == "exception-of"
    assert deps.edges["trading-plan", "no-insider-trading"]["relation"] == "overrides"


def test_refines_links_a_rule_to_the_rules_about_broader_terms(tmp_path: Path) -> None:
    terms = [{"id": "data"}, {"id": "email", "broader": ["data"]}, {"id": "work-email", "broader": ["email"]},
             *({"id": f"s{i}", "broader": ["data"]} for i in range(50))]
    rules = [{"id": "all", "text": "t", "modality": "prohibition", "action": "share it", "terms": ["data"]},
             {"id": "mail", "text": "t", "modality": "prohibition", "action": "Share it", "terms": ["email"]},
             {"id": "work", "text": "t", "modality": "prohibition", "action": "share it", "terms": ["work-email"]},
             {"id": "allowed", "text": "t", "modality": "permission", "action": "share it", "terms": ["email"]},
             *({"id": f"r{i}", "text": "t", "modality": "prohibition", "action": "share it", "terms": [f"s{i}"]}
               for i in range(50))]
    path = tmp_path / "refines.yaml"
    path.write_text(yaml.safe_dump({"rulealign": 1, "policy": {"id": "r", "title": "R"},
                                    "terms": terms, "rules": rules}))
    deps = rule_dependencies(load_policy(path))
    refines = {(u, v) for u, v, d in deps.edges(data=True) if d["relation"] == "refines"}
    # siblings refine only the rule about their parent; another modality refines nothing
    expected = {("mail", "all"), ("work", "mail"), ("work", "all"), *((f"r{i}", "all") for i in range(50))}
    assert refines == expected


def test_named_queries(acme) -> None:
    _, rows = result_rows(named_query(acme.rdf, "rules-by-term", "refund"))
    ids = {r[0] for r in rows}
    assert {"refund-cap", "damaged-refund", "goodwill-refund-gold"} <= ids  # narrower included
    _, rows = result_rows(named_query(acme.rdf, "conflicts-of-rule", "refund-cap"))
    assert [r[0] for r in rows] == ["goodwill-refund-gold--refund-cap"]
    _, rows = result_rows(named_query(acme.rdf, "clauses-without-rules"))
    assert [r[0] for r in rows] == ["preamble.p1"]
    _, rows = result_rows(named_query(acme.rdf, "unresolved-conflicts"))
    assert [r[0] for r in rows] == ["no-handoff-after-hours--offer-human-transfer"]


def test_unused_terms_query(tmp_path: Path) -> None:
    spec = {"rulealign": 1, "policy": {"id": "u", "title": "U"},
            "terms": [{"id": "used"}, {"id": "lonely"}, {"id": "parent"}, {"id": "child", "broader": ["parent"]}],
            "rules": [{"id": "r", "text": "t", "modality": "obligation", "action": "x", "terms": ["used", "child"]}]}
    path = tmp_path / "u.yaml"
    path.write_text(yaml.safe_dump(spec))
    pg = build_graph(load_policy(path))
    _, rows = result_rows(named_query(pg.rdf, "unused-terms"))
    assert [r[0] for r in rows] == ["lonely"]


def test_bad_queries_are_coded_errors(acme) -> None:
    with pytest.raises(GraphError, match="RA203"):
        run_sparql(acme.rdf, "SELEKT nonsense")
    with pytest.raises(GraphError, match="RA205"):
        named_query(acme.rdf, "rules-by-trm", "x")


@pytest.mark.parametrize(("suffix", "fmt"), [(".ttl", "turtle"), (".jsonld", "json-ld"), (".nt", "nt")])
def test_export_loads_back_isomorphic(acme, tmp_path: Path, suffix: str, fmt: str) -> None:
    path = export(acme, tmp_path / f"g{suffix}")
    again = Graph().parse(path, format=fmt)
    assert isomorphic(again, acme.rdf)


def test_graphml_export(acme, tmp_path: Path) -> None:
    g = nx.read_graphml(export(acme, tmp_path / "g.graphml"))
    kinds = {d["kind"] for _, d in g.nodes(data=True)}
    assert kinds == {"rule", "term", "clause", "conflict"}
    assert g.nodes["rule:refund-cap"]["modality"] == "prohibition"


def test_unknown_export_format(acme, tmp_path: Path) -> None:
    with pytest.raises(GraphError, match="RA206"):
        export(acme, tmp_path / "g.xml", fmt="rdfxml")
    with pytest.raises(GraphError, match=re.escape("unknown graph format '.xml'")):  # no guessing
        export(acme, tmp_path / "g.xml")
    assert not list(tmp_path.iterdir())


def test_terms_are_skos_concepts(acme) -> None:
    refund = acme.iris.term("refund")
    assert (refund, SKOS.broader, acme.iris.term("compensation")) in acme.rdf
    assert URIRef(str(acme.iris.term("goodwill-refund"))) in set(acme.rdf.subjects(SKOS.broader, refund))


def test_kg_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    acme = str(SPECS / "acme-support.yaml")
    assert main(["kg", "conflicts", acme]) == 0
    assert main(["kg", "conflicts", "--strict", acme]) == 1
    assert main(["kg", "conflicts", "--strict", str(SPECS / "northwind-conduct.yaml")]) == 0
    out = tmp_path / "g.ttl"
    assert main(["kg", "build", acme, "-o", str(out)]) == 0 and out.stat().st_size > 1000
    assert main(["kg", "show", "refund-cap", "--spec", acme]) == 0
    assert "line 25" in capsys.readouterr().out
    assert main(["kg", "show", "refund-cpa", "--spec", acme]) == 1
    assert "did you mean 'refund-cap'" in capsys.readouterr().err
    assert main(["kg", "query", acme, "--named", "unused-terms"]) == 0
    assert main(["kg", "query", "--list"]) == 0
    assert main(["kg", "build", "nope.yaml", "-o", str(out)]) == 2

"""networkx views of a policy for analysis: the term hierarchy and rule dependencies."""

from __future__ import annotations

import networkx as nx

from rulealign.compiler.models import Policy
from rulealign.errors import GraphError, diagnostic


def term_hierarchy(policy: Policy) -> nx.DiGraph:
    """Edges narrower → broader (SKOS broader)."""
    g: nx.DiGraph = nx.DiGraph()
    for t in policy.terms:
        g.add_node(t.id, label=t.label, kind="term")
        g.add_edges_from(((t.id, b) for b in t.broader), relation="broader")
        g.add_edges_from(((n, t.id) for n in t.narrower), relation="broader")
    return g


def rule_dependencies(policy: Policy) -> nx.DiGraph:
    """Edges between rules: ``exception-of`` (carve-out → rule), ``overrides``, ``refines``.

    A rule *refines* another when both have the same action and modality and its terms
    are narrower than the other's.
    """
    g: nx.DiGraph = nx.DiGraph()
    hierarchy = term_hierarchy(policy)
    for r in policy.rules:
        g.add_node(r.id, modality=r.modality.value, priority=r.priority, kind="rule")
    for r in policy.rules:
        for e in r.exceptions:
            if e.rule:
                g.add_edge(e.rule, r.id, relation="exception-of")
        for o in r.overrides:
            g.add_edge(r.id, o, relation="overrides")
    # refines: within one (action, modality), from each rule to the rules about a broader
    # term than its own, looked up by term (not a scan of the pairs: a policy may say "must
    # not share" a thousand times)
    by_term: dict[tuple[str, str, str], set[str]] = {}
    for r in policy.rules:
        for t in r.terms:
            by_term.setdefault((r.action.lower(), r.modality.value, t), set()).add(r.id)
    broader: dict[str, set[str]] = {}  # term -> every broader term (edges point to broader)
    for r in policy.rules:
        key = (r.action.lower(), r.modality.value)
        for ta in r.terms:
            if ta not in broader:
                broader[ta] = nx.descendants(hierarchy, ta) if ta in hierarchy else set()
            for tb in broader[ta]:
                for b in by_term.get((*key, tb), ()):
                    if b != r.id:
                        g.add_edge(r.id, b, relation="refines")
    return g


def check_dependencies(policy: Policy) -> None:
    """Raise ``RA202`` for each cycle among exceptions and overrides."""
    g = rule_dependencies(policy)
    strict = g.edge_subgraph([(u, v) for u, v, d in g.edges(data=True) if d["relation"] != "refines"])
    diags = []
    for comp in nx.strongly_connected_components(strict):
        if len(comp) > 1:
            cycle = nx.find_cycle(strict.subgraph(comp))
            names = [u for u, _ in cycle] + [cycle[0][0]]
            diags.append(diagnostic("RA202", cycle=" -> ".join(names)))
    if diags:
        raise GraphError(diags)

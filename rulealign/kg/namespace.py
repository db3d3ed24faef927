"""rulealign's own vocabulary as a closed namespace: a misspelt term raises.

Every term here is declared in ``rulealign.ttl`` beside this file (a test keeps them in
step). Standard vocabularies are reused where they fit: ODRL (permission, prohibition,
duty), SKOS (terms, broader/narrower), PROV-O (where a rule came from), Dublin Core
(documents).
"""

from __future__ import annotations

from types import SimpleNamespace

from rdflib import Namespace, URIRef
from rdflib.namespace import DCTERMS, ODRL2, PROV, SKOS, DefinedNamespace

__all__ = ["DCTERMS", "ODRL2", "PROV", "RA", "SKOS", "resolved"]


class RA(DefinedNamespace):
    _fail = True
    _NS = Namespace("https://rulealign.dev/ns#")

    # classes
    Policy: URIRef
    Rule: URIRef
    Clause: URIRef
    Document: URIRef
    Condition: URIRef
    Exception: URIRef
    Conflict: URIRef
    # rules
    modality: URIRef
    actor: URIRef
    action: URIRef
    object: URIRef
    scope: URIRef
    priority: URIRef
    authority: URIRef
    authorities: URIRef
    severity: URIRef
    ruleText: URIRef
    contentHash: URIRef
    specFile: URIRef
    specLine: URIRef
    extractor: URIRef
    confidence: URIRef
    aboutTerm: URIRef
    overrides: URIRef
    hasRule: URIRef
    hasClause: URIRef
    # conditions and exceptions
    hasCondition: URIRef
    conditionTerm: URIRef
    operator: URIRef
    value: URIRef
    unit: URIRef
    conditionText: URIRef
    hasException: URIRef
    exceptionText: URIRef
    exceptionRule: URIRef
    # clauses
    clauseText: URIRef
    section: URIRef
    sectionTitle: URIRef
    line: URIRef
    charStart: URIRef
    charEnd: URIRef
    page: URIRef
    # conflicts
    conflictKind: URIRef
    relation: URIRef
    resolution: URIRef
    winner: URIRef
    involves: URIRef
    sharedTerm: URIRef
    overlap: URIRef
    explanation: URIRef


def resolved(namespace: type[DefinedNamespace]) -> SimpleNamespace:
    """The declared terms of ``namespace`` as plain attributes.

    A DefinedNamespace answers every attribute through its metaclass (with the closed-world
    check), which costs more than adding a triple; code that writes hundreds of thousands of
    triples looks its terms up once here. Still closed: a misspelt name is an AttributeError.
    """
    names = [n for klass in reversed(namespace.__mro__) for n in getattr(klass, "__annotations__", {})]
    return SimpleNamespace(**{n: namespace[n] for n in names if not n.startswith("_")})

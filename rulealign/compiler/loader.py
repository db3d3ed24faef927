"""Load spec files into a :class:`Policy`, reporting every problem at once.

``compile_spec`` never raises for bad input: it returns the policy (when there were no
errors) and all diagnostics, each with ``file:line:col``. ``load_policy`` is the strict
form that raises :class:`SpecError`.
"""

from __future__ import annotations

import hashlib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from rulealign.compiler.models import (
    ID_PATTERN,
    Check,
    Clause,
    Condition,
    LabelledExample,
    Policy,
    Provenance,
    Rule,
    RuleException,
    Term,
)
from rulealign.compiler.patterns import PROBE_TIMEOUT_S, compile_pattern, slow_probe
from rulealign.compiler.spec_format import (
    FORMAT_MAJOR,
    FORMAT_MINOR,
    ClauseSpec,
    RuleSpec,
    SpecFile,
    TermSpec,
)
from rulealign.compiler.yaml_marks import MAX_BYTES, MarkedYAML, load_yaml
from rulealign.errors import Diagnostic, RulealignError, SpecError, diagnostic, did_you_mean

_ID_RE = re.compile(ID_PATTERN)
#: An absolute IRI as RDF serialisers accept it (RFC 3987's scheme, then no character that
#: N-Triples and Turtle cannot write inside <...>).
_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`\x00-\x1f\x7f-\x9f]+")
_UNION_TAGS = {"sentence", "structured"}


_ITEM_MODELS: dict[str, type[BaseModel]] = {"rules": RuleSpec, "terms": TermSpec, "clauses": ClauseSpec}


@dataclass
class SpecUnit:
    """One parsed spec file: its schema-valid items, and where each came from.

    Items (rules, terms, clauses) are validated one by one, so one broken rule does not
    hide the cross-reference problems of the others. ``origin`` maps an item's position
    in ``spec`` back to its index in the file; ``broken_ids`` are ids of items that failed
    validation (they are known to exist, so references to them are not reported twice).
    """

    path: Path
    display: str
    marked: MarkedYAML
    spec: SpecFile
    origin: dict[str, list[int]] = field(default_factory=dict)
    broken_ids: dict[str, set[str]] = field(default_factory=dict)

    def at(self, path: tuple[str | int, ...], *, key: bool = False) -> dict[str, Any]:
        if len(path) >= 2 and isinstance(path[1], int) and str(path[0]) in self.origin:
            path = (path[0], self.origin[str(path[0])][path[1]], *path[2:])
        line, col = self.marked.locate(path, key=key)
        return {"file": self.display, "line": line, "col": col}


@dataclass
class CompileResult:
    policy: Policy | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    @property
    def ok(self) -> bool:
        return self.policy is not None and not self.errors


# -- schema errors -> coded diagnostics ---------------------------------------------------

def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The spec model that the value at ``loc`` is validated against."""
    model: type[BaseModel] | None = SpecFile
    for part in loc:
        if isinstance(part, int) or part in _UNION_TAGS or model is None:
            continue
        info = model.model_fields.get(part)
        if info is None:
            return None
        model = _first_model(info.annotation)
    return model


def _first_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _first_model(typing.get_args(annotation)[0])
    if origin in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _first_model(arg)
            if found is not None:
                return found
    return None


def _describe(data: Any, loc: tuple[str | int, ...]) -> str:
    if len(loc) >= 2 and loc[0] in ("rules", "terms", "clauses") and isinstance(loc[1], int):
        kind = {"rules": "rule", "terms": "term", "clauses": "clause"}[str(loc[0])]
        try:
            item_id = data[loc[0]][loc[1]].get("id")
        except (AttributeError, IndexError, KeyError, TypeError):
            item_id = None
        name = f"{kind} '{item_id}'" if item_id else f"{kind} #{loc[1] + 1}"
        rest = _dotted(loc[2:])
        return f"{name}{' field ' + rest if rest else ''}"
    return f"'{_dotted(loc)}'" if loc else "the spec"


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _strip_tags(loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    out: list[str | int] = []
    for part in loc:
        if part in _UNION_TAGS and out and isinstance(out[-1], int) \
                and len(out) >= 2 and out[-2] in ("conditions", "exceptions"):
            continue
        out.append(part)
    return tuple(out)


def _schema_diagnostics(exc: ValidationError, marked: MarkedYAML, display: str,
                        prefix: tuple[str | int, ...] = ()) -> list[Diagnostic]:
    diags = []
    for err in exc.errors(include_url=False):
        loc = _strip_tags((*prefix, *err["loc"]))
        kind = err["type"]
        if kind == "extra_forbidden":
            model = _model_at(loc[:-1])
            options = list(model.model_fields) if model else []
            line, col = marked.locate(loc, key=True)
            diags.append(diagnostic("RA110", file=display, line=line, col=col, field=loc[-1],
                                    where=_describe(marked.data, loc[:-1]),
                                    suggestion=did_you_mean(str(loc[-1]), options)))
        elif kind == "missing":
            line, col = marked.locate(loc[:-1])
            diags.append(diagnostic("RA111", file=display, line=line, col=col, field=loc[-1],
                                    where=_describe(marked.data, loc[:-1])))
        else:
            line, col = marked.locate(loc)
            msg = err["msg"].replace("Value error, ", "")
            diags.append(diagnostic("RA109", file=display, line=line, col=col,
                                    reason=f"{_describe(marked.data, loc)}: {msg}"))
    return diags


# -- reading files -------------------------------------------------------------------------

def _version_diagnostics(value: Any, unit_at: dict[str, Any]) -> tuple[list[Diagnostic], bool]:
    """Check the format version; returns (diagnostics, whether to go on validating)."""
    text = str(value).strip()
    m = re.fullmatch(r"(\d+)(?:\.(\d+))?", text)
    if m is None:
        return [diagnostic("RA107", **unit_at, reason=f"format version '{text}' is not a number "
                           "like 1 or 1.0")], False
    major, minor = int(m.group(1)), int(m.group(2) or 0)
    if major != FORMAT_MAJOR:
        newer = "newer" if major > FORMAT_MAJOR else "older"
        return [diagnostic("RA107", **unit_at, reason=f"spec format {text} is a {newer} major "
                           f"version; this rulealign reads {FORMAT_MAJOR}.x")], False
    if minor > FORMAT_MINOR:
        return [diagnostic("RA108", **unit_at, version=text,
                           known=f"{FORMAT_MAJOR}.{FORMAT_MINOR}")], True
    return [], True


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _read_unit(path: Path, max_bytes: int) -> tuple[SpecUnit | None, list[Diagnostic]]:
    display = _display(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return None, [diagnostic("RA104", file=display, line=1, col=1, size=size, limit=max_bytes)]
        raw = path.read_bytes()
    except OSError as exc:
        return None, [diagnostic("RA001", path=display, reason=exc.strerror or str(exc))]
    try:
        marked = load_yaml(raw, display, max_bytes=max_bytes)
    except SpecError as exc:
        return None, exc.diagnostics
    data = marked.data
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        line, col = marked.locate(())
        return None, [diagnostic("RA123", file=display, line=line, col=col,
                                 reason=f"the file is {kind}, not a mapping")]
    diags: list[Diagnostic] = []
    if "rulealign" in data:
        vdiags, go_on = _version_diagnostics(data["rulealign"], _at(marked, ("rulealign",)))
        diags += vdiags
        if not go_on:
            return None, diags
    head = {k: v for k, v in data.items() if k not in _ITEM_MODELS or not isinstance(v, list)}
    origin: dict[str, list[int]] = {}
    broken: dict[str, set[str]] = {}
    items: dict[str, list[Any]] = {}
    for name, model in _ITEM_MODELS.items():
        value = data.get(name)
        if not isinstance(value, list):
            continue
        origin[name], broken[name], items[name] = [], set(), []
        for i, item in enumerate(value):
            try:
                items[name].append(model.model_validate(item))
                origin[name].append(i)
            except ValidationError as exc:
                diags += _schema_diagnostics(exc, marked, display, (name, i))
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    broken[name].add(item["id"])
    try:
        spec = SpecFile.model_validate(head)
    except ValidationError as exc:
        return None, diags + _schema_diagnostics(exc, marked, display)
    spec = spec.model_copy(update=items)
    return SpecUnit(path, display, marked, spec, origin, broken), diags


def _at(marked: MarkedYAML, path: tuple[str | int, ...], key: bool = False) -> dict[str, Any]:
    line, col = marked.locate(path, key=key)
    return {"file": marked.file, "line": line, "col": col}


def _shown(path: str, limit: int = 120) -> str:
    text = path.encode("unicode_escape").decode("ascii")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _confined(base: Path, rel: str, root: Path) -> tuple[Path | None, str | None]:
    """``rel`` (from a spec in ``base``) resolved, symlinks followed, if it stays inside
    ``root``; else ``(None, "outside")``, or ``(None, why)`` for a name no file can have."""
    if "\0" in rel:
        return None, "the path contains a NUL character"
    try:
        target = (base / rel).resolve()
    except (OSError, ValueError, RuntimeError) as exc:  # too long, a symlink loop
        return None, f"not a usable path ({exc.__class__.__name__})"
    if not target.is_relative_to(root):
        return None, "outside"
    return target, None


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the file system
        return False


def _read_all(path: Path, root: Path, max_bytes: int) -> tuple[list[SpecUnit], list[Diagnostic]]:
    units: list[SpecUnit] = []
    diags: list[Diagnostic] = []
    seen: set[Path] = set()

    def visit(p: Path, chain: tuple[Path, ...]) -> None:
        seen.add(p)
        unit, found = _read_unit(p, max_bytes)
        diags.extend(found)
        if unit is None:
            return
        units.append(unit)
        if chain and unit.spec.policy is not None:
            diags.append(diagnostic("RA124", **unit.at(("policy",), key=True)))
        for i, inc in enumerate(unit.spec.include):
            where = unit.at(("include", i))
            target, problem = _confined(p.parent, inc, root)
            if problem == "outside":
                diags.append(diagnostic("RA118", **where, path=_shown(inc), root=_display(root)))
            elif target is None:
                diags.append(diagnostic("RA119", **where, path=_shown(inc), reason=problem))
            elif target in chain or target == p:
                diags.append(diagnostic("RA119", **where, path=_shown(inc), reason="include cycle"))
            elif not _is_file(target):
                diags.append(diagnostic("RA119", **where, path=_shown(inc), reason="no such file"))
            elif target not in seen:
                visit(target, (*chain, p))

    visit(path, ())
    return units, diags


# -- cross-references -----------------------------------------------------------------------

@dataclass
class _Refs:
    rules: dict[str, tuple[SpecUnit, int]] = field(default_factory=dict)
    terms: dict[str, tuple[SpecUnit, int]] = field(default_factory=dict)
    broken_rules: set[str] = field(default_factory=set)
    broken_terms: set[str] = field(default_factory=set)

    def has_term(self, term_id: str) -> bool:
        return term_id in self.terms or term_id in self.broken_terms

    def has_rule(self, rule_id: str) -> bool:
        return rule_id in self.rules or rule_id in self.broken_rules


def _check_ids(units: list[SpecUnit]) -> tuple[_Refs, list[Diagnostic]]:
    refs, diags = _Refs(), []
    for unit in units:
        refs.broken_rules |= unit.broken_ids.get("rules", set())
        refs.broken_terms |= unit.broken_ids.get("terms", set())
        groups = (("term", [t.id for t in unit.spec.terms], refs.terms, "RA113"),
                  ("rule", [r.id for r in unit.spec.rules], refs.rules, "RA112"))
        for kind, ids, table, dup_code in groups:
            plural = kind + "s"
            for i, item_id in enumerate(ids):
                if not _ID_RE.match(item_id):
                    diags.append(diagnostic("RA122", **unit.at((plural, i, "id")), what=kind, id=item_id))
                if item_id in table:
                    first_unit, j = table[item_id]
                    f = first_unit.at((plural, j, "id"))
                    diags.append(diagnostic(dup_code, **unit.at((plural, i, "id")), id=item_id,
                                            first=f"{f['file']}:{f['line']}"))
                else:
                    table[item_id] = (unit, i)
    return refs, diags


def _check_refs(units: list[SpecUnit], refs: _Refs) -> list[Diagnostic]:
    diags: list[Diagnostic] = []
    term_ids, rule_ids = refs.terms.keys(), refs.rules.keys()
    for unit in units:
        for i, term in enumerate(unit.spec.terms):
            for j, iri in enumerate(term.iri):
                if not _IRI.fullmatch(iri):
                    diags.append(diagnostic("RA109", **unit.at(("terms", i, "iri", j)), reason=(
                        f"term '{term.id}': {iri[:80]!r} is not an absolute IRI (a scheme such "
                        "as 'https:', then no spaces, control characters or <>\"{}|\\^`)")))
            for rel in ("broader", "narrower"):
                for j, other in enumerate(getattr(term, rel)):
                    if not refs.has_term(other):
                        diags.append(diagnostic("RA103", **unit.at(("terms", i, rel, j)), term=other,
                                                where=f"{rel} of term '{term.id}'",
                                                suggestion=did_you_mean(other, term_ids)))
        for i, rule in enumerate(unit.spec.rules):
            base = ("rules", i)
            for j, t in enumerate(rule.terms):
                if not refs.has_term(t):
                    diags.append(diagnostic("RA103", **unit.at((*base, "terms", j)), term=t,
                                            where=f"rule '{rule.id}'",
                                            suggestion=did_you_mean(t, term_ids)))
            for j, cond in enumerate(rule.conditions):
                if isinstance(cond, str) or cond.term is None:
                    continue
                at = unit.at((*base, "conditions", j, "term"))
                if cond.term in refs.broken_terms:
                    continue
                if cond.term not in refs.terms:
                    diags.append(diagnostic("RA114", **at, rule=rule.id, term=cond.term,
                                            suggestion=did_you_mean(cond.term, term_ids)))
                    continue
                tunit, ti = refs.terms[cond.term]
                term_unit = tunit.spec.terms[ti].unit
                if cond.unit and term_unit and cond.unit != term_unit:
                    diags.append(diagnostic("RA125", **at, rule=rule.id, unit=cond.unit,
                                            term=cond.term, term_unit=term_unit))
                if cond.op is not None and cond.op.value in (">", ">=", "<", "<=") and (
                        isinstance(cond.value, bool) or not isinstance(cond.value, (int, float))):
                    diags.append(diagnostic("RA109", **unit.at((*base, "conditions", j, "value")),
                                            reason=f"rule '{rule.id}': operator '{cond.op.value}' "
                                                   f"needs a number, got {cond.value!r}"))
                values = cond.value if isinstance(cond.value, list) else [cond.value]
                if any(isinstance(v, float) and not math.isfinite(v) for v in values):
                    diags.append(diagnostic("RA109", **unit.at((*base, "conditions", j, "value")),
                                            reason=f"rule '{rule.id}': a threshold must be a "
                                                   f"finite number, got {cond.value!r}"))
            named: list[tuple[tuple[str | int, ...], str, str]] = [
                (("exceptions", j, "rule"), e.rule, "an exception")
                     for j, e in enumerate(rule.exceptions) if not isinstance(e, str) and e.rule]
            named += [(("overrides", j), o, "'overrides'") for j, o in enumerate(rule.overrides)]
            for sub, ref, what in named:
                if not refs.has_rule(ref) or ref == rule.id:
                    diags.append(diagnostic("RA115", **unit.at((*base, *sub)),
                                            where=f"{what} of rule '{rule.id}'", ref=ref,
                                            suggestion="; a rule cannot name itself" if ref == rule.id
                                            else did_you_mean(ref, rule_ids)))
            for j, check in enumerate(rule.checks):
                for kind, value in check.kinds():
                    if kind.value in ("regex", "not_regex"):
                        diags += _pattern_diagnostics(str(value), unit.at((*base, "checks", j)),
                                                      j + 1, rule.id)
    diags += _term_cycles(refs)
    return diags


def _pattern_diagnostics(pattern: str, at: dict[str, Any], index: int,
                         rule: str) -> list[Diagnostic]:
    """RA121 for a pattern that does not compile, RA127 for one that backtracks
    catastrophically on a short adversarial text (it would stall every audit)."""
    try:
        compile_pattern(pattern)
        probe = slow_probe(pattern)
    except ValueError as exc:
        return [diagnostic("RA121", **at, index=index, rule=rule,
                           reason=f"bad regular expression: {exc}")]
    if probe is None:
        return []
    shown = repr(probe if len(probe) <= 24 else probe[:20] + "…" + probe[-3:])
    return [diagnostic("RA127", **at, index=index, rule=rule,
                       pattern=pattern if len(pattern) <= 80 else pattern[:79] + "…",
                       timeout=PROBE_TIMEOUT_S, chars=len(probe), probe=shown)]


def _check_authorities(units: list[SpecUnit]) -> list[Diagnostic]:
    """Where the policy ranks its authorities, each is ranked once and every authority a
    rule (or the policy) names is among them: an unranked one would silently take no part in
    resolving conflicts (RA126, a warning)."""
    head = units[0]
    header = head.spec.policy
    if header is None or not header.authorities:
        return []
    diags: list[Diagnostic] = []
    ranked = header.authorities
    for j, name in enumerate(ranked):
        if name in ranked[:j]:
            diags.append(diagnostic("RA109", **head.at(("policy", "authorities", j)),
                                    reason=f"authority '{name}' is ranked twice in policy.authorities"))
    named: list[tuple[SpecUnit, tuple[str | int, ...], str, str]] = (
        [(head, ("policy", "authority"), header.authority, "the policy")] if header.authority else [])
    named += [(u, ("rules", i, "authority"), r.authority, f"rule '{r.id}'")
              for u in units for i, r in enumerate(u.spec.rules) if r.authority]
    for unit, at, name, where in named:
        if name not in ranked:
            diags.append(diagnostic("RA126", **unit.at(at), authority=name, where=where,
                                    suggestion=did_you_mean(name, ranked)))
    return diags


def _term_cycles(refs: _Refs) -> list[Diagnostic]:
    import networkx as nx

    g: nx.DiGraph = nx.DiGraph()
    for tid, (unit, i) in refs.terms.items():
        term = unit.spec.terms[i]
        g.add_node(tid)
        g.add_edges_from((tid, b) for b in term.broader if b in refs.terms)
        g.add_edges_from((n, tid) for n in term.narrower if n in refs.terms)
    diags = []
    for comp in nx.strongly_connected_components(g):
        if len(comp) == 1 and not any(g.has_edge(n, n) for n in comp):
            continue
        cycle = nx.find_cycle(g.subgraph(comp))
        names = [u for u, _ in cycle] + [cycle[0][0]]
        first = next(t for t in refs.terms if t in comp)  # first in file order
        unit, i = refs.terms[first]
        diags.append(diagnostic("RA117", **unit.at(("terms", i, "id")), cycle=" -> ".join(names)))
    return diags


# -- building the policy ---------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]{3,}")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


class _ClauseIndex:
    def __init__(self, clauses: list[Clause]):
        self.by_id = {c.id: c for c in clauses}
        self.by_section: dict[str, list[Clause]] = {}
        for c in clauses:
            self.by_section.setdefault(c.section, []).append(c)

    def resolve(self, ref: str, rule_text: str) -> Clause | None:
        if ref in self.by_id:
            return self.by_id[ref]
        candidates = self.by_section.get(ref) or [
            c for s, cs in self.by_section.items() if s.startswith((ref + ".", ref + "/")) for c in cs]
        if not candidates:
            return None
        want = _words(rule_text)
        return max(candidates, key=lambda c: len(want & _words(c.text)) / (len(want) or 1))

    def names(self) -> list[str]:
        return list(self.by_id) + [s for s in self.by_section if s]


def _rule(spec: RuleSpec, unit: SpecUnit, index: int, clause_ids: tuple[str, ...], root: Path) -> Rule:
    at = unit.at(("rules", index))
    conditions = tuple(Condition(text=c) if isinstance(c, str) else Condition(**c.model_dump())
                       for c in spec.conditions)
    exceptions = tuple(RuleException(text=e) if isinstance(e, str) else RuleException(**e.model_dump())
                       for e in spec.exceptions)
    checks = tuple(Check(kind=kind, value=value, message=c.message)
                   for c in spec.checks for kind, value in c.kinds())
    draft = spec.provenance
    prov = Provenance(spec_file=str(unit.path.relative_to(root)), line=at["line"], col=at["col"],
                      extractor=draft.extractor if draft else None,
                      confidence=draft.confidence if draft else None)
    return Rule(id=spec.id, text=spec.text, clause_ids=clause_ids, modality=spec.modality,
                actor=spec.actor, action=spec.action, object=spec.object, conditions=conditions,
                exceptions=exceptions, overrides=tuple(spec.overrides), scope=spec.scope,
                priority=spec.priority, authority=spec.authority, terms=tuple(spec.terms),
                severity=spec.severity, checks=checks,
                examples=tuple(LabelledExample(**e.model_dump()) for e in spec.examples),
                provenance=prov)


def _build(units: list[SpecUnit], root: Path) -> tuple[Policy | None, list[Diagnostic]]:
    head = units[0]
    header = head.spec.policy
    if header is None:
        return None, [diagnostic("RA111", file=head.display, line=1, col=1, field="policy",
                                 where="the root spec")]
    diags: list[Diagnostic] = []
    if not _ID_RE.match(header.id):
        diags.append(diagnostic("RA122", **head.at(("policy", "id")), what="policy", id=header.id))
    hasher = hashlib.sha256()
    for u in sorted(units, key=lambda u: str(u.path)):
        hasher.update(str(u.path.relative_to(root)).encode() + b"\0" + u.path.read_bytes())

    doc_clauses: list[Clause] = []
    document = "the spec's clauses"
    sources: tuple[str, ...] = ()
    if header.source:
        from rulealign.compiler.ingest import ingest_document

        src, problem = _confined(head.path.parent, header.source, root)
        if problem == "outside":
            return None, [*diags, diagnostic("RA128", **head.at(("policy", "source")),
                                             path=_shown(header.source), root=_display(root))]
        if src is None or not _is_file(src):
            return None, [*diags, diagnostic("RA120", **head.at(("policy", "source")),
                                             path=_shown(header.source))]
        rel = str(src.relative_to(root))
        try:
            doc_clauses = ingest_document(src, document_name=rel)
        except RulealignError as exc:
            return None, [*diags, *exc.diagnostics]
        hasher.update(src.read_bytes())
        document, sources = f"'{header.source}'", (rel,)
    else:
        for u in units:
            doc_clauses += [Clause(id=c.id, document=str(u.path.relative_to(root)), section=c.id,
                                   section_title=c.title, text=c.text,
                                   line=u.at(("clauses", i))["line"])
                            for i, c in enumerate(u.spec.clauses)]
    index = _ClauseIndex(doc_clauses)
    authored = bool(doc_clauses)
    clauses: dict[str, Clause] = {c.id: c for c in doc_clauses}
    rules: list[Rule] = []
    for unit in units:
        for i, spec in enumerate(unit.spec.rules):
            ids: list[str] = []
            for j, ref in enumerate(spec.clause or [spec.id]):
                if authored:
                    found = index.resolve(ref, spec.text)
                    if found is None:
                        where = ("rules", i, "clause", j) if spec.clause else ("rules", i, "id")
                        diags.append(diagnostic("RA116", **unit.at(where), rule=spec.id, clause=ref,
                                                document=document,
                                                suggestion=did_you_mean(ref, index.names())))
                        continue
                    ids.append(found.id)
                else:
                    line = unit.at(("rules", i))["line"]
                    clauses.setdefault(ref, Clause(id=ref, document=str(unit.path.relative_to(root)),
                                                   section=ref, text=spec.text, line=line))
                    ids.append(ref)
            rules.append(_rule(spec, unit, i, tuple(dict.fromkeys(ids)), root))
    terms = []
    for unit in units:
        for t in unit.spec.terms:
            terms.append(Term(id=t.id, label=t.label or t.id.replace("_", " ").replace("-", " "),
                              synonyms=tuple(t.synonyms), broader=tuple(t.broader),
                              narrower=tuple(t.narrower), definition=t.definition,
                              iris=tuple(t.iri), unit=t.unit))
    diags += _check_authorities(units)
    if any(d.severity == "error" for d in diags):
        return None, diags
    fmt = str(head.spec.rulealign)
    policy = Policy(id=header.id, title=header.title, version=header.version,
                    description=header.description, authority=header.authority,
                    authorities=tuple(header.authorities), license=header.license, attribution=header.attribution,
                    format_version=fmt if "." in fmt else f"{fmt}.0",
                    source_documents=sources, clauses=tuple(clauses.values()), rules=tuple(rules),
                    terms=tuple(terms), spec_hash=hasher.hexdigest())
    return policy, diags


def compile_spec(path: str | Path, *, root: str | Path | None = None,
                 max_bytes: int = MAX_BYTES) -> CompileResult:
    """Read, validate and compile a spec (with its includes). Never raises for bad input."""
    spec_path = Path(path).resolve()
    root_path = Path(root).resolve() if root else spec_path.parent
    if not spec_path.is_file():
        return CompileResult(None, [diagnostic("RA001", path=str(path), reason="no such file")])
    units, diags = _read_all(spec_path, root_path, max_bytes)
    files = [u.path for u in units]
    if not units or units[0].path != spec_path:
        return CompileResult(None, diags, files)
    head = units[0]
    if "rulealign" not in head.marked.data:
        diags.append(diagnostic("RA111", file=head.display, line=1, col=1, field="rulealign",
                                where="the root spec"))
    refs, id_diags = _check_ids(units)
    diags += id_diags + _check_refs(units, refs)
    if any(d.severity == "error" for d in diags):
        return CompileResult(None, diags, files)
    policy, build_diags = _build(units, root_path)
    return CompileResult(policy, diags + build_diags, files)


def load_policy(path: str | Path, *, root: str | Path | None = None) -> Policy:
    """Compile a spec or raise :class:`SpecError` with every error found."""
    result = compile_spec(path, root=root)
    if result.policy is None or result.errors:
        raise SpecError(result.errors or result.diagnostics)
    return result.policy

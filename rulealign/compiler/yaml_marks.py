"""Safe YAML loading that remembers where every value came from.

The tree is built straight from libyaml's event stream (``CSafeLoader`` when PyYAML has
it, the pure-Python ``SafeLoader`` otherwise), never from PyYAML's composer: that one
recurses per nesting level and crashes the interpreter on deeply nested input. Only the
safe scalar types are constructed (no Python objects). Limits guard against huge files,
deep nesting and alias bombs (counted in values and in characters of text, aliases each
time they are used); every problem is a coded :class:`SpecError`.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

import yaml

from rulealign.errors import Diagnostic, SpecError, diagnostic

Path = tuple[str | int, ...]
Mark = tuple[int, int]  # 1-based line, column

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_COLLECTION_TAGS = {None, "!", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"}

MAX_BYTES = 20_000_000
MAX_DEPTH = 64
MAX_NODES = 5_000_000
#: Characters of text the document may expand to, aliases counted each time they are used
#: (one long string merged into every rule passes a node count and fills gigabytes).
MAX_CHARS = 50_000_000


@dataclass
class MarkedYAML:
    """Plain Python data plus the position of every value and mapping key in it."""

    data: Any
    file: str
    marks: dict[Path, Mark] = field(default_factory=dict)
    key_marks: dict[Path, Mark] = field(default_factory=dict)
    warnings: list[Diagnostic] = field(default_factory=list)

    def locate(self, path: Path, *, key: bool = False) -> Mark:
        """Position of ``path`` (or of its key), falling back to the nearest parent."""
        p = tuple(path)
        while True:
            if key and p in self.key_marks:
                return self.key_marks[p]
            if p in self.marks:
                return self.marks[p]
            if not p:
                return (1, 1)
            p = p[:-1]


def _mark(event: Any) -> Mark:
    return (event.start_mark.line + 1, event.start_mark.column + 1)


def _scalar(loader: Any, event: Any) -> Any:
    tag = event.tag
    if tag is None or tag == "!":
        tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
    node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
    constructor = loader.yaml_constructors.get(tag)
    if constructor is None:
        raise yaml.constructor.ConstructorError(
            None, None, f"tag {tag!r} is not allowed in a spec", event.start_mark)
    value = constructor(loader, node)
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        raise yaml.constructor.ConstructorError(
            None, None, "binary values are not allowed in a spec", event.start_mark)
    return value


class _Builder:
    def __init__(self, text: str, file: str, max_depth: int, max_nodes: int,
                 max_chars: int = MAX_CHARS):
        self.loader = _Loader(text)
        self.file = file
        self.max_depth = max_depth
        self.max_nodes = max_nodes
        self.max_chars = max_chars
        self.out = MarkedYAML(data=None, file=file)
        self.anchors: dict[str, tuple[Any, int, int]] = {}
        self.nodes = 0
        self.chars = 0
        self.problems: list[Diagnostic] = []

    def fail(self, code: str, mark: Mark, **fields: Any) -> SpecError:
        return SpecError(diagnostic(code, file=self.file, line=mark[0], col=mark[1], **fields))

    def count(self, n: int, mark: Mark, chars: int = 0) -> None:
        self.nodes += n
        self.chars += chars
        if self.nodes > self.max_nodes:
            raise self.fail("RA105", mark, reason=f"document expands to more than {self.max_nodes} "
                                                  "values (alias expansion?)")
        if self.chars > self.max_chars:
            raise self.fail("RA105", mark, reason=f"document expands to more than {self.max_chars} "
                                                  "characters of text (alias expansion?)")

    def build(self) -> MarkedYAML:
        ld = self.loader
        try:
            ev = ld.get_event()  # StreamStart
            ev = ld.get_event()
            if isinstance(ev, yaml.StreamEndEvent):
                self.out.data = None
                return self.out
            # DocumentStart
            first = ld.get_event()
            self.out.data, _, _ = self.node(first, (), 1)
            ld.get_event()  # DocumentEnd
            nxt = ld.get_event()
            if not isinstance(nxt, yaml.StreamEndEvent):
                raise self.fail("RA123", _mark(nxt), reason="a spec file holds one YAML document, "
                                                            "found a second ('---')")
        except yaml.MarkedYAMLError as exc:
            m = exc.problem_mark or exc.context_mark
            mark = (m.line + 1, m.column + 1) if m else (1, 1)
            reason = " ".join(str(p) for p in (exc.context, exc.problem) if p)
            raise self.fail("RA102", mark, reason=reason or "invalid YAML") from None
        except yaml.YAMLError as exc:
            raise self.fail("RA102", (1, 1), reason=str(exc).splitlines()[0]) from None
        finally:
            ld.dispose()
        if self.problems:
            raise SpecError(self.problems)
        return self.out

    def node(self, ev: Any, path: Path, depth: int) -> tuple[Any, int, int]:
        """Build the value that starts with ``ev``; returns (value, node count, characters)."""
        mark = _mark(ev)
        if depth > self.max_depth:
            raise self.fail("RA105", mark, reason=f"nesting deeper than {self.max_depth} levels")
        self.out.marks[path] = mark
        if isinstance(ev, yaml.AliasEvent):
            if ev.anchor not in self.anchors:
                raise self.fail("RA102", mark, reason=f"unknown alias '*{ev.anchor}'")
            value, size, chars = self.anchors[ev.anchor]
            self.count(size, mark, chars)
            return value, size, chars
        tag = getattr(ev, "tag", None)
        if not isinstance(ev, yaml.ScalarEvent) and tag not in _COLLECTION_TAGS:
            raise self.fail("RA102", mark, reason=f"tag {tag!r} is not allowed in a spec")
        if isinstance(ev, yaml.ScalarEvent):
            self.count(1, mark, len(ev.value))
            value, size, chars = _scalar(self.loader, ev), 1, len(ev.value)
        elif isinstance(ev, yaml.SequenceStartEvent):
            value, size, chars = self.sequence(path, depth)
        elif isinstance(ev, yaml.MappingStartEvent):
            value, size, chars = self.mapping(path, depth)
        else:  # pragma: no cover - the parser guarantees one of the above
            raise self.fail("RA102", mark, reason=f"unexpected {type(ev).__name__}")
        if getattr(ev, "anchor", None):
            self.anchors[ev.anchor] = (value, size, chars)
        return value, size, chars

    def sequence(self, path: Path, depth: int) -> tuple[list[Any], int, int]:
        items: list[Any] = []
        size, chars = 1, 0
        self.count(1, self.out.marks[path])
        while True:
            ev = self.loader.get_event()
            if isinstance(ev, yaml.SequenceEndEvent):
                return items, size, chars
            value, n, c = self.node(ev, (*path, len(items)), depth + 1)
            items.append(value)
            size += n
            chars += c

    def mapping(self, path: Path, depth: int) -> tuple[dict[Any, Any], int, int]:
        result: dict[Any, Any] = {}
        first_seen: dict[Any, Mark] = {}
        size, chars = 1, 0
        self.count(1, self.out.marks[path])
        merges: list[Any] = []
        while True:
            kev = self.loader.get_event()
            if isinstance(kev, yaml.MappingEndEvent):
                break
            kmark = _mark(kev)
            if not isinstance(kev, yaml.ScalarEvent):
                raise self.fail("RA123", kmark, reason="mapping keys must be plain scalars")
            is_merge = kev.tag is None and self.loader.resolve(
                yaml.ScalarNode, kev.value, kev.implicit) == _MERGE_TAG
            key = "<<" if is_merge else _scalar(self.loader, kev)
            if isinstance(key, (list, dict)):  # pragma: no cover - scalars only
                raise self.fail("RA123", kmark, reason="mapping keys must be plain scalars")
            vev = self.loader.get_event()
            self.count(0, kmark, len(kev.value))
            chars += len(kev.value)
            if is_merge:
                value, n, c = self.node(vev, (*path, "<<"), depth + 1)
                merges.extend(value if isinstance(value, list) else [value])
                size += n
                chars += c
                continue
            if key in first_seen:
                self.problems.append(diagnostic("RA106", file=self.file, line=kmark[0],
                                                col=kmark[1], key=key,
                                                first_line=first_seen[key][0]))
            first_seen[key] = kmark
            self.out.key_marks[(*path, key)] = kmark
            value, n, c = self.node(vev, (*path, key), depth + 1)
            result[key] = value
            size += n
            chars += c
        for merged in merges:
            if not isinstance(merged, dict):
                raise self.fail("RA102", self.out.marks[path], reason="'<<' merges mappings only")
            for k, v in merged.items():
                result.setdefault(k, v)
        return result, size, chars


def load_yaml(text: str | bytes, file: str, *, max_bytes: int = MAX_BYTES,
              max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES,
              max_chars: int = MAX_CHARS) -> MarkedYAML:
    """Parse one YAML document safely, keeping marks; raise :class:`SpecError` on any problem."""
    size = len(text.encode("utf-8") if isinstance(text, str) else text)
    if size > max_bytes:
        raise SpecError(diagnostic("RA104", file=file, line=1, col=1, size=size, limit=max_bytes))
    if isinstance(text, bytes):
        raw = text
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise SpecError(diagnostic("RA101", file=file, line=line, col=1,
                                       reason=f"invalid byte at offset {exc.start}")) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    bad = text.find("\x00")
    if bad >= 0:
        line = text[:bad].count("\n") + 1
        raise SpecError(diagnostic("RA101", file=file, line=line, col=1,
                                   reason=f"NUL character at offset {bad}"))
    return _Builder(text, file, max_depth, max_nodes, max_chars).build()

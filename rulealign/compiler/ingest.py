"""Policy documents (Markdown, plain text, HTML, PDF) become clauses with stable ids.

Each format is read by its own well-kept parser (markdown-it-py, BeautifulSoup, pypdf)
into *blocks* (headings and paragraphs with their character span and line;
:mod:`rulealign.compiler.readers`); one shared step here then numbers sections and
paragraphs. A clause id is ``<section>.p<n>``: the section is the heading's own number when
it has one ("4.2"), otherwise a path of heading slugs ("enforcement-guidelines/1"), so ids
survive edits elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rulealign.compiler.models import Clause
from rulealign.compiler.readers import (
    MAX_BLOCK_CHARS,
    MAX_DOCUMENT_BYTES,
    NUMBERED,
    Block,
    Lines,
    pdf_text,
    read_blocks,
    read_limited,
    split_attributes,
    text_blocks,
    within_limits,
)
from rulealign.errors import DocumentError, diagnostic

__all__ = ["FORMATS", "MAX_BLOCK_CHARS", "MAX_DOCUMENT_BYTES", "ClauseInfo", "Document", "Section",
           "ingest_document", "ingest_text", "load_document", "place_document", "split_attributes"]

FORMATS = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text",
           ".html": "html", ".htm": "html", ".pdf": "pdf"}


@dataclass
class ClauseInfo:
    """Structure around a clause that drafting needs and the :class:`Clause` contract does not
    carry: list nesting, the paragraph that leads a list in ("Moderators must:"), a bold lead-in,
    the authority of the enclosing section."""

    depth: int = -1
    item_start: bool = False
    lead: str = ""
    links_only: bool = False
    lead_in: str | None = None  # id of the clause whose text ends in ':' and leads this item in
    authority: str | None = None


@dataclass
class Section:
    """A heading: its section key, clean title, level, line and attributes."""

    id: str
    title: str
    level: int
    line: int
    start: int
    authority: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:60] or "section"


def _key(text: str) -> str:
    """A heading's own ``{#id}`` as a section key: kept as written where it is a valid id."""
    return re.sub(r"[^a-z0-9_.\-]+", "-", text.lower()).strip("-.")[:80]


# -- sections and clause ids -------------------------------------------------------------------

@dataclass
class _Structure:
    clauses: list[Clause]
    info: dict[str, ClauseInfo]
    sections: list[Section]
    authorities: list[str]


def _structure(blocks: Iterable[Block], document: str) -> _Structure:
    """Number sections and paragraphs; keep list structure, lead-ins and authorities.

    A heading's ``{#id}`` attribute is its section key; ``authority=`` sets the authority of
    the section and of everything under it (until a sibling or parent heading names another).
    """
    blocks = list(blocks)
    h1 = [b for b in blocks if b.kind == "heading" and b.level == 1]
    title_block = h1[0] if len(h1) == 1 and blocks and blocks[0] is h1[0] else None
    stack: list[tuple[int, str, str, str | None]] = []  # (level, section id, title, authority)
    counters: dict[str, int] = {}
    used: set[str] = set()
    clauses: list[Clause] = []
    info: dict[str, ClauseInfo] = {}
    sections: list[Section] = []
    authorities: list[str] = []
    leads: list[tuple[int, str]] = []  # open lead-ins: (list depth, clause id)
    root_authority = title_block.attrs.get("authority") if title_block else None
    if root_authority:
        authorities.append(root_authority)
    for b in blocks:
        if b is title_block:
            continue
        if b.kind == "heading":
            leads.clear()
            while stack and stack[-1][0] >= b.level:
                stack.pop()
            m = NUMBERED.match(b.text)
            parent = stack[-1][1] if stack else ""
            if b.attrs.get("id") and _key(b.attrs["id"]):
                sid, title = _key(b.attrs["id"]), (m.group(2) if m else b.text)
            elif m and ("." in m.group(1) or not parent):
                sid, title = m.group(1), m.group(2)
            elif m:
                sid, title = f"{parent}/{m.group(1)}", m.group(2)
            else:
                sid, title = (f"{parent}/{_slug(b.text)}" if parent else _slug(b.text)), b.text
            base, n = sid, 2
            while sid in used:  # two headings with the same text
                sid, n = f"{base}-{n}", n + 1
            used.add(sid)
            authority = b.attrs.get("authority") or (stack[-1][3] if stack else root_authority)
            if b.attrs.get("authority") and b.attrs["authority"] not in authorities:
                authorities.append(b.attrs["authority"])
            stack.append((b.level, sid, title, authority))
            sections.append(Section(sid, title, b.level, b.line, b.start, authority, dict(b.attrs)))
            continue
        section, title, authority = (stack[-1][1], stack[-1][2], stack[-1][3]) if stack \
            else ("preamble", "", root_authority)
        counters[section] = counters.get(section, 0) + 1
        cid = f"{section}.p{counters[section]}"
        clauses.append(Clause(id=cid, document=document, section=section, section_title=title,
                              text=b.text, span=(b.start, b.end), line=b.line, page=b.page))
        # a paragraph ending in ':' leads in the list items that follow it (deeper ones, or
        # siblings when it is itself an item), until prose at its level or above
        while leads and (b.depth < leads[-1][0] or (not b.item_start and b.depth <= leads[-1][0])):
            leads.pop()
        lead_in = leads[-1][1] if leads and b.item_start else None
        info[cid] = ClauseInfo(depth=b.depth, item_start=b.item_start, lead=b.lead,
                               links_only=b.links_only, lead_in=lead_in, authority=authority)
        if b.text.rstrip().endswith(":"):
            leads.append((b.depth, cid))
    return _Structure(clauses, info, sections, authorities)


def _clauses(blocks: Iterable[Block], document: str) -> list[Clause]:
    return _structure(blocks, document).clauses


def ingest_text(text: str, *, document: str, fmt: str) -> list[Clause]:
    """Clauses of a document given as text (``fmt``: markdown, text or html)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _clauses(read_blocks(text, fmt, document)[0], document)


@dataclass
class Document:
    """A policy document read into clauses, with its text (extracted text for a PDF).

    ``info`` holds each clause's list structure and authority, ``sections`` the headings,
    ``authorities`` the authority levels the document names, highest first (its front matter's
    ``authorities:`` list where it gives one, otherwise in order of first appearance).
    """

    path: str
    text: str
    clauses: list[Clause]
    title: str = ""
    info: dict[str, ClauseInfo] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)
    authorities: list[str] = field(default_factory=list)

    def line_of(self, clause: Clause, sentence: str) -> int:
        """Source line where ``sentence`` (a piece of ``clause``) starts."""
        words = re.findall(r"[^\W_]+", sentence)[:6]
        if not words:
            return clause.line
        pattern = r"[\W_]+".join(re.escape(w) for w in words)
        m = re.compile(pattern).search(self.text, clause.span[0], max(clause.span[1], clause.span[0] + 1))
        return Lines(self.text).line_of(m.start()) if m else clause.line


def load_document(path: str | Path, *, document_name: str | None = None,
                  fmt: str | None = None, max_bytes: int = MAX_DOCUMENT_BYTES) -> Document:
    """Read a policy document of at most ``max_bytes``; raises :class:`DocumentError` with a
    code."""
    p = Path(path)
    name = document_name or p.name
    fmt = fmt or FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise DocumentError(diagnostic("RA150", path=str(p), suffix=p.suffix or "(none)"))
    if not p.is_file():
        raise DocumentError(diagnostic("RA001", path=str(p), reason="no such file"))
    meta: dict = {}
    if fmt == "pdf":
        text, page_starts = pdf_text(p, max_bytes)
        blocks = within_limits(text_blocks(text, page_starts), name)
    else:
        try:
            text = read_limited(p, max_bytes).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DocumentError(diagnostic("RA151", path=str(p), reason=f"not UTF-8 ({exc.reason} "
                                           f"at byte {exc.start})")) from None
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        blocks, meta = read_blocks(text, fmt, name)
    st = _structure(blocks, name)
    if not st.clauses:
        raise DocumentError(diagnostic("RA152", path=str(p)))
    h1 = [b for b in blocks if b.kind == "heading" and b.level == 1]
    authorities = list(meta.get("authorities", []))
    authorities += [a for a in st.authorities if a not in authorities]
    title = meta.get("title") or (h1[0].text if h1 else "")
    return Document(path=name, text=text, clauses=st.clauses, title=title, info=st.info,
                    sections=st.sections, authorities=authorities)


def place_document(path: str | Path, folder: str | Path, *, replace: bool = False) -> Path:
    """The document where a spec in ``folder`` may cite it: itself when it lies inside
    ``folder``, else a copy beside the spec (a spec's ``policy.source`` must stay inside the
    spec's root). An existing different file of that name is replaced only with ``replace``
    (``RA003`` otherwise)."""
    from rulealign.fileio import atomic_write_bytes

    src, root = Path(path).resolve(), Path(folder).resolve()
    if src.is_relative_to(root):
        return src
    data = read_limited(src, MAX_DOCUMENT_BYTES)
    target = root / src.name
    if target.exists():
        try:
            same = target.read_bytes() == data
        except OSError:
            same = False
        if same:
            return target
        if not replace:
            raise DocumentError(diagnostic("RA003", path=str(target), reason=(
                f"a copy of '{path}' goes there (a spec cites documents inside its folder), "
                "and a different file of that name exists")))
    atomic_write_bytes(target, data)
    return target


def ingest_document(path: str | Path, *, document_name: str | None = None,
                    fmt: str | None = None, max_bytes: int = MAX_DOCUMENT_BYTES) -> list[Clause]:
    """Clauses of a policy document; raises :class:`DocumentError` with a code."""
    return load_document(path, document_name=document_name, fmt=fmt, max_bytes=max_bytes).clauses

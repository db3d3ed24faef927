"""Policy documents (Markdown, plain text, HTML, PDF) become clauses with stable ids.

Each format is read by its own well-kept parser (markdown-it-py, BeautifulSoup, pypdf)
into *blocks* (headings and paragraphs with their character span and line); one shared
step then numbers sections and paragraphs. A clause id is ``<section>.p<n>``: the
section is the heading's own number when it has one ("4.2"), otherwise a path of
heading slugs ("enforcement-guidelines/1"), so ids survive edits elsewhere.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rulealign.compiler.models import Clause
from rulealign.errors import DocumentError, diagnostic

FORMATS = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text",
           ".html": "html", ".htm": "html", ".pdf": "pdf"}

#: Largest policy document read (bytes): past it a document is refused, not read (RA153).
MAX_DOCUMENT_BYTES = 20_000_000
#: Longest paragraph (characters): a clause is cited and analysed as one piece (RA154).
MAX_BLOCK_CHARS = 100_000

_NUMBERED = re.compile(r"^(?:(?:section|article|clause|§)\s*)?(\d+(?:\.\d+)*)[.)]?\s+(\S.*)$", re.I)
_FRONT_MATTER = re.compile(r"\A(---|\+\+\+)\n.*?\n\1\n", re.S)


@dataclass
class Block:
    kind: str  # "heading" | "para"
    text: str
    start: int
    end: int
    line: int
    level: int = 0
    page: int | None = None


class _Lines:
    """Offset <-> line lookups for one text."""

    def __init__(self, text: str):
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def offset(self, line: int) -> int:  # 0-based line
        return self.starts[min(line, len(self.starts) - 1)]

    def line_of(self, offset: int) -> int:  # 1-based
        return bisect.bisect_right(self.starts, offset)


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:60] or "section"


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# -- readers ----------------------------------------------------------------------------------

def _markdown_blocks(text: str) -> list[Block]:
    from markdown_it import MarkdownIt

    m = _FRONT_MATTER.match(text)
    if m:  # blank it out, keeping offsets and line numbers
        text = re.sub(r"[^\n]", " ", m.group(0)) + text[m.end():]
    lines = _Lines(text)
    tokens = MarkdownIt("commonmark").parse(text)
    blocks: list[Block] = []
    for i, tok in enumerate(tokens):
        if tok.type not in ("heading_open", "paragraph_open") or tok.map is None:
            continue
        inline = tokens[i + 1]
        parts = []
        for child in inline.children or []:
            if child.type in ("text", "code_inline"):
                parts.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                parts.append(" ")
        content = _clean("".join(parts))
        if not content:
            continue
        start, end = lines.offset(tok.map[0]), lines.offset(tok.map[1])
        end = end if tok.map[1] < len(lines.starts) else len(text)
        kind = "heading" if tok.type == "heading_open" else "para"
        level = int(tok.tag[1]) if kind == "heading" else 0
        blocks.append(Block(kind, content, start, end - (text[end - 1:end] == "\n"),
                            tok.map[0] + 1, level))
    return blocks


_BULLET = re.compile(r"^\s*(?:[-*•]|\(?[a-z0-9]{1,3}[.)])\s+")


def _text_blocks(text: str, page_starts: list[int] | None = None) -> list[Block]:
    """Blocks of plain text (also PDF text, where blank lines are often lost).

    A chunk is split at list items and at heading-like lines: numbered or upper-case
    lines anywhere, Title Case lines at the start of a chunk.
    """
    lines = _Lines(text)
    blocks: list[Block] = []
    for chunk_start, chunk in _chunks(text):
        groups: list[tuple[bool, list[tuple[int, str]]]] = []  # (is heading, lines)
        offset = chunk_start
        for n, ln in enumerate(chunk.splitlines(keepends=True)):
            strict = _NUMBERED.match(ln.strip()) is not None or ln.strip().isupper()
            level = _text_heading(_clean(ln), 1)
            if level is not None and (n == 0 or strict):
                groups.append((True, [(offset, ln)]))
            elif not groups or groups[-1][0] or _BULLET.match(ln):
                groups.append((False, [(offset, ln)]))
            else:
                groups[-1][1].append((offset, ln))
            offset += len(ln)
        for is_heading, group in groups:
            start = group[0][0]
            body = "".join(ln for _, ln in group)
            end = start + len(body.rstrip("\n"))
            content = _clean(body)
            if not content:
                continue
            page = bisect.bisect_right(page_starts, start) if page_starts else None
            if is_heading:
                level = _text_heading(content, 1) or 1
                blocks.append(Block("heading", content, start, end, lines.line_of(start), level, page))
            else:
                if _BULLET.match(content):
                    content = _BULLET.sub("", content, count=1)
                blocks.append(Block("para", content, start, end, lines.line_of(start), 0, page))
    return blocks


def _chunks(text: str) -> Iterable[tuple[int, str]]:
    """(offset, text) of each run of non-blank lines, in one linear pass (a regex with
    ``[^\\n]*\\S`` inside a repeat backtracks quadratically over a long line of spaces)."""
    start: int | None = None
    pos = 0
    for line in text.split("\n"):
        end = pos + len(line) + 1  # past the newline
        if line.strip():
            if start is None:
                start = pos
        elif start is not None:
            yield start, text[start:pos]
            start = None
        pos = end
    if start is not None:
        yield start, text[start:]


def _text_heading(content: str, n_lines: int) -> int | None:
    """Heading level of a one-line block that looks like a heading, else None."""
    if n_lines != 1 or len(content) > 80 or content.endswith((".", ":", ";", ",", "?", "!")):
        return None
    m = _NUMBERED.match(content)
    if m:
        return m.group(1).count(".") + 1
    letters = [c for c in content if c.isalpha()]
    if letters and all(c.isupper() for c in letters) and len(letters) > 2:
        return 1
    words = content.split()
    if 1 <= len(words) <= 8 and all(w[0].isupper() or not w[0].isalpha() or len(w) <= 3 for w in words):
        return 2
    return None


_HTML_BLOCKS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "dd"})


def _html_blocks(text: str) -> list[Block]:
    """Headings, paragraphs and list items, each with the text it owns.

    A string belongs to its nearest block ancestor only, so a block nested in another (a
    ``<p>`` inside a list item, or the chains of unclosed ``<p>`` that legacy HTML is made of,
    which the parser nests) is never read twice: one walk over the tree, linear in its size,
    with an explicit stack (no recursion, however deep the nesting)."""
    from bs4 import BeautifulSoup, CData, NavigableString, Tag

    lines = _Lines(text)
    soup = BeautifulSoup(text, "html.parser")
    owned: list[tuple[Tag, list[str]]] = []
    stack: list[tuple[object, list[str] | None]] = [(soup, None)]
    while stack:
        node, parts = stack.pop()
        if isinstance(node, NavigableString):
            if parts is not None and type(node) in (NavigableString, CData):
                parts.append(str(node))
            continue
        if not isinstance(node, Tag):
            continue
        if node.name in _HTML_BLOCKS:
            parts = []
            owned.append((node, parts))
        stack.extend((child, parts) for child in reversed(node.contents))
    starts = [lines.offset((tag.sourceline or 1) - 1) + (tag.sourcepos or 0) for tag, _ in owned]
    blocks: list[Block] = []
    for i, (tag, parts) in enumerate(owned):
        content = _clean(" ".join(parts))
        if not content:
            continue
        start = starts[i]
        # the block ends at its closing tag, looked for only up to the next block's start
        # (an unclosed <p> has none: searching the rest of the text each time is quadratic)
        limit = starts[i + 1] if i + 1 < len(starts) and starts[i + 1] > start else len(text)
        close = text.find(f"</{tag.name}", start, limit)
        end = close + len(tag.name) + 3 if close >= 0 else min(limit, start + len(content))
        line = tag.sourceline or 1
        if tag.name.startswith("h"):
            blocks.append(Block("heading", content, start, end, line, int(tag.name[1])))
        else:
            blocks.append(Block("para", content, start, end, line))
    return blocks


def _pdf_text(path: Path, max_bytes: int = MAX_DOCUMENT_BYTES) -> tuple[str, list[int]]:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    data = _read_limited(path, max_bytes)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError(diagnostic("RA151", path=str(path), reason="the PDF is encrypted"))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DocumentError(diagnostic("RA151", path=str(path), reason=str(exc) or type(exc).__name__)) from None
    starts, parts, offset = [], [], 0
    for page in pages:
        starts.append(offset)
        chunk = page.rstrip("\n") + "\n\n"
        parts.append(chunk)
        offset += len(chunk)
    return "".join(parts), starts


# -- sections and clause ids -------------------------------------------------------------------

def _clauses(blocks: Iterable[Block], document: str) -> list[Clause]:
    blocks = list(blocks)
    h1 = [b for b in blocks if b.kind == "heading" and b.level == 1]
    title_block = h1[0] if len(h1) == 1 and blocks and blocks[0] is h1[0] else None
    stack: list[tuple[int, str, str]] = []  # (level, section id, title)
    counters: dict[str, int] = {}
    used: set[str] = set()
    clauses: list[Clause] = []
    for b in blocks:
        if b is title_block:
            continue
        if b.kind == "heading":
            while stack and stack[-1][0] >= b.level:
                stack.pop()
            m = _NUMBERED.match(b.text)
            parent = stack[-1][1] if stack else ""
            if m and ("." in m.group(1) or not parent):
                sid, title = m.group(1), m.group(2)
            elif m:
                sid, title = f"{parent}/{m.group(1)}", m.group(2)
            else:
                sid, title = (f"{parent}/{_slug(b.text)}" if parent else _slug(b.text)), b.text
            base, n = sid, 2
            while sid in used:  # two headings with the same text
                sid, n = f"{base}-{n}", n + 1
            used.add(sid)
            stack.append((b.level, sid, title))
            continue
        section, title = (stack[-1][1], stack[-1][2]) if stack else ("preamble", "")
        counters[section] = counters.get(section, 0) + 1
        clauses.append(Clause(id=f"{section}.p{counters[section]}", document=document,
                              section=section, section_title=title, text=b.text,
                              span=(b.start, b.end), line=b.line, page=b.page))
    return clauses


def _blocks(text: str, fmt: str, document: str) -> list[Block]:
    if fmt == "markdown":
        blocks = _markdown_blocks(text)
    elif fmt == "html":
        blocks = _html_blocks(text)
    elif fmt == "text":
        blocks = _text_blocks(text)
    else:
        raise DocumentError(diagnostic("RA150", path=document, suffix=fmt))
    return _within_limits(blocks, document)


def _within_limits(blocks: list[Block], document: str) -> list[Block]:
    long = [b for b in blocks if len(b.text) > MAX_BLOCK_CHARS]
    if long:
        raise DocumentError([diagnostic("RA154", file=document, line=b.line, chars=len(b.text),
                                        limit=MAX_BLOCK_CHARS) for b in long[:5]])
    return blocks


def _read_limited(p: Path, max_bytes: int) -> bytes:
    """The file's bytes, refused (RA153) past ``max_bytes`` without reading more than that."""
    try:
        with p.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise DocumentError(diagnostic("RA001", path=str(p), reason=exc.strerror or str(exc))) from None
    if len(data) > max_bytes:
        raise DocumentError(diagnostic("RA153", path=str(p), size=_size(p, len(data)),
                                       limit=max_bytes))
    return data


def _size(p: Path, at_least: int) -> str:
    try:
        return str(p.stat().st_size)
    except OSError:
        return f"over {at_least - 1}"


def ingest_text(text: str, *, document: str, fmt: str) -> list[Clause]:
    """Clauses of a document given as text (``fmt``: markdown, text or html)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _clauses(_blocks(text, fmt, document), document)


@dataclass
class Document:
    """A policy document read into clauses, with its text (extracted text for a PDF)."""

    path: str
    text: str
    clauses: list[Clause]
    title: str = ""

    def line_of(self, clause: Clause, sentence: str) -> int:
        """Source line where ``sentence`` (a piece of ``clause``) starts."""
        words = sentence.split()[:6]
        if not words:
            return clause.line
        pattern = r"[\s*_>#\-]+".join(re.escape(w) for w in words)
        m = re.compile(pattern).search(self.text, clause.span[0], max(clause.span[1], clause.span[0] + 1))
        return _Lines(self.text).line_of(m.start()) if m else clause.line


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
    if fmt == "pdf":
        text, page_starts = _pdf_text(p, max_bytes)
        blocks = _within_limits(_text_blocks(text, page_starts), name)
    else:
        try:
            text = _read_limited(p, max_bytes).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DocumentError(diagnostic("RA151", path=str(p), reason=f"not UTF-8 ({exc.reason} "
                                           f"at byte {exc.start})")) from None
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        blocks = _blocks(text, fmt, name)
    clauses = _clauses(blocks, name)
    if not clauses:
        raise DocumentError(diagnostic("RA152", path=str(p)))
    h1 = [b for b in blocks if b.kind == "heading" and b.level == 1]
    return Document(path=name, text=text, clauses=clauses, title=h1[0].text if h1 else "")


def place_document(path: str | Path, folder: str | Path, *, replace: bool = False) -> Path:
    """The document where a spec in ``folder`` may cite it: itself when it lies inside
    ``folder``, else a copy beside the spec (a spec's ``policy.source`` must stay inside the
    spec's root). An existing different file of that name is replaced only with ``replace``
    (``RA003`` otherwise)."""
    from rulealign.fileio import atomic_write_bytes

    src, root = Path(path).resolve(), Path(folder).resolve()
    if src.is_relative_to(root):
        return src
    data = _read_limited(src, MAX_DOCUMENT_BYTES)
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

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
from dataclasses import dataclass, field
from pathlib import Path

from rulealign.compiler.models import Clause
from rulealign.errors import DocumentError, diagnostic

FORMATS = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text",
           ".html": "html", ".htm": "html", ".pdf": "pdf"}

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
    depth: int = -1  # list nesting of a list item's paragraph (0 = top-level list); -1: not in a list
    item_start: bool = False  # the first paragraph of a list item (the item's own text)
    lead: str = ""  # a bold lead-in opening the paragraph ("**Be kind.** ..."): its text
    links_only: bool = False  # the paragraph is (almost) nothing but links: a reference, not prose
    attrs: dict[str, str] = field(default_factory=dict)  # heading attributes {#id key=value}


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


def _key(text: str) -> str:
    """A heading's own ``{#id}`` as a section key: kept as written where it is a valid id."""
    return re.sub(r"[^a-z0-9_.\-]+", "-", text.lower()).strip("-.")[:80]


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# -- readers ----------------------------------------------------------------------------------

_ATTRS = re.compile(r"\s*\{\s*([^{}]*?)\s*\}\s*$")
_ATTR_ITEM = re.compile(r"""#([\w:.\-]+)|\.([\w\-]+)|([\w\-]+)=(?:"([^"]*)"|'([^']*)'|([^\s"']+))""")
_TEMPLATE = re.compile(r"\{%.*?%\}|\{\{.*?\}\}", re.S)  # Liquid / Jinja tags left in published Markdown
_FOOTNOTE_MARK = re.compile(r"\[\^[^\]\s]{1,20}\]|(?<=\w)[*†‡]+(?=\s|$)")
_ADMONITION = re.compile(r"^(?:\[!\w+\]|:::\s*\w*|!!!\s*\w+|(?:note|tip|info|hint|example|examples|"
                         r"commentary|rationale|aside)\b\s*\d*\s*[:.\-—])", re.I)
_FOOTNOTE_DEF = re.compile(r"^\[\^[^\]]+\]:")


def split_attributes(title: str) -> tuple[str, dict[str, str]]:
    """``"Be concise {#be_concise authority=user}"`` -> ``("Be concise", {"id": "be_concise",
    "authority": "user"})`` (Pandoc / kramdown heading attributes); other titles unchanged."""
    m = _ATTRS.search(title)
    if not m:
        return title, {}
    inner, attrs, pos = m.group(1), {}, 0
    classes = []
    for item in _ATTR_ITEM.finditer(inner):
        if inner[pos:item.start()].strip():
            return title, {}  # not an attribute block ("{x}" in a title)
        pos = item.end()
        if item.group(1):
            attrs["id"] = item.group(1)
        elif item.group(2):
            classes.append(item.group(2))
        else:
            attrs[item.group(3).lower()] = next(g for g in item.groups()[3:] if g is not None)
    if inner[pos:].strip() or not (attrs or classes):
        return title, {}
    if classes:
        attrs["class"] = " ".join(classes)
    return title[:m.start()].rstrip(), attrs


def _inline_text(children: list, *, heading: bool) -> tuple[str, str, bool]:
    """(text, bold lead-in, links only) of a paragraph's inline tokens.

    Link text stays where it is part of the sentence; a bare URL, an autolink and a footnote
    link ("[1]", "^2") are dropped, and so is text inside ``<sup>``.
    """
    parts: list[str] = []
    lead = ""
    in_link: dict | None = None
    link_words = other_words = 0
    sup = 0
    first_strong = bool(children) and (children[0].type == "strong_open" or (
        len(children) > 1 and children[0].type == "text" and not children[0].content.strip()
        and children[1].type == "strong_open"))
    strong_depth, lead_done = 0, False
    lead_parts: list[str] = []
    for child in children:
        t = child.type
        if t == "html_inline":
            low = child.content.lower()
            sup += low.startswith("<sup") - low.startswith("</sup")
            if low.startswith("<br"):
                parts.append(" ")
            continue
        if t == "strong_open":
            strong_depth += 1
            continue
        if t == "strong_close":
            strong_depth -= 1
            if strong_depth == 0 and first_strong and not lead_done:
                lead_done = True
                lead = _clean("".join(lead_parts))
            continue
        if t == "link_open":
            in_link = {"href": child.attrs.get("href", ""), "auto": child.info == "auto", "text": []}
            continue
        if t == "link_close" and in_link is not None:
            text = "".join(in_link["text"])
            # a footnote link ("[1]", "^2") is noise; a bare URL stays in the clause's text
            # (it is content) and is left out only of what the extractor reads
            if re.fullmatch(r"\[?\^?\d{1,3}\]?", text.strip()) is None:
                parts.append(text)
                if strong_depth and first_strong and not lead_done:
                    lead_parts.append(text)
                link_words += len(text.split())
            in_link = None
            continue
        if t in ("text", "code_inline"):
            if sup:
                continue
            if in_link is not None:
                in_link["text"].append(child.content)
                continue
            parts.append(child.content)
            other_words += len(re.findall(r"\w+", child.content))
            if strong_depth and first_strong and not lead_done:
                lead_parts.append(child.content)
        elif t in ("softbreak", "hardbreak"):
            parts.append(" ")
    text = _clean(_FOOTNOTE_MARK.sub("", _TEMPLATE.sub("", "".join(parts))))
    text = re.sub(r"\s+([.,;:!?])", r"\1", text) if not heading else text
    lead = _clean(_FOOTNOTE_MARK.sub("", lead))
    if lead and not text.startswith(lead):
        lead = ""
    links_only = link_words > 0 and other_words <= 3
    return text, lead, links_only


def _markdown_blocks(text: str) -> tuple[list[Block], dict]:
    from markdown_it import MarkdownIt

    meta: dict = {}
    m = _FRONT_MATTER.match(text)
    if m:  # blank it out, keeping offsets and line numbers
        meta = _front_matter(m.group(0))
        text = re.sub(r"[^\n]", " ", m.group(0)) + text[m.end():]
    lines = _Lines(text)
    tokens = MarkdownIt("commonmark").parse(text)
    blocks: list[Block] = []
    depth = -1  # list nesting
    item_open: list[bool] = []  # per open list item: has its first paragraph been seen
    quote = 0
    quote_skip: list[bool] = []
    for i, tok in enumerate(tokens):
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            depth += 1
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            depth -= 1
        elif tok.type == "list_item_open":
            item_open.append(False)
        elif tok.type == "list_item_close":
            item_open.pop()
        elif tok.type == "blockquote_open":
            quote += 1
            quote_skip.append(False)
        elif tok.type == "blockquote_close":
            quote -= 1
            quote_skip.pop()
        if tok.type not in ("heading_open", "paragraph_open") or tok.map is None:
            continue
        inline = tokens[i + 1]
        kind = "heading" if tok.type == "heading_open" else "para"
        content, lead, links_only = _inline_text(inline.children or [], heading=kind == "heading")
        attrs: dict[str, str] = {}
        if kind == "heading":
            content, attrs = split_attributes(content)
            content = content.rstrip("*†‡ ").strip()
        if not content:
            continue
        if kind == "para":
            # non-normative blocks: admonitions and example captions, footnote definitions;
            # an admonition in a quote mutes the rest of that quote
            if quote and (quote_skip[-1] or _ADMONITION.match(content)):
                quote_skip[-1] = True
                continue
            if _FOOTNOTE_DEF.match(inline.content) or (
                    re.match(r"^(?:example|examples)\b\s*\d*\s*[:.\-—]", content, re.I)):
                continue
            if content.startswith((":::", "!!!")):
                continue
        start, end = lines.offset(tok.map[0]), lines.offset(tok.map[1])
        end = end if tok.map[1] < len(lines.starts) else len(text)
        level = int(tok.tag[1]) if kind == "heading" else 0
        item_start = False
        if kind == "para" and item_open and not item_open[-1]:
            item_open[-1] = item_start = True
        blocks.append(Block(kind, content, start, end - (text[end - 1:end] == "\n"),
                            tok.map[0] + 1, level, depth=depth if item_open else -1,
                            item_start=item_start, lead=lead, links_only=links_only, attrs=attrs))
    return blocks, meta


def _front_matter(block: str) -> dict:
    """Title and authorities from YAML front matter (anything else, or bad YAML: ignored)."""
    import yaml

    body = block.strip().strip("-+").strip()
    try:
        data = yaml.safe_load(body)
    except yaml.YAMLError:
        return {}
    if not isinstance(data, dict):
        return {}
    out: dict = {}
    if isinstance(data.get("title"), str):
        out["title"] = data["title"].strip()
    auth = data.get("authorities")
    if isinstance(auth, list) and all(isinstance(a, str) for a in auth):
        out["authorities"] = [a.strip() for a in auth if a.strip()]
    return out


_BULLET = re.compile(r"^\s*(?:[-*•]|\(?[a-z0-9]{1,3}[.)])\s+")


def _text_blocks(text: str, page_starts: list[int] | None = None) -> list[Block]:
    """Blocks of plain text (also PDF text, where blank lines are often lost).

    A chunk is split at list items and at heading-like lines: numbered or upper-case
    lines anywhere, Title Case lines at the start of a chunk.
    """
    lines = _Lines(text)
    blocks: list[Block] = []
    for m in re.finditer(r"(?:[^\n]*\S[^\n]*(?:\n|$))+", text):
        groups: list[tuple[bool, list[tuple[int, str]]]] = []  # (is heading, lines)
        offset = m.start()
        for n, ln in enumerate(m.group(0).splitlines(keepends=True)):
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


_HTML_BLOCKS = ("h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "dd", "blockquote")
_HTML_SKIP = ("pre", "code", "script", "style", "template", "aside", "figcaption", "sup", "nav")


def _html_own_text(tag: object) -> tuple[str, str, bool]:
    """Text of a block element without the blocks nested in it (an unclosed ``<p>`` or
    ``<li>`` nests the rest of the document: each block is read once, never with its nested
    blocks, so reading stays linear), with its bold lead-in and whether it is links only."""
    from bs4 import NavigableString, Tag

    parts: list[str] = []
    lead, link_words, other_words = "", 0, 0
    first_bold: object | None = None
    for child in tag.children:  # type: ignore[attr-defined]
        if isinstance(child, NavigableString):
            if not child.strip():
                continue
            break
        if isinstance(child, Tag) and child.name in ("b", "strong"):
            first_bold = child
        break
    stack = list(reversed(list(tag.children)))  # type: ignore[attr-defined]
    while stack:
        node = stack.pop()
        if isinstance(node, NavigableString):
            if type(node) is not NavigableString:  # comments, CDATA, doctype
                continue
            parts.append(str(node))
            other_words += len(str(node).split())
            continue
        if not isinstance(node, Tag) or node.name in _HTML_BLOCKS or node.name in ("ul", "ol", "dl", "table") \
                or node.name in _HTML_SKIP:
            continue
        if node.name == "br":
            parts.append(" ")
            continue
        if node.name == "a":
            text = node.get_text("")
            if text.strip() and not re.fullmatch(r"\[?\^?\d{1,3}\]?", text.strip()):
                parts.append(text)
                link_words += len(text.split())
            continue
        if node is first_bold:
            lead = _clean(node.get_text(""))
        stack.extend(reversed(list(node.children)))
    content = _clean(_FOOTNOTE_MARK.sub("", "".join(parts)))
    content = re.sub(r"\s+([.,;:!?])", r"\1", content)
    if lead and not content.startswith(lead):
        lead = ""
    return content, lead, link_words > 0 and other_words <= 3


def _html_blocks(text: str) -> list[Block]:
    from bs4 import BeautifulSoup, Tag

    lines = _Lines(text)
    soup = BeautifulSoup(text, "html.parser")
    blocks: list[Block] = []
    # one walk over the tree, carrying list depth and the enclosing item (no per-tag ancestor
    # searches: an unclosed <p> or <div> nests the whole rest of the document)
    stack: list[tuple[Tag, int, Tag | None]] = [(soup, -1, None)]
    while stack:
        tag, depth, item = stack.pop()
        children = [c for c in tag.children if isinstance(c, Tag) and c.name not in _HTML_SKIP]
        inner_depth = depth + 1 if tag.name in ("ul", "ol") else depth
        inner_item = tag if tag.name == "li" else item
        stack.extend((c, inner_depth, inner_item) for c in reversed(children))
        if tag.name not in _HTML_BLOCKS:
            continue
        content, lead, links_only = _html_own_text(tag)
        if not content:
            continue
        line = tag.sourceline or 1
        start = lines.offset(line - 1) + (tag.sourcepos or 0)
        close = text.find(f"</{tag.name}", start, start + 4 * len(content) + 4096)  # bounded: an
        end = close + len(tag.name) + 3 if close >= 0 else start + len(content)  # unclosed tag has none
        if tag.name.startswith("h"):
            title, attrs = split_attributes(content)
            if tag.get("id"):
                attrs.setdefault("id", str(tag["id"]))
            blocks.append(Block("heading", title.rstrip("*†‡ ").strip(), start, end, line,
                                int(tag.name[1]), attrs=attrs))
            continue
        item_start = tag.name == "li"
        block_depth = depth if tag.name == "li" else (depth if item is not None else -1)
        if tag.name == "p" and item is not None:
            item_start = item.find("p") is tag and not _html_own_text(item)[0]
        blocks.append(Block("para", content, start, end, line, depth=block_depth, item_start=item_start,
                            lead=lead, links_only=links_only))
    return blocks


def _pdf_text(path: Path) -> tuple[str, list[int]]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(str(path))
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
            m = _NUMBERED.match(b.text)
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


def _blocks(text: str, fmt: str, document: str) -> list[Block]:
    if fmt == "markdown":
        return _markdown_blocks(text)[0]
    if fmt == "html":
        return _html_blocks(text)
    if fmt == "text":
        return _text_blocks(text)
    raise DocumentError(diagnostic("RA150", path=document, suffix=fmt))


def ingest_text(text: str, *, document: str, fmt: str) -> list[Clause]:
    """Clauses of a document given as text (``fmt``: markdown, text or html)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _clauses(_blocks(text, fmt, document), document)


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
        return _Lines(self.text).line_of(m.start()) if m else clause.line


def load_document(path: str | Path, *, document_name: str | None = None,
                  fmt: str | None = None) -> Document:
    """Read a policy document; raises :class:`DocumentError` with a code."""
    p = Path(path)
    name = document_name or p.name
    fmt = fmt or FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise DocumentError(diagnostic("RA150", path=str(p), suffix=p.suffix or "(none)"))
    if not p.is_file():
        raise DocumentError(diagnostic("RA001", path=str(p), reason="no such file"))
    meta: dict = {}
    if fmt == "pdf":
        text, page_starts = _pdf_text(p)
        blocks = _text_blocks(text, page_starts)
    else:
        try:
            text = p.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DocumentError(diagnostic("RA151", path=str(p), reason=f"not UTF-8 ({exc.reason} "
                                           f"at byte {exc.start})")) from None
        except OSError as exc:
            raise DocumentError(diagnostic("RA001", path=str(p), reason=exc.strerror or str(exc))) from None
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if fmt == "markdown":
            blocks, meta = _markdown_blocks(text)
        else:
            blocks = _blocks(text, fmt, name)
    st = _structure(blocks, name)
    if not st.clauses:
        raise DocumentError(diagnostic("RA152", path=str(p)))
    h1 = [b for b in blocks if b.kind == "heading" and b.level == 1]
    authorities = list(meta.get("authorities", []))
    authorities += [a for a in st.authorities if a not in authorities]
    title = meta.get("title") or (h1[0].text if h1 else "")
    return Document(path=name, text=text, clauses=st.clauses, title=title, info=st.info,
                    sections=st.sections, authorities=authorities)


def ingest_document(path: str | Path, *, document_name: str | None = None,
                    fmt: str | None = None) -> list[Clause]:
    """Clauses of a policy document; raises :class:`DocumentError` with a code."""
    return load_document(path, document_name=document_name, fmt=fmt).clauses

"""Each document format read into *blocks*: headings and paragraphs with their text,
character span, line and structure (list nesting, bold lead-ins, heading attributes).

Markdown is read by markdown-it-py, HTML by BeautifulSoup (one walk of the tree, so legacy
HTML's unclosed ``<p>`` chains are read once each), PDF by pypdf and plain text (also a PDF's
text) by its blank lines, list markers and heading-like lines. Every reader stays linear in the
size of its input, and documents and paragraphs over the limits are refused with codes
(RA153, RA154). :mod:`rulealign.compiler.ingest` turns blocks into sections and clauses.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rulealign.errors import DocumentError, diagnostic

#: Largest policy document read (bytes): past it a document is refused, not read (RA153).
MAX_DOCUMENT_BYTES = 20_000_000
#: Longest paragraph (characters): a clause is cited and analysed as one piece (RA154).
MAX_BLOCK_CHARS = 100_000

NUMBERED = re.compile(r"^(?:(?:section|article|clause|§)\s*)?(\d+(?:\.\d+)*)[.)]?\s+(\S.*)$", re.I)
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



class Lines:
    """Offset <-> line lookups for one text."""

    def __init__(self, text: str):
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def offset(self, line: int) -> int:  # 0-based line
        return self.starts[min(line, len(self.starts) - 1)]

    def line_of(self, offset: int) -> int:  # 1-based
        return bisect.bisect_right(self.starts, offset)



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


def markdown_blocks(text: str) -> tuple[list[Block], dict]:
    from markdown_it import MarkdownIt

    meta: dict = {}
    m = _FRONT_MATTER.match(text)
    if m:  # blank it out, keeping offsets and line numbers
        meta = _front_matter(m.group(0))
        text = re.sub(r"[^\n]", " ", m.group(0)) + text[m.end():]
    lines = Lines(text)
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


def text_blocks(text: str, page_starts: list[int] | None = None) -> list[Block]:
    """Blocks of plain text (also PDF text, where blank lines are often lost).

    A chunk is split at list items and at heading-like lines: numbered or upper-case
    lines anywhere, Title Case lines at the start of a chunk.
    """
    lines = Lines(text)
    blocks: list[Block] = []
    for chunk_start, chunk in _chunks(text):
        groups: list[tuple[bool, list[tuple[int, str]]]] = []  # (is heading, lines)
        offset = chunk_start
        for n, ln in enumerate(chunk.splitlines(keepends=True)):
            strict = NUMBERED.match(ln.strip()) is not None or ln.strip().isupper()
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
    m = NUMBERED.match(content)
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

    lines = Lines(text)
    soup = BeautifulSoup(text, "html.parser")
    blocks: list[Block] = []
    # one walk over the tree, carrying list depth and the enclosing item (no per-tag ancestor
    # searches: an unclosed <p> or <div> nests the whole rest of the document)
    stack: list[tuple[Tag, int, Tag | None]] = [(soup, -1, None)]
    first_p: dict[int, object] = {}
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
            if id(item) not in first_p:  # looked up once per item, not once per paragraph in it
                first_p[id(item)] = item.find("p")
            item_start = first_p[id(item)] is tag and not _html_own_text(item)[0]
        blocks.append(Block("para", content, start, end, line, depth=block_depth, item_start=item_start,
                            lead=lead, links_only=links_only))
    return blocks


def pdf_text(path: Path, max_bytes: int = MAX_DOCUMENT_BYTES) -> tuple[str, list[int]]:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    data = read_limited(path, max_bytes)
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


# -- formats and limits ----------------------------------------------------------------------

def read_blocks(text: str, fmt: str, document: str) -> tuple[list[Block], dict]:
    """Blocks of a document's text (``fmt``: markdown, html or text) and what its front matter
    says (Markdown only: title, authorities); paragraphs over the limit are refused (RA154)."""
    meta: dict = {}
    if fmt == "markdown":
        blocks, meta = markdown_blocks(text)
    elif fmt == "html":
        blocks = _html_blocks(text)
    elif fmt == "text":
        blocks = text_blocks(text)
    else:
        raise DocumentError(diagnostic("RA150", path=document, suffix=fmt))
    return within_limits(blocks, document), meta



def within_limits(blocks: list[Block], document: str) -> list[Block]:
    long = [b for b in blocks if len(b.text) > MAX_BLOCK_CHARS]
    if long:
        raise DocumentError([diagnostic("RA154", file=document, line=b.line, chars=len(b.text),
                                        limit=MAX_BLOCK_CHARS) for b in long[:5]])
    return blocks


def read_limited(p: Path, max_bytes: int) -> bytes:
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


"""Documents in four formats become clauses with stable ids, verbatim text, spans and lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from rulealign.compiler.ingest import ingest_document, load_document
from rulealign.errors import DocumentError
from tests.conftest import SPECS

MD = """+++
version = "1"
+++

# Widget Policy

Intro paragraph before sections.

## 1 Refunds

### 1.1 Limits

- Agents must not promise refunds above $100.
- Agents may offer store credit of up to
  $20 per order.

## Privacy

Do not share account details.

### Exceptions

Verified holders may see their own data.
"""

HTML = """<html><head><title>x</title></head><body>
<h1>Widget Policy</h1>
<h2>1 Refunds</h2>
<p>Agents must not promise refunds above $100.</p>
<ul><li>Agents may offer store credit.</li></ul>
<h2>Privacy</h2>
<p>Do not share
   account details.</p>
</body></html>
"""

TEXT = """WIDGET POLICY

1 Refunds

Agents must not promise refunds above $100.
- Agents may offer store credit.

2 Privacy

Do not share account details.
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_markdown_sections_paragraphs_spans_and_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, "policy.md", MD)
    doc = load_document(path)
    ids = [c.id for c in doc.clauses]
    assert ids == ["preamble.p1", "1.1.p1", "1.1.p2", "privacy.p1", "privacy/exceptions.p1"]
    assert doc.title == "Widget Policy"
    by_id = {c.id: c for c in doc.clauses}
    credit = by_id["1.1.p2"]
    assert credit.text == "Agents may offer store credit of up to $20 per order."
    assert credit.line == 14 and MD.splitlines()[13].startswith("- Agents may offer")
    assert "store credit of up to\n  $20" in MD[credit.span[0]:credit.span[1]]
    assert by_id["privacy/exceptions.p1"].section_title == "Exceptions"


def test_clause_ids_survive_edits_elsewhere(tmp_path: Path) -> None:
    before = {c.id: c.text for c in ingest_document(_write(tmp_path, "a.md", MD))}
    edited = MD.replace("## Privacy", "## Shipping\n\nShips in 3 days.\n\n## Privacy")
    after = {c.id: c.text for c in ingest_document(_write(tmp_path, "b.md", edited))}
    for cid, text in before.items():
        assert after[cid] == text


def test_html_blocks_with_lines_and_spans(tmp_path: Path) -> None:
    path = _write(tmp_path, "policy.html", HTML)
    clauses = ingest_document(path)
    assert [c.id for c in clauses] == ["1.p1", "1.p2", "privacy.p1"]
    share = clauses[2]
    assert share.text == "Do not share account details." and share.line == 7
    assert HTML[share.span[0]:share.span[1]].startswith("<p>Do not share")


def test_plain_text_headings_and_list_items(tmp_path: Path) -> None:
    clauses = ingest_document(_write(tmp_path, "policy.txt", TEXT))
    assert [(c.id, c.line) for c in clauses] == [("1.p1", 5), ("1.p2", 6), ("2.p1", 10)]
    assert clauses[1].text == "Agents may offer store credit."


def test_pdf_pages_become_clauses(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    for page in (["1 Refunds", "", "Agents must not promise refunds above $100."],
                 ["2 Privacy", "", "Do not share account details."]):
        pdf.add_page()
        pdf.set_font("helvetica", size=12)
        for line in page:
            pdf.cell(0, 10, line, new_x="LMARGIN", new_y="NEXT")
    path = tmp_path / "policy.pdf"
    pdf.output(str(path))
    clauses = ingest_document(path)
    texts = {c.id: (c.text, c.page) for c in clauses}
    assert texts["1.p1"] == ("Agents must not promise refunds above $100.", 1)
    assert texts["2.p1"] == ("Do not share account details.", 2)


@pytest.mark.parametrize(("name", "content", "code"), [
    ("policy.docx", b"PK..", "RA150"),
    ("policy.pdf", b"%PDF-1.4 this is not really a pdf", "RA151"),
    ("policy.md", b"\xff\xfe\x00broken", "RA151"),
    ("policy.md", b"   \n\n", "RA152"),
])
def test_bad_documents_give_coded_errors(tmp_path: Path, name: str, content: bytes, code: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DocumentError) as err:
        ingest_document(path)
    assert err.value.code == code


def test_shipped_policy_documents_ingest() -> None:
    for name in ("acme-support.md", "northwind-conduct.md", "contributor-covenant.md"):
        clauses = ingest_document(SPECS / name)
        assert len(clauses) >= 30
        assert len({c.id for c in clauses}) == len(clauses)


def test_defect4_unclosed_html_paragraphs_are_read_once_in_linear_time(tmp_path: Path) -> None:
    """Issue 19, defect 4: unclosed <p> gave each sentence once per ancestor (50 -> 1,275
    clauses) and quadratic time (1,000 paragraphs past 120 s)."""
    import time

    path = tmp_path / "legacy.html"
    path.write_text("<html><body>" + "".join(f"<p>Agents must reply to ticket {i}." for i in range(50)))
    clauses = ingest_document(path)
    assert len(clauses) == 50 and clauses[7].text == "Agents must reply to ticket 7."
    path.write_text("<html><body>" + "".join(f"<div><p>Agents must reply to ticket {i}." for i in range(5000)))
    t0 = time.perf_counter()
    assert len(ingest_document(path)) == 5000
    assert time.perf_counter() - t0 < 20

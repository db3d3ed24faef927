"""Whatever Markdown a document holds, the draft is written and passes `spec check`."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rulealign.compiler.draft import draft_spec
from rulealign.compiler.loader import compile_spec
from rulealign.errors import DocumentError

PIECES = ["# ", "## ", "### ", "- ", "  - ", "1. ", "> ", "**", "*", "`", "[", "](http://x)", ":", ";", ",",
          ".", "\n", "\n\n", "{#", "}", " authority=", "must", "must not", "may", "should", "never", "Do not",
          "Be", "kind", "users", "Moderators", "post", "If", "you", "when", "unless", "Even if", "which",
          "that", "$100", "within 30 days", "No", "spam", "include:", "Example:", "User:", "[^1]", "'", "\u2019",
          "Avoid", "Report it to:", "This includes:", "means", " "]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=80))
def test_any_markdown_drafts_a_spec_that_checks(pieces: list[str]) -> None:
    text = " ".join(pieces)
    with tempfile.TemporaryDirectory() as tmp:
        doc = Path(tmp) / "policy.md"
        doc.write_text(text + "\n\nYou must be kind.\n", encoding="utf-8")
        out = Path(tmp) / "draft.yaml"
        body, stats = draft_spec(doc, output=out, min_confidence=0.0)
        out.write_text(body, encoding="utf-8")
        result = compile_spec(out)
        assert result.ok, [str(d) for d in result.diagnostics]
        assert stats["rules"] == len(result.policy.rules) if result.policy else False


HTML = ["<p>", "</p>", "<li>", "</li>", "<ul>", "</ul>", "<ol>", "<h2 id='a'>", "</h2>", "<h3>", "</h3>", "<b>",
        "</b>", "<strong>", "</strong>", "<a href='http://x'>", "</a>", "<sup>1</sup>", "<pre>", "</pre>", "<div>",
        "must", "must not", "may", "Be kind", "Do not", "post", "users", "include:", ".", ":", " ", "&rsquo;",
        "<br>", "<!-- c -->", "<script>x</script>", "{#b authority=user}"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(HTML), min_size=1, max_size=80))
def test_any_html_drafts_a_spec_that_checks(pieces: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        doc = Path(tmp) / "policy.html"
        doc.write_text(" ".join(pieces) + "<p>You must be kind.</p>", encoding="utf-8")
        out = Path(tmp) / "draft.yaml"
        try:
            body, _stats = draft_spec(doc, output=out, min_confidence=0.0)
        except DocumentError as exc:  # an unclosed <pre> hides everything: a coded error
            assert exc.code == "RA152"
            return
        out.write_text(body, encoding="utf-8")
        result = compile_spec(out)
        assert result.ok, [str(d) for d in result.diagnostics]

"""Small helpers for printing tables and diagnostics in the terminal."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from typing import TextIO

from rulealign.errors import Diagnostic

#: What a terminal would obey rather than show: C0 and C1 controls (escape sequences that set
#: the title, write the clipboard, erase lines) and the bidirectional overrides.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean(text: object) -> str:
    """``text`` safe to print: each control character shown as its escape (``\\x1b``)."""
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), str(text))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, max_width: int = 48,
          out: TextIO | None = None) -> None:
    """Print a plain-text table; cells longer than ``max_width`` are shortened with '…',
    control characters are shown escaped."""
    out = out or sys.stdout
    cells = [[_cut(str(c), max_width) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line.rstrip(), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)


def _cut(text: str, width: int) -> str:
    text = clean(" ".join(text.split()))
    return text if len(text) <= width else text[: width - 1] + "…"


def print_diagnostics(diags: Iterable[Diagnostic], *, hints: bool = True,
                      out: TextIO | None = None) -> None:
    out = out or sys.stderr
    for d in diags:
        print(clean(d), file=out)
        if hints and d.fix:
            print(f"    fix: {d.fix}", file=out)

"""Token budgets derived from a JSON schema.

Constrained decoding guarantees the *shape* of the output, not that it finishes: a budget
that is too small cuts the object off before its closing brace. The budget here is an upper
bound on the tokens a compact schema-valid object needs: string limits (``maxLength``), list limits
(``maxItems``), keys and punctuation, with room for the whitespace some grammars allow.
Strings without a limit get :data:`FREE_STRING_TOKENS`; agents' output types set limits so
budgets stay tight.
"""

from __future__ import annotations

import math
from typing import Any

#: Every token the grammar allows inside a string adds at least one character, so a string
#: of at most ``maxLength`` characters takes at most ``maxLength`` tokens. Typical English
#: is 3-4 characters a token, but a small model at its worst ("no_no_no_...") is not.
CHARS_PER_TOKEN = 1.0
FREE_STRING_TOKENS = 160
DEFAULT_MAX_ITEMS = 8
NUMBER_TOKENS = 8
#: Slack for whitespace and tokenisation surprises.
SLACK = 1.2
MAX_BUDGET = 4096


def _text_tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN) + 2


def _walk(node: dict[str, Any], defs: dict[str, Any], depth: int) -> int:
    if depth > 32:
        return FREE_STRING_TOKENS
    if "$ref" in node:
        name = str(node["$ref"]).rsplit("/", 1)[-1]
        return _walk(defs.get(name, {}), defs, depth + 1)
    for key in ("anyOf", "oneOf"):
        if key in node:
            return max(_walk(sub, defs, depth + 1) for sub in node[key])
    if "allOf" in node:
        return sum(_walk(sub, defs, depth + 1) for sub in node["allOf"])
    if "enum" in node:
        return max(_text_tokens(len(str(v))) for v in node["enum"])
    if "const" in node:
        return _text_tokens(len(str(node["const"])))
    kind = node.get("type")
    if isinstance(kind, list):
        return max(_walk({**node, "type": k}, defs, depth + 1) for k in kind)
    if kind == "string":
        limit = node.get("maxLength")
        return _text_tokens(int(limit)) if limit is not None else FREE_STRING_TOKENS
    if kind in ("integer", "number"):
        return NUMBER_TOKENS
    if kind in ("boolean", "null"):
        return 2
    if kind == "array":
        items = node.get("items", {})
        count = int(node.get("maxItems", DEFAULT_MAX_ITEMS))
        return 2 + count * (_walk(items, defs, depth + 1) + 1)
    if kind == "object" or "properties" in node:
        total = 2
        for key, sub in node.get("properties", {}).items():
            total += _text_tokens(len(key)) + 2 + _walk(sub, defs, depth + 1)
        return total
    return FREE_STRING_TOKENS


def schema_token_budget(schema: dict[str, Any]) -> int:
    """An upper bound on the tokens one schema-valid JSON object takes (capped)."""
    defs = dict(schema.get("$defs", {}))
    return min(MAX_BUDGET, math.ceil(_walk(schema, defs, 0) * SLACK) + 8)

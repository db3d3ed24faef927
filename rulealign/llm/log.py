"""The generation log: every call, in a SQLite file in the run folder.

Each row holds the backend, model id and hash, adapter, sampling settings, the prompt (and
its hash), the schema hash, the output text, tokens, latency and outcome. It is the record
of where every synthetic example and audit verdict came from, and a cache: a prompt sent
again with the same model, adapter, settings and schema is answered from the log (errors
such as a server being down are never reused).

SQLite in WAL mode with a busy timeout lets several processes append to one log.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rulealign.errors import RulealignError, diagnostic
from rulealign.fileio import open_sqlite

if TYPE_CHECKING:
    from pydantic import BaseModel

    from rulealign.llm.base import Backend, Chat, Generation, RawOutput

SCHEMA_VERSION = 1

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS generations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    key TEXT NOT NULL,
    tag TEXT NOT NULL,
    backend TEXT NOT NULL,
    model_id TEXT NOT NULL,
    model_hash TEXT NOT NULL,
    adapter TEXT,
    settings TEXT NOT NULL,
    prompt_hash TEXT NOT NULL,
    prompt TEXT NOT NULL,
    schema_hash TEXT,
    output_type TEXT,
    output TEXT NOT NULL,
    outcome TEXT NOT NULL,
    code TEXT,
    message TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_s REAL NOT NULL,
    cached INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS generations_key ON generations(key);
"""


def _hash(obj: object) -> str:
    text = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class GenerationLog:
    """Append-only log of generation calls, usable as a cache."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db = open_sqlite(self.path)
        try:
            self._db.executescript(_DDL)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                             (str(SCHEMA_VERSION),))
        except sqlite3.Error as exc:
            raise RulealignError(diagnostic("RA002", path=str(self.path),
                                            reason=str(exc))) from None

    def close(self) -> None:
        self._db.close()

    def record(self, backend: Backend, gens: Sequence[Generation], prompts: Sequence[Chat],
               settings: dict[str, Any], schema: dict[str, Any] | None,
               output_type: type[BaseModel] | None, adapter: str | None, *, tag: str = "") -> None:
        now = time.time()
        schema_hash = _hash(schema) if schema is not None else None
        type_name = output_type.__name__ if output_type is not None else None
        rows = [(now, g.key, tag, backend.name, backend.model_id, backend.model_hash, adapter,
                 json.dumps(settings, sort_keys=True), _hash(prompts[g.index]),
                 json.dumps(prompts[g.index], ensure_ascii=False), schema_hash, type_name,
                 g.text, g.outcome, g.code, g.message, g.prompt_tokens, g.completion_tokens,
                 g.latency_s, int(g.cached)) for g in gens]
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT INTO generations (ts, key, tag, backend, model_id, model_hash, "
                    "adapter, settings, prompt_hash, prompt, schema_hash, output_type, output, "
                    "outcome, code, message, prompt_tokens, completion_tokens, latency_s, cached) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        except sqlite3.Error as exc:
            raise RulealignError(diagnostic("RA002", path=str(self.path),
                                            reason=str(exc))) from None

    def cached(self, keys: Iterable[str]) -> dict[str, RawOutput]:
        """Earlier, non-error outputs for these keys (the first one logged for each)."""
        from rulealign.llm.base import Finish, RawOutput

        wanted = list(dict.fromkeys(keys))
        found: dict[str, RawOutput] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ",".join("?" * len(chunk))
            cur = self._db.execute(
                f"SELECT key, output, outcome, code, message, prompt_tokens, completion_tokens "
                f"FROM generations WHERE key IN ({marks}) AND outcome != 'error' "
                f"AND cached = 0 ORDER BY id", chunk)
            for key, output, outcome, code, message, ptok, ctok in cur:
                if key in found:
                    continue
                finish: Finish = ("length" if outcome == "truncated" else
                          "refused" if outcome == "refused" else "stop")
                found[key] = RawOutput(output, finish, ptok, ctok, code=code, message=message)
        return found

    def summary(self) -> dict[str, Any]:
        """Counts per backend, tag and outcome, and token totals."""
        rows = self._db.execute(
            "SELECT backend, tag, outcome, COUNT(*), SUM(completion_tokens), SUM(cached) "
            "FROM generations GROUP BY backend, tag, outcome ORDER BY backend, tag, outcome")
        return {"rows": [dict(zip(("backend", "tag", "outcome", "n", "completion_tokens",
                                   "cached"), r, strict=True)) for r in rows]}

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM generations").fetchone()[0])

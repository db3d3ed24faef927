"""The resumable store: every agent output and every finished item, keyed by content hashes.

A key is the SHA-256 of what determines an output: the rule's content hash, the scenario,
the agent and its template version, the model hash, the seed, the round and the input.
Outputs are committed as each batch finishes, so a run killed with SIGKILL and started again
asks for nothing twice and loses only the batch in flight; changing one rule changes only
that rule's keys, so only its data is generated again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rulealign.errors import RulealignError, diagnostic
from rulealign.fileio import open_sqlite

_DDL = """
CREATE TABLE IF NOT EXISTS outputs (
    key TEXT PRIMARY KEY, agent TEXT NOT NULL, template TEXT NOT NULL, scenario TEXT NOT NULL,
    outcome TEXT NOT NULL, value TEXT, message TEXT);
CREATE TABLE IF NOT EXISTS items (
    key TEXT PRIMARY KEY, scenario TEXT NOT NULL, rule TEXT NOT NULL, axis TEXT NOT NULL,
    status TEXT NOT NULL, reason TEXT, example TEXT);
CREATE TABLE IF NOT EXISTS strategies (
    axis TEXT NOT NULL, strategy TEXT NOT NULL, tries INTEGER NOT NULL DEFAULT 0,
    accepted INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (axis, strategy));
"""


def key_of(*parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class SynthStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.db = open_sqlite(self.path)
        try:
            self.db.executescript(_DDL)
        except sqlite3.Error as exc:
            raise RulealignError(diagnostic("RA002", path=str(self.path),
                                            reason=str(exc))) from None

    def close(self) -> None:
        self.db.close()

    # -- agent outputs ---------------------------------------------------------------------
    def outputs(self, keys: Iterable[str]) -> dict[str, tuple[str, Any, str | None]]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, tuple[str, Any, str | None]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            rows = self.db.execute(
                f"SELECT key, outcome, value, message FROM outputs WHERE key IN "
                f"({','.join('?' * len(chunk))})", chunk)
            for key, outcome, value, message in rows:
                found[key] = (outcome, json.loads(value) if value else None, message)
        return found

    def put_outputs(self, rows: Iterable[tuple[str, str, str, str, str, Any, str | None]]) -> None:
        """(key, agent, template, scenario, outcome, value, message) rows, one transaction."""
        data = [(k, a, t, s, o, json.dumps(v, ensure_ascii=False) if v is not None else None, m)
                for k, a, t, s, o, v, m in rows]
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR REPLACE INTO outputs VALUES (?,?,?,?,?,?,?)", data)

    # -- finished items ----------------------------------------------------------------------
    def item(self, key: str) -> tuple[str, str | None, Any] | None:
        row = self.db.execute("SELECT status, reason, example FROM items WHERE key = ?",
                              (key,)).fetchone()
        if row is None:
            return None
        return row[0], row[1], json.loads(row[2]) if row[2] else None

    def put_items(self, rows: Iterable[tuple[str, str, str, str, str, str | None, Any]]) -> None:
        """(key, scenario, rule, axis, status, reason, example) rows, one transaction."""
        data = [(k, s, r, a, st, re_, json.dumps(ex, ensure_ascii=False) if ex else None)
                for k, s, r, a, st, re_, ex in rows]
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR REPLACE INTO items VALUES (?,?,?,?,?,?,?)", data)

    def all_items(self, keys: Iterable[str]) -> list[tuple[str, str, str | None, Any]]:
        out = []
        for key in keys:
            got = self.item(key)
            if got is not None:
                out.append((key, *got))
        return out

    # -- the planner's memory ----------------------------------------------------------------
    def strategy_stats(self, axis: str) -> dict[str, tuple[int, int]]:
        rows = self.db.execute("SELECT strategy, tries, accepted FROM strategies WHERE axis = ?",
                               (axis,))
        return {s: (t, a) for s, t, a in rows}

    def record_strategy(self, axis: str, strategy: str, accepted: bool) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR IGNORE INTO strategies VALUES (?, ?, 0, 0)",
                            (axis, strategy))
            self.db.execute("UPDATE strategies SET tries = tries + 1, accepted = accepted + ? "
                            "WHERE axis = ? AND strategy = ?", (int(accepted), axis, strategy))

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table (to ship a shard's work to another machine)."""
        return {t: [tuple(r) for r in self.db.execute(f"SELECT * FROM {t}")]
                for t in ("outputs", "items", "strategies")}

    def merge(self, rows: dict[str, list[tuple[Any, ...]]]) -> None:
        """Add another store's rows (from :meth:`dump`): outputs and items are keyed by
        content, so a row present in both is the same row; strategy counts add up."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("INSERT OR IGNORE INTO outputs VALUES (?,?,?,?,?,?,?)",
                                rows.get("outputs", []))
            self.db.executemany("INSERT OR IGNORE INTO items VALUES (?,?,?,?,?,?,?)",
                                rows.get("items", []))
            for axis, strategy, tries, accepted in rows.get("strategies", []):
                self.db.execute("INSERT OR IGNORE INTO strategies VALUES (?, ?, 0, 0)",
                                (axis, strategy))
                self.db.execute("UPDATE strategies SET tries = tries + ?, accepted = accepted "
                                "+ ? WHERE axis = ? AND strategy = ?",
                                (tries, accepted, axis, strategy))

    def count(self, table: str = "outputs") -> int:
        if table not in ("outputs", "items", "strategies"):
            raise ValueError(table)
        return int(self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Any, Self

from rulealign.errors import RulealignError, diagnostic


def _umask() -> int:
    """The process's umask, read without changing it where the system tells it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_for(target: Path) -> int:
    """The mode a rewritten file keeps (its own, so a chmod survives the next write), or
    that a new file gets from the umask like any ``open()`` (a temporary file is 0600)."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        return 0o666 & ~_umask()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    The file gets the mode an ordinary write would give it (the old file's, else the
    umask's). On failure (a full disk, no permission) the old file is untouched, the
    temporary file is removed and a coded ``RA002`` error is raised.
    """
    target = Path(path)
    tmp_name = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), _mode_for(target))
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
        tmp_name = None
    except OSError as exc:
        raise RulealignError(diagnostic("RA002", path=str(target),
                                        reason=exc.strerror or str(exc))) from None
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
    return target


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def refuse_overwrite(output: str | Path, *, inputs: tuple[str | Path, ...] = (),
                     force: bool = False) -> None:
    """Raise ``RA003`` when writing ``output`` would replace one of ``inputs`` (never allowed)
    or, without ``force``, any existing file (a reviewed spec, say)."""
    out = Path(output)
    for given in inputs:
        with contextlib.suppress(OSError):
            if out.exists() and os.path.samefile(out, given):
                raise RulealignError(diagnostic("RA003", path=str(out),
                                                reason=f"it is the input '{given}'"))
    if out.exists() and not force:
        raise RulealignError(diagnostic("RA003", path=str(out), reason="the file exists"))


def read_jsonl(path: str | Path, *, code: str = "RA503") -> list[tuple[int, Any]]:
    """``(line number, value)`` for every non-blank line of a JSON Lines file.

    An unreadable file is ``RA001``; a line that is not JSON is ``code`` (naming the line).
    """
    import json

    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise RulealignError(diagnostic("RA001", path=str(p),
                                        reason=exc.strerror or str(exc))) from None
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append((n, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise RulealignError(diagnostic(code, file=str(p), line=n, path=str(p),
                                            reason=f"line {n} is not JSON: {exc.msg}")) from None
    return out


def _damaged(path: Path, exc: sqlite3.DatabaseError) -> RulealignError:
    return RulealignError(diagnostic("RA004", path=str(path), reason=str(exc)))


def _is_damage(exc: BaseException) -> bool:
    """SQLite reports a damaged file ("database disk image is malformed", "file is not a
    database") as a plain DatabaseError; its subclasses are other troubles (locks, SQL)."""
    return type(exc) is sqlite3.DatabaseError


class _Cursor(sqlite3.Cursor):
    """A cursor whose reads and writes turn a damaged file into ``RA004`` naming it."""

    path: Path

    def execute(self, *args: Any, **kw: Any) -> Self:
        try:
            return super().execute(*args, **kw)
        except sqlite3.DatabaseError as exc:
            raise _damaged(self.path, exc) if _is_damage(exc) else exc from None

    def executemany(self, *args: Any, **kw: Any) -> Self:
        try:
            return super().executemany(*args, **kw)
        except sqlite3.DatabaseError as exc:
            raise _damaged(self.path, exc) if _is_damage(exc) else exc from None

    def executescript(self, *args: Any, **kw: Any) -> sqlite3.Cursor:
        try:
            return super().executescript(*args, **kw)
        except sqlite3.DatabaseError as exc:
            raise _damaged(self.path, exc) if _is_damage(exc) else exc from None

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except sqlite3.DatabaseError as exc:
            raise _damaged(self.path, exc) if _is_damage(exc) else exc from None

    def fetchall(self) -> list[Any]:
        try:
            return super().fetchall()
        except sqlite3.DatabaseError as exc:
            raise _damaged(self.path, exc) if _is_damage(exc) else exc from None

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except sqlite3.DatabaseError as exc:
            raise _damaged(self.path, exc) if _is_damage(exc) else exc from None


class _Connection(sqlite3.Connection):
    """A connection whose statements all run on checked cursors."""

    path: Path

    def cursor(self, factory: Any = _Cursor) -> Any:
        cur = super().cursor(factory)
        cur.path = self.path
        return cur

    # the shortcuts on sqlite3.Connection make a plain cursor: route them through ours
    def execute(self, *args: Any, **kw: Any) -> Any:
        return self.cursor().execute(*args, **kw)

    def executemany(self, *args: Any, **kw: Any) -> Any:
        return self.cursor().executemany(*args, **kw)

    def executescript(self, *args: Any, **kw: Any) -> Any:
        return self.cursor().executescript(*args, **kw)


def open_sqlite(path: str | Path) -> sqlite3.Connection:
    """A SQLite database in WAL mode with a long busy timeout, so that several processes can
    append to it; autocommit (callers open their own transactions). A damaged file is
    ``RA004`` (naming it and how to rebuild it) wherever it shows, on opening or on any later
    read or write; other failures to open are ``RA002``."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(p, timeout=60.0, isolation_level=None, check_same_thread=False,
                             factory=_Connection)
        db.path = p
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
    except (sqlite3.Error, OSError) as exc:
        raise RulealignError(diagnostic("RA002", path=str(p), reason=str(exc))) from None
    return db

"""The crash-safe record of a collection: one SQLite database in WAL mode, one commit per result.

Every finished interval (a growth step), probe and branch is committed the moment it
completes, so ``kill -9`` at any instant loses at most the requests in flight, and a
resumed run re-requests nothing that completed. WAL mode keeps those many small
commits cheap and lets ``autotts store info`` style readers look while a run goes on.

Tables::

    meta(key, value)                      config fingerprint and description, start time
    questions(q, id, text, gold)          the benchmark as collected (gold normalised)
    segments(q, b, k, text, ids, tokens, finish)
                                          growth step k of branch b (interval mode: the
                                          k-th Δ; full mode: k = 0 holds the whole branch)
    probes(q, b, k, answer, reply, tokens)
                                          the probe after k·Δ tokens (k ≥ 1)
    branches(q, b, tokens, final, finish) a branch whose generation has ended
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autotts.errors import ConfigError, StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS questions (q INTEGER PRIMARY KEY, id TEXT NOT NULL, text TEXT NOT NULL, gold TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
    q INTEGER NOT NULL, b INTEGER NOT NULL, k INTEGER NOT NULL,
    text TEXT NOT NULL, ids TEXT, tokens INTEGER NOT NULL, finish TEXT NOT NULL,
    PRIMARY KEY (q, b, k));
CREATE TABLE IF NOT EXISTS probes (
    q INTEGER NOT NULL, b INTEGER NOT NULL, k INTEGER NOT NULL,
    answer TEXT NOT NULL, reply TEXT NOT NULL, tokens INTEGER NOT NULL,
    PRIMARY KEY (q, b, k));
CREATE TABLE IF NOT EXISTS branches (
    q INTEGER NOT NULL, b INTEGER NOT NULL, tokens INTEGER NOT NULL, final TEXT NOT NULL, finish TEXT NOT NULL,
    PRIMARY KEY (q, b));
"""


@dataclass(frozen=True, slots=True)
class Segment:
    """One committed growth step."""

    text: str
    ids: tuple[int, ...] | None
    tokens: int
    finish: str


class Checkpoint:
    """The SQLite state of one collection (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL: a commit survives the process being killed; only a power cut may lose the last few.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"not a collection state database ({exc}); delete it to start over", path=str(path)
            ) from None

    def close(self) -> None:
        """Close the database (everything is committed already)."""
        self._db.close()

    # ---------------------------------------------------------------------- meta
    def meta(self, key: str) -> Any:
        """A stored metadata value (JSON), or None."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        """Store a metadata value (JSON)."""
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def bind(self, fingerprint: str, description: dict[str, Any], *, resume: bool) -> bool:
        """Tie the state to a configuration; return True when earlier progress exists.

        A fresh database takes the fingerprint. An existing one needs ``resume`` and
        the same fingerprint: resuming under another recipe would mix two stores.
        """
        existing = self.meta("fingerprint")
        if existing is None:
            self.set_meta("fingerprint", fingerprint)
            self.set_meta("config", description)
            self.set_meta("started", time.time())
            return False
        if not resume:
            raise ConfigError(
                f"{self.path} holds the progress of an earlier collection; pass --resume to continue it, "
                "or delete the file to start over"
            )
        if existing != fingerprint:
            old = self.meta("config") or {}
            diff = sorted(k for k in set(old) | set(description) if old.get(k) != description.get(k))
            raise ConfigError(
                f"{self.path} was written under another configuration (differs in: {', '.join(diff) or '?'}); "
                "resume with the original config, or write to another collect.out"
            )
        return True

    # ----------------------------------------------------------------- questions
    def put_questions(self, rows: list[tuple[str, str, str]]) -> None:
        """Record the benchmark (once; a resumed run checks that it did not change)."""
        have = self._db.execute("SELECT id, text, gold FROM questions ORDER BY q").fetchall()
        if have:
            if [tuple(r) for r in have] != rows:
                raise ConfigError(
                    f"{self.path}: the benchmark file changed since this collection started "
                    "(questions, answers or ids differ); restore it or start a new collection"
                )
            return
        with self._db:
            self._db.executemany("INSERT INTO questions VALUES (?, ?, ?, ?)", [(i, *r) for i, r in enumerate(rows)])

    # ------------------------------------------------------------------ progress
    def add_segment(self, q: int, b: int, k: int, seg: Segment) -> None:
        """Commit growth step ``k`` of a branch."""
        ids = None if seg.ids is None else json.dumps(list(seg.ids))
        self._db.execute(
            "INSERT OR REPLACE INTO segments VALUES (?, ?, ?, ?, ?, ?, ?)",
            (q, b, k, seg.text, ids, seg.tokens, seg.finish),
        )

    def add_probe(self, q: int, b: int, k: int, answer: str, reply: str, tokens: int) -> None:
        """Commit the probe after ``k`` intervals."""
        self._db.execute("INSERT OR REPLACE INTO probes VALUES (?, ?, ?, ?, ?, ?)", (q, b, k, answer, reply, tokens))

    def finish_branch(self, q: int, b: int, tokens: int, final: str, finish: str) -> None:
        """Commit the end of a branch's generation."""
        self._db.execute("INSERT OR REPLACE INTO branches VALUES (?, ?, ?, ?, ?)", (q, b, tokens, final, finish))

    def segments(self, q: int, b: int) -> list[Segment]:
        """A branch's committed growth steps, in order."""
        rows = self._db.execute(
            "SELECT text, ids, tokens, finish FROM segments WHERE q = ? AND b = ? ORDER BY k", (q, b)
        ).fetchall()
        return [Segment(t, None if i is None else tuple(json.loads(i)), n, f) for t, i, n, f in rows]

    def probe_depths(self, q: int, b: int) -> set[int]:
        """The depths ``k`` already probed on a branch."""
        return {r[0] for r in self._db.execute("SELECT k FROM probes WHERE q = ? AND b = ?", (q, b))}

    def branch(self, q: int, b: int) -> tuple[int, str, str] | None:
        """``(tokens, final, finish)`` of a branch whose generation ended, else None."""
        row = self._db.execute("SELECT tokens, final, finish FROM branches WHERE q = ? AND b = ?", (q, b)).fetchone()
        return None if row is None else (int(row[0]), str(row[1]), str(row[2]))

    def counts(self) -> dict[str, int]:
        """Committed rows per table, and tokens generated so far (for progress and resume messages)."""
        one = self._db.execute
        return {
            "segments": one("SELECT COUNT(*) FROM segments").fetchone()[0],
            "probes": one("SELECT COUNT(*) FROM probes").fetchone()[0],
            "branches": one("SELECT COUNT(*) FROM branches").fetchone()[0],
            "tokens": one("SELECT COALESCE(SUM(tokens), 0) FROM segments").fetchone()[0],
            "probe_tokens": one("SELECT COALESCE(SUM(tokens), 0) FROM probes").fetchone()[0],
        }

    def all_probes(self) -> dict[tuple[int, int], dict[int, str]]:
        """Every probe answer, by (question, branch) then depth."""
        out: dict[tuple[int, int], dict[int, str]] = {}
        for q, b, k, a in self._db.execute("SELECT q, b, k, answer FROM probes"):
            out.setdefault((q, b), {})[k] = a
        return out

    def all_branches(self) -> dict[tuple[int, int], tuple[int, str]]:
        """``(tokens, final)`` of every ended branch."""
        return {(q, b): (n, f) for q, b, n, f in self._db.execute("SELECT q, b, tokens, final FROM branches")}

    def questions(self) -> list[tuple[str, str, str]]:
        """``(id, text, gold)`` of every question, in order."""
        rows = self._db.execute("SELECT id, text, gold FROM questions ORDER BY q")
        return [(str(i), str(text), str(gold)) for i, text, gold in rows]

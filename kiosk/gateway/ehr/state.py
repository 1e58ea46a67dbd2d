"""The EHR link's own durable state (one SQLite file, 0600, on the gateway host only).

  idmap   pseudonymous patient id -> the EHR's identifier (system, value). PHI: this table
          is the only place that links a pass to a person's record; kiosks never hold it.
  jobs    one row per check-in to report: attempts, next retry, last answer (no PHI)
  meta    the log cursor: the next log index the worker has not yet looked at
"""
from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS idmap (patient TEXT PRIMARY KEY, system TEXT NOT NULL, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
  entry_hash BLOB PRIMARY KEY, log_index INTEGER NOT NULL, patient TEXT NOT NULL, kiosk TEXT NOT NULL,
  created_ms INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending',          -- pending | answered | done
  answer TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '', refs TEXT NOT NULL DEFAULT '{}');
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, next_at);
"""


@dataclass(frozen=True)
class Job:
    entry_hash: bytes
    log_index: int
    patient: str
    kiosk: str
    created_ms: int
    attempts: int
    next_at: float
    state: str
    answer: str
    detail: str
    refs: str


class EhrState:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            os.chmod(self.path, 0o600)
            self._db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"{self.path}: cannot open the EHR state ({type(e).__name__})") from None

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise StoreError(f"{self.path}: {type(e).__name__}") from None

    def close(self) -> None:
        self._db.close()

    # --- identifier map (PHI: never logged)
    def map_patient(self, patient: str, system: str, value: str) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO idmap VALUES (?, ?, ?)", (patient, system, value))

    def unmap_patient(self, patient: str) -> bool:
        with self.tx() as db:
            return db.execute("DELETE FROM idmap WHERE patient = ?", (patient,)).rowcount > 0

    def lookup(self, patient: str) -> tuple[str, str] | None:
        row = self._db.execute("SELECT system, value FROM idmap WHERE patient = ?", (patient,)).fetchone()
        return (row[0], row[1]) if row else None

    def mapped_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM idmap").fetchone()[0])

    # --- cursor and jobs
    def cursor(self) -> int:
        row = self._db.execute("SELECT v FROM meta WHERE k = 'cursor'").fetchone()
        return int(row[0]) if row else 0

    def add_jobs(self, jobs: list[tuple[bytes, int, str, str, int]], cursor: int) -> None:
        """New check-ins and the cursor past them, in one transaction (nothing missed or doubled)."""
        with self.tx() as db:
            for eh, index, patient, kiosk, created in jobs:
                db.execute("INSERT OR IGNORE INTO jobs (entry_hash, log_index, patient, kiosk, created_ms, next_at)"
                           " VALUES (?, ?, ?, ?, ?, 0)", (eh, index, patient, kiosk, created))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('cursor', ?)", (cursor,))

    def _jobs(self, where: str, args: tuple = (), limit: int = -1) -> list[Job]:
        rows = self._db.execute(f"SELECT * FROM jobs WHERE {where} ORDER BY log_index LIMIT ?",
                                (*args, limit)).fetchall()
        return [Job(bytes(r[0]), *r[1:]) for r in rows]

    def due(self, now: float | None = None, limit: int = 20) -> list[Job]:
        now = time.time() if now is None else now
        return self._jobs("state = 'pending' AND next_at <= ?", (now,), limit)

    def answered(self) -> list[Job]:
        return self._jobs("state = 'answered'")

    def all(self) -> list[Job]:
        return self._jobs("1")

    def retry_later(self, eh: bytes, answer: str, detail: str, next_at: float) -> None:
        with self.tx() as db:
            db.execute("UPDATE jobs SET attempts = attempts + 1, next_at = ?, answer = ?, detail = ?"
                       " WHERE entry_hash = ?", (next_at, answer, detail, eh))

    def set_answer(self, eh: bytes, answer: str, detail: str, refs: str) -> None:
        with self.tx() as db:
            db.execute("UPDATE jobs SET attempts = attempts + 1, state = 'answered', answer = ?, detail = ?,"
                       " refs = ? WHERE entry_hash = ?", (answer, detail, refs, eh))

    def set_done(self, eh: bytes) -> None:
        with self.tx() as db:
            db.execute("UPDATE jobs SET state = 'done' WHERE entry_hash = ?", (eh,))

    def retry_now(self) -> int:
        """Staff's "retry": every waiting job is due now."""
        with self.tx() as db:
            return db.execute("UPDATE jobs SET next_at = 0 WHERE state = 'pending'").rowcount

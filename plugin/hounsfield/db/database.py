"""SQLite connections shared by Orthanc's many callback threads and the worker processes.

WAL lets readers run beside the single writer. Within one process every write goes
through one connection behind a lock (one writer discipline); across processes
SQLite's own locking and a generous busy timeout serialise writers.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

BUSY_TIMEOUT_SECONDS = 30.0


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
    )
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class Database:
    """One SQLite file: a locked writer connection and one reader connection per thread."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.RLock()
        self._writer = _connect(self.path)
        # Readers are keyed by OS thread id, not threading.local(): Orthanc's Python plugin
        # gives each callback a fresh thread state, which would mean a new connection
        # (~0.5 ms) per request. Orthanc's HTTP threads are a fixed pool, so this stays small.
        self._readers: dict[int, sqlite3.Connection] = {}
        self._readers_lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE): commits on success, rolls back on error."""
        with self._write_lock:
            conn = self._writer
            if conn.in_transaction:  # nested use within the same thread
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def execute(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        """One write statement in autocommit; returns the rows of a RETURNING clause."""
        with self._write_lock:
            return self._writer.execute(sql, params).fetchall()

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        """Read from this thread's own connection, never waiting for the writer."""
        return self._reader().execute(sql, params).fetchall()

    @contextmanager
    def schema(self) -> Iterator[sqlite_utils.Database]:
        """sqlite-utils over the writer connection, for migrations (held under the write lock)."""
        with self._write_lock:
            yield sqlite_utils.Database(self._writer)

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers.values():
                conn.close()
            self._readers.clear()
        with self._write_lock:
            self._writer.close()

    def _reader(self) -> sqlite3.Connection:
        thread = threading.get_ident()
        conn = self._readers.get(thread)
        if conn is None:
            conn = _connect(self.path)
            conn.execute("PRAGMA query_only=ON")
            with self._readers_lock:
                self._readers[thread] = conn
        return conn

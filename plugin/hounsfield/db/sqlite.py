"""SQLite, the embedded default: one file shared by Orthanc's many callback threads and the
worker processes of one machine.

WAL lets readers run beside the single writer. Within one process every write goes
through one connection behind a lock (one writer discipline); across processes
SQLite's own locking and a generous busy timeout serialise writers, so every
transaction is already exclusive and ``transaction(exclusive=...)`` needs no more.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from hounsfield.db.base import ColumnTypes, Dialect, IntegrityError, Params, Row

BUSY_TIMEOUT_SECONDS = 30.0

DIALECT = Dialect(
    name="sqlite",
    skip_locked="",
    json_member=lambda column: f"json_extract({column}, ?)",
    json_key=lambda key: f'$."{key}"',
)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
    )
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


@contextmanager
def _integrity() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as error:
        raise IntegrityError(str(error)) from error


class SqliteSchema:
    """Migrations over sqlite-utils, on the writer connection."""

    dialect = DIALECT

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = sqlite_utils.Database(conn)

    def create_table(
        self,
        name: str,
        columns: ColumnTypes,
        *,
        pk: str | tuple[str, ...],
        not_null: Iterable[str] = (),
        defaults: Mapping[str, int | str] | None = None,
        foreign_keys: Iterable[tuple[str, str, str]] = (),
    ) -> None:
        # An INTEGER PRIMARY KEY is SQLite's rowid: numbered on insert.
        self._db[name].create(  # type: ignore[union-attr]
            dict(columns),
            pk=pk,
            not_null=set(not_null),
            defaults=dict(defaults or {}),
            foreign_keys=list(foreign_keys),
        )

    def create_index(
        self, table: str, columns: Sequence[str], *, name: str, unique: bool = False
    ) -> None:
        self._db[table].create_index(list(columns), index_name=name, unique=unique)  # type: ignore[union-attr]

    def add_column(self, table: str, column: str, kind: type) -> None:
        self._db[table].add_column(column, kind)  # type: ignore[union-attr]

    def forbid_changes(self, table: str, message: str) -> None:
        quoted = message.replace("'", "''")
        for verb in ("UPDATE", "DELETE"):
            self._db.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}"
                f" BEGIN SELECT RAISE(ABORT, '{quoted}'); END"
            )

    def execute(self, sql: str, params: Params = ()) -> None:
        self._db.execute(sql, params)


class SqliteDatabase:
    """One SQLite file: a locked writer connection and one reader connection per thread."""

    dialect = DIALECT

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.RLock()
        self._writer = _connect(self.path)
        self._writing_thread: int | None = None  # the thread with a transaction open
        # Readers are keyed by OS thread id, not threading.local(): Orthanc's Python plugin
        # gives each callback a fresh thread state, which would mean a new connection
        # (~0.5 ms) per request. Orthanc's HTTP threads are a fixed pool, so this stays small.
        self._readers: dict[int, sqlite3.Connection] = {}
        self._readers_lock = threading.Lock()

    @contextmanager
    def transaction(self, exclusive: str | None = None) -> Iterator[None]:
        """BEGIN IMMEDIATE: SQLite's one writer makes every transaction exclusive."""
        with self._write_lock:
            conn = self._writer
            if conn.in_transaction:  # nested use within the same thread
                yield
                return
            conn.execute("BEGIN IMMEDIATE")
            self._writing_thread = threading.get_ident()
            try:
                with _integrity():
                    yield
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                self._writing_thread = None
            with _integrity():
                conn.execute("COMMIT")

    def execute(self, sql: str, params: Params = ()) -> list[Row]:
        with self._write_lock, _integrity():
            return self._writer.execute(sql, params).fetchall()

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        with self._write_lock, _integrity():
            self._writer.executemany(sql, rows)

    def query(self, sql: str, params: Params = ()) -> list[Row]:
        """From this thread's own connection, never waiting for the writer (inside this
        thread's transaction: the writer, which sees the transaction's writes)."""
        if self._writing_thread == threading.get_ident():
            return self.execute(sql, params)
        return self._reader().execute(sql, params).fetchall()

    @contextmanager
    def schema(self) -> Iterator[SqliteSchema]:
        with self._write_lock:
            yield SqliteSchema(self._writer)

    def reopen(self) -> SqliteDatabase:
        return SqliteDatabase(self.path)

    def describe(self) -> dict[str, Any]:
        return {"backend": "sqlite", "path": str(self.path)}

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

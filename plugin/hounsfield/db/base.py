"""What every store may rely on, whichever database holds the plugin's tables.

Two backends sit side by side in this folder: ``sqlite.py`` (the embedded default, one
file per machine) and ``postgresql.py`` (several Orthanc instances sharing one
database). Stores write their SQL once, in the subset both understand, with ``?`` and
``:name`` placeholders; the few statements that must differ ask the backend's
``Dialect``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

Params = Sequence[Any] | Mapping[str, Any]
ColumnTypes = Mapping[str, type]  # column -> int, float or str (the types our tables use)


class IntegrityError(Exception):
    """A constraint refused a write (a duplicate key, an append-only table, a missing
    parent row), whichever backend refused it."""


class Row(Protocol):
    """A result row read by position (``row[0]``) or by column (``row["id"]``);
    ``dict(row)`` gives the columns."""

    def __getitem__(self, key: int | str) -> Any: ...

    def keys(self) -> list[str]: ...


@dataclass(frozen=True)
class Dialect:
    """The statements the two backends cannot share."""

    name: str
    # Appended to a SELECT that picks rows to claim: a second claimer skips rows the
    # first one holds instead of waiting for them (SQLite has one writer: nothing to skip).
    skip_locked: str
    # A JSON text column's member as text, with one placeholder for the member's name,
    # and how to spell that name as the placeholder's value.
    json_member: Callable[[str], str]
    json_key: Callable[[str], str]


class Schema(Protocol):
    """What a migration may do: the table shapes both backends can build.

    Column types are ``int`` and ``str``; timestamps are ISO 8601 text made by
    ``hounsfield.clock`` (so ordering and comparison are those of text on both)."""

    dialect: Dialect

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
        """An integer single-column ``pk`` is numbered by the database on insert."""

    def create_index(
        self, table: str, columns: Sequence[str], *, name: str, unique: bool = False
    ) -> None: ...

    def add_column(self, table: str, column: str, kind: type) -> None: ...

    def forbid_changes(self, table: str, message: str) -> None:
        """Refuse every UPDATE and DELETE of ``table`` with ``message`` (IntegrityError)."""

    def execute(self, sql: str, params: Params = ()) -> None: ...


@dataclass(frozen=True)
class Migration:
    """One named step of a component's schema; applied once, in its own transaction."""

    name: str
    apply: Callable[[Schema], None]


class Database(Protocol):
    """The plugin's tables, shared by Orthanc's callback threads and the worker processes.

    ``execute`` writes (autocommit, or inside the thread's open ``transaction``) and returns
    the rows of a RETURNING clause; ``query`` reads. Inside ``transaction`` both see the
    transaction's own writes."""

    dialect: Dialect

    def transaction(self, exclusive: str | None = None) -> AbstractContextManager[None]:
        """A write transaction of this thread: committed on success, rolled back on error.

        ``exclusive`` names a lock held until the end: two transactions naming the same
        lock, in any process or instance, run one after the other (the audit chain's head).
        """

    def execute(self, sql: str, params: Params = ()) -> list[Row]: ...

    def executemany(self, sql: str, rows: Iterable[Params]) -> None: ...

    def query(self, sql: str, params: Params = ()) -> list[Row]: ...

    def schema(self) -> AbstractContextManager[Schema]:
        """For migrations: held so that no other migration runner works beside it."""

    def reopen(self) -> Database:
        """Another handle on the same database (as another process would open it)."""

    def describe(self) -> dict[str, Any]:
        """What health shows: the backend and where it is (no secret)."""

    def close(self) -> None: ...

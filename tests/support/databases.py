"""The plugin's tables on both backends: a SQLite file, or a fresh database in the
session's throwaway PostgreSQL cluster (``postgres_cluster`` in tests/conftest.py)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hounsfield.db import Database, Migration, SqliteDatabase, apply_migrations
from hounsfield.db.postgresql import PostgresDatabase

BACKENDS = ["sqlite", "postgresql"]
_names = itertools.count()


@contextmanager
def fresh_database(
    request: pytest.FixtureRequest, tmp_path: Path, migrations: Iterable[Migration]
) -> Iterator[Database]:
    """A new, migrated database of the backend ``request.param`` names; gone afterwards."""
    if request.param == "sqlite":
        database: Database = SqliteDatabase(tmp_path / "hounsfield.db")
        name = None
    else:
        cluster = request.getfixturevalue("postgres_cluster")
        name = f"test_{next(_names)}"
        database = PostgresDatabase(cluster.create_database(name), pool_size=8)
    try:
        apply_migrations(database, migrations)
        yield database
    finally:
        database.close()
        if name is not None:
            cluster.drop_database(name)


def table_names(database: Database) -> set[str]:
    """The tables a migration made, read from the backend's own catalogue."""
    if database.dialect.name == "sqlite":
        rows = database.query("SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = database.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    return {row[0] for row in rows}

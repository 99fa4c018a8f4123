from __future__ import annotations

from pathlib import Path

import pytest

from hounsfield.db import Database, Migration, apply_migrations
from hounsfield.db.migrations import applied_migrations


def create_notes(db) -> None:
    db["notes"].create({"id": int, "text": str}, pk="id")


def broken(db) -> None:
    db["half"].create({"id": int}, pk="id")
    raise RuntimeError("migration bug")


def test_migrations_apply_once_in_order(tmp_path: Path) -> None:
    database = Database(tmp_path / "x.db")
    migrations = [Migration("notes.0001", create_notes)]
    assert apply_migrations(database, migrations) == ["notes.0001"]
    assert apply_migrations(database, migrations) == []
    assert applied_migrations(database) == ["notes.0001"]
    database.execute("INSERT INTO notes (text) VALUES ('kept')")
    database.close()
    reopened = Database(tmp_path / "x.db")
    assert apply_migrations(reopened, migrations) == []
    assert reopened.query("SELECT text FROM notes")[0][0] == "kept"


def test_a_failing_migration_leaves_no_trace(tmp_path: Path) -> None:
    database = Database(tmp_path / "x.db")
    with pytest.raises(RuntimeError, match="migration bug"):
        apply_migrations(
            database, [Migration("notes.0001", create_notes), Migration("bad", broken)]
        )
    assert applied_migrations(database) == ["notes.0001"]
    tables = {row[0] for row in database.query("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "half" not in tables and "notes" in tables


def test_the_database_runs_in_wal_mode(database: Database) -> None:
    assert database.query("PRAGMA journal_mode")[0][0] == "wal"

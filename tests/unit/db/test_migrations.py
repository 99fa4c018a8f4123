from __future__ import annotations

from pathlib import Path

import pytest

from hounsfield.db import Database, IntegrityError, Migration, Schema, apply_migrations
from hounsfield.db.migrations import applied_migrations
from tests.support.databases import BACKENDS, fresh_database, table_names


def create_notes(schema: Schema) -> None:
    schema.create_table(
        "notes",
        {"id": int, "text": str, "stars": int},
        pk="id",
        not_null={"text"},
        defaults={"stars": 3},
    )
    schema.create_index("notes", ["text"], name="notes_by_text", unique=True)


def keep_notes(schema: Schema) -> None:
    schema.forbid_changes("notes", "notes are kept as written")


def broken(schema: Schema) -> None:
    schema.create_table("half", {"id": int}, pk="id")
    raise RuntimeError("migration bug")


@pytest.fixture(params=BACKENDS)
def empty(request: pytest.FixtureRequest, tmp_path: Path):
    with fresh_database(request, tmp_path, []) as db:
        yield db


def test_migrations_apply_once_in_order(empty: Database) -> None:
    migrations = [Migration("notes.0001", create_notes)]
    assert apply_migrations(empty, migrations) == ["notes.0001"]
    assert apply_migrations(empty, migrations) == []
    assert applied_migrations(empty) == {"notes.0001"}
    empty.execute("INSERT INTO notes (text) VALUES ('kept')")
    reopened = empty.reopen()
    try:
        assert apply_migrations(reopened, migrations) == []
        assert [tuple(row) for row in reopened.query("SELECT id, text, stars FROM notes")] == [
            (1, "kept", 3)
        ]
    finally:
        reopened.close()


def test_a_failing_migration_leaves_no_trace(empty: Database) -> None:
    with pytest.raises(RuntimeError, match="migration bug"):
        apply_migrations(empty, [Migration("notes.0001", create_notes), Migration("bad", broken)])
    assert applied_migrations(empty) == {"notes.0001"}
    assert "half" not in table_names(empty) and "notes" in table_names(empty)


def test_schema_shapes_hold_on_both_backends(empty: Database) -> None:
    """Numbered keys, NOT NULL, defaults, unique indexes and append-only tables."""
    apply_migrations(empty, [Migration("n1", create_notes), Migration("n2", keep_notes)])
    ids = [empty.execute("INSERT INTO notes (text) VALUES (?) RETURNING id", (t,))[0]["id"]
           for t in ("a", "b")]  # fmt: skip
    assert ids[1] == ids[0] + 1
    with pytest.raises(IntegrityError):
        empty.execute("INSERT INTO notes (text) VALUES ('a')")
    with pytest.raises(IntegrityError):
        empty.execute("INSERT INTO notes (stars) VALUES (1)")
    for statement in ("UPDATE notes SET stars = 5", "DELETE FROM notes"):
        with pytest.raises(IntegrityError, match="kept as written"):
            empty.execute(statement)
    assert [row["stars"] for row in empty.query("SELECT stars FROM notes")] == [3, 3]


def test_a_transaction_sees_its_writes_and_is_undone_whole(empty: Database) -> None:
    apply_migrations(empty, [Migration("n1", create_notes)])
    with pytest.raises(RuntimeError), empty.transaction():
        empty.execute("INSERT INTO notes (text) VALUES ('inside')")
        assert empty.query("SELECT count(*) FROM notes")[0][0] == 1
        raise RuntimeError("undo")
    assert empty.query("SELECT count(*) FROM notes")[0][0] == 0


def test_placeholders_and_percent_signs_pass_through(empty: Database) -> None:
    """Stores write sqlite3's ``?`` and ``:name``; text with % or ? inside quotes stays."""
    apply_migrations(empty, [Migration("n1", create_notes)])
    empty.execute(
        "INSERT INTO notes (text, stars) VALUES (:text, :stars)", {"text": "50%?", "stars": 1}
    )
    rows = empty.query(
        "SELECT text, '100% :sure?' AS quoted FROM notes WHERE text LIKE ? AND stars = ?",
        ("50%", 1),
    )
    assert [(row["text"], row["quoted"]) for row in rows] == [("50%?", "100% :sure?")]


def test_the_sqlite_file_runs_in_wal_mode(tmp_path: Path) -> None:
    from hounsfield.db import SqliteDatabase

    database = SqliteDatabase(tmp_path / "x.db")
    assert database.query("PRAGMA journal_mode")[0][0] == "wal"
    database.close()

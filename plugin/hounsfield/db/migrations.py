"""Named, ordered schema migrations, applied once each at start-up.

Each component (jobs, events, auth, reading...) owns its migrations; names are recorded
in ``_migrations`` so adding a component never renumbers others. The same migrations
build both backends' tables (``Schema``).
"""

from __future__ import annotations

from collections.abc import Iterable

from hounsfield.clock import now_iso
from hounsfield.db.base import Database, Migration


def apply_migrations(database: Database, migrations: Iterable[Migration]) -> list[str]:
    """Apply the migrations not yet recorded, in order; returns the names applied now.

    Instances starting together on one PostgreSQL take turns (``Database.schema``): the
    second finds the first's migrations recorded."""
    applied_now: list[str] = []
    with database.schema() as schema:
        schema.execute(
            "CREATE TABLE IF NOT EXISTS _migrations"
            " (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        done = applied_migrations(database)
        for migration in migrations:
            if migration.name in done:
                continue
            with database.transaction():  # one transaction per migration: all of it or none
                migration.apply(schema)
                database.execute(
                    "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                    (migration.name, now_iso()),
                )
            applied_now.append(migration.name)
    return applied_now


def applied_migrations(database: Database) -> set[str]:
    return {row["name"] for row in database.query("SELECT name FROM _migrations")}

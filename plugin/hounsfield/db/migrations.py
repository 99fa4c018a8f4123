"""Named, ordered schema migrations, applied once each at start-up.

Each component (jobs, events, and later auth, reports...) owns its migrations;
names are recorded in ``_migrations`` so adding a component never renumbers others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sqlite_utils

from hounsfield.clock import now_iso
from hounsfield.db.database import Database


@dataclass(frozen=True)
class Migration:
    name: str
    apply: Callable[[sqlite_utils.Database], None]


def apply_migrations(database: Database, migrations: Iterable[Migration]) -> list[str]:
    """Apply the migrations not yet recorded, in order; returns the names applied now."""
    applied_now: list[str] = []
    with database.schema() as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS _migrations"
            " (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        done = {row[0] for row in db.execute("SELECT name FROM _migrations").fetchall()}
        for migration in migrations:
            if migration.name in done:
                continue
            with db.atomic():  # one transaction per migration: all of it or none
                migration.apply(db)
                db.execute(
                    "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                    [migration.name, now_iso()],
                )
            applied_now.append(migration.name)
    return applied_now


def applied_migrations(database: Database) -> list[str]:
    return [row["name"] for row in database.query("SELECT name FROM _migrations ORDER BY rowid")]

"""The plugin's own tables: SQLite (one machine) or PostgreSQL (several instances),
built by the same named migrations."""

from hounsfield.config import DatabaseLocation
from hounsfield.db.base import Database, Dialect, IntegrityError, Migration, Row, Schema
from hounsfield.db.migrations import apply_migrations
from hounsfield.db.sqlite import SqliteDatabase

__all__ = [
    "Database",
    "Dialect",
    "IntegrityError",
    "Migration",
    "Row",
    "Schema",
    "SqliteDatabase",
    "apply_migrations",
    "open_database",
]


def open_database(location: DatabaseLocation) -> Database:
    if location.backend == "postgresql":
        from hounsfield.db.postgresql import PostgresDatabase  # psycopg: only where used

        return PostgresDatabase(
            location.conninfo, schema=location.schema, pool_size=location.pool_size
        )
    return SqliteDatabase(location.path)

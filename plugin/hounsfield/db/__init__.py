"""The plugin's own tables: SQLite through sqlite-utils, with named migrations."""

from hounsfield.db.database import Database
from hounsfield.db.migrations import Migration, apply_migrations

__all__ = ["Database", "Migration", "apply_migrations"]

from __future__ import annotations

from pathlib import Path

import pytest

from hounsfield.app import migrations
from hounsfield.db import Database, apply_migrations


@pytest.fixture
def database(tmp_path: Path) -> Database:
    """A real SQLite file with the plugin's schema."""
    db = Database(tmp_path / "hounsfield.db")
    apply_migrations(db, migrations([]))
    yield db
    db.close()

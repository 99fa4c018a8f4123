from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hounsfield.app import migrations
from hounsfield.db import Database
from tests.support.databases import BACKENDS, fresh_database


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The core's, the reading extension's and the AI extension's tables, on each backend."""
    extensions = ["hounsfield.reading", "hounsfield.ai"]
    with fresh_database(request, tmp_path, migrations(extensions)) as db:
        yield db

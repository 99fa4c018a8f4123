from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hounsfield.app import migrations
from hounsfield.audit.trail import AuditTrail
from hounsfield.db import Database, apply_migrations
from hounsfield.jobs.queue import SqliteJobQueue
from hounsfield.reading.desk import ReadingDesk
from hounsfield.reading.settings import ReadingSettings
from hounsfield.reading.worklist import StudySummary


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    """A real SQLite file with the core's and the reading extension's tables."""
    db = Database(tmp_path / "hounsfield.db")
    apply_migrations(db, migrations(["hounsfield.reading"]))
    yield db
    db.close()


@pytest.fixture
def desk(database: Database) -> ReadingDesk:
    queue = SqliteJobQueue(database)
    return ReadingDesk(database, AuditTrail(database), queue.enqueue, ReadingSettings())


def summary(study_id: str, **fields: object) -> StudySummary:
    values: dict[str, object] = {
        "study_id": study_id,
        "study_uid": f"1.2.3.{abs(hash(study_id)) % 10**8}",
        "patient_name": "DOE^JANE",
        "patient_id": "P1",
        "patient_birth_date": "19700102",
        "patient_sex": "F",
        "accession": "A1",
        "modalities": ("CT",),
        "description": "CT CHEST",
        "study_date": "20261124",
        "series_count": 1,
        "instance_count": 1,
        "stable": False,
    }
    values.update(fields)
    return StudySummary(**values)  # type: ignore[arg-type]

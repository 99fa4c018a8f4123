from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hounsfield.app import migrations
from hounsfield.audit.trail import AuditTrail
from hounsfield.db import Database
from hounsfield.jobs.queue import DatabaseJobQueue
from hounsfield.reading.desk import ReadingDesk
from hounsfield.reading.settings import ReadingSettings
from hounsfield.reading.worklist import StudySummary
from tests.support.databases import BACKENDS, fresh_database


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The core's and the reading extension's tables, on each backend in turn."""
    with fresh_database(request, tmp_path, migrations(["hounsfield.reading"])) as db:
        yield db


@pytest.fixture
def desk(database: Database) -> ReadingDesk:
    queue = DatabaseJobQueue(database)
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

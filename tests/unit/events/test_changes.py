"""Stability bookkeeping: which studies are still settling, kept in the database so that a
restart cannot lose a study's stable event."""

from __future__ import annotations

import time

import pytest

from hounsfield.db import Database
from hounsfield.events.changes import ChangeRecorder
from hounsfield.events.context import EventContext
from hounsfield.events.dispatcher import EventDispatcher
from hounsfield.events.types import Event, EventRecord
from hounsfield.orthanc_api import OrthancError
from hounsfield.registry import Registry


class Resources:
    """The part of ``OrthancApi`` the recorder reads, answering from dicts."""

    def __init__(self) -> None:
        self.parent_study: dict[str, str] = {}
        self.stable: dict[str, bool] = {}

    def get_json(self, path: str) -> dict:
        kind, resource = path.strip("/").split("/")
        if kind == "series" and resource in self.parent_study:
            return {"ParentStudy": self.parent_study[resource]}
        if kind == "studies" and resource in self.stable:
            return {"IsStable": self.stable[resource]}
        raise OrthancError("unknown resource", 404)


def stored_events(database: Database) -> list[tuple[str, str]]:
    rows = database.query("SELECT type, resource_id FROM events ORDER BY id")
    return [(row["type"], row["resource_id"]) for row in rows]


def settling(database: Database) -> set[str]:
    return {row[0] for row in database.query("SELECT study_id FROM unsettled_studies")}


@pytest.fixture
def orthanc() -> Resources:
    return Resources()


def recorder(database: Database, orthanc: Resources, *listening: Event) -> ChangeRecorder:
    registry = Registry()
    for event in listening:
        registry.on(event, lambda context: None, name=f"listener.{event.value}")

    def context(record: EventRecord, name: str) -> EventContext:
        raise AssertionError("nothing is delivered in these tests")

    events = EventDispatcher(database, registry, context, node="node")
    return ChangeRecorder(database, events, orthanc, stable_age_seconds=0.05)


def test_a_study_is_settling_from_its_first_series_until_it_is_stable(database, orthanc) -> None:
    changes = recorder(database, orthanc, Event.STUDY_STABLE)
    orthanc.parent_study["series-1"] = "study-1"
    changes.record(Event.SERIES_NEW, "series-1")
    assert settling(database) == {"study-1"}

    changes.record(Event.STUDY_STABLE, "study-1")
    assert settling(database) == set()
    assert stored_events(database) == [("study.stable", "study-1")]


def test_a_study_deleted_while_settling_is_forgotten_and_its_deletion_recorded(
    database, orthanc
) -> None:
    changes = recorder(database, orthanc, Event.STUDY_STABLE, Event.STUDY_DELETED)
    orthanc.parent_study["series-1"] = "study-1"
    changes.record(Event.SERIES_NEW, "series-1")
    changes.record(Event.STUDY_DELETED, "study-1")
    assert settling(database) == set()
    assert stored_events(database) == [("study.deleted", "study-1")]


def test_nothing_is_noted_when_no_one_waits_for_stable_studies(database, orthanc) -> None:
    changes = recorder(database, orthanc, Event.SERIES_NEW)
    changes.record(Event.SERIES_NEW, "series-1")  # no lookup of its study: none is needed
    assert settling(database) == set()
    assert stored_events(database) == [("series.new", "series-1")]


def test_after_a_restart_forgotten_studies_are_declared_stable_and_gone_ones_dropped(
    database, orthanc
) -> None:
    before = recorder(database, orthanc, Event.STUDY_STABLE)
    for series, study in (("a", "forgotten"), ("b", "tracked-again"), ("c", "deleted")):
        orthanc.parent_study[series] = study
        before.record(Event.SERIES_NEW, series)
    # Orthanc restarted: it tracks one study again (not stable yet), one study is gone.
    orthanc.stable.update({"forgotten": True, "tracked-again": False})

    after = recorder(database, orthanc, Event.STUDY_STABLE)
    after.start()
    deadline = time.monotonic() + 5
    while settling(database) != {"tracked-again"} and time.monotonic() < deadline:
        time.sleep(0.01)
    after.stop()
    assert settling(database) == {"tracked-again"}
    assert stored_events(database) == [("study.stable", "forgotten")]

from __future__ import annotations

import threading
import time

import pytest

from hounsfield.clock import iso_seconds_ago
from hounsfield.db import Database
from hounsfield.events.context import EventContext
from hounsfield.events.dispatcher import EventDispatcher
from hounsfield.events.types import Event, EventRecord
from hounsfield.jobs.queue import DatabaseJobQueue
from hounsfield.registry import ExtensionError, Registry


class StudiesOnDisk:
    """An ``OrthancApi`` answering from a dict, for handlers that read a study."""

    def __init__(self, studies: dict) -> None:
        self.studies = studies

    def get_json(self, path: str):
        return self.studies[path]


@pytest.fixture
def setup(database: Database):
    registry = Registry()
    queue = DatabaseJobQueue(database)
    orthanc = StudiesOnDisk({"/studies/s1": {"Series": ["a", "b"]}})

    def context(record: EventRecord, handler_name: str) -> EventContext:
        return EventContext(record, handler_name, orthanc, queue.enqueue, database)

    return registry, queue, EventDispatcher(database, registry, context, node="node")


def test_events_nobody_listens_to_are_not_stored(setup) -> None:
    _, _, dispatcher = setup
    assert dispatcher.record(Event.INSTANCE_NEW, "i1") is None
    assert dispatcher.pending() == 0


def test_each_handler_sees_each_event_once(setup) -> None:
    registry, queue, dispatcher = setup
    seen = []

    def reconstruct(context: EventContext) -> None:
        series = context.orthanc.get_json(f"/studies/{context.event.resource_id}")["Series"]
        for one in series:
            context.enqueue("recon", {"series": one})

    registry.on(Event.STUDY_STABLE, reconstruct, name="recon")
    registry.on(Event.STUDY_STABLE, lambda c: seen.append(c.event.resource_id), name="seen")
    event_id = dispatcher.record(Event.STUDY_STABLE, "s1")
    assert dispatcher.pending() == 1
    assert dispatcher.dispatch_pending() == 1
    assert dispatcher.dispatch_pending() == 0
    assert seen == ["s1"]
    assert dispatcher.deliveries(event_id) == {"recon": "ok", "seen": "ok"}
    assert [j.params["series"] for j in queue.list(limit=10, offset=0)] == ["b", "a"]


def test_dispatch_resumes_after_a_crash_without_repeating_work(setup, database) -> None:
    registry, queue, dispatcher = setup
    calls = []

    def queue_one(context: EventContext) -> None:
        calls.append(context.event.id)
        context.enqueue("recon", {"study": context.event.resource_id})

    registry.on(Event.STUDY_STABLE, queue_one, name="queue_one")
    event_id = dispatcher.record(Event.STUDY_STABLE, "s1")
    # A crash after the handler queued its job but before its delivery was recorded:
    queue_one(
        EventContext(
            EventRecord(event_id, Event.STUDY_STABLE, "s1", ""),
            "queue_one",
            StudiesOnDisk({}),
            queue.enqueue,
            database,
        )
    )

    restarted = EventDispatcher(database, registry, dispatcher._context, node="node")
    assert restarted.dispatch_pending() == 1
    assert calls == [event_id, event_id]
    assert queue.count() == 1  # the re-delivery queued nothing twice


def test_a_failing_handler_is_recorded_and_does_not_block_others(setup) -> None:
    registry, _, dispatcher = setup
    seen = []

    def explode(context: EventContext) -> None:
        raise RuntimeError("no projections")

    registry.on(Event.SERIES_STABLE, explode, name="explode")
    registry.on(Event.SERIES_STABLE, lambda c: seen.append(c.event.id), name="seen")
    event_id = dispatcher.record(Event.SERIES_STABLE, "x")
    dispatcher.dispatch_pending()
    assert dispatcher.deliveries(event_id) == {"explode": "error", "seen": "ok"}
    assert seen == [event_id]
    assert dispatcher.pending() == 0


def test_the_dispatcher_thread_delivers_in_the_background(setup) -> None:
    registry, _, dispatcher = setup
    delivered = threading.Event()
    registry.on(Event.STUDY_STABLE, lambda c: delivered.set(), name="flag")
    dispatcher.start()
    try:
        assert dispatcher.running()
        dispatcher.record(Event.STUDY_STABLE, "s1")
        assert delivered.wait(5)
    finally:
        dispatcher.stop()
    assert not dispatcher.running()


def test_handlers_and_kinds_cannot_be_registered_twice() -> None:
    registry = Registry()
    registry.job_kind("recon", print)
    with pytest.raises(ExtensionError, match="job kind 'recon' is registered twice"):
        registry.job_kind("recon", print)
    registry.on(Event.STUDY_STABLE, print, name="p")
    with pytest.raises(ExtensionError, match=r"handler 'p' is bound twice to study\.stable"):
        registry.on(Event.STUDY_STABLE, print, name="p")


def test_dispatchers_of_two_instances_share_the_events(setup, database: Database) -> None:
    """Each event goes to one of them; a claim of an instance that stopped lapses."""
    registry, _, dispatcher = setup
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    def note(context: EventContext) -> None:
        time.sleep(0.005)  # a handler's work: long enough for the other to look meanwhile
        with lock:
            seen.append((context.event.resource_id, threading.current_thread().name))

    registry.on(Event.STUDY_STABLE, note, name="note")
    for n in range(40):
        dispatcher.record(Event.STUDY_STABLE, f"s{n}", notify=False)
    other_database = database.reopen()
    other = EventDispatcher(other_database, registry, dispatcher._context, node="other")
    threads = [
        threading.Thread(target=d.dispatch_pending, name=d.node) for d in (dispatcher, other)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other_database.close()
    assert sorted(resource for resource, _ in seen) == sorted(f"s{n}" for n in range(40))
    # A claim by a node that stopped before delivering is taken over once it lapses.
    late = dispatcher.record(Event.STUDY_STABLE, "late", notify=False)
    database.execute(
        "UPDATE events SET claimed_by = 'gone', claimed_until = ? WHERE id = ?",
        (iso_seconds_ago(-60), late),
    )
    assert dispatcher.dispatch_pending() == 0
    database.execute("UPDATE events SET claimed_until = ? WHERE id = ?", (iso_seconds_ago(1), late))
    assert dispatcher.dispatch_pending() == 1

"""Durable delivery of events to handlers, off Orthanc's callback thread.

Orthanc's change callback only records the event (one INSERT) and wakes the
dispatcher thread. Each (event, handler) delivery is recorded, so after a crash the
dispatcher resumes where it stopped and no handler sees an event twice once its
delivery is recorded; handlers queue jobs through ``EventContext.enqueue``, which is
idempotent, so even a delivery cut short before being recorded queues nothing twice.

Instances sharing one PostgreSQL share the events too: each event is claimed by one
dispatcher for ``CLAIM_SECONDS`` (a claim of a dead instance lapses; an instance takes its
own claims back at once when it restarts).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from hounsfield.clock import iso_seconds_ago, now_iso
from hounsfield.db import Database, Migration, Schema
from hounsfield.events import stability
from hounsfield.events.context import EventContext
from hounsfield.events.types import Event, EventRecord
from hounsfield.registry import BoundHandler, Registry

log = logging.getLogger(__name__)

ContextFactory = Callable[[EventRecord, str], EventContext]


def _create_event_tables(schema: Schema) -> None:
    schema.create_table(
        "events",
        {"id": int, "type": str, "resource_id": str, "created_at": str, "dispatched_at": str},
        pk="id",
        not_null={"type", "resource_id", "created_at"},
    )
    schema.create_index("events", ["dispatched_at", "id"], name="events_pending")
    schema.create_table(
        "event_deliveries",
        {"event_id": int, "handler": str, "outcome": str, "error": str, "delivered_at": str},
        pk=("event_id", "handler"),
        foreign_keys=[("event_id", "events", "id")],
        not_null={"outcome", "delivered_at"},
    )


def _add_claims(schema: Schema) -> None:
    schema.add_column("events", "claimed_by", str)  # the node delivering it
    schema.add_column("events", "claimed_until", str)


MIGRATIONS = [
    Migration("events.0001.create", _create_event_tables),
    Migration("events.0003.claims", _add_claims),
]
# Long enough for any handler (they queue jobs and read Orthanc: milliseconds to seconds),
# short enough that a dead instance's events are not late by much.
CLAIM_SECONDS = 300


class EventDispatcher:
    def __init__(
        self, database: Database, registry: Registry, context: ContextFactory, *, node: str
    ) -> None:
        self.db = database
        self.node = node
        self.registry = registry
        self._context = context
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def wants(self, event: Event) -> bool:
        return bool(self.registry.handlers_for(event))

    def record(self, event: Event, resource_id: str, *, notify: bool = True) -> int | None:
        """Persist an event for delivery; events no handler listens to are not stored.

        Inside a caller's transaction pass ``notify=False`` and call ``notify`` after the
        commit, or the dispatcher may look before the event is visible.
        """
        if not self.wants(event):
            return None
        rows = self.db.execute(
            "INSERT INTO events (type, resource_id, created_at) VALUES (?, ?, ?) RETURNING id",
            (event.value, resource_id, now_iso()),
        )
        if notify:
            self.notify()
        return rows[0][0]

    def notify(self) -> None:
        self._wake.set()

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def pending(self) -> int:
        return self.db.query("SELECT count(*) FROM events WHERE dispatched_at IS NULL")[0][0]

    def deliveries(self, event_id: int) -> dict[str, str]:
        rows = self.db.query(
            "SELECT handler, outcome FROM event_deliveries WHERE event_id = ?", (event_id,)
        )
        return {row["handler"]: row["outcome"] for row in rows}

    def dispatch_pending(self) -> int:
        """Deliver every undelivered event, oldest first; returns how many were completed."""
        done = 0
        while not self._stopping.is_set():
            record = self._claim()
            if record is None:
                break
            self._deliver(record)
            done += 1
        return done

    def _claim(self) -> EventRecord | None:
        """The oldest undelivered event no other live instance is delivering."""
        claimable = (
            "dispatched_at IS NULL"
            " AND (claimed_until IS NULL OR claimed_until < :now OR claimed_by = :node)"
        )
        rows = self.db.execute(
            "UPDATE events SET claimed_by = :node, claimed_until = :until"
            f" WHERE id = (SELECT id FROM events WHERE {claimable} ORDER BY id LIMIT 1"
            f"{self.db.dialect.skip_locked}) AND {claimable} RETURNING *",
            {"node": self.node, "now": now_iso(), "until": iso_seconds_ago(-CLAIM_SECONDS)},
        )
        if not rows:
            return None
        row = rows[0]
        return EventRecord(row["id"], Event(row["type"]), row["resource_id"], row["created_at"])

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="hounsfield-events", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self.dispatch_pending()
            except Exception:
                log.exception("event dispatch failed; retrying shortly")
            self._wake.wait(timeout=5.0)

    def _deliver(self, record: EventRecord) -> None:
        delivered = self.deliveries(record.id)
        for bound in self.registry.handlers_for(record.type):
            if bound.name not in delivered:
                self._call(bound, record)
        self.db.execute("UPDATE events SET dispatched_at = ? WHERE id = ?", (now_iso(), record.id))

    def _call(self, bound: BoundHandler, record: EventRecord) -> None:
        outcome, error = "ok", None
        try:
            bound.handler(self._context(record, bound.name))
        except Exception as exc:
            log.exception("handler %s failed on %s %s", bound.name, record.type, record.resource_id)
            outcome, error = "error", f"{type(exc).__name__}: {exc}"
        self.db.execute(
            "INSERT INTO event_deliveries (event_id, handler, outcome, error, delivered_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (record.id, bound.name, outcome, error, now_iso()),
        )


def register(registry: Registry) -> None:
    """Core: durable event delivery, and studies still settling."""
    registry.migration(*MIGRATIONS, *stability.MIGRATIONS)

"""What an event handler sees: the event, Orthanc, the plugin's database, and a way to
queue heavy work."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hounsfield.db import Database
from hounsfield.events.types import EventRecord
from hounsfield.jobs.model import Job
from hounsfield.orthanc_api import OrthancApi

Submit = Callable[..., Job]


@dataclass
class EventContext:
    event: EventRecord
    handler_name: str
    orthanc: OrthancApi
    submit: Submit
    database: Database  # where an extension keeps its tables (its own migrations)
    _enqueued: int = field(default=0, init=False)

    def enqueue(
        self, kind: str, params: dict[str, Any], *, priority: int = 0, key: str | None = None
    ) -> Job:
        """Queue a job for this event; a re-delivered event never queues it twice.

        ``key`` names the work itself (e.g. "myfeature:<series>"): a job with the same key
        is never queued again, whichever event asks.
        """
        self._enqueued += 1
        key = key or f"event:{self.event.id}:{self.handler_name}:{self._enqueued}"
        return self.submit(kind, params, priority=priority, dedupe_key=key)

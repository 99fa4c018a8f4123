"""How capabilities plug in: a module with ``register(registry)`` binds its handlers.

Built-in capabilities (reconstruction, AI, worklist...) and third-party ones alike are
listed in the ``Extensions`` setting. The plugin process uses their event handlers, the
worker processes their job kinds; both import the same modules, so they always agree.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hounsfield.db import Migration
from hounsfield.events.types import Event
from hounsfield.web.router import RouteTable

if TYPE_CHECKING:
    from hounsfield.events.context import EventContext
    from hounsfield.jobs.context import JobContext

JobHandler = Callable[["JobContext"], Any]
EventHandler = Callable[["EventContext"], None]


class ExtensionError(Exception):
    """An extension could not be loaded or registered something invalid."""


@dataclass(frozen=True)
class BoundHandler:
    name: str
    handler: EventHandler


@dataclass
class Registry:
    job_kinds: dict[str, JobHandler] = field(default_factory=dict)
    event_handlers: dict[Event, list[BoundHandler]] = field(default_factory=dict)
    worker_startup: list[Callable[[], None]] = field(default_factory=list)
    route_tables: list[RouteTable] = field(default_factory=list)
    migrations: list[Migration] = field(default_factory=list)
    # Kinds only the application itself submits (their parameters are trusted, e.g. paths).
    internal_job_kinds: set[str] = field(default_factory=set)
    # Orthanc's configuration, where an extension reads its own section (empty in workers).
    configuration: Mapping[str, Any] = field(default_factory=dict)

    def on_worker_start(self, warm_up: Callable[[], None]) -> None:
        """Run ``warm_up`` once in each worker as it starts (e.g. load a heavy library)."""
        self.worker_startup.append(warm_up)

    def migration(self, migration: Migration) -> None:
        """Create or change the extension's own tables, once, in the order registered
        (named like "recon.0001.projection_series": a name is never reused)."""
        self.migrations.append(migration)

    def routes(self, table: RouteTable) -> None:
        """Serve ``table``'s routes (the permission table must list them)."""
        self.route_tables.append(table)

    def job_kind(self, kind: str, handler: JobHandler, *, internal: bool = False) -> None:
        """Run ``handler`` in a worker for each job of ``kind``; its return value is the result.

        ``internal`` kinds cannot be submitted through ``POST /api/jobs``: only the
        extension's own routes and hooks queue them.
        """
        if kind in self.job_kinds:
            raise ExtensionError(f"job kind {kind!r} is registered twice")
        self.job_kinds[kind] = handler
        if internal:
            self.internal_job_kinds.add(kind)

    def on(self, event: Event, handler: EventHandler, *, name: str | None = None) -> None:
        """Call ``handler`` once for each ``event``; ``name`` must stay stable across versions."""
        name = name or f"{handler.__module__}.{handler.__qualname__}"
        bound = self.event_handlers.setdefault(event, [])
        if any(existing.name == name for existing in bound):
            raise ExtensionError(f"handler {name!r} is bound twice to {event.value}")
        bound.append(BoundHandler(name, handler))

    def handlers_for(self, event: Event) -> list[BoundHandler]:
        return self.event_handlers.get(event, [])


def load_extensions(module_names: list[str], registry: Registry) -> None:
    for module_name in module_names:
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise ExtensionError(
                f"extension {module_name!r} cannot be imported: {error}"
            ) from error
        register = getattr(module, "register", None)
        if not callable(register):
            raise ExtensionError(f"extension {module_name!r} has no register(registry) function")
        register(registry)

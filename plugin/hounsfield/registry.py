"""How features plug in: a module with ``register(registry)`` declares what it brings.

Core features (jobs, events, auth, audit, health, storing, the viewer) register through the
same hooks as the capabilities listed in the ``Extensions`` setting (ours and
third-party ones): routes with their permissions, pages, event handlers, job kinds,
migrations and a configuration section. The plugin process uses the routes and event
handlers, the worker processes the job kinds; both import the same modules with the same
configuration, so they always agree. Extension authors import from ``hounsfield.api``.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from hounsfield.auth.roles import Role
from hounsfield.config import load_section
from hounsfield.db import Migration
from hounsfield.events.types import Event, Intervention
from hounsfield.web.pages import page_routes
from hounsfield.web.router import RouteTable

if TYPE_CHECKING:
    from hounsfield.events.context import EventContext
    from hounsfield.jobs.context import JobContext
    from hounsfield.services import Services

JobHandler = Callable[["JobContext"], Any]
EventHandler = Callable[["EventContext"], None]
# Runs in the plugin process from start to stop; returns when ``stopping`` is set.
BackgroundTask = Callable[["Services", threading.Event], None]
# A component of /api/health: its figures, with "healthy" (and "problem" when it is not).
HealthCheck = Callable[["Services"], dict[str, Any]]
Section = TypeVar("Section", bound=BaseModel)


class ExtensionError(Exception):
    """An extension could not be loaded or registered something invalid."""


@dataclass(frozen=True)
class BoundHandler:
    name: str
    handler: EventHandler


@dataclass(frozen=True)
class StudyPage:
    """A feature's page about one study, offered where a study is shown (Orthanc Explorer)."""

    name: str  # short, for the page's button id ("reading": #hounsfield-open-reading)
    title: str
    template: str  # "{study}" stands for Orthanc's study id
    roles: frozenset[Role]
    # "GET": a page to open; "POST": an action on the study (a route of ours, sent ``{}``,
    # whose answer's ``message`` is shown), e.g. "Analyze".
    method: str = "GET"


@dataclass(frozen=True)
class Link:
    """A feature's page of its own, offered in Orthanc Explorer (e.g. "Administration")."""

    name: str  # for the button's id: #hounsfield-link-<name>
    title: str
    path: str
    roles: frozenset[Role]


@dataclass
class Registry:
    job_kinds: dict[str, JobHandler] = field(default_factory=dict)
    event_handlers: dict[Event, list[BoundHandler]] = field(default_factory=dict)
    interventions: dict[Intervention, Callable[..., object]] = field(default_factory=dict)
    worker_startup: list[Callable[[], None]] = field(default_factory=list)
    background_tasks: list[BackgroundTask] = field(default_factory=list)
    health_checks: dict[str, HealthCheck] = field(default_factory=dict)
    catalogues: list[Path] = field(default_factory=list)
    landings: dict[Role, str] = field(default_factory=dict)  # where a role goes after sign-in
    study_pages: list[StudyPage] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    route_tables: list[RouteTable] = field(default_factory=list)
    migrations: list[Migration] = field(default_factory=list)
    # Kinds only the application itself submits (their parameters are trusted, e.g. paths).
    internal_job_kinds: set[str] = field(default_factory=set)
    # Orthanc's configuration (the same in the plugin and in workers): see ``section``.
    configuration: Mapping[str, Any] = field(default_factory=dict)

    def section(self, model: type[Section], name: str) -> Section:
        """The configuration section ``name`` (e.g. "HounsfieldMyFeature") read into ``model``
        (a pydantic model: defaults for what is left out, a clear error for what is wrong)."""
        return load_section(model, self.configuration, name)

    def on_worker_start(self, warm_up: Callable[[], None]) -> None:
        """Run ``warm_up`` once in each worker as it starts (e.g. load a heavy library)."""
        self.worker_startup.append(warm_up)

    def background(self, task: BackgroundTask) -> None:
        """Run ``task(services, stopping)`` on a thread of its own in the plugin process once
        Orthanc has started (e.g. catch up with what changed while the plugin was off, or
        a periodic sweep): light work only, in small steps, returning once ``stopping`` is
        set. Heavy work belongs in a job."""
        self.background_tasks.append(task)

    def health(self, component: str, check: HealthCheck) -> None:
        """Report ``component`` in ``/api/health``: ``check(services)`` runs at each request
        (keep it cheap: no Orthanc-wide scans), and the server is unhealthy while it says
        ``"healthy": false``."""
        if component in self.health_checks:
            raise ExtensionError(f"health component {component!r} is registered twice")
        self.health_checks[component] = check

    def catalogue(self, folder: Path) -> None:
        """The words of the feature's pages and documents: ``folder`` holds one JSON file
        per language (``hounsfield.i18n``), served to every page beside the core's."""
        self.catalogues.append(folder)

    def landing(self, path: str, roles: Iterable[Role]) -> None:
        """Send ``roles`` to ``path`` after they sign in (instead of the core's: Orthanc
        Explorer for admins, the viewer for everyone else); one feature per role."""
        for role in roles:
            if role in self.landings:
                raise ExtensionError(
                    f"{role.value}s already land on {self.landings[role]}; not on {path} too"
                )
            self.landings[role] = path

    def study_page(self, name: str, title: str, template: str, roles: Iterable[Role]) -> None:
        """Offer ``template`` (with ``{study}``, Orthanc's study id) to ``roles`` where a
        study is shown, as a button titled ``title``."""
        self.study_pages.append(StudyPage(name, title, template, frozenset(roles)))

    def study_action(self, name: str, title: str, route: str, roles: Iterable[Role]) -> None:
        """Offer ``roles`` a button where a study is shown that POSTs ``{}`` to ``route``
        (with ``{study}``, Orthanc's study id) and shows the answer's ``message``."""
        self.study_pages.append(StudyPage(name, title, route, frozenset(roles), method="POST"))

    def link(self, name: str, title: str, path: str, roles: Iterable[Role]) -> None:
        """Offer ``roles`` a button to ``path`` in Orthanc Explorer, on every one of its pages."""
        self.links.append(Link(name, title, path, frozenset(roles)))

    def migration(self, *migrations: Migration) -> None:
        """Create or change the feature's own tables, once each, in the order registered
        (named like "myfeature.0001.create": a name is never reused)."""
        self.migrations.extend(migrations)

    def routes(self, table: RouteTable) -> None:
        """Serve ``table``'s routes, each behind the permission it declares."""
        self.route_tables.append(table)

    def page(
        self,
        prefix: str,
        folder: Path,
        index: str,
        assets: Mapping[str, str],
        roles: Iterable[Role],
    ) -> None:
        """Serve the HTML page ``folder/index`` at ``prefix`` and its ``assets`` (file name:
        content type) under it, to ``roles``; a browser without a session is sent to sign in."""
        self.routes(page_routes(prefix, folder, index, assets, roles))

    def assets(
        self, prefix: str, folder: Path, assets: Mapping[str, str], roles: Iterable[Role]
    ) -> None:
        """Serve files without a page of their own under ``prefix`` (e.g. a script that
        another feature's page loads when this feature is there)."""
        self.routes(page_routes(prefix, folder, None, assets, roles))

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

    def intervene(self, intervention: Intervention, answerer: Callable[..., object]) -> None:
        """Answer ``intervention`` (see ``Intervention`` for its call): one answerer each."""
        taken = self.interventions.get(intervention)
        if taken is not None:
            raise ExtensionError(
                f"{intervention.value} is answered by {taken.__module__}.{taken.__qualname__}; "
                f"{answerer.__module__}.{answerer.__qualname__} cannot answer it too"
            )
        self.interventions[intervention] = answerer

    def answerer(self, intervention: Intervention) -> Callable[..., object]:
        """The one answerer of ``intervention``; an error if nothing answers it."""
        try:
            return self.interventions[intervention]
        except KeyError:
            raise ExtensionError(f"nothing answers {intervention.value}") from None


def load_extensions(module_names: Iterable[str], registry: Registry) -> None:
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

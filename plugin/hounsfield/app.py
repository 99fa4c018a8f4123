"""The composition root: builds every component from the settings and wires them.

Knows nothing of the ``orthanc`` module: the adapter hands it an ``InProcessOrthanc``, a
metrics sink and HTTP requests, and calls ``start``/``stop`` at Orthanc's start and stop.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

from hounsfield import health, orthanc_http, runs
from hounsfield.audit.access import AccessRecorder
from hounsfield.audit.trail import AuditTrail
from hounsfield.auth.credentials import Authenticator
from hounsfield.auth.gate import Gate
from hounsfield.auth.handoff import DecisionHandOff
from hounsfield.auth.keys import KeyStore
from hounsfield.auth.permissions import ADMIN_CATCH_ALL, ORTHANC_DOORS, PermissionTable
from hounsfield.auth.service import AuthService
from hounsfield.auth.store import SessionStore, UserStore, shared_signing_key
from hounsfield.auth.studies import StudyResolver
from hounsfield.auth.tokens import KEY_BYTES, TokenService, load_or_create_key
from hounsfield.callstack import FullStackThreads
from hounsfield.config import Settings
from hounsfield.db import Migration, apply_migrations, open_database
from hounsfield.events.changes import ChangeRecorder
from hounsfield.events.context import EventContext
from hounsfield.events.dispatcher import EventDispatcher
from hounsfield.events.types import Event, EventRecord, Intervention
from hounsfield.intake.admission import Refusal
from hounsfield.intake.store import Intake, Sender
from hounsfield.jobs.model import Job
from hounsfield.jobs.queue import DatabaseJobQueue
from hounsfield.jobs.supervisor import WorkerPool
from hounsfield.metrics import MetricFamily, Metrics, MetricsSink
from hounsfield.orthanc_api import InProcessOrthanc
from hounsfield.registry import BackgroundTask, Registry, load_extensions
from hounsfield.web import HttpError, Request, Response, Router, pages
from hounsfield.web.clients import came_over_tls, client_address, networks

log = logging.getLogger(__name__)

PLUGIN_DIRECTORY = Path(__file__).resolve().parent.parent
# The core's features, loaded like extensions (and before them, in this order: their
# migrations run first on a new database).
CORE_FEATURES = (
    "hounsfield.runs",
    "hounsfield.jobs.routes",
    "hounsfield.events.dispatcher",
    "hounsfield.auth.routes",
    "hounsfield.audit.routes",
    "hounsfield.health",
    "hounsfield.metrics_routes",
    "hounsfield.intake.routes",
    "hounsfield.dicomweb.routes",
    "hounsfield.web.pages",
    "hounsfield.web.viewer",
)
CONFIGURATION_FILE = "configuration.json"  # Orthanc's configuration, as workers read it


def build_registry(extensions: list[str], configuration: Mapping[str, Any]) -> Registry:
    """Every feature registered: the core's, then the extensions named in the settings."""
    registry = Registry(configuration=configuration)
    load_extensions([*CORE_FEATURES, *extensions], registry)
    return registry


def migrations(extensions: list[str]) -> list[Migration]:
    """The migrations of the core and of ``extensions``, in the order they are applied."""
    return build_registry(extensions, {}).migrations


class Application:
    def __init__(
        self,
        settings: Settings,
        orthanc: InProcessOrthanc,
        metrics: MetricsSink,
        *,
        worker_python: str,
    ) -> None:
        self.settings = settings
        self.orthanc = orthanc
        self._worker_python = worker_python
        self.registry = build_registry(settings.plugin.extensions, settings.orthanc_config)
        self.db = open_database(settings.database)
        self._worker_configuration = self._write_worker_configuration()
        for name in apply_migrations(self.db, self.registry.migrations):
            log.info("database migration applied: %s", name)
        self.jobs = DatabaseJobQueue(self.db, default_max_attempts=settings.plugin.max_attempts)
        self.pool = WorkerPool(
            self.jobs,
            self._spawn_worker,
            size=settings.plugin.workers,
            node=settings.node_name,
            cancel_grace_seconds=settings.plugin.cancel_grace_seconds,
            tick=self._tick,
        )
        self.events = EventDispatcher(
            self.db, self.registry, self._event_context, node=settings.node_name
        )
        self.changes = ChangeRecorder(
            self.db, self.events, orthanc, stable_age_seconds=settings.stable_age_seconds
        )
        self.runs = runs.RunLog(self.db, settings.node_name)
        self.metrics = Metrics(
            metrics,
            self.jobs,
            self.pool,
            self.events,
            self.runs,
            database=self.db,
            storage_free_bytes=lambda: health.check_storage(self)["freeBytes"],
        )
        self._admit = self.registry.answerer(Intervention.INSTANCE_ADMIT)
        self.router = Router(self.registry.route_tables)
        self._proxies = networks(settings.plugin.trusted_proxies)
        self._build_auth(settings)
        # As many as Orthanc's HTTP threads, so that no request waits for another's route.
        self.threads = FullStackThreads(int(settings.orthanc_config.get("HttpThreadsCount", 50)))
        self._started = False
        self._stopping = threading.Event()  # set at stop: background tasks return

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        run = self.runs.begin()
        summary = self.runs.summary()
        if summary.unclean_stops:
            log.warning(
                "run %s of Orthanc on this node; %s earlier run(s) ended without a clean stop",
                run,
                summary.unclean_stops,
            )
        self.pool.start()
        self.events.start()
        self.changes.start()
        self._stopping.clear()
        for task in self.registry.background_tasks:
            name = f"{task.__module__}.{task.__qualname__}"
            threading.Thread(target=self._background, args=(task,), name=name, daemon=True).start()
        log.info(
            "Hounsfield started: %s worker(s), data in %s",
            self.pool.size,
            self.settings.data_directory,
        )

    def stop(self) -> None:
        """Idempotent: Orthanc's stop event and interpreter exit may both call it."""
        if not self._started:
            return
        self._started = False
        self._stopping.set()
        self.changes.stop()
        self.events.stop()
        self.pool.stop()
        self.runs.end()
        log.info("Hounsfield stopped")

    def _build_auth(self, settings: Settings) -> None:
        auth = settings.plugin.auth
        self.users = UserStore(self.db)
        self.sessions = SessionStore(self.db)
        self.audit = AuditTrail(self.db)
        self.intake = Intake(self.orthanc, self.audit, max_depth=settings.plugin.limits.dicom_depth)
        key = (
            load_or_create_key(Path(auth.token_key_file))
            if auth.token_key_file
            else shared_signing_key(self.db, "access-tokens", KEY_BYTES)
        )
        tokens = TokenService(key, auth.access_token_minutes * 60)
        self.auth = AuthService(self.users, self.sessions, tokens, self.audit, auth)
        self.auth.bootstrap_admin(settings.initial_admin_password)
        self.keys = KeyStore(self.db)
        # Workers reach Orthanc's REST API with this; it lives as long as this process.
        self.service_token = secrets.token_urlsafe(32)
        self._tls = bool(settings.orthanc_config.get("SslEnabled", False))
        authenticator = Authenticator(
            self.service_token,
            tokens,
            self.sessions,
            self.keys,
            self.auth,
            max_bytes=settings.plugin.limits.token_bytes,
            plain_basic=auth.basic_over_plain_http or not settings.remote_access_allowed,
        )
        self.gate = Gate(
            authenticator,
            self.users,
            StudyResolver(self.orthanc),
            AccessRecorder(self.audit),
            settings.plugin.limits,
            # Our routes' own rules first, then Orthanc's doors, then admins for the rest.
            PermissionTable([*self.router.rules(), *ORTHANC_DOORS, ADMIN_CATCH_ALL]),
        )
        self.handoff = DecisionHandOff()
        if not auth.enabled:
            log.warning("authentication is OFF: every local request is allowed")

    def filter_request(
        self, method: str, path: str, headers: dict[str, str], query: dict[str, str], ip: str
    ) -> bool:
        """Orthanc's HTTP filter: decide for every URI; ours get a JSON answer later."""
        if not self.settings.plugin.auth.enabled:
            return True
        secure = self._tls or came_over_tls(ip, headers, self._proxies)
        ip = client_address(ip, headers, self._proxies)
        decision = self.gate.check(method, path, headers, query, ip, secure=secure)
        self.handoff.leave(method, path, ip, decision)  # for our route, if the route is ours
        if decision.allowed:
            return True
        # Our callbacks answer a refusal themselves (JSON under /api/, the sign-in page for
        # our pages), which a filter cannot; but only after Orthanc has read the body, so a
        # refused request announcing a large body is turned away here, unread.
        if not decision.body_may_be_read:
            return False
        return path.startswith("/api/") or self.router.is_page(path)

    def handle_http(self, request: Request) -> Response:
        """Our routes: the gate's decision is taken here, on Orthanc's HTTP thread (where
        the filter left it); the route itself runs on a thread with a full C stack."""
        request.bound = self
        request.limits = self.settings.plugin.limits
        if self.settings.plugin.auth.enabled:
            handed = self.handoff.take(request.method, request.path)
            if handed is not None:
                request.ip = handed.ip
                decision = handed.decision
            else:  # a request Orthanc's filter did not see (none today; cheap to be sure)
                decision = self.gate.check(
                    request.method,
                    request.path,
                    request.headers,
                    request.query,
                    request.ip,
                    secure=self._tls or came_over_tls(request.ip, request.headers, self._proxies),
                )
            if not decision.allowed:
                if decision.status == 401 and self.router.is_page(request.path):
                    return pages.sign_in_page(request)
                return Response.error(HttpError(decision.status, decision.reason))
            request.principal = decision.principal
        return self.threads.call(self.router.handle, request)

    def admit(self, dicom: bytes, *, road: str, sender: str | None = None) -> Refusal | None:
        """Ask the ``instance.admit`` intervention about an object arriving by C-STORE
        (``sender``: the calling AE title) or one of Orthanc's own roads (modify,
        anonymize...: sent by the request's user when an HTTP request on this thread
        started it)."""
        handed = self.handoff.current() if sender is None else None
        principal = handed.decision.principal if handed is not None else None
        if principal is not None:
            who = Sender(principal.username, principal.role.value, handed.ip)
        else:
            who = Sender(sender or road)
        return self._admit(self, dicom, who, road)

    @property
    def answers_worklists(self) -> bool:
        """Whether a feature answers Modality Worklist queries (Orthanc takes one handler)."""
        return Intervention.WORKLIST_FIND in self.registry.interventions

    def find_worklist(self, query: bytes, *, caller: str, called: str) -> list[bytes]:
        """The ``worklist.find`` intervention's items for a modality's C-FIND, on a thread
        with a full C stack (the query is the modality's, parsed there)."""
        answerer = self.registry.answerer(Intervention.WORKLIST_FIND)
        items = self.threads.call(answerer, self, query, caller, called)
        return list(cast("Iterable[bytes]", items))

    def on_change(self, event: Event, resource_id: str) -> None:
        self.changes.record(event, resource_id)

    def submit(
        self,
        kind: str,
        params: dict[str, Any],
        *,
        priority: int = 0,
        dedupe_key: str | None = None,
        here: bool = False,
    ) -> Job:
        job = self.jobs.enqueue(
            kind,
            params,
            priority=priority,
            dedupe_key=dedupe_key,
            pinned_node=self.settings.node_name if here else None,
        )
        self.pool.wake()
        return job

    def health(self) -> dict[str, Any]:
        return health.health_report(self)

    def metric_families(self) -> list[MetricFamily]:
        return self.metrics.families()

    def instance_received(self) -> None:
        """Orthanc received an instance and keeps it (any road): counted for the metrics."""
        self.metrics.instances_received.increment()

    def _background(self, task: BackgroundTask) -> None:
        try:
            task(self, self._stopping)
        except Exception:
            log.exception("background task %s.%s failed", task.__module__, task.__qualname__)

    def _tick(self) -> None:
        """Every 2 s on the supervisor's thread: this node's heartbeat; the jobs of a peer
        that fell silent back to the queue; the metrics."""
        self.runs.heartbeat()
        timeout = self.settings.plugin.peer_timeout_seconds
        for node in self.runs.close_silent(timeout):
            reason = f"instance {node} fell silent for {timeout:g} s"
            for job in self.jobs.recover(node=node, reason=reason, count_attempt=True):
                log.warning("job %s (%s): %s; queued again", job.id, job.kind, reason)
        self.metrics.publish()

    def _event_context(self, record: EventRecord, handler_name: str) -> EventContext:
        return EventContext(record, handler_name, self.orthanc, self.submit, self.db)

    def _write_worker_configuration(self) -> Path:
        """Orthanc's configuration written for the workers (only this user may read it: it
        can hold passwords), so that ``register()`` sees the same settings there."""
        path = self.settings.data_directory / CONFIGURATION_FILE
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            json.dump(self.settings.orthanc_config, out)
        return path

    def _spawn_worker(self, slot: int) -> subprocess.Popen:
        # Niced from its first instruction, so that every thread it starts (numpy's among
        # them) inherits it: on a busy machine a modality's C-STORE goes first.
        command = [
            "nice",
            "-n",
            str(self.settings.plugin.worker_niceness),
            self._worker_python,
            "-m",
            "hounsfield.jobs.worker",
            "--node",
            self.settings.node_name,
            "--slot",
            str(slot),
            "--parent-pid",
            str(os.getpid()),
        ]
        for extension in self.settings.plugin.extensions:
            command += ["--extension", extension]
        command += ["--configuration", str(self._worker_configuration)]
        env = dict(os.environ)
        env[orthanc_http.URL_VARIABLE] = f"http://127.0.0.1:{self.settings.http_port}"
        env[orthanc_http.TOKEN_VARIABLE] = self.service_token
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(PLUGIN_DIRECTORY), env.get("PYTHONPATH")])
        )
        return subprocess.Popen(command, stdin=subprocess.PIPE, env=env, close_fds=True)

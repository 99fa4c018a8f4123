"""What handlers may use: the narrow, typed face of the application.

A route handler reaches it as ``request.services``; an event handler and a job handler get
the parts they need in their context (``EventContext``, ``JobContext``). Tests of a handler
build a small fake of this Protocol instead of the whole application.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from hounsfield.audit.trail import AuditTrail
    from hounsfield.auth.keys import KeyStore
    from hounsfield.auth.service import AuthService
    from hounsfield.auth.store import SessionStore, UserStore
    from hounsfield.config import Settings
    from hounsfield.db import Database
    from hounsfield.intake.store import Intake
    from hounsfield.jobs.model import Job
    from hounsfield.jobs.queue import JobQueue
    from hounsfield.metrics import MetricFamily
    from hounsfield.orthanc_api import InProcessOrthanc
    from hounsfield.registry import Registry


class Services(Protocol):
    """For every feature."""

    @property
    def settings(self) -> Settings:
        """The plugin's settings (data folder, limits...); a feature's own configuration
        section is read once, at registration, with ``registry.section``."""
        ...

    @property
    def orthanc(self) -> InProcessOrthanc:
        """Orthanc, in process (beyond transcoding, the interface workers reach over HTTP)."""
        ...

    @property
    def db(self) -> Database:
        """The plugin's database, where a feature keeps the tables its migrations made."""
        ...

    @property
    def jobs(self) -> JobQueue:
        """The job queue, to read (``submit`` queues)."""
        ...

    @property
    def audit(self) -> AuditTrail: ...

    @property
    def registry(self) -> Registry:
        """What every feature registered (job kinds, configuration...)."""
        ...

    def submit(
        self,
        kind: str,
        params: dict[str, Any],
        *,
        priority: int = 0,
        dedupe_key: str | None = None,
        here: bool = False,
    ) -> Job:
        """Queue a job and wake the workers at once. ``here``: only this instance's workers
        may run it, as its inputs are files in this instance's data folder (instances
        sharing a database share the queue, not their folders)."""
        ...


class CoreServices(Services, Protocol):
    """Beside ``Services``, what only the core's own routes use: accounts and storing."""

    @property
    def users(self) -> UserStore: ...

    @property
    def sessions(self) -> SessionStore: ...

    @property
    def auth(self) -> AuthService: ...

    @property
    def keys(self) -> KeyStore: ...

    @property
    def intake(self) -> Intake: ...

    def health(self) -> dict[str, Any]:
        """Each component's state (``hounsfield.health``)."""
        ...

    def metric_families(self) -> list[MetricFamily]:
        """The figures of ``/api/metrics``, read now (``hounsfield.metrics``)."""
        ...

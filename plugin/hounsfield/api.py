"""Everything an extension needs, from one module.

    from hounsfield.api import STAFF, Event, Registry, Request, RouteTable

    routes = RouteTable()

    @routes.get("/api/hello", roles=STAFF)
    def hello(request: Request) -> dict:
        return {"user": request.user().username}

    def register(registry: Registry) -> None:
        registry.routes(routes)

See the README's "Extending" section for a complete extension (a route, an event handler
that queues a job, the job, a migration and a page).
"""

from hounsfield.auth.permissions import (
    ACQUISITION,
    ADMIN,
    ANY_USER,
    READERS,
    Study,
    StudyRef,
)
from hounsfield.auth.roles import STAFF, Role
from hounsfield.db import Migration, Schema
from hounsfield.events.context import EventContext
from hounsfield.events.types import Event, Intervention
from hounsfield.jobs.context import JobCancelled, JobContext
from hounsfield.orthanc_api import OrthancApi, OrthancError, get_if_found
from hounsfield.registry import BackgroundTask, HealthCheck, Registry
from hounsfield.services import Services
from hounsfield.web.http import HttpError, Request, Response, validated
from hounsfield.web.router import RouteTable

__all__ = [
    "ACQUISITION",
    "ADMIN",
    "ANY_USER",
    "READERS",
    "STAFF",
    "BackgroundTask",
    "Event",
    "EventContext",
    "HealthCheck",
    "HttpError",
    "Intervention",
    "JobCancelled",
    "JobContext",
    "Migration",
    "OrthancApi",
    "OrthancError",
    "Registry",
    "Request",
    "Response",
    "Role",
    "RouteTable",
    "Schema",
    "Services",
    "Study",
    "StudyRef",
    "get_if_found",
    "validated",
]

"""GET /api/health: each component's state; 200 only when every one is healthy."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from hounsfield import dicomweb
from hounsfield.auth.roles import OPERATIONS
from hounsfield.db.migrations import applied_migrations
from hounsfield.web import Request, Response, RouteTable

if TYPE_CHECKING:
    from hounsfield.app import Application
    from hounsfield.registry import Registry

routes = RouteTable()

Check = Callable[["Application"], dict[str, Any]]


def check_database(app: Application) -> dict[str, Any]:
    applied = applied_migrations(app.db)
    missing = [m.name for m in app.registry.migrations if m.name not in applied]
    return {
        "healthy": not missing,
        **app.db.describe(),
        "migrations": len(applied),
        **({"missingMigrations": missing} if missing else {}),
    }


def check_storage(app: Application) -> dict[str, Any]:
    free = shutil.disk_usage(app.settings.storage_directory).free
    minimum = app.settings.plugin.minimum_free_space_mb * 1024 * 1024
    return {
        "healthy": free >= minimum,
        "path": str(app.settings.storage_directory),
        "freeBytes": free,
        "minimumFreeBytes": minimum,
    }


def check_workers(app: Application) -> dict[str, Any]:
    workers = app.pool.status()
    return {
        "healthy": app.pool.healthy(),
        "configured": app.pool.size,
        "alive": sum(w["alive"] for w in workers),
        "workers": workers,
    }


def check_queue(app: Application) -> dict[str, Any]:
    counts = app.jobs.counts()
    oldest = app.jobs.oldest_queued_age()
    starved = counts["queued"] > 0 and not any(w["alive"] for w in app.pool.status())
    return {
        "healthy": not starved,
        "depth": counts["queued"],
        "running": counts["running"],
        "oldestQueuedSeconds": round(oldest, 1) if oldest is not None else None,
        "jobs": counts,
        **({"problem": "jobs are queued but no worker is alive"} if starved else {}),
    }


def check_events(app: Application) -> dict[str, Any]:
    running = app.events.running()
    return {
        "healthy": running,
        "pending": app.events.pending(),
        **({} if running else {"problem": "event dispatcher is not running"}),
    }


def check_orthanc(app: Application) -> dict[str, Any]:
    """Starts of Orthanc on this node, and how many runs ended without a clean stop (a
    crash a supervisor restarted), and the instances alive on the same database (this one
    included): informative, never unhealthy by themselves."""
    return {
        "healthy": True,
        "node": app.runs.node,
        **app.runs.summary().to_json(),
        "peers": app.runs.peers(app.settings.plugin.peer_timeout_seconds),
    }


def check_dicomweb(app: Application) -> dict[str, Any]:
    """STOW-RS is honest only when the route-claims plugin handed it to us (orthanc.json)."""
    claimed = dicomweb.route_claims_loaded()
    return {
        "healthy": claimed,
        **(
            {}
            if claimed
            else {
                "problem": "STOW-RS is answered by Orthanc's DICOMweb plugin, which reports "
                "refused objects as stored: list build/libHounsfieldRouteClaims.so in "
                "Plugins after the Python plugin and before DICOMweb"
            }
        ),
    }


CHECKS: dict[str, Check] = {
    "orthanc": check_orthanc,
    "database": check_database,
    "storage": check_storage,
    "workers": check_workers,
    "queue": check_queue,
    "events": check_events,
    "dicomweb": check_dicomweb,
}


def health_report(app: Application) -> dict[str, Any]:
    """The core's components, then those the features registered (``registry.health``)."""
    checks: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        *((name, partial(check, app)) for name, check in CHECKS.items()),
        *((name, partial(check, app)) for name, check in app.registry.health_checks.items()),
    ]
    components: dict[str, dict[str, Any]] = {}
    for name, check in checks:
        try:
            components[name] = check()
        except Exception as error:
            components[name] = {"healthy": False, "error": f"{type(error).__name__}: {error}"}
    healthy = all(component["healthy"] for component in components.values())
    return {"status": "ok" if healthy else "unhealthy", "components": components}


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """What anyone may see, a load balancer included: the overall status and whether each
    component is healthy; not paths, free bytes, worker PIDs or peers."""
    return {
        "status": report["status"],
        "components": {
            name: {"healthy": component["healthy"]}
            for name, component in report["components"].items()
        },
    }


@routes.get("/api/health", open=True)
def get_health(request: Request) -> Response:
    """Open; the details go to admins and the metrics role (signed in, a key, Basic)."""
    report = request.core.health()
    if request.principal is None or request.principal.role not in OPERATIONS:
        report = summary(report)
    return Response.json(report, status=200 if report["status"] == "ok" else 503)


def register(registry: Registry) -> None:
    """Core: the health check."""
    registry.routes(routes)

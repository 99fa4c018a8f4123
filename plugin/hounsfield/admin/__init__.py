"""Administration pages under ``/admin/``: users, the audit trail, jobs and health.

Admins reach them from Orthanc Explorer's "Administration" button; the metrics role sees
the health page only. The pages use the core's API (users, keys, audit, jobs, health) and
one route of their own: the effective configuration with its secrets masked.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hounsfield.admin import routes
from hounsfield.auth.permissions import ADMIN
from hounsfield.auth.roles import OPERATIONS

if TYPE_CHECKING:
    from hounsfield.registry import Registry

PAGES_DIRECTORY = Path(__file__).resolve().parent / "pages"
CATALOGUES = Path(__file__).resolve().parent / "catalogue"
CSS, JS, HTML = "text/css; charset=utf-8", "text/javascript", "text/html; charset=utf-8"
SHARED = {"admin.css": CSS, "admin.js": JS}
ADMIN_ASSETS = {
    **SHARED,
    "users.js": JS,
    "users.css": CSS,
    "audit.html": HTML,
    "audit.js": JS,
    "audit.css": CSS,
    "jobs.html": HTML,
    "jobs.js": JS,
    "jobs.css": CSS,
}
HEALTH_ASSETS = {**SHARED, "health.js": JS, "health.css": CSS}


def register(registry: Registry) -> None:
    registry.routes(routes.routes)
    for folder in sorted(path for path in CATALOGUES.iterdir() if path.is_dir()):
        registry.catalogue(folder)
    # The health page first: "/admin/{asset}" would take "/admin/health" otherwise.
    registry.page("/admin/health", PAGES_DIRECTORY, "health.html", HEALTH_ASSETS, OPERATIONS)
    registry.page("/admin", PAGES_DIRECTORY, "users.html", ADMIN_ASSETS, ADMIN)
    registry.link("administration", "Administration", "/admin", ADMIN)

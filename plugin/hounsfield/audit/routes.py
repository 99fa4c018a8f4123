"""REST routes of the audit trail (admins only, by the permission table)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hounsfield.audit import trail
from hounsfield.auth.permissions import ADMIN
from hounsfield.web import Request, RouteTable

if TYPE_CHECKING:
    from hounsfield.registry import Registry

routes = RouteTable()

MAX_PAGE = 1000
FILTERS = {
    "user": "username",
    "action": "action",
    "study": "study_uid",
    "outcome": "outcome",
    "ip": "ip",
}


@routes.get("/api/audit", roles=ADMIN)
def list_audit(request: Request) -> dict[str, Any]:
    limit, offset = request.page(default=100, maximum=MAX_PAGE)
    filters = {
        column: request.query[name] for name, column in FILTERS.items() if request.query.get(name)
    }
    entries, total = request.services.audit.query(
        filters=filters,
        since=request.query_value("since"),
        until=request.query_value("until"),
        limit=limit,
        offset=offset,
    )
    return {"entries": entries, "total": total, "limit": limit, "offset": offset}


@routes.get("/api/audit/verify", roles=ADMIN)
def verify_audit(request: Request) -> dict[str, Any]:
    return request.services.audit.verify()


def register(registry: Registry) -> None:
    """Core: the hash-chained audit trail and its API."""
    registry.migration(*trail.MIGRATIONS)
    registry.routes(routes)

"""REST routes of the audit trail (admins only, by the permission table)."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

from hounsfield.audit import trail
from hounsfield.auth.permissions import ADMIN
from hounsfield.web import HttpError, Request, Response, RouteTable

if TYPE_CHECKING:
    from hounsfield.registry import Registry

routes = RouteTable()

MAX_PAGE = 1000
MAX_STUDIES = 100
MAX_EXPORT = 100_000
CSV_COLUMNS = (
    "id",
    "at",
    "username",
    "role",
    "ip",
    "action",
    "resource",
    "studyInstanceUid",
    "outcome",
    "detail",
    "hash",
)
FILTERS = {
    "user": "username",
    "action": "action",
    "study": "study_uid",
    "outcome": "outcome",
    "ip": "ip",
}


def _filters(request: Request) -> dict[str, str | list[str]]:
    """The query's filters by column; ``study`` may name several studies (a patient's)."""
    filters: dict[str, str | list[str]] = {
        column: request.query[name] for name, column in FILTERS.items() if request.query.get(name)
    }
    if "study_uid" in filters:
        studies = [uid.strip() for uid in str(filters["study_uid"]).split(",") if uid.strip()]
        if len(studies) > MAX_STUDIES:
            raise HttpError(400, f"at most {MAX_STUDIES} studies in one filter")
        filters["study_uid"] = studies
    return filters


def _entries(request: Request, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    return request.services.audit.query(
        filters=_filters(request),
        since=request.query_value("since"),
        until=request.query_value("until"),
        limit=limit,
        offset=offset,
    )


@routes.get("/api/audit", roles=ADMIN)
def list_audit(request: Request) -> dict[str, Any]:
    limit, offset = request.page(default=100, maximum=MAX_PAGE)
    entries, total = _entries(request, limit, offset)
    return {"entries": entries, "total": total, "limit": limit, "offset": offset}


@routes.get("/api/audit/export.csv", roles=ADMIN)
def export_audit(request: Request) -> Response:
    """The filtered entries as CSV (newest first, at most ``MAX_EXPORT``); the export is
    itself an audited act, with its filters."""
    entries, total = _entries(request, MAX_EXPORT, 0)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        writer.writerow(
            [
                json.dumps(entry[name], sort_keys=True) if name == "detail" else entry[name]
                for name in CSV_COLUMNS
            ]
        )
    detail = {"query": dict(request.query), "rows": len(entries), "matching": total}
    request.audit("audit.export", "allowed", request.path, detail)
    return Response(
        200,
        text.getvalue().encode(),
        "text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
    )


@routes.get("/api/audit/verify", roles=ADMIN)
def verify_audit(request: Request) -> dict[str, Any]:
    return request.services.audit.verify()


def register(registry: Registry) -> None:
    """Core: the hash-chained audit trail and its API."""
    registry.migration(*trail.MIGRATIONS)
    registry.routes(routes)

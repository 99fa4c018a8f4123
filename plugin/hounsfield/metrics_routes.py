"""GET /api/metrics: the plugin's labelled figures for Prometheus (``hounsfield.metrics``),
beside Orthanc's own at /tools/metrics-prometheus; for admins and the metrics role (a
scraper's service key: README, "Monitoring")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hounsfield import metrics
from hounsfield.auth.roles import OPERATIONS
from hounsfield.web import Request, Response, RouteTable

if TYPE_CHECKING:
    from hounsfield.registry import Registry

routes = RouteTable()


@routes.get("/api/metrics", roles=OPERATIONS)
def get_metrics(request: Request) -> Response:
    text = metrics.exposition(request.core.metric_families())
    return Response(200, text.encode("utf-8"), content_type=metrics.CONTENT_TYPE)


def register(registry: Registry) -> None:
    """Core: the Prometheus endpoint, and the indexes that keep it cheap."""
    registry.migration(*metrics.MIGRATIONS)
    registry.routes(routes)

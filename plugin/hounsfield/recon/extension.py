"""How reconstruction plugs in: job kinds, the stable-study hook, the REST routes."""

from __future__ import annotations

import importlib
from typing import Any

from hounsfield.events.context import EventContext
from hounsfield.events.types import Event
from hounsfield.extensions import Registry
from hounsfield.recon import jobs
from hounsfield.recon.geometry import GeometryError
from hounsfield.recon.params import ReconstructionRequest, SimulationRequest
from hounsfield.recon.projections import PROJECTION_MODALITIES, looks_like_projections
from hounsfield.web import HttpError, Request, Response, RouteTable

routes = RouteTable()


def queue_reconstructions(context: EventContext) -> None:
    """Each projection series of a stable study gets one automatic FDK job."""
    study = context.orthanc.get_json(f"/studies/{context.event.resource_id}")
    for series_id in study["Series"]:
        series = context.orthanc.get_json(f"/series/{series_id}")
        if series["MainDicomTags"].get("Modality") not in PROJECTION_MODALITIES:
            continue
        tags = context.orthanc.get_json(f"/instances/{series['Instances'][0]}/simplified-tags")
        if looks_like_projections(tags):
            context.enqueue("recon.fdk", {"series": series_id}, key=f"recon:auto:{series_id}")


@routes.post("/api/acquisitions/simulate")
def simulate_acquisition(request: Request) -> Response:
    body = request.parse(SimulationRequest)
    try:
        body.geometry()
    except GeometryError as error:
        raise HttpError(400, f"impossible geometry: {error}") from error
    job = request.app.submit("recon.simulate", body.model_dump())
    return Response.json(job.to_json(), status=202, Location=f"/api/jobs/{job.id}")


@routes.post("/api/reconstructions")
def request_reconstruction(request: Request) -> Response:
    """Reconstruct a projection series again, with other parameters (always a new series)."""
    body = request.parse(ReconstructionRequest)
    try:
        series = request.app.orthanc.get_json(f"/series/{body.series}")
    except Exception as error:
        raise HttpError(404, f"no series {body.series!r}") from error
    tags = request.app.orthanc.get_json(f"/instances/{series['Instances'][0]}/simplified-tags")
    if not looks_like_projections(tags):
        raise HttpError(400, f"series {body.series!r} is not a projection series")
    job = request.app.submit("recon.fdk", body.model_dump(), priority=10 if body.preview else 0)
    return Response.json(job.to_json(), status=202, Location=f"/api/reconstructions/{job.id}")


@routes.get("/api/reconstructions/{job_id:int}")
def get_reconstruction(request: Request) -> dict[str, Any]:
    job = request.app.jobs.get(request.path_params["job_id"])
    if job is None or job.kind != "recon.fdk":
        raise HttpError(404, f"no reconstruction {request.path_params['job_id']}")
    return job.to_json()


def register(registry: Registry) -> None:
    registry.job_kind("recon.simulate", jobs.simulate)
    registry.job_kind("recon.fdk", jobs.reconstruct)
    registry.on(Event.STUDY_STABLE, queue_reconstructions, name="recon.queue_on_stable")
    registry.on_worker_start(lambda: importlib.import_module("hounsfield.recon.engine"))
    registry.routes(routes)

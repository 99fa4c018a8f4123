"""How reconstruction plugs in: job kinds, the stable-study hook, the REST routes."""

from __future__ import annotations

import importlib

from hounsfield.events.context import EventContext
from hounsfield.events.types import Event
from hounsfield.extensions import Registry
from hounsfield.recon import jobs
from hounsfield.recon.params import SimulationRequest
from hounsfield.recon.projections import PROJECTION_MODALITIES, looks_like_projections
from hounsfield.web import Request, Response, RouteTable

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
    job = request.app.submit("recon.simulate", body.model_dump())
    return Response.json(job.to_json(), status=202, Location=f"/api/jobs/{job.id}")


def register(registry: Registry) -> None:
    registry.job_kind("recon.simulate", jobs.simulate)
    registry.job_kind("recon.fdk", jobs.reconstruct)
    registry.on(Event.STUDY_STABLE, queue_reconstructions, name="recon.queue_on_stable")
    registry.on_worker_start(lambda: importlib.import_module("hounsfield.recon.engine"))
    registry.routes(routes)

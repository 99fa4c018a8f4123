"""Reconstruction's HTTP routes, and its stable-study hook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hounsfield.api import (
    ACQUISITION,
    STAFF,
    EventContext,
    HttpError,
    OrthancError,
    Request,
    Response,
    RouteTable,
    Study,
    StudyRef,
    validated,
)
from hounsfield.jobs.model import JobState
from hounsfield.jobs.queue import JobQueue
from hounsfield.recon import spool
from hounsfield.recon.candidates import ProjectionSeries, ProjectionSeriesStore, assess
from hounsfield.recon.geometry import GeometryError
from hounsfield.recon.kinds import ARCHIVE, RECONSTRUCT, SIMULATE
from hounsfield.recon.params import ReconstructionRequest, SimulationRequest
from hounsfield.recon.preview import PLANES, WINDOWS, Plane, PreviewError
from hounsfield.recon.projections import ProjectionError
from hounsfield.recon.rules import SECTION, DetectionRules
from hounsfield.recon.upload import (
    GeometryParameters,
    acquisition_geometry,
    inspect_projections,
    with_rtk_geometry,
)

MAX_PAGE = 1000
routes = RouteTable()
SPOOL_FOLDER = "spool"


def assess_stable_study(context: EventContext, rules: DetectionRules) -> None:
    """Each projection series of a stable study is judged and its verdict recorded; one
    that can be reconstructed gets one automatic FDK job (when Automatic is on)."""
    store = ProjectionSeriesStore(context.database)
    study = context.orthanc.get_json(f"/studies/{context.event.resource_id}")
    for series_id in study["Series"]:
        verdict = assess(context.orthanc, series_id, rules)
        if verdict is None:
            continue
        store.record(verdict)
        if verdict.reconstructable and rules.automatic:
            context.enqueue(RECONSTRUCT, {"series": series_id}, key=f"recon:auto:{series_id}")


@routes.post("/api/acquisitions/simulate", roles=ACQUISITION, audit="study.store")
def simulate_acquisition(request: Request) -> Response:
    body = request.parse(SimulationRequest)
    try:
        body.geometry()
    except GeometryError as error:
        raise HttpError(400, f"impossible geometry: {error}") from error
    job = request.services.submit(SIMULATE, body.model_dump())
    return Response.json(job.to_json(), status=202, Location=f"/api/jobs/{job.id}")


@routes.post("/api/acquisitions", roles=ACQUISITION, audit="study.store")
def upload_acquisition(request: Request) -> Response:
    """16-bit TIFF projections (``projections``, one multi-page file or one per projection)
    with ``geometry`` (JSON parameters) and optionally ``rtk_geometry`` (RTK's XML).

    Checked here from the TIFF headers and the geometry (400 naming the problem, nothing
    kept); decoded and archived as a DICOM projection series by a worker (202, a job).
    """
    fields = request.multipart()
    if "geometry" not in fields or "projections" not in fields:
        raise HttpError(400, "send a 'geometry' JSON part and 'projections' TIFF part(s)")
    parameters = validated(GeometryParameters, request.parse_json(fields["geometry"][0]))
    limits = request.limits
    rules = request.services.registry.section(DetectionRules, SECTION)
    try:
        if "rtk_geometry" in fields:
            parameters = with_rtk_geometry(
                parameters,
                bytes(fields["rtk_geometry"][0]),
                max_bytes=limits.xml_bytes,
                max_depth=limits.xml_depth,
            )
    except ProjectionError as error:
        raise HttpError(400, str(error)) from error
    spool_root = request.services.settings.data_directory / SPOOL_FOLDER
    spool.prune_abandoned(spool_root, _waiting_uploads(request.services.jobs))
    # Spooled first: the TIFF headers are read from the files, never copied in memory.
    upload = spool.spool(spool_root, fields["projections"], parameters.model_dump_json().encode())
    try:
        shape = inspect_projections(upload.projections, rules.max_projections)
        geometry = acquisition_geometry(parameters, shape)
    except ProjectionError as error:
        spool.discard(upload.directory)
        raise HttpError(400, str(error)) from error
    # The upload is in this instance's data folder: archived by this instance's workers.
    job = request.services.submit(ARCHIVE, {"spool": str(upload.directory)}, here=True)
    return Response.json(
        {
            **job.to_json(),
            "projections": shape[0],
            "detector": list(geometry.detector_size),
            "shortScan": geometry.short_scan,
        },
        status=202,
        Location=f"/api/jobs/{job.id}",
    )


def _waiting_uploads(queue: JobQueue) -> set[Path]:
    """The spool folders of archive jobs still queued or running."""
    return {
        Path(job.params["spool"])
        for state in (JobState.QUEUED, JobState.RUNNING)
        for job in queue.list(state=state, kind=ARCHIVE, limit=10_000, offset=0)
    }


def _verdict(request: Request, series_id: str) -> ProjectionSeries | None:
    """The recorded verdict on a series, or one made now (a series stored while the
    extension was off, or not yet stable); 404 when Orthanc has no such series."""
    store = ProjectionSeriesStore(request.services.db)
    verdict = store.get(series_id)
    if verdict is not None:
        return verdict
    rules = request.services.registry.section(DetectionRules, SECTION)
    try:
        verdict = assess(request.services.orthanc, series_id, rules)
    except OrthancError as error:
        raise HttpError(404, f"no series {series_id!r}") from error
    if verdict is not None:
        store.record(verdict)
    return verdict


@routes.post("/api/reconstructions", roles=ACQUISITION)
def request_reconstruction(request: Request) -> Response:
    """Reconstruct a projection series again, with other parameters (always a new series)."""
    body = request.parse(ReconstructionRequest)
    verdict = _verdict(request, body.series)
    if verdict is None:
        raise HttpError(400, f"series {body.series!r} is not a projection series")
    if not verdict.reconstructable:
        raise HttpError(409, f"series {body.series!r} cannot be reconstructed: {verdict.reason}")
    job = request.services.submit(
        RECONSTRUCT, body.model_dump(), priority=10 if body.preview else 0
    )
    return Response.json(job.to_json(), status=202, Location=f"/api/reconstructions/{job.id}")


@routes.get("/api/projections", roles=STAFF)
def list_projection_series(request: Request) -> dict[str, Any]:
    """Projection series seen so far, newest first, each with whether it can be
    reconstructed and why not: what the reconstruction page offers."""
    limit, offset = request.page(default=100, maximum=MAX_PAGE)
    store = ProjectionSeriesStore(request.services.db)
    return {
        "projections": [series.to_json() for series in store.list(limit=limit, offset=offset)],
        "total": store.count(),
        "limit": limit,
        "offset": offset,
    }


@routes.get("/api/reconstructions", roles=STAFF)
def list_reconstructions(request: Request) -> dict[str, Any]:
    """Reconstructions, newest first; ``?series=`` those of one projection series, to compare
    runs (method, parameters, QC) side by side, with the series' verdict (``series``:
    whether it can be reconstructed, and why not)."""
    limit, offset = request.page(default=100, maximum=MAX_PAGE)
    series_id = request.query.get("series")
    wanted = {"series": series_id} if series_id else None
    found = request.services.jobs.list(kind=RECONSTRUCT, params=wanted, limit=limit, offset=offset)
    listing: dict[str, Any] = {
        "reconstructions": [job.to_json() for job in found],
        "total": request.services.jobs.count(kind=RECONSTRUCT, params=wanted),
        "limit": limit,
        "offset": offset,
    }
    if series_id:
        verdict = ProjectionSeriesStore(request.services.db).get(series_id)
        listing["series"] = verdict.to_json() if verdict is not None else None
    return listing


@routes.get("/api/reconstructions/{job_id:int}", roles=STAFF)
def get_reconstruction(request: Request) -> dict[str, Any]:
    job = request.services.jobs.get(request.path_params["job_id"])
    if job is None or job.kind != RECONSTRUCT:
        raise HttpError(404, f"no reconstruction {request.path_params['job_id']}")
    return job.to_json()


@routes.get(
    "/api/series/{id}/planes/{plane}",
    roles=STAFF,
    audit="study.view",
    study=Study(StudyRef.ORTHANC_SERIES, "id"),
)
def planes(request: Request) -> Response:
    """The series' central slice in one plane (axial, coronal, sagittal) as a PNG, with a
    window preset (``?window=soft|bone|wide``, soft by default): the acquisition desk's
    first look at a reconstruction."""
    try:
        plane = Plane(request.path_params["plane"])
    except ValueError:
        raise HttpError(404, "planes are axial, coronal and sagittal") from None
    window = request.query_value("window", default="soft")
    if window not in WINDOWS:
        raise HttpError(400, f"window is one of {', '.join(WINDOWS)}")
    series_id = request.path_params["id"]
    try:
        found = PLANES.planes(request.services.orthanc, series_id)
    except OrthancError as error:
        raise HttpError(404, f"no series {series_id}") from error
    except PreviewError as error:
        raise HttpError(409, str(error)) from error
    return Response(200, found.image(plane, window), content_type="image/png")

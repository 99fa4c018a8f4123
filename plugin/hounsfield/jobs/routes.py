"""REST routes of the job queue: list, inspect, submit, cancel."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from hounsfield.auth.permissions import ACQUISITION
from hounsfield.auth.roles import STAFF
from hounsfield.jobs import queue
from hounsfield.jobs.model import Job, JobState
from hounsfield.web import HttpError, Request, Response, RouteTable

if TYPE_CHECKING:
    from hounsfield.registry import Registry

routes = RouteTable()

MAX_PAGE = 500


class JobSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=100)
    params: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(0, ge=-100, le=100)


def _job_or_404(request: Request) -> Job:
    job_id = request.path_params["job_id"]
    job = request.services.jobs.get(job_id)
    if job is None:
        raise HttpError(404, f"no job {job_id}")
    return job


def _state(value: str) -> JobState:
    try:
        return JobState(value)
    except ValueError:
        raise ValueError(value) from None


@routes.get("/api/jobs", roles=STAFF)
def list_jobs(request: Request) -> dict[str, Any]:
    state = request.query_value("state", _state)
    kind = request.query_value("kind")
    limit, offset = request.page(default=50, maximum=MAX_PAGE)
    queue = request.services.jobs
    jobs = queue.list(state=state, kind=kind, limit=limit, offset=offset)
    return {
        "jobs": [job.to_json() for job in jobs],
        "total": queue.count(state=state, kind=kind),
        "limit": limit,
        "offset": offset,
    }


@routes.post("/api/jobs", roles=ACQUISITION)
def submit_job(request: Request) -> Response:
    submission = request.parse(JobSubmission)
    registry = request.services.registry
    known = set(registry.job_kinds) - registry.internal_job_kinds
    if submission.kind not in known:
        raise HttpError(400, f"unknown job kind {submission.kind!r}", known=sorted(known))
    job = request.services.submit(submission.kind, submission.params, priority=submission.priority)
    return Response.json(job.to_json(), status=201, Location=f"/api/jobs/{job.id}")


@routes.get("/api/jobs/kinds", roles=STAFF)
def list_kinds(request: Request) -> dict[str, Any]:
    """Every kind a worker runs (for filters), and those one may submit or retry."""
    registry = request.services.registry
    return {
        "kinds": sorted(registry.job_kinds),
        "submittable": sorted(set(registry.job_kinds) - registry.internal_job_kinds),
    }


@routes.get("/api/jobs/{job_id:int}", roles=STAFF)
def get_job(request: Request) -> dict[str, Any]:
    return _job_or_404(request).to_json()


@routes.post("/api/jobs/{job_id:int}/cancel", roles=ACQUISITION)
def cancel_job(request: Request) -> dict[str, Any]:
    job = _job_or_404(request)
    if job.state.finished:
        raise HttpError(409, f"job {job.id} already finished: {job.state.value}", job=job.to_json())
    return request.services.jobs.request_cancel(job.id).to_json()


@routes.post("/api/jobs/{job_id:int}/retry", roles=ACQUISITION)
def retry_job(request: Request) -> Response:
    """A failed or cancelled job queued again as a new job (same kind, parameters and
    priority; the old one stays as it ended). Internal kinds are queued by their own
    routes only: their parameters (a spool folder...) may be gone."""
    job = _job_or_404(request)
    if job.state not in (JobState.FAILED, JobState.CANCELLED):
        raise HttpError(409, f"job {job.id} is {job.state.value}: only a failed or cancelled job")
    registry = request.services.registry
    if job.kind not in registry.job_kinds or job.kind in registry.internal_job_kinds:
        raise HttpError(409, f"jobs of kind {job.kind!r} are queued by their own feature only")
    again = request.services.submit(job.kind, job.params, priority=job.priority)
    return Response.json(again.to_json(), status=201, Location=f"/api/jobs/{again.id}")


def register(registry: Registry) -> None:
    """Core: the durable job queue and its API."""
    registry.migration(*queue.MIGRATIONS)
    registry.routes(routes)

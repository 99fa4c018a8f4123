"""The AI extension's routes, and its stable-study hook."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hounsfield.ai.catalogue import ANALYZE, analyzer_names
from hounsfield.ai.settings import SECTION, AiSettings
from hounsfield.ai.store import Decision, Findings, Summary, UnknownFinding, finding_json
from hounsfield.api import (
    STAFF,
    EventContext,
    HttpError,
    OrthancError,
    Request,
    Response,
    Role,
    RouteTable,
    Study,
    StudyRef,
)
from hounsfield.reading.worklist import Worklist
from hounsfield.volume import NOT_IMAGES

routes = RouteTable()
STUDY = Study(StudyRef.ORTHANC_STUDY, "id")
REVIEWERS = frozenset({Role.ADMIN, Role.RADIOLOGIST})


def _settings(request: Request) -> AiSettings:
    return request.services.registry.section(AiSettings, SECTION)


def queue_on_stable(context: EventContext, settings: AiSettings) -> None:
    """Each series of a stable study gets the analyzers the rules choose for it, once
    per series content (a series that grows afterwards is analysed again)."""
    if not settings.automatic:
        return
    study_id = context.event.resource_id
    for series in context.orthanc.get_json(f"/studies/{study_id}/series"):
        count = len(series.get("Instances", ()))
        if count < settings.minimum_slices:
            continue  # a localizer, a key image, a report: nothing to analyse as a volume
        for name in settings.analyzers_for(series.get("MainDicomTags", {})):
            context.enqueue(
                ANALYZE,
                {"study": study_id, "series": series["ID"], "analyzer": name},
                key=f"ai:auto:{series['ID']}:{name}:{count}",
            )


class AnalyzeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    analyzers: list[str] | None = Field(None, max_length=50)  # None: as the rules choose
    series: list[str] | None = Field(None, max_length=1000)  # None: every series


@routes.post("/api/studies/{id}/analyze", roles=STAFF, audit="study.view", study=STUDY)
def analyze_study(request: Request) -> Response:
    """Queue analyses of the study now: the analyzers named (on the series named, else on
    every series but reports, masks and documents), else those the rules choose for each
    series. 202 with the jobs."""
    body = request.parse(AnalyzeBody) if request.body.strip() else AnalyzeBody()
    settings = _settings(request)
    known = analyzer_names(settings)
    unknown = sorted(set(body.analyzers or ()) - set(known))
    if unknown:
        raise HttpError(400, f"unknown analyzers: {', '.join(unknown)}", known=known)
    study_id = request.path_params["id"]
    try:
        series = request.services.orthanc.get_json(f"/studies/{study_id}/series")
    except OrthancError as error:
        raise HttpError(404, f"no study {study_id}") from error
    if body.series is not None:
        missing = sorted(set(body.series) - {s["ID"] for s in series})
        if missing:
            raise HttpError(400, f"not series of this study: {', '.join(missing)}")
        series = [s for s in series if s["ID"] in body.series]
    else:  # everything that may be a volume: reports, masks and documents are not
        series = [s for s in series if s.get("MainDicomTags", {}).get("Modality") not in NOT_IMAGES]
    jobs = []
    for one in series:
        chosen = (
            body.analyzers
            if body.analyzers is not None
            else settings.analyzers_for(one.get("MainDicomTags", {}))
        )
        for name in chosen:
            params = {"study": study_id, "series": one["ID"], "analyzer": name}
            jobs.append(request.services.submit(ANALYZE, params).to_json())
    message = f"{len(jobs)} analyses queued" if jobs else "no series the analyzers take"
    return Response.json({"study": study_id, "jobs": jobs, "message": message}, status=202)


@routes.get("/api/studies/{id}/findings", roles=STAFF, audit="study.view", study=STUDY)
def study_findings(request: Request) -> dict[str, Any]:
    """The study's findings (most severe first), what each analysis measured, and the
    summary the worklist shows."""
    study_id = request.path_params["id"]
    findings = Findings(request.services.db)
    rows = findings.of_study(study_id)
    return {
        "study": study_id,
        "summary": Summary.of(rows).text,
        "findings": [finding_json(row) for row in rows],
        "analyses": [
            {
                "series": row["series_id"],
                "analyzer": row["analyzer"],
                "version": row["version"],
                "job": row["job_id"],
                "sr": row["sr_instance"],
                "seg": row["seg_instance"],
                "measurements": _json_list(row["measurements"]),
                "finished": row["finished_at"],
            }
            for row in findings.analyses(study_id)
        ],
    }


def _json_list(text: str | None) -> list[Any]:
    return json.loads(text or "[]")


def _finding(request: Request) -> tuple[Findings, Any]:
    findings = Findings(request.services.db)
    try:
        return findings, findings.get(int(request.path_params["id"]))
    except (UnknownFinding, ValueError):
        raise HttpError(404, f"no finding {request.path_params['id']}") from None


@routes.get("/api/findings/{id}", roles=STAFF)
def finding(request: Request) -> dict[str, Any]:
    """One finding, with its reviews from the first."""
    findings, row = _finding(request)
    return {**finding_json(row), "study": row["study_id"], "history": findings.history(row["id"])}


class Changes(BaseModel):
    """What a reviewer may correct of a finding."""

    model_config = ConfigDict(extra="forbid")

    category: str | None = Field(None, min_length=1, max_length=64)
    description: str | None = Field(None, min_length=1, max_length=1000)
    severity: Literal["normal", "minor", "moderate", "critical"] | None = None
    size_mm: float | None = Field(None, ge=0, le=10_000)
    volume_ml: float | None = Field(None, ge=0, le=100_000)


class ReviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Decision
    notes: str = Field("", max_length=4000)
    changes: Changes = Changes()


@routes.post("/api/findings/{id}/review", roles=REVIEWERS)
def review(request: Request) -> dict[str, Any]:
    """Confirm, reject or modify a finding (``modified`` says what in ``changes``). The
    decision is kept with its history and audited; the study's worklist flag follows."""
    body = request.parse(ReviewBody)
    changes = body.changes.model_dump(exclude_none=True)
    if body.decision is Decision.MODIFIED and not changes:
        raise HttpError(400, "a modified finding says what changed ('changes')")
    if body.decision is not Decision.MODIFIED and changes:
        raise HttpError(400, "'changes' go with the decision 'modified' only")
    findings, row = _finding(request)
    user = request.user()
    reviewed = findings.review(
        row["id"], body.decision, reviewer=user.username, notes=body.notes, changes=changes
    )
    summary = Summary.of(findings.of_study(row["study_id"]))
    Worklist(request.services.db).annotate(
        row["study_id"], summary.text, flagged=summary.awaiting_review
    )
    request.audit(
        "finding.review",
        "ok",
        f"/studies/{row['study_id']}",
        {"finding": row["id"], "decision": body.decision.value, **changes},
    )
    return finding_json(reviewed)


@routes.get("/api/ai/analyzers", roles=STAFF)
def analyzers(request: Request) -> dict[str, Any]:
    """The analyzers this server offers, and the rules that choose them."""
    settings = _settings(request)
    return {
        "analyzers": analyzer_names(settings),
        "automatic": settings.automatic,
        "rules": [rule.model_dump(by_alias=True, mode="json") for rule in settings.rules],
    }

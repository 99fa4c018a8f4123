"""``GET /api/series/{id}/structures``, and the reading of RTSTRUCT series as studies settle."""

from __future__ import annotations

from typing import Any

from hounsfield.api import (
    STAFF,
    EventContext,
    HttpError,
    OrthancError,
    Request,
    Response,
    RouteTable,
    Study,
    StudyRef,
)
from hounsfield.structures.settings import StructuresSettings
from hounsfield.structures.store import StructureStore

routes = RouteTable()
RTSTRUCT = "RTSTRUCT"
READ = "structures.read"  # the job kind (``tasks.read``)


def content_key(series: dict[str, Any], study_series: list[dict[str, Any]]) -> str:
    """What a reading depends on: the series' instances and the study's (its images may
    arrive after the structure set). A job with the same key is never queued twice."""
    in_study = sum(len(each["Instances"]) for each in study_series)
    return f"structures:{series['ID']}:{len(series['Instances'])}:{in_study}"


def read_on_stable(context: EventContext, settings: StructuresSettings) -> None:
    """Each RTSTRUCT series of a stable study is read once per content."""
    if not settings.automatic:
        return
    study_id = context.event.resource_id
    series_list = context.orthanc.get_json(f"/studies/{study_id}/series")
    structure_sets = [s for s in series_list if s["MainDicomTags"].get("Modality") == RTSTRUCT]
    for series in structure_sets:
        key = content_key(series, series_list)
        context.enqueue(READ, {"series": series["ID"], "study": study_id, "content": key}, key=key)


def forget_deleted(context: EventContext) -> None:
    StructureStore(context.database).forget_study(context.event.resource_id)


@routes.get(
    "/api/series/{id}/structures",
    roles=STAFF,
    audit="study.view",
    study=Study(StudyRef.ORTHANC_SERIES, "id"),
)
def get_structures(request: Request) -> Response:
    """200 with every ROI of the series' structure sets; 202 while a worker reads them
    (asked again, the same job is answered); 404 for a series that is not RTSTRUCT."""
    series_id = request.path_params["id"]
    orthanc = request.services.orthanc
    try:
        series = orthanc.get_json(f"/series/{series_id}")
    except OrthancError as error:
        raise HttpError(404, f"no series {series_id}") from error
    modality = series["MainDicomTags"].get("Modality", "")
    if modality != RTSTRUCT:
        raise HttpError(404, f"series {series_id} is {modality or 'no modality'}, not RTSTRUCT")
    study_id = series["ParentStudy"]
    key = content_key(series, orthanc.get_json(f"/studies/{study_id}/series"))
    stored = StructureStore(request.services.db).get(series_id)
    if stored is not None and stored[0] == key:
        return Response.json(stored[1])
    job = request.services.submit(
        READ, {"series": series_id, "study": study_id, "content": key}, dedupe_key=key
    )
    return Response.json(
        {
            "series": series_id,
            "status": "reading",
            "job": job.id,
            **({"previous": stored[1]} if stored else {}),
        },
        status=202,
    )

"""The reading department's HTTP routes: the worklist, claims, priority and reports.

``{id}`` is Orthanc's study identifier, as in ``/studies/{id}``. Radiologists and admins
read and write; technicians see the worklist and set priority; a referrer reads the
signed report of a study linked to them, and nothing else (never a draft).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from hounsfield.api import (
    ADMIN,
    READERS,
    STAFF,
    HttpError,
    OrthancError,
    Request,
    Response,
    Role,
    RouteTable,
    Study,
    StudyRef,
    validated,
)
from hounsfield.i18n import LANGUAGES
from hounsfield.reading.desk import Actor, ReadingDesk
from hounsfield.reading.model import SECTIONS, NotInWorklist, Priority, ReadingConflict, Status
from hounsfield.reading.reports import Content, report_json
from hounsfield.reading.settings import SECTION, ReadingSettings
from hounsfield.reading.templates import StudyFacts, Templates, UnknownTemplate, shelf
from hounsfield.reading.worklist import SORTABLE, WorklistFilter, row_json

READING = frozenset({Role.ADMIN, Role.RADIOLOGIST})  # who claims, writes and signs
STUDY = Study(StudyRef.ORTHANC_STUDY, "id")
MAX_PAGE = 500
routes = RouteTable()

Text = Annotated[str, StringConstraints(max_length=100_000)]
SectionName = Literal[SECTIONS]  # type: ignore[valid-type]
LanguageCode = Literal[LANGUAGES]  # type: ignore[valid-type]
TemplateName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]


class ReportBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: TemplateName
    language: LanguageCode
    sections: dict[SectionName, Text]
    version: int = Field(ge=0)

    def content(self) -> Content:
        return Content(self.template, self.language, dict(self.sections))


class AmendBody(ReportBody):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


class SignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1)


class PriorityBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    priority: Literal["routine", "urgent", "stat"]


class AssignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: Annotated[str, StringConstraints(min_length=1, max_length=128)]


def _settings(request: Request) -> ReadingSettings:
    return request.services.registry.section(ReadingSettings, SECTION)


def _desk(request: Request) -> ReadingDesk:
    return ReadingDesk.of(request.services, _settings(request))


def _templates(request: Request) -> Templates:
    folder = _settings(request).templates
    return shelf(Path(folder) if folder else None)


def _actor(request: Request) -> Actor:
    user = request.user()
    return Actor(user.username, user.role, request.ip)


def _answer(move: Any) -> Any:
    """Run a desk move, turning its refusals into HTTP answers."""
    try:
        return move()
    except ReadingConflict as conflict:
        raise HttpError(409, conflict.message, **conflict.details) from conflict
    except NotInWorklist as missing:
        raise HttpError(404, f"no study {missing} in the worklist") from missing


# -- the worklist ------------------------------------------------------------------------

_DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")


def _date(value: str) -> str:
    match = _DATE.match(value)
    if not match:
        raise ValueError(value)
    return "".join(match.groups())


def _statuses(value: str) -> tuple[Status, ...]:
    return tuple(Status(part.strip()) for part in value.split(",") if part.strip())


def _priorities(value: str) -> tuple[Priority, ...]:
    return tuple(Priority.parse(part.strip()) for part in value.split(",") if part.strip())


def _sort(value: str) -> str:
    if value.lstrip("-") not in SORTABLE:
        raise ValueError(value)
    return value


@routes.get("/api/worklist", roles=STAFF, audit="patient.search")
def worklist(request: Request) -> dict[str, Any]:
    """Filters: ``status``, ``priority`` (comma lists), ``modality``, ``from``/``to``
    (study date), ``patientName`` (``*`` wildcards, case and accents ignored),
    ``patientId``, ``accession``, ``assigned`` (me, anyone, none or a user name);
    ``sort`` (a column, ``-`` for descending; default: most urgent, then longest waiting);
    ``limit``/``offset``."""
    query = request.query_value
    wanted = WorklistFilter(
        statuses=query("status", _statuses, ()),
        modality=query("modality"),
        date_from=query("from", _date),
        date_to=query("to", _date),
        patient_name=query("patientName"),
        patient_id=query("patientId"),
        accession=query("accession"),
        assigned=query("assigned"),
        priorities=query("priority", _priorities, ()),
        sort=query("sort", _sort),
    )
    limit, offset = request.page(default=50, maximum=MAX_PAGE)
    rows, total = _desk(request).worklist.search(
        wanted, user=request.user().username, limit=limit, offset=offset
    )
    return {
        "studies": [row_json(row) for row in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
        "sortable": sorted(SORTABLE),
    }


@routes.get("/api/worklist/{id}", roles=STAFF, audit="study.view", study=STUDY)
def worklist_row(request: Request) -> dict[str, Any]:
    study_id = request.path_params["id"]
    return row_json(_answer(lambda: _desk(request).worklist.get(study_id)))


@routes.post("/api/studies/{id}/claim", roles=READING, audit="study.view", study=STUDY)
def claim(request: Request) -> dict[str, Any]:
    study_id = request.path_params["id"]
    return row_json(_answer(lambda: _desk(request).claim(_actor(request), study_id)))


@routes.route("DELETE", "/api/studies/{id}/claim", roles=READING, audit="study.view", study=STUDY)
def release(request: Request) -> dict[str, Any]:
    study_id = request.path_params["id"]
    return row_json(_answer(lambda: _desk(request).release(_actor(request), study_id)))


@routes.route("PUT", "/api/studies/{id}/assignment", roles=ADMIN, audit="study.view", study=STUDY)
def assign(request: Request) -> dict[str, Any]:
    """An admin gives the study to a radiologist (or an admin), whoever held it."""
    body = request.parse(AssignBody)
    user = request.core.users.get(body.user)
    if user is None or user.role not in READING or user.disabled:
        raise HttpError(400, f"{body.user!r} is not an active radiologist or admin")
    study_id = request.path_params["id"]
    return row_json(_answer(lambda: _desk(request).assign(_actor(request), study_id, body.user)))


@routes.route("PUT", "/api/studies/{id}/priority", roles=STAFF, audit="study.view", study=STUDY)
def prioritise(request: Request) -> dict[str, Any]:
    priority = Priority.parse(request.parse(PriorityBody).priority)
    study_id = request.path_params["id"]
    return row_json(_answer(lambda: _desk(request).prioritise(_actor(request), study_id, priority)))


# -- the report --------------------------------------------------------------------------


def _signed_only(request: Request) -> bool:
    return request.user().role is Role.REFERRER


@routes.get("/api/studies/{id}/report", roles=READERS, audit="study.view", study=STUDY)
def report(request: Request) -> dict[str, Any]:
    """The report as it stands (a referrer: the last signed version only). A study without
    one answers status null, version 0 and the template suggested for it, pre-filled."""
    study_id = request.path_params["id"]
    desk = _desk(request)
    if _signed_only(request):
        versions = desk.reports.versions(study_id)
        if not versions:
            raise HttpError(404, "this study has no signed report")
        return {"study": study_id, **versions[-1].to_json()}
    row = desk.reports.current(study_id)
    if row is not None:
        return report_json(row)
    templates = _templates(request)
    facts = _facts(request, study_id)
    name = templates.choose(facts)
    language = request.query_value("language") or "en"
    return {
        "study": study_id,
        "status": None,
        "version": 0,
        "template": name,
        "language": language,
        "sections": _render(templates, name, language, facts),
    }


def _facts(request: Request, study_id: str) -> StudyFacts:
    try:
        return StudyFacts.read(request.services.orthanc, study_id)
    except OrthancError as error:
        raise HttpError(404, f"no study {study_id}") from error


def _render(templates: Templates, name: str, language: str, facts: StudyFacts) -> dict[str, str]:
    if language not in LANGUAGES:
        raise HttpError(400, f"unknown language {language!r}", known=list(LANGUAGES))
    try:
        return templates.render(name, language, facts)
    except UnknownTemplate as unknown:
        raise HttpError(400, str(unknown), known=sorted(templates.available)) from unknown


@routes.get("/api/studies/{id}/report/templates", roles=READING, audit="study.view", study=STUDY)
def templates(request: Request) -> dict[str, Any]:
    """The templates, each with its title in ``language``, and the one suggested."""
    study_id = request.path_params["id"]
    language = request.query_value("language") or "en"
    shelf = _templates(request)
    return {
        "suggested": shelf.choose(_facts(request, study_id)),
        "templates": [
            {
                "name": info.name,
                "title": shelf.title(info.name, language),
                "languages": info.languages,
            }
            for info in shelf.available.values()
        ],
    }


@routes.get(
    "/api/studies/{id}/report/templates/{name}", roles=READING, audit="study.view", study=STUDY
)
def template(request: Request) -> dict[str, Any]:
    """Template ``name`` filled for this study, in ``language``."""
    study_id, name = request.path_params["id"], request.path_params["name"]
    language = request.query_value("language") or "en"
    sections = _render(_templates(request), name, language, _facts(request, study_id))
    return {"template": name, "language": language, "sections": sections}


def _report_body(request: Request, model: type[ReportBody]) -> ReportBody:
    limit = _settings(request).report_bytes
    if len(request.body) > limit:
        raise HttpError(413, f"the report is larger than the {limit} bytes allowed", limit=limit)
    body = validated(model, request.json())
    if body.template not in _templates(request).available:
        raise HttpError(400, f"unknown template {body.template!r}")
    return body


@routes.route("PUT", "/api/studies/{id}/report", roles=READING, audit="study.view", study=STUDY)
def save(request: Request) -> dict[str, Any]:
    """Save the draft over ``version`` (0 for the first save): 409 with the current version
    when another save came first, or when the report is signed."""
    body = _report_body(request, ReportBody)
    study_id = request.path_params["id"]
    row = _answer(
        lambda: _desk(request).save(_actor(request), study_id, body.content(), body.version)
    )
    return report_json(row)


@routes.post("/api/studies/{id}/report/sign", roles=READING, audit="study.view", study=STUDY)
def sign(request: Request) -> dict[str, Any]:
    """Sign the draft at ``version``: final, locked; stored into the study as PDF and SR."""
    body = request.parse(SignBody)
    study_id = request.path_params["id"]
    signed = _answer(lambda: _desk(request).sign(_actor(request), study_id, body.version))
    return {"study": study_id, **signed.to_json()}


@routes.post("/api/studies/{id}/report/amend", roles=READING, audit="study.view", study=STUDY)
def amend(request: Request) -> dict[str, Any]:
    """A signed report's new version, with its ``reason``; the earlier ones stay."""
    body = _report_body(request, AmendBody)
    assert isinstance(body, AmendBody)
    study_id = request.path_params["id"]
    signed = _answer(
        lambda: _desk(request).amend(
            _actor(request), study_id, body.content(), body.version, body.reason
        )
    )
    return {"study": study_id, **signed.to_json()}


@routes.get("/api/studies/{id}/report/history", roles=READERS, audit="study.view", study=STUDY)
def history(request: Request) -> dict[str, Any]:
    """Every signed version, oldest first (drafts are not history)."""
    study_id = request.path_params["id"]
    versions = _desk(request).reports.versions(study_id)
    return {"study": study_id, "versions": [version.to_json() for version in versions]}


@routes.get("/api/studies/{id}/report/pdf", roles=READERS, audit="study.view", study=STUDY)
def report_pdf(request: Request) -> Response:
    """A signed version's PDF (``version``, default the latest), as stored in the study."""
    study_id = request.path_params["id"]
    versions = _desk(request).reports.versions(study_id)
    if not versions:
        raise HttpError(404, "this study has no signed report")
    number = request.query_value("version", int, versions[-1].number)
    chosen = next((v for v in versions if v.number == number), None)
    if chosen is None:
        raise HttpError(404, f"no signed version {number}")
    orthanc = request.services.orthanc
    instance = orthanc.find_instance(chosen.pdf_sop_uid)
    if instance is None:
        raise HttpError(
            503,
            "the signed report is being stored into the study; try again shortly",
            retryAfterSeconds=2,
        )
    # Orthanc answers a raw value as stored: the UL length in 4 little-endian bytes; the
    # document may carry one byte of padding beyond it.
    length = int.from_bytes(
        orthanc.get_bytes(f"/instances/{instance}/content/0042-0015")[:4], "little"
    )
    document = orthanc.get_bytes(f"/instances/{instance}/content/0042-0011")[: length or None]
    return Response(
        200,
        document,
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="report-{study_id[:8]}-v{number}.pdf"'},
    )


@routes.get("/api/reports/orphaned", roles=ADMIN, audit="patient.search")
def orphaned(request: Request) -> dict[str, Any]:
    """Reports whose study was deleted from Orthanc: kept, and listed here."""
    limit, offset = request.page(default=50, maximum=MAX_PAGE)
    rows, total = _desk(request).reports.orphaned(limit=limit, offset=offset)
    return {"reports": [report_json(row) for row in rows], "total": total}

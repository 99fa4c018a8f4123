"""POST /instances, Orthanc's REST upload, answered by us so that a refusal is a 4xx.

Orthanc 1.10 lets a plugin discard an object only silently ("Status": "FilteredOut" with
200), so the plugin takes the route over: each object is judged, then stored through
Orthanc's own route (the SDK's ``RestApiPost``, which never comes back here), and the
answer is Orthanc's. A ZIP archive gets the list Orthanc gives for one, plus the files it
did not store and why (Orthanc 1.10 skips those without a word). Orthanc Explorer's
uploader posts multipart/form-data, which Orthanc answers itself (always 200): its
refusals are in the audit trail and the log.

GET /instances is Orthanc's listing, passed through unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from hounsfield.auth.permissions import ACQUISITION
from hounsfield.auth.roles import STAFF
from hounsfield.events.types import Intervention
from hounsfield.intake.admission import Refusal
from hounsfield.intake.archive import is_zip, members
from hounsfield.intake.store import Refused, Sender
from hounsfield.orthanc_api import OrthancError
from hounsfield.untrusted import InputRefused
from hounsfield.web import HttpError, Request, Response, RouteTable

if TYPE_CHECKING:
    from hounsfield.registry import Registry
    from hounsfield.services import CoreServices

routes = RouteTable()
ROAD = "REST API"


def sender_of(request: Request) -> Sender:
    principal = request.principal
    if principal is None:
        return Sender("anonymous (authentication off)", ip=request.ip)
    return Sender(principal.username, principal.role.value, request.ip)


@routes.get("/instances", roles=STAFF, audit="patient.search")
def list_instances(request: Request) -> Any:
    query = f"?{urlencode(request.query)}" if request.query else ""
    try:
        return request.services.orthanc.get_json(f"/instances{query}")
    except OrthancError as error:
        raise HttpError(error.status, str(error)) from error


@routes.post("/instances", roles=ACQUISITION, audit="study.store")
def store_instances(request: Request) -> Response:
    if len(request.body) > request.limits.upload_bytes:
        raise HttpError(413, "upload exceeds Limits.UploadBytes", limit="Limits.UploadBytes")
    if is_zip(request.body):
        return _store_archive(request)
    try:
        stored = request.core.intake.store(request.body, sender_of(request), ROAD)
        return Response.json(stored.answer)
    except Refused as refused:
        raise _refusal_error(refused) from refused
    except OrthancError as error:
        raise HttpError(error.status, f"Orthanc could not store it: {error}") from error


def _refusal_error(refused: Refused) -> HttpError:
    refusal = refused.refusal
    details = {"limit": refusal.limit} if refusal.limit else {}
    return HttpError(
        400, refusal.reason, sopInstanceUid=refusal.uids.get("SOPInstanceUID"), **details
    )


def _store_archive(request: Request) -> Response:
    """Orthanc's answer for each stored file, then the refused (corrupt) and skipped (not
    DICOM) ones: 200 when none was refused, 400 otherwise (the others stay stored)."""
    limits, intake, sender = request.limits, request.core.intake, sender_of(request)
    answers: list[dict[str, Any]] = []
    refused = False
    try:
        for name, content in members(
            request.body, max_members=limits.archive_members, max_bytes=limits.upload_bytes
        ):
            try:
                answers.append(intake.store(content, sender, ROAD).answer)
            except Refused as error:
                refused = True
                answers.append({"Path": name, "Status": "Refused", "Reason": error.refusal.reason})
            except OrthancError as error:
                answers.append({"Path": name, "Status": "Skipped", "Reason": str(error)})
    except InputRefused as refusal:
        raise HttpError.refused(refusal) from refusal
    return Response.json(answers, status=400 if refused else 200)


def admit_instance(
    services: CoreServices, dicom: bytes, sender: Sender, road: str
) -> Refusal | None:
    """Every road's admission: only a corrupt object is refused (``intake.admission``)."""
    return services.intake.judge(dicom, sender, road)


def register(registry: Registry) -> None:
    """Core: Orthanc's upload route, answered by us, and every road's admission check."""
    registry.routes(routes)
    registry.intervene(Intervention.INSTANCE_ADMIT, admit_instance)

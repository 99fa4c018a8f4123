"""STOW-RS (PS3.18 10.5): each part judged and stored like any upload, and every instance
answered as stored (ReferencedSOPSequence, with its RetrieveURL) or failed
(FailedSOPSequence, with its FailureReason, and a Warning header saying why).

The status follows the standard: 200 when all were stored, 202 when some failed, 409 when
none was. A refused object is never listed as stored, and the parts after it are still
stored (Orthanc's DICOMweb plugin 1.7 listed a discarded object as stored, and stopped at
the first part its store failed, answering 200).
"""

from __future__ import annotations

from collections.abc import Mapping

from hounsfield.dicomweb.model import (
    JSON_TYPE,
    XML_TYPE,
    DicomJson,
    attribute,
    base_url,
    to_xml,
    wants_xml,
)
from hounsfield.intake.routes import sender_of
from hounsfield.intake.store import Refused
from hounsfield.orthanc_api import OrthancError
from hounsfield.web import HttpError, Request, Response

ROAD = "STOW-RS"
DICOM = "application/dicom"
# FailureReason values (PS3.4 C-STORE statuses, as PS3.18 uses them)
CANNOT_UNDERSTAND = 0xC000  # corrupt, or not DICOM Orthanc can read
PROCESSING_FAILURE = 0x0110  # sound, but of another study than the request names
MAX_WARNINGS = 10


def store_parts(request: Request, root: str, study_uid: str | None) -> Response:
    xml = wants_xml(request)
    _check_media_type(request.headers.get("content-type", ""))
    parts = request.parts()
    for part in parts:
        if part.headers.get("content-type") and part.content_type != DICOM:
            raise HttpError(415, f"a part is {part.content_type}; every part must be {DICOM}")
    base = base_url(request, request.services.settings.orthanc_config.get("DicomWeb", {}), root)
    stored: list[DicomJson] = []
    failed: list[DicomJson] = []
    warnings: list[str] = []
    studies: set[str] = set()
    for part in parts:
        try:
            result = request.core.intake.store(
                bytes(part.content), sender_of(request), ROAD, study_uid=study_uid
            )
        except Refused as refused:
            refusal = refused.refusal
            reason = PROCESSING_FAILURE if refusal.conflict else CANNOT_UNDERSTAND
            failed.append(_failure(refusal.uids, reason))
            warnings.append(refusal.reason)
            continue
        except OrthancError as error:
            failed.append(_failure({}, CANNOT_UNDERSTAND))
            warnings.append(f"Orthanc could not store a part: {error}")
            continue
        uids = result.uids
        studies.add(f"{base}studies/{uids['StudyInstanceUID']}")
        item = _reference(uids)
        item["00081190"] = attribute(
            "UR",
            f"{base}studies/{uids['StudyInstanceUID']}/series/{uids['SeriesInstanceUID']}"
            f"/instances/{uids['SOPInstanceUID']}",
        )
        stored.append(item)
    answer: DicomJson = {
        "00081198": attribute("SQ", *failed),
        "00081199": attribute("SQ", *stored),
    }
    if len(studies) == 1:
        answer["00081190"] = attribute("UR", studies.pop())
    status = 200 if not failed else 202 if stored else 409
    if xml:
        response = Response(status, to_xml(answer), XML_TYPE)
    else:
        response = Response.json(answer, status=status)
        response.content_type = JSON_TYPE
    if warnings:
        response.headers["Warning"] = _warning(warnings)
    return response


def _warning(reasons: list[str]) -> str:
    """One Warning header (RFC 7234) naming why parts failed: the first few, then a count,
    so that a request of thousands of bad parts does not make a header clients refuse."""
    shown = [f'299 hounsfield "{_quoted(reason)[:300]}"' for reason in reasons[:MAX_WARNINGS]]
    if len(reasons) > MAX_WARNINGS:
        shown.append(f'299 hounsfield "and {len(reasons) - MAX_WARNINGS} more failures"')
    return ", ".join(shown)


def _check_media_type(content_type: str) -> None:
    media, *parameters = (piece.strip() for piece in content_type.split(";"))
    declared = {}
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        declared[name.strip().lower()] = value.strip().strip('"').lower()
    if media.lower() != "multipart/related" or declared.get("type", DICOM) != DICOM:
        raise HttpError(415, f'STOW-RS takes multipart/related; type="{DICOM}"')


def _reference(uids: Mapping[str, str]) -> DicomJson:
    item: DicomJson = {}
    if uids.get("SOPClassUID"):
        item["00081150"] = attribute("UI", uids["SOPClassUID"])
    if uids.get("SOPInstanceUID"):
        item["00081155"] = attribute("UI", uids["SOPInstanceUID"])
    return item


def _failure(uids: Mapping[str, str], reason: int) -> DicomJson:
    item = _reference(uids)
    item["00081197"] = attribute("US", reason)
    return item


def _quoted(text: str) -> str:
    """A Warning header's quoted text: printable ASCII without quotes or backslashes."""
    cleaned = "".join(c if c.isprintable() and c not in '"\\' else " " for c in text)
    return cleaned.encode("ascii", "replace").decode()

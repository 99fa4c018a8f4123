"""WADO-RS study retrieval (PS3.18 10.4), the GET side of ``/dicom-web/studies/{uid}``.

Every instance of the study as ``application/dicom`` parts of one multipart/related answer,
sent one file at a time. As in Orthanc's DICOMweb plugin: in Explicit VR Little Endian
unless the Accept header names another transfer syntax, or ``transfer-syntax=*`` for the
files as stored. Orthanc 1.10 cannot transcode every compression (JPEG 2000 needs a codec
plugin): asked for nothing in particular, such a file is sent as stored (its file meta says
how); asked for a syntax it cannot produce for the first file, the answer is 406 before
anything is sent (DICOMweb 1.7 cut the answer short instead).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from hounsfield.orthanc_api import InProcessOrthanc, OrthancError
from hounsfield.web import HttpError, Request, Response

EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"
UID = "0123456789."


def _wanted_syntax(accept: str) -> str | None:
    """The transfer syntax asked for (None: as stored); 400 for what cannot be answered."""
    if not accept.strip():
        return EXPLICIT_LITTLE
    media, *parameters = (piece.strip() for piece in accept.split(";"))
    if media.lower() not in ("multipart/related", "*/*"):
        raise HttpError(400, f"a study is retrieved as multipart/related, not {media}")
    declared = {}
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        declared[name.strip().lower()] = value.strip().strip('"')
    if declared.get("type", "application/dicom").lower() != "application/dicom":
        raise HttpError(400, "a study is retrieved as application/dicom parts")
    syntax = declared.get("transfer-syntax", EXPLICIT_LITTLE)
    if syntax == "*":
        return None
    if not syntax or set(syntax) - set(UID) or len(syntax) > 64:
        raise HttpError(400, f"unknown transfer syntax {syntax!r}")
    return syntax


def retrieve_study(request: Request, study_uid: str) -> Response:
    accept = request.headers.get("accept", "")
    syntax = _wanted_syntax(accept)
    insisted = syntax is not None and "transfer-syntax" in accept.lower()
    orthanc = request.services.orthanc
    study = orthanc.find_study(study_uid)
    if study is None:
        raise HttpError(404, f"no study {study_uid}")
    instances = [item["ID"] for item in orthanc.get_json(f"/studies/{study}/instances")]
    files = _files(orthanc, instances, syntax, insisted)
    try:  # the first file now, while the status can still say no
        first = next(files, None)
    except OrthancError as error:
        raise HttpError(406, f"the study cannot be sent in {syntax}: {error}") from error
    parts = files if first is None else itertools.chain([first], files)
    return Response(200, content_type="application/dicom", parts=parts)


def _files(
    orthanc: InProcessOrthanc, instances: list[str], syntax: str | None, insisted: bool
) -> Iterator[bytes]:
    for instance in instances:
        try:
            yield orthanc.dicom_file(instance, syntax)
        except OrthancError:
            if insisted:
                raise
            yield orthanc.dicom_file(instance)  # as stored: its file meta says how

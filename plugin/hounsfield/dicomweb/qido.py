"""QIDO-RS study search (PS3.18 10.6), the GET side of ``/dicom-web/studies``.

It answers as Orthanc's DICOMweb plugin 1.7 does (the same /tools/find query, the same
attributes from one instance of each study, the same derived ones), with two changes
clients notice: a comma-separated ``includefield`` list is read (OHIF sends one; 1.7 read
only repeated parameters), and an unknown attribute in the query is a 400 naming it.
"""

from __future__ import annotations

import re
from typing import Any

from pydicom.datadict import tag_for_keyword

from hounsfield.dicomweb.model import (
    JSON_TYPE,
    DicomJson,
    attribute,
    base_url,
    from_text,
    wants_xml,
)
from hounsfield.orthanc_api import OrthancApi, OrthancError
from hounsfield.web import HttpError, Request, Response

# The attributes every study result carries (PS3.18 table 6.7.1-2), as in DICOMweb 1.7.
STUDY_ATTRIBUTES = (
    "00080020",  # StudyDate
    "00080030",  # StudyTime
    "00080050",  # AccessionNumber
    "00080056",  # InstanceAvailability
    "00080090",  # ReferringPhysicianName
    "00080201",  # TimezoneOffsetFromUTC
    "00100010",  # PatientName
    "00100020",  # PatientID
    "00100030",  # PatientBirthDate
    "00100040",  # PatientSex
    "0020000D",  # StudyInstanceUID
    "00200010",  # StudyID
)
MODALITIES_IN_STUDY, SERIES_COUNT, INSTANCES_COUNT = "00080061", "00201206", "00201208"
CONTROL = {"limit", "offset", "fuzzymatching", "includefield"}
HEX_TAG = re.compile(r"[0-9A-Fa-f]{8}")
MAX_RESULTS = 1000  # a search without a limit is answered in pages of this size at most


def _tag(name: str) -> str | None:
    """``PatientName`` or ``00100010`` as "00100010"; None if it names no attribute."""
    if HEX_TAG.fullmatch(name):
        return name.upper()
    number = tag_for_keyword(name)
    return f"{number:08X}" if number is not None else None


def _number(request: Request, name: str) -> int:
    value = request.query_value(name, int, 0)
    if value < 0:
        raise HttpError(400, f"query parameter {name!r} must not be negative")
    return value


def search_studies(request: Request, root: str) -> Response:
    if wants_xml(request):
        raise HttpError(406, f"study searches are answered in {JSON_TYPE}")
    limit, offset = _number(request, "limit"), _number(request, "offset")
    if request.query.get("fuzzymatching", "false") not in ("true", "false"):
        raise HttpError(400, "'fuzzymatching' is true or false")
    fields = set(STUDY_ATTRIBUTES)
    every_field = False
    for name in filter(None, request.query.get("includefield", "").split(",")):
        if name.strip() == "all":
            every_field = True
        elif (tag := _tag(name.strip())) is not None:
            fields.add(tag)
    query: dict[str, str] = {}
    for name, value in request.query.items():
        if name in CONTROL:
            continue
        tag = _tag(name)
        if tag is None:
            raise HttpError(400, f"unknown attribute in the query: {name!r}")
        # A list of values is comma-separated in QIDO, backslash-separated for Orthanc.
        query[f"{tag[:4]},{tag[4:]}"] = value.replace("\\", "").replace(",", "\\")
        fields.add(tag)
    settings = request.services.settings.orthanc_config.get("DicomWeb", {})
    find: dict[str, Any] = {
        "Level": "Study",
        "Query": query,
        "Limit": min(limit or MAX_RESULTS, MAX_RESULTS),
        "Since": offset,
        "Expand": False,
    }
    if "QidoCaseSensitive" in settings:
        find["CaseSensitive"] = bool(settings["QidoCaseSensitive"])
    orthanc = request.services.orthanc
    try:
        studies = orthanc.post_json("/tools/find", find)
    except OrthancError as error:
        raise HttpError(400, f"the search cannot be run: {error}") from error
    base = base_url(request, settings, root)
    results = [_study(orthanc, study, fields, every_field, base) for study in studies]
    response = Response.json([result for result in results if result is not None])
    response.content_type = JSON_TYPE
    if len(studies) == find["Limit"] and find["Limit"] < (limit or MAX_RESULTS + 1):
        response.headers["Warning"] = (
            f'299 hounsfield "at most {MAX_RESULTS} studies are answered at once: '
            'ask for the next ones with offset"'
        )
    return response


def _study(
    orthanc: OrthancApi, study: str, fields: set[str], every_field: bool, base: str
) -> DicomJson | None:
    try:
        series = orthanc.get_json(f"/studies/{study}/series?expand")
    except OrthancError:
        return None  # deleted between the search and now
    instances = [instance for item in series for instance in item.get("Instances", [])]
    if not instances:
        return None
    tags = {
        key.replace(",", "").upper(): item
        for key, item in orthanc.get_json(f"/instances/{instances[0]}/tags").items()
    }
    result: DicomJson = {"00080005": attribute("CS", "ISO_IR 192")}  # Orthanc's text is UTF-8
    for tag, item in tags.items():
        if (every_field or tag in fields) and item.get("Type") == "String":
            encoded = from_text(tag, item.get("Value") or "")
            if encoded is not None:
                result[tag] = encoded
    modalities = sorted({item["MainDicomTags"].get("Modality", "") for item in series} - {""})
    result[MODALITIES_IN_STUDY] = attribute("CS", *modalities)
    result[SERIES_COUNT] = attribute("IS", len(series))
    result[INSTANCES_COUNT] = attribute("IS", len(instances))
    uid = tags.get("0020000D", {}).get("Value", "")
    result["00081190"] = attribute("UR", f"{base}studies/{uid}")
    return dict(sorted(result.items()))

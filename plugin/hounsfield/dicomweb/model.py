"""DICOM JSON (PS3.18 F.2) and the Native DICOM Model in XML (PS3.19), as DICOMweb answers.

Values come from Orthanc's JSON of an instance, where every value is text; their VR comes
from pydicom's dictionary, which decides how each is written (a number, a list, a name).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

from pydicom.datadict import dictionary_VR, keyword_for_tag

from hounsfield.web import HttpError, Request

JSON_TYPE = "application/dicom+json"
XML_TYPE = "application/dicom+xml"
NUMBERS = {
    "IS": int,
    "DS": float,
    "US": int,
    "UL": int,
    "SS": int,
    "SL": int,
    "FL": float,
    "FD": float,
}
PERSON_NAME_COMPONENTS = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")
SINGLE_TEXT = {"LT", "ST", "UT", "UR"}  # a backslash is text, not a separator

DicomJson = dict[str, dict[str, Any]]


def attribute(vr: str, *values: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


def from_text(tag: str, text: str) -> dict[str, Any] | None:
    """One attribute as DICOM JSON from Orthanc's text of it; None when its VR is unknown."""
    try:
        vr = dictionary_VR(int(tag, 16)).split(" or ")[0]
    except (KeyError, ValueError):
        return None
    if text == "":
        return attribute(vr)
    if vr == "PN":
        groups = text.split("\\")
        return attribute(vr, *(_person_name(group) for group in groups))
    if vr in SINGLE_TEXT:
        return attribute(vr, text)
    values = text.split("\\")
    if vr in NUMBERS:
        try:
            return attribute(vr, *(NUMBERS[vr](value) for value in values if value.strip()))
        except ValueError:
            return attribute(vr, *values)  # written as found rather than dropped
    return attribute(vr, *values)


def _person_name(value: str) -> dict[str, str]:
    names = dict(zip(("Alphabetic", "Ideographic", "Phonetic"), value.split("="), strict=False))
    return {kind: name for kind, name in names.items() if name}


def to_xml(dataset: Mapping[str, Mapping[str, Any]]) -> bytes:
    root = Element("NativeDicomModel", {"xml:space": "preserve"})
    _add_xml(root, dataset)
    declaration = '<?xml version="1.0" encoding="UTF-8"?>\n'
    return (declaration + tostring(root, encoding="unicode")).encode()


def _add_xml(parent: Element, dataset: Mapping[str, Mapping[str, Any]]) -> None:
    for tag in sorted(dataset):
        item = dataset[tag]
        element = SubElement(
            parent, "DicomAttribute", tag=tag, vr=item["vr"], keyword=keyword_for_tag(int(tag, 16))
        )
        if "BulkDataURI" in item:
            SubElement(element, "BulkData", uri=item["BulkDataURI"])
        elif "InlineBinary" in item:
            SubElement(element, "InlineBinary").text = item["InlineBinary"]
        for number, value in enumerate(item.get("Value", []), start=1):
            if item["vr"] == "SQ":
                _add_xml(SubElement(element, "Item", number=str(number)), value)
            elif item["vr"] == "PN":
                _add_person_name(SubElement(element, "PersonName", number=str(number)), value)
            else:
                SubElement(element, "Value", number=str(number)).text = str(value)


def _add_person_name(parent: Element, name: Mapping[str, str]) -> None:
    """PS3.19 A.1.5: each group's components as elements of their own."""
    for group in ("Alphabetic", "Ideographic", "Phonetic"):
        if name.get(group):
            element = SubElement(parent, group)
            components = name[group].split("^")
            for component, text in zip(PERSON_NAME_COMPONENTS, components, strict=False):
                if text:
                    SubElement(element, component).text = text


def wants_xml(request: Request) -> bool:
    """Whether the answer is to be XML; 406 when neither DICOM JSON nor XML is accepted."""
    accept = request.headers.get("accept", "").lower()
    types = [item.split(";")[0].strip() for item in accept.split(",") if item.strip()]
    if not types or any(t in (JSON_TYPE, "application/json", "*/*") for t in types):
        return False
    if any(t in (XML_TYPE, "application/xml", "text/xml") for t in types):
        return True
    raise HttpError(406, f"answers are {JSON_TYPE} or {XML_TYPE}, not {accept}")


def base_url(request: Request, settings: Mapping[str, Any], root: str) -> str:
    """Where clients reach DICOMweb, for RetrieveURL: the DicomWeb section's Host and Ssl
    when set (as Orthanc's DICOMweb plugin reads them), else the request's Forwarded
    header (behind a reverse proxy), else its Host header."""
    host, scheme = settings.get("Host") or "", "https" if settings.get("Ssl") else "http"
    if not host:
        for pair in request.headers.get("forwarded", "").split(";"):
            name, _, value = pair.strip().partition("=")
            if name.lower() == "host":
                host = value.strip('"')
            elif name.lower() == "proto" and value.strip('"') in ("http", "https"):
                scheme = value.strip('"')
    host = host or request.headers.get("host") or "localhost"
    return f"{scheme}://{host}{root}"

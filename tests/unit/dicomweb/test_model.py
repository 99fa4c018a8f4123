"""DICOM JSON and XML as DICOMweb writes them, from Orthanc's text of each value."""

from __future__ import annotations

import pytest

from hounsfield.dicomweb.model import base_url, from_text, to_xml, wants_xml
from hounsfield.web import HttpError, Request


@pytest.mark.parametrize(
    ("tag", "text", "expected"),
    [
        ("00100010", "Doe^Jane", {"vr": "PN", "Value": [{"Alphabetic": "Doe^Jane"}]}),
        (
            "00100010",
            "Yamada^Tarou=山田^太郎",
            {"vr": "PN", "Value": [{"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎"}]},
        ),
        ("00280010", "512", {"vr": "US", "Value": [512]}),
        ("00280030", "0.5\\0.6", {"vr": "DS", "Value": [0.5, 0.6]}),
        ("00080061", "CT\\MR", {"vr": "CS", "Value": ["CT", "MR"]}),
        ("00081030", "", {"vr": "LO"}),
        ("00204000", "a\\b", {"vr": "LT", "Value": ["a\\b"]}),  # text keeps its backslash
        ("00280030", "n/a", {"vr": "DS", "Value": ["n/a"]}),  # written as found, not dropped
    ],
)
def test_values_are_written_by_their_vr(tag: str, text: str, expected: dict) -> None:
    assert from_text(tag, text) == expected


def test_attributes_without_a_dictionary_entry_are_left_out() -> None:
    assert from_text("00091010", "private") is None


def test_xml_is_the_native_dicom_model() -> None:
    xml = to_xml(
        {"00081198": {"vr": "SQ", "Value": [{"00081197": {"vr": "US", "Value": [49152]}}]}}
    )
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<NativeDicomModel')
    assert (
        b'<DicomAttribute tag="00081198" vr="SQ" keyword="FailedSOPSequence"><Item number="1">'
        in xml
    )
    assert b'<Value number="1">49152</Value>' in xml


def test_the_base_url_follows_configuration_then_forwarded_then_host() -> None:
    request = Request("GET", "/", headers={"host": "pacs:8042"})
    assert base_url(request, {}, "/dicom-web/") == "http://pacs:8042/dicom-web/"
    proxied = Request("GET", "/", headers={"host": "in", "forwarded": 'proto=https;host="x.org"'})
    assert base_url(proxied, {}, "/dicom-web/") == "https://x.org/dicom-web/"
    assert base_url(proxied, {"Host": "h", "Ssl": True}, "/r/") == "https://h/r/"


def test_xml_is_chosen_only_when_asked_for() -> None:
    assert not wants_xml(Request("GET", "/", headers={"accept": "application/dicom+json, */*"}))
    assert wants_xml(Request("GET", "/", headers={"accept": "application/dicom+xml"}))
    with pytest.raises(HttpError) as refused:
        wants_xml(Request("GET", "/", headers={"accept": "image/png"}))
    assert refused.value.status == 406

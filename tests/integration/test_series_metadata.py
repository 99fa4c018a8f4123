"""Series metadata kept ready for the viewer (``hounsfield.dicomweb.series_metadata``), read
with dicomweb-client as OHIF and scripts read it.

The truth is Orthanc's DICOMweb plugin itself: its answer for each instance of the series
(``.../instances/{uid}/metadata``, a route the plugin leaves to it), and the pixels a
BulkDataURI leads to are compared with the file that was sent.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from email import message_from_bytes
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from hounsfield.dicom_objects import new_instance, set_unsigned_pixels
from tests.support.server import OrthancServer, wait_for

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


@dataclass
class Series:
    study_uid: str
    series_uid: str
    study_id: str  # Orthanc's
    series_id: str
    folder: Path
    slices: list[Path]

    @property
    def metadata_path(self) -> str:
        return f"/dicom-web/studies/{self.study_uid}/series/{self.series_uid}/metadata"

    def kept(self, orthanc: OrthancServer) -> list[Path]:
        kept = orthanc.workdir / "data" / "hounsfield" / "series-metadata" / self.study_id
        return sorted(kept.glob(f"{self.series_id}.*.json.gz"))


def ct_slice(folder: Path, study: dict[str, str], series_uid: str, number: int) -> Path:
    """A small CT slice with what makes metadata interesting: an accented name, a nested
    sequence, and pixels that differ from slice to slice."""
    ds = new_instance(CT_IMAGE_STORAGE, generate_uid(), study)
    ds.Modality, ds.SeriesInstanceUID, ds.InstanceNumber = "CT", series_uid, number
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, -number], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness = [0.5, 0.5], 1
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    source = Dataset()
    source.CodeValue, source.CodingSchemeDesignator, source.CodeMeaning = "T-D1100", "SRT", "Head"
    ds.AnatomicRegionSequence = Sequence([source])
    set_unsigned_pixels(ds, np.full((32, 32), 1000 + number, dtype=np.uint16))
    path = folder / f"{number:03d}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def series(orthanc: OrthancServer, tmp_path: Path) -> Series:
    study = {
        "PatientName": "Müller^Jürgen",
        "PatientID": "SERIES-METADATA",
        "StudyInstanceUID": generate_uid(),
    }
    series_uid = generate_uid()
    slices = [ct_slice(tmp_path, study, series_uid, number) for number in range(1, 5)]
    orthanc.store(*slices)
    series_id = orthanc.post("/tools/lookup", data=series_uid).json()[0]["ID"]
    study_id = orthanc.get(f"/series/{series_id}").json()["ParentStudy"]
    return Series(study["StudyInstanceUID"], series_uid, study_id, series_id, tmp_path, slices)


@pytest.fixture
def client(orthanc: OrthancServer) -> DICOMwebClient:
    session = requests.Session()
    session.headers.update(orthanc.http.headers)
    return DICOMwebClient(orthanc.url("/dicom-web"), session=session)


def parts(answer: requests.Response) -> list[bytes]:
    """The parts of a multipart/related answer."""
    assert answer.status_code == 200, answer.text
    header = f"Content-Type: {answer.headers['Content-Type']}\r\n\r\n".encode()
    return [
        part.get_payload(decode=True)
        for part in message_from_bytes(header + answer.content).get_payload()
    ]


def by_instance(metadata: list[dict]) -> dict[str, dict]:
    return {item["00080018"]["Value"][0]: item for item in metadata}


def dicomwebs_own(client: DICOMwebClient, series: Series, instances: list[str]) -> dict:
    """What Orthanc's DICOMweb plugin answers for each instance, the plugin not involved."""
    return {
        uid: client.retrieve_instance_metadata(series.study_uid, series.series_uid, uid)
        for uid in instances
    }


def wait_kept(orthanc: OrthancServer, series: Series) -> Path:
    """The series kept by the worker, once the study is stable."""
    return wait_for(lambda: series.kept(orthanc), 30 + orthanc.stable_age, "the series kept")[0]


def test_the_answer_is_dicomwebs_own_before_and_after_it_is_kept(
    orthanc: OrthancServer, client: DICOMwebClient, series: Series
) -> None:
    before = by_instance(client.retrieve_series_metadata(series.study_uid, series.series_uid))
    assert len(before) == 4
    assert before == dicomwebs_own(client, series, list(before))
    first = next(iter(before.values()))
    assert first["00100010"]["Value"][0]["Alphabetic"] == "Müller^Jürgen"
    assert first["00082218"]["Value"][0]["00080104"]["Value"] == ["Head"]

    wait_kept(orthanc, series)
    after = by_instance(client.retrieve_series_metadata(series.study_uid, series.series_uid))
    assert after == before


def test_bulk_data_uris_lead_to_the_pixels_sent(orthanc: OrthancServer, series: Series) -> None:
    wait_kept(orthanc, series)
    metadata = orthanc.get(series.metadata_path).json()
    sent = {ds.SOPInstanceUID: ds.PixelData for ds in map(pydicom.dcmread, series.slices)}
    for instance in metadata:
        uri = instance["7FE00010"]["BulkDataURI"]
        assert uri.startswith(orthanc.url("/dicom-web/studies/"))  # the host asked, port and all
        pixels = parts(orthanc.http.get(uri, headers={"Accept": "multipart/related"}))
        assert pixels == [sent[instance["00080018"]["Value"][0]]]


def test_a_series_that_changes_is_answered_anew(
    orthanc: OrthancServer, client: DICOMwebClient, series: Series
) -> None:
    kept = wait_kept(orthanc, series)
    study = pydicom.dcmread(series.slices[0])
    tags = {"PatientName": "Müller^Jürgen", "PatientID": study.PatientID}
    fifth = ct_slice(
        series.folder, {**tags, "StudyInstanceUID": series.study_uid}, series.series_uid, 5
    )
    orthanc.store(fifth)
    grown = by_instance(client.retrieve_series_metadata(series.study_uid, series.series_uid))
    assert pydicom.dcmread(fifth).SOPInstanceUID in grown and len(grown) == 5
    assert grown == dicomwebs_own(client, series, list(grown))
    assert series.kept(orthanc) != [kept]  # the older answer is no longer kept

    gone = orthanc.post("/tools/lookup", data=pydicom.dcmread(series.slices[0]).SOPInstanceUID)
    assert orthanc.http.delete(orthanc.url(f"/instances/{gone.json()[0]['ID']}")).status_code == 200
    shrunk = by_instance(client.retrieve_series_metadata(series.study_uid, series.series_uid))
    assert set(shrunk) == set(grown) - {pydicom.dcmread(series.slices[0]).SOPInstanceUID}


def test_uris_name_the_host_the_client_used_even_a_hostile_one(
    orthanc: OrthancServer, series: Series
) -> None:
    wait_kept(orthanc, series)
    url = orthanc.url(series.metadata_path)
    proxied = orthanc.http.get(url, headers={"Forwarded": "host=pacs.example.org;proto=https"})
    uris = [item["7FE00010"]["BulkDataURI"] for item in proxied.json()]
    assert all(uri.startswith("https://pacs.example.org/dicom-web/studies/") for uri in uris)

    hostile = 'evil.example"},"x":{"a":"b\\'
    answer = orthanc.http.get(url, headers={"Forwarded": f"host={hostile}"})
    assert answer.status_code == 200
    uris = [item["7FE00010"]["BulkDataURI"] for item in answer.json()]  # still JSON
    assert all(uri.startswith(f"http://{hostile}/dicom-web/") for uri in uris)
    assert all(set(item) == set(answer.json()[0]) for item in answer.json())


def test_xml_for_clients_that_ask_for_it(orthanc: OrthancServer, series: Series) -> None:
    as_json = orthanc.get(series.metadata_path).json()
    answer = orthanc.get(series.metadata_path, headers={"Accept": "application/dicom+xml"})
    assert 'type="application/dicom+xml"' in answer.headers["Content-Type"]
    documents = parts(answer)
    assert len(documents) == len(as_json) == 4
    first = ET.fromstring(documents[0])
    name = first.find("DicomAttribute[@keyword='PatientName']/PersonName/Alphabetic")
    assert (name.findtext("FamilyName"), name.findtext("GivenName")) == ("Müller", "Jürgen")
    uid = first.findtext("DicomAttribute[@keyword='SOPInstanceUID']/Value")
    pixels = first.find("DicomAttribute[@tag='7FE00010']/BulkData")
    expected = by_instance(as_json)[uid]["7FE00010"]["BulkDataURI"]
    assert pixels is not None and pixels.get("uri") == expected
    region = first.find("DicomAttribute[@keyword='AnatomicRegionSequence']/Item")
    assert region.findtext("DicomAttribute[@keyword='CodeMeaning']/Value") == "Head"


def test_unknown_series_and_deleted_studies(
    orthanc: OrthancServer, client: DICOMwebClient, series: Series
) -> None:
    unknown = orthanc.get(f"/dicom-web/studies/{series.study_uid}/series/1.2.3.4/metadata")
    assert unknown.status_code == 404 and "1.2.3.4" in unknown.json()["error"]

    kept = wait_kept(orthanc, series)
    assert orthanc.http.delete(orthanc.url(f"/studies/{series.study_id}")).status_code == 200
    wait_for(lambda: not kept.parent.exists(), 30, "the deleted study's series forgotten")
    assert orthanc.get(series.metadata_path).status_code == 404

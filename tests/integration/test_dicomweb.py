"""The DICOMweb routes the plugin answers (study search and retrieval beside STOW-RS), used
with dicomweb-client as scripts use them, against what Orthanc stored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset

from tests.support.server import OrthancServer

EXPLICIT_LITTLE = "1.2.840.10008.1.2.1"


@pytest.fixture(scope="module")
def sent(dicom_file: Callable[[str], Path]) -> dict[str, Dataset]:
    """What this module stores: an RLE MR and a JPEG 2000 object, with UIDs of their own."""
    names = ("MR_small_RLE.dcm", "JPEG2000.dcm")
    return {name: pydicom.dcmread(dicom_file(name)) for name in names}


@pytest.fixture(scope="module")
def client(orthanc: OrthancServer, sent: dict[str, Dataset]) -> DICOMwebClient:
    session = requests.Session()
    session.headers.update(orthanc.http.headers)
    client = DICOMwebClient(orthanc.url("/dicom-web"), session=session)
    client.store_instances(list(sent.values()))
    return client


def test_a_study_search_with_wildcards_and_fields(
    client: DICOMwebClient, sent: dict[str, Dataset]
) -> None:
    rle = sent["MR_small_RLE.dcm"]
    found = client.search_for_studies(
        search_filters={"PatientName": f"{str(rle.PatientName)[:6]}*"},
        fields=["StudyDescription", "00080060"],  # a list, sent comma-separated
    )
    studies = {item["0020000D"]["Value"][0]: item for item in found}
    assert rle.StudyInstanceUID in studies
    study = studies[rle.StudyInstanceUID]
    assert study["00080061"]["Value"] == ["MR"]  # ModalitiesInStudy, derived
    assert study["00201208"]["Value"] == [1]  # NumberOfStudyRelatedInstances
    assert study["00100010"]["Value"][0]["Alphabetic"] == str(rle.PatientName)
    assert study["00081190"]["Value"][0].endswith(f"/dicom-web/studies/{rle.StudyInstanceUID}")
    assert client.search_for_studies(search_filters={"PatientID": "nobody-has-this"}) == []


def test_paging_and_unknown_attributes(orthanc: OrthancServer, client: DICOMwebClient) -> None:
    assert len(client.search_for_studies(limit=1)) == 1
    bad = orthanc.get("/dicom-web/studies", params={"NoSuchAttribute": "x"})
    assert bad.status_code == 400 and "NoSuchAttribute" in bad.json()["error"]


def test_a_study_is_retrieved_in_explicit_little_endian_unless_asked_otherwise(
    client: DICOMwebClient, sent: dict[str, Dataset]
) -> None:
    rle = sent["MR_small_RLE.dcm"]
    (default,) = client.retrieve_study(rle.StudyInstanceUID)
    assert default.file_meta.TransferSyntaxUID == EXPLICIT_LITTLE
    assert (default.pixel_array == rle.pixel_array).all()  # transcoded, same pixels
    (stored,) = client.retrieve_study(
        rle.StudyInstanceUID, media_types=(("application/dicom", "*"),)
    )
    assert stored.file_meta.TransferSyntaxUID == rle.file_meta.TransferSyntaxUID


def test_what_orthanc_cannot_transcode_is_sent_as_stored_or_refused_when_insisted(
    orthanc: OrthancServer, client: DICOMwebClient, sent: dict[str, Dataset]
) -> None:
    """Orthanc 1.10 has no JPEG 2000 encoder or decoder without a codec plugin."""
    j2k = sent["JPEG2000.dcm"]
    (retrieved,) = client.retrieve_study(j2k.StudyInstanceUID)
    assert retrieved.file_meta.TransferSyntaxUID == j2k.file_meta.TransferSyntaxUID
    rle = sent["MR_small_RLE.dcm"]
    insisted = orthanc.get(
        f"/dicom-web/studies/{rle.StudyInstanceUID}",
        headers={
            "Accept": 'multipart/related; type="application/dicom"; '
            "transfer-syntax=1.2.840.10008.1.2.4.91"
        },
    )
    assert insisted.status_code == 406
    assert orthanc.get("/dicom-web/studies/1.2.3.999").status_code == 404

"""Acquisitions uploaded as 16-bit TIFF with their geometry, good and bad."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from tests.support.recon import reconstruction_of, upload_acquisition
from tests.support.server import OrthancServer

GEOMETRY = {
    "source_to_isocenter_mm": 500,
    "source_to_detector_mm": 800,
    "arc_degrees": 360,
    "pixel_spacing_mm": [1.0, 1.0],
    "i0": 40000,
    "patient_id": "UPLOAD-1",
}


def tiff(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, photometric="minisblack")
    return buffer.getvalue()


def rtk_xml(angles: list[float], sid: float = 500, sdd: float = 800) -> bytes:
    projections = "".join(
        f"<Projection><GantryAngle>{a}</GantryAngle></Projection>" for a in angles
    )
    return (
        f'<?xml version="1.0"?><RTKThreeDCircularGeometry version="3">'
        f"<SourceToIsocenterDistance>{sid}</SourceToIsocenterDistance>"
        f"<SourceToDetectorDistance>{sdd}</SourceToDetectorDistance>"
        f"{projections}</RTKThreeDCircularGeometry>"
    ).encode()


def counts(frames: int = 60) -> np.ndarray:
    """Flat-field-like counts with a soft absorber in the middle."""
    y, x = np.indices((32, 48)) - np.array([15.5, 23.5])[:, None, None]
    absorber = np.exp(-0.5 * np.clip(1 - np.hypot(x / 14, y / 20), 0, None))
    return np.repeat((40000 * absorber)[None], frames, axis=0).astype(np.uint16)


def upload(
    orthanc: OrthancServer,
    files: list[bytes],
    geometry: dict | str | None = GEOMETRY,
    xml: bytes | None = None,
):
    return upload_acquisition(orthanc, files, geometry, xml)


def spooled(orthanc: OrthancServer) -> list[Path]:
    folder = orthanc.workdir / "data" / "hounsfield" / "spool"
    return sorted(folder.iterdir()) if folder.exists() else []


def archived(orthanc: OrthancServer, response) -> dict:
    """The checked upload's job, once a worker has archived the projections."""
    assert response.status_code == 202, response.text
    job = orthanc.wait_job(response.json()["id"], timeout=120)
    assert job["state"] == "succeeded", job
    return job["result"]


def test_a_multi_page_tiff_is_archived_and_reconstructed(orthanc: OrthancServer) -> None:
    response = upload(orthanc, [tiff(counts())])
    assert response.json()["projections"] == 60 and response.json()["detector"] == [48, 32]
    result = archived(orthanc, response)
    series = orthanc.get(f"/series/{result['series']}").json()
    assert series["MainDicomTags"]["Modality"] == "XA"
    frames = orthanc.get(f"/instances/{result['instance']}/simplified-tags").json()
    assert frames["NumberOfFrames"] == "60"
    assert spooled(orthanc) == []
    assert reconstruction_of(orthanc, result["series"])["state"] == "succeeded"


def test_a_stack_with_rtk_geometry(orthanc: OrthancServer) -> None:
    frames = counts(40)
    angles = [float(a) for a in np.linspace(0, 200, 40)]
    geometry = {
        key: value
        for key, value in GEOMETRY.items()
        if key not in ("source_to_isocenter_mm", "source_to_detector_mm", "arc_degrees")
    }
    response = upload(orthanc, [tiff(frame) for frame in frames], geometry, rtk_xml(angles))
    assert response.json()["shortScan"] is True
    assert archived(orthanc, response)["projections"] == 40


@pytest.mark.parametrize(
    ("files", "geometry", "xml", "message"),
    [
        (lambda: [tiff(counts().astype(np.uint8))], GEOMETRY, None, "16-bit unsigned"),
        (lambda: [tiff(counts())[:5000]], GEOMETRY, None, "truncated or unreadable"),
        (
            lambda: [tiff(counts(60))],
            GEOMETRY,
            rtk_xml([float(a) for a in range(50)]),
            "60 projections but 50 angles",
        ),
        (lambda: [tiff(counts(3))], GEOMETRY, rtk_xml([0.0, 10.0, 5.0]), "strictly monotonic"),
        (
            lambda: [tiff(counts())],
            {**GEOMETRY, "source_to_detector_mm": 300},
            None,
            "must exceed the source-to-isocentre distance",
        ),
        (lambda: [tiff(counts())], None, None, "send a 'geometry' JSON part"),
        (lambda: [tiff(counts())], "{not json", None, "malformed JSON: Expecting property name"),
        (lambda: [tiff(counts(10)), tiff(counts(10)[:, :16])], GEOMETRY, None, "differ in size"),
        (lambda: [tiff(counts())], GEOMETRY, b"<nope", "geometry XML: malformed XML"),
    ],
    ids=[
        "8-bit",
        "truncated",
        "angles-count",
        "non-monotonic",
        "absurd-distance",
        "no-geometry",
        "bad-json",
        "sizes",
        "bad-xml",
    ],
)
def test_bad_uploads_are_refused_and_nothing_is_stored(
    orthanc: OrthancServer, files, geometry, xml, message
) -> None:
    before = orthanc.get("/statistics").json()["CountInstances"]
    jobs_before = orthanc.get("/api/jobs").json()["total"]
    response = upload(orthanc, files(), geometry, xml)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"] + json.dumps(response.json().get("details", ""))
    assert orthanc.get("/statistics").json()["CountInstances"] == before
    assert orthanc.get("/api/jobs").json()["total"] == jobs_before
    assert spooled(orthanc) == []


def test_uploads_must_be_multipart(orthanc: OrthancServer) -> None:
    response = orthanc.post(
        "/api/acquisitions", data=tiff(counts()), headers={"Content-Type": "image/tiff"}
    )
    assert response.status_code == 415


def test_pixels_that_fail_to_decode_fail_the_job_and_leave_nothing(
    orthanc: OrthancServer,
) -> None:
    """Headers pass the synchronous check; the damage shows only when the worker decodes."""
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, counts(), photometric="minisblack", compression="zlib")
    content = bytearray(buffer.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(content))) as parsed:
        start = parsed.pages[0].dataoffsets[0]
    content[start : start + 64] = b"\xff" * 64  # same length, undecodable deflate stream
    before = orthanc.get("/statistics").json()["CountInstances"]
    response = upload(orthanc, [bytes(content)])
    assert response.status_code == 202, response.text
    job = orthanc.wait_job(response.json()["id"], timeout=120)
    assert job["state"] == "failed"
    assert "TIFF file 1 is truncated or unreadable" in job["error"]
    assert orthanc.get("/statistics").json()["CountInstances"] == before
    assert spooled(orthanc) == []


def test_archiving_jobs_cannot_be_submitted_by_hand(orthanc: OrthancServer) -> None:
    """Their parameter is a folder the worker reads and removes: only the route queues them."""
    response = orthanc.post("/api/jobs", json={"kind": "recon.archive", "params": {"spool": "/"}})
    assert response.status_code == 400
    assert "recon.archive" not in response.json()["known"]

"""Acquisitions uploaded as 16-bit TIFF with their geometry, good and bad."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
from pathlib import Path

import numpy as np
import pydicom
import pytest
import tifffile

from hounsfield.app import migrations
from hounsfield.db import SqliteDatabase, apply_migrations
from hounsfield.jobs.context import JobContext
from hounsfield.jobs.queue import DatabaseJobQueue
from hounsfield.orthanc_http import OrthancHttpClient
from hounsfield.recon import tasks
from tests.support.recon import reconstruction_job, reconstruction_of, upload_acquisition
from tests.support.server import OrthancServer, wait_for

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


def stored_for(orthanc: OrthancServer, patient_id: str = GEOMETRY["patient_id"]) -> int:
    """How many instances Orthanc holds for a patient (only this module's uploads use it)."""
    query = {"Level": "Instance", "Query": {"PatientID": patient_id}}
    return len(orthanc.post("/tools/find", json=query).json())


def archive_jobs(orthanc: OrthancServer) -> int:
    """How many archiving jobs were ever queued (only uploads queue them)."""
    return orthanc.get("/api/jobs", params={"kind": "recon.archive"}).json()["total"]


def archived(orthanc: OrthancServer, response) -> dict:
    """The checked upload's job, once a worker has archived the projections."""
    assert response.status_code == 202, response.text
    job = orthanc.wait_job(response.json()["id"], timeout=120)
    assert job["state"] == "succeeded", job["error"]
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
    result = archived(orthanc, response)
    assert result["projections"] == 40
    assert reconstruction_of(orthanc, result["series"])["state"] == "succeeded"


def large_counts(frames: int = 360) -> np.ndarray:
    """An acquisition whose archiving takes long enough to be caught at each step: about
    0.2 s to decode and 0.3 s to store on the development machine."""
    y, x = np.indices((192, 256)) - np.array([95.5, 127.5])[:, None, None]
    absorber = np.exp(-0.5 * np.clip(1 - np.hypot(x / 90, y / 80), 0, None))
    noise = np.random.default_rng(7).integers(0, 64, size=(frames, 192, 256))
    return (40000 * absorber[None] - noise).astype(np.uint16)


def zlib_tiff(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, photometric="minisblack", compression="zlib")
    return buffer.getvalue()


@pytest.mark.parametrize(("step", "low", "high"), [("decoding", 10, 60), ("storing", 60, 100)])
def test_a_worker_killed_while_archiving_leaves_one_whole_object(
    orthanc: OrthancServer, step: str, low: int, high: int
) -> None:
    frames = large_counts()
    response = upload(orthanc, [zlib_tiff(frames)], {**GEOMETRY, "patient_id": f"KILL-{step}"})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    running = wait_for(
        lambda: (
            (job := orthanc.job(job_id))["state"] == "running"
            and low <= job["progress"] < high
            and job
        ),
        60,
        f"the archiving job to be {step}",
        0.01,
    )
    os.kill(int(running["worker"].rsplit("/", 1)[1]), signal.SIGKILL)
    done = orthanc.wait_job(job_id, timeout=120)
    assert done["state"] == "succeeded" and done["attempts"] == 2, done
    result = done["result"]
    assert (result["projections"], result["detector"]) == (360, [256, 192])

    study = orthanc.get(f"/studies/{result['study']}").json()
    assert study["Series"] == [result["series"]]
    assert orthanc.get(f"/series/{result['series']}").json()["Instances"] == [result["instance"]]
    file = orthanc.get(f"/instances/{result['instance']}/file").content
    stored = pydicom.dcmread(io.BytesIO(file))
    assert int(stored.NumberOfFrames) == 360
    assert np.array_equal(stored.pixel_array, frames)
    assert spooled(orthanc) == []
    # Recognised as one reconstructable series (reconstructing 360 projections on the CPU
    # would prove nothing more here, for a minute of the suite's time).
    job = reconstruction_job(orthanc, result["series"])
    assert orthanc.post(f"/api/jobs/{job['id']}/cancel").status_code in (200, 409)


def test_a_retry_after_the_object_was_stored_answers_from_orthanc(
    orthanc: OrthancServer, tmp_path: Path
) -> None:
    """The one window a kill cannot be timed into: the object is in Orthanc and its spool
    gone, but the job not yet marked done. The retry (the same handler, with the same job
    id and a spool that no longer exists) must answer what the first attempt did."""
    response = upload(orthanc, [tiff(counts())], {**GEOMETRY, "patient_id": "RETRY-1"})
    first = archived(orthanc, response)
    job = orthanc.job(response.json()["id"])
    # Only to make a Job: the handler never reports.
    database = SqliteDatabase(tmp_path / "retry.db")
    apply_migrations(database, migrations([]))
    queue = DatabaseJobQueue(database)
    retry = dataclasses.replace(queue.enqueue("recon.archive", job["params"]), id=job["id"])
    token = orthanc.login("admin", orthanc.env["HOUNSFIELD_ADMIN_PASSWORD"])
    client = OrthancHttpClient(orthanc.base_url, token)
    assert not Path(job["params"]["spool"]).exists()
    assert tasks.archive_upload(JobContext(queue, retry, "test", client)) == first
    assert reconstruction_of(orthanc, first["series"])["state"] == "succeeded"


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
    before, jobs_before = stored_for(orthanc), archive_jobs(orthanc)
    response = upload(orthanc, files(), geometry, xml)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"] + json.dumps(response.json().get("details", ""))
    assert (stored_for(orthanc), archive_jobs(orthanc)) == (before, jobs_before)
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
    response = upload(orthanc, [bytes(content)], {**GEOMETRY, "patient_id": "UNDECODABLE"})
    assert response.status_code == 202, response.text
    job = orthanc.wait_job(response.json()["id"], timeout=120)
    assert job["state"] == "failed"
    assert "TIFF file 1 is truncated or unreadable" in job["error"]
    assert stored_for(orthanc, "UNDECODABLE") == 0
    assert spooled(orthanc) == []


def test_archiving_jobs_cannot_be_submitted_by_hand(orthanc: OrthancServer) -> None:
    """Their parameter is a folder the worker reads and removes: only the route queues them."""
    response = orthanc.post("/api/jobs", json={"kind": "recon.archive", "params": {"spool": "/"}})
    assert response.status_code == 400
    assert "recon.archive" not in response.json()["known"]

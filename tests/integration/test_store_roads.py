"""Every road a modality or a client stores by (C-STORE with dcmtk, REST, STOW-RS with a
DICOMweb client): valid objects are kept, whatever the plugin thinks of them, corrupt ones
are refused and the sender is told, and Orthanc's own operations on stored series work."""

from __future__ import annotations

import io
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from tests.support.ai import ct_slices
from tests.support.angiography import angiography_run, dciodvfy_errors
from tests.support.server import ADMIN_PASSWORD, OrthancServer, free_port, wait_for

ROADS = ("c-store", "rest", "stow")


def dicomweb(orthanc: OrthancServer) -> DICOMwebClient:
    session = requests.Session()
    session.headers.update(orthanc.http.headers)
    return DICOMwebClient(orthanc.url("/dicom-web"), session=session)


def send(orthanc: OrthancServer, road: str, ds: pydicom.Dataset, folder: Path):
    """Send one object by ``road``; what the sender was answered."""
    path = folder / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(path, enforce_file_format=True)
    if road == "c-store":
        return subprocess.run(
            [
                "storescu",
                "-v",
                "-aet",
                "C-ARM-3",
                "-aec",
                "HOUNSFIELD",
                "127.0.0.1",
                str(orthanc.dicom_port),
                str(path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    if road == "rest":
        return orthanc.post("/instances", data=path.read_bytes())
    try:
        return dicomweb(orthanc).store_instances([ds])
    except requests.HTTPError as error:
        return error.response


def stored(orthanc: OrthancServer, ds: pydicom.Dataset) -> list[dict]:
    return orthanc.post("/tools/lookup", data=ds.SOPInstanceUID).json()


def series_id(orthanc: OrthancServer, ds: pydicom.Dataset) -> str:
    found = orthanc.post("/tools/lookup", data=ds.SeriesInstanceUID).json()
    return next(item["ID"] for item in found if item["Type"] == "Series")


def verdict(orthanc: OrthancServer, series: str) -> dict:
    """The reconstruction extension's verdict, once the study is stable and judged."""

    def find() -> dict | None:
        listing = orthanc.get("/api/projections", params={"limit": 1000}).json()
        return next((item for item in listing["projections"] if item["id"] == series), None)

    return wait_for(find, 30, f"a verdict on series {series}")


@pytest.mark.parametrize("road", ROADS)
@pytest.mark.parametrize(
    ("variant", "reason"),
    [
        ({"bits": 8}, "projections must be 16-bit, found 8 bits"),
        ({"bits": 16, "source_to_patient": False}, "missing DistanceSourceToPatient"),
    ],
    ids=["8-bit", "no-source-to-patient"],
)
def test_valid_angiography_is_stored_and_marked_not_reconstructable(
    orthanc: OrthancServer, tmp_path: Path, road: str, variant: dict, reason: str
) -> None:
    ds = angiography_run(f"valid-{road}-{variant}", **variant)
    ds.save_as(tmp_path / "run.dcm", enforce_file_format=True)
    assert dciodvfy_errors(tmp_path / "run.dcm") == []  # valid DICOM, as a C-arm sends it

    answer = send(orthanc, road, ds, tmp_path)
    if road == "c-store":
        assert answer.returncode == 0, answer.stdout + answer.stderr
    elif road == "rest":
        assert answer.status_code == 200 and answer.json()["Status"] == "Success", answer.text
    else:
        assert [item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence] == [
            ds.SOPInstanceUID
        ]
        assert "FailedSOPSequence" not in answer or not answer.FailedSOPSequence
    assert stored(orthanc, ds), "a valid object must be kept"

    series = series_id(orthanc, ds)
    judged = verdict(orthanc, series)
    assert judged["reconstructable"] is False and reason in judged["reason"]
    runs = orthanc.get("/api/reconstructions", params={"series": series}).json()
    assert runs["total"] == 0  # not queued, so not failed and never retried
    assert reason in runs["series"]["reason"]
    refused = orthanc.post("/api/reconstructions", json={"series": series})
    assert refused.status_code == 409 and reason in refused.json()["error"]


def corrupt_run(seed: str) -> pydicom.Dataset:
    """A 16-bit run whose pixel data stops half way (its element length agrees with it)."""
    ds = angiography_run(seed, bits=16)
    ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]
    return ds


@pytest.mark.parametrize("road", ROADS)
def test_a_corrupt_object_is_refused_and_the_sender_is_told(
    orthanc: OrthancServer, tmp_path: Path, road: str
) -> None:
    ds = corrupt_run(f"corrupt-{road}")
    answer = send(orthanc, road, ds, tmp_path)
    problem = "pixel data holds 36864 bytes; 12 frame(s) of 64x48"
    if road == "c-store":
        assert answer.returncode != 0
        assert "Received Store Response (Error: CannotUnderstand)" in answer.stdout + answer.stderr
    elif road == "rest":
        assert answer.status_code == 400 and problem in answer.json()["error"]
    else:
        assert answer.status_code == 409  # nothing of the request was stored
        failed = pydicom.Dataset.from_json(answer.json()).FailedSOPSequence
        assert [(item.ReferencedSOPInstanceUID, item.FailureReason) for item in failed] == [
            (ds.SOPInstanceUID, 0xC000)
        ]
        assert problem in answer.headers["Warning"]
    assert stored(orthanc, ds) == []
    audit = orthanc.get(
        "/api/audit", params={"action": "instance.store", "study": ds.StudyInstanceUID}
    ).json()["entries"]
    assert [(entry["outcome"], entry["username"]) for entry in audit] == [
        ("refused", "AE C-ARM-3" if road == "c-store" else "admin")
    ]
    assert problem in audit[0]["detail"]["reason"]


def test_a_stow_request_keeps_the_valid_parts_around_a_refused_one(
    orthanc: OrthancServer,
) -> None:
    first, broken, last = (
        angiography_run("stow-mix-1", bits=16, patient_id="MIX"),
        corrupt_run("stow-mix-2"),
        angiography_run("stow-mix-3", bits=8, patient_id="MIX"),
    )
    answer = dicomweb(orthanc).store_instances([first, broken, last])
    assert [item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence] == [
        first.SOPInstanceUID,
        last.SOPInstanceUID,
    ]
    assert [item.ReferencedSOPInstanceUID for item in answer.FailedSOPSequence] == [
        broken.SOPInstanceUID
    ]
    assert stored(orthanc, first) and stored(orthanc, last)
    assert stored(orthanc, broken) == []


BOUNDARY = "stow-boundary-7d3a"
STOW_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def stow(orthanc: OrthancServer, *objects: pydicom.Dataset, **headers: str) -> requests.Response:
    """A STOW-RS request written out by hand (PS3.18 10.5.1), as any client sends it."""
    boundary = BOUNDARY
    body = b""
    for ds in objects:
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        body += buffer.getvalue() + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return orthanc.post(
        "/dicom-web/studies", data=body, headers={"Content-Type": STOW_TYPE, **headers}
    )


def test_a_stow_status_tells_what_was_stored(orthanc: OrthancServer) -> None:
    """200 all stored, 202 some failed, 409 none stored (PS3.18 10.5.3)."""
    assert stow(orthanc, angiography_run("status-all", bits=8)).status_code == 200
    some = stow(orthanc, angiography_run("status-some", bits=8), corrupt_run("status-some-x"))
    assert some.status_code == 202
    assert stow(orthanc, corrupt_run("status-none-x")).status_code == 409
    xml = stow(orthanc, angiography_run("status-xml", bits=8), Accept="application/dicom+xml")
    assert xml.status_code == 200 and xml.headers["Content-Type"] == "application/dicom+xml"
    assert b'keyword="ReferencedSOPSequence"' in xml.content


def test_modify_and_anonymize_work_on_a_projection_series(
    orthanc: OrthancServer, tmp_path: Path
) -> None:
    ds = angiography_run("modify-me", bits=16)
    assert send(orthanc, "rest", ds, tmp_path).status_code == 200
    series = series_id(orthanc, ds)
    modified = orthanc.post(
        f"/series/{series}/modify",
        json={"Remove": ["DistanceSourceToPatient"], "Force": True},
        timeout=60,
    )
    assert modified.status_code == 200, modified.text
    copy = orthanc.get(f"/series/{modified.json()['ID']}").json()
    instance = copy["Instances"][0]
    assert (
        "DistanceSourceToPatient" not in orthanc.get(f"/instances/{instance}/tags?simplify").json()
    )
    anonymized = orthanc.post(f"/series/{series}/anonymize", json={}, timeout=60)
    assert anonymized.status_code == 200, anonymized.text
    assert orthanc.get(f"/series/{anonymized.json()['ID']}").json()["Instances"]


def test_c_move_sends_a_projection_series_out(orthanc: OrthancServer, tmp_path: Path) -> None:
    ds = angiography_run("move-me", bits=8)
    assert send(orthanc, "rest", ds, tmp_path).status_code == 200
    port, received = free_port(), tmp_path / "received"
    received.mkdir()
    listener = subprocess.Popen(
        ["storescp", "-aet", "VIEWSTATION", "-od", str(received), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _listening(port), 10, "storescp to listen")
        modality = {"AET": "VIEWSTATION", "Host": "127.0.0.1", "Port": port}
        assert orthanc.http.put(orthanc.url("/modalities/viewstation"), json=modality).ok
        moved = subprocess.run(
            [
                "movescu",
                "-aet",
                "VIEWSTATION",
                "-aem",
                "VIEWSTATION",
                "-aec",
                "HOUNSFIELD",
                "-S",
                "-k",
                "QueryRetrieveLevel=SERIES",
                "-k",
                f"StudyInstanceUID={ds.StudyInstanceUID}",
                "-k",
                f"SeriesInstanceUID={ds.SeriesInstanceUID}",
                "127.0.0.1",
                str(orthanc.dicom_port),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert moved.returncode == 0, moved.stdout + moved.stderr
        files = wait_for(lambda: list(received.iterdir()), 10, "the moved object")
        assert pydicom.dcmread(files[0]).SOPInstanceUID == ds.SOPInstanceUID
    finally:
        listener.terminate()
        listener.wait(10)
        orthanc.http.delete(orthanc.url("/modalities/viewstation"))


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        time.sleep(0.1)
        return False


def test_parallel_uploads_through_the_plugin_all_land(make_orthanc) -> None:
    """Four clients upload 100 slices of 512 x 512 each at once through our POST /instances.
    Orthanc 1.10.1 with the Python plugin 4.0 deadlocked on this (the whole server hung,
    SIGTERM included) until our stores queued for one lock (orthanc_adapter._STORES)."""
    server = make_orthanc(
        stable_age=1,
        hounsfield__workers=1,
        hounsfield__extensions=["hounsfield.reading", "hounsfield.ai"],
    ).start()
    pixels = np.zeros((100, 512, 512), np.float32)
    token = server.login("admin", ADMIN_PASSWORD)
    failures: list[str] = []

    def upload(client: int) -> None:
        with server.client(token) as session:
            for data in ct_slices(pixels, (1.0, 0.5, 0.5), patient_id=f"PARALLEL-{client}"):
                answer = session.post(server.url("/instances"), data=data, timeout=60)
                if answer.status_code != 200:
                    failures.append(answer.text)

    threads = [threading.Thread(target=upload, args=(n,), daemon=True) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    hung = [thread for thread in threads if thread.is_alive()]
    if hung:
        server.stop(signal.SIGKILL)
    assert not hung, "the uploads hung"
    assert failures == []
    assert server.get("/api/health").status_code == 200
    studies = server.get("/studies?expand").json()
    assert (
        sorted(len(server.get(f"/studies/{s['ID']}/instances").json()) for s in studies)
        == [100] * 4
    )

"""A study sent over DICOM reaches the stable-study handlers exactly once."""

from __future__ import annotations

import signal
import time

import pydicom

from tests.support.server import OrthancServer, wait_for


def stable_events(orthanc: OrthancServer, study_uid: str) -> list[list[str]]:
    if not orthanc.events_log.exists():
        return []
    lines = [line.split() for line in orthanc.events_log.read_text().splitlines()]
    return [line for line in lines if line[2] == study_uid]


def settled_events(orthanc: OrthancServer, study_uid: str) -> list[list[str]]:
    """The study's stable events, watched for two StableAge periods after the first: a
    second delivery (Orthanc's own, or our recovery's) would show within that time."""
    first = wait_for(lambda: stable_events(orthanc, study_uid), 30, "the stable-study event")
    time.sleep(2 * orthanc.stable_age + 1)
    events = stable_events(orthanc, study_uid)
    assert events[: len(first)] == first
    return events


def test_a_stored_study_reaches_its_handler_exactly_once(
    orthanc: OrthancServer, dicom_file
) -> None:
    path = dicom_file("CT_small.dcm")
    study_uid = pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID
    orthanc.store(path)
    (found,) = orthanc.post("/tools/lookup", data=study_uid).json()

    events = settled_events(orthanc, study_uid)
    assert len(events) == 1
    orthanc_id = events[0][0]
    assert orthanc_id == found["ID"]

    jobs = orthanc.get("/api/jobs?kind=tests.sleep&limit=500").json()["jobs"]
    queued_for_study = [job for job in jobs if job["params"].get("study") == orthanc_id]
    assert len(queued_for_study) == 1
    assert orthanc.wait_job(queued_for_study[0]["id"])["state"] == "succeeded"


def test_a_study_settling_when_orthanc_is_killed_becomes_stable_after_restart(
    make_orthanc, dicom_file
) -> None:
    orthanc = make_orthanc(stable_age=60).start()
    path = dicom_file("MR_small.dcm")
    study_uid = pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID
    orthanc.store(path)
    (study_id,) = orthanc.get("/studies").json()
    assert orthanc.get(f"/studies/{study_id}").json()["IsStable"] is False
    orthanc.stop(signal.SIGKILL)  # Orthanc forgets which studies were still settling

    orthanc.env["ORTHANC__STABLE_AGE"] = "2"
    orthanc.start()
    events = settled_events(orthanc, study_uid)
    assert len(events) == 1 and events[0][0] == study_id

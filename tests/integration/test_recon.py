"""CBCT end to end: projections in (simulated, or sent with storescu), a CT series out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from tests.support.recon import (
    SMALL_ACQUISITION,
    TALL_ACQUISITION,
    assert_one_whole_series,
    reconstruction_of,
    shepp_logan_acquisition,
    start_and_wait_for_partial_series,
)
from tests.support.scanner import Orbit, Sphere, projection_object
from tests.support.server import ADMIN_PASSWORD, OrthancServer, process_alive, wait_for


def dciodvfy_errors(path: Path) -> list[str]:
    checked = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [
        line for line in (checked.stdout + checked.stderr).splitlines() if line.startswith("Error")
    ]


def check_ct_series(orthanc: OrthancServer, study_id: str, result: dict, tmp_path: Path) -> None:
    study = orthanc.get(f"/studies/{study_id}").json()
    assert result["series"] in study["Series"]
    series = orthanc.get(f"/series/{result['series']}").json()
    assert series["MainDicomTags"]["Modality"] == "CT"
    assert series["MainDicomTags"]["SeriesDescription"].startswith("CBCT FDK hann 1")
    assert len(series["Instances"]) == result["slices"]
    ordered = orthanc.get(f"/series/{result['series']}/ordered-slices").json()
    middle = ordered["Dicom"][len(ordered["Dicom"]) // 2].split("/")[2]
    path = tmp_path / "slice.dcm"
    path.write_bytes(orthanc.get(f"/instances/{middle}/file").content)
    assert dciodvfy_errors(path) == []
    ds = pydicom.dcmread(path)
    hounsfield = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    rows, columns = hounsfield.shape
    centre = hounsfield[rows // 2 - 2 : rows // 2 + 3, columns // 2 - 2 : columns // 2 + 3]
    assert abs(centre.mean() - 20) < 25  # Shepp-Logan brain: 1.02 x water = +20 HU


@pytest.fixture(scope="module")
def simulated(orthanc: OrthancServer) -> dict:
    """One simulated acquisition and its automatic reconstruction (the module's tests that
    read or tune a reconstruction share them)."""
    accepted = orthanc.post("/api/acquisitions/simulate", json=SMALL_ACQUISITION)
    assert accepted.status_code == 202, accepted.text
    simulation = orthanc.wait_job(accepted.json()["id"], timeout=120)
    assert simulation["state"] == "succeeded", simulation
    automatic = reconstruction_of(orthanc, simulation["result"]["series"])
    return {
        "study": simulation["result"]["study"],
        "series": simulation["result"]["series"],
        "automatic": automatic,
    }


def test_a_simulated_acquisition_becomes_a_ct_series(
    orthanc: OrthancServer, simulated: dict, tmp_path: Path
) -> None:
    result = simulated["automatic"]
    assert result["state"] == "succeeded", result
    check_ct_series(orthanc, simulated["study"], result["result"], tmp_path)


def test_projections_sent_with_storescu_are_reconstructed(
    orthanc: OrthancServer, tmp_path: Path
) -> None:
    from hounsfield.recon import engine

    dataset = shepp_logan_acquisition(
        {"PatientID": "SCU-1", "PatientName": "Modality^Test"}, "short scan", "scu-test"
    )
    path = tmp_path / "projections.dcm"
    dataset.save_as(path, enforce_file_format=True)
    orthanc.store(path)
    found = orthanc.post("/tools/lookup", data=dataset.SeriesInstanceUID).json()
    series_id = next(item["ID"] for item in found if item["Type"] == "Series")
    result = reconstruction_of(orthanc, series_id)
    assert result["state"] == "succeeded", result
    assert result["result"]["shortScan"] is True
    assert result["result"]["device"] == engine.fdk_device()  # the same machine decides alike
    study_id = orthanc.get(f"/series/{series_id}").json()["ParentStudy"]
    check_ct_series(orthanc, study_id, result["result"], tmp_path)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"projections": 3}, "projections"),
        ({"arc_degrees": 720}, "arc_degrees"),
        ({"source_to_isocenter_mm": -1}, "source_to_isocenter_mm"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_simulation_requests_are_refused(orthanc: OrthancServer, body, field) -> None:
    response = orthanc.post("/api/acquisitions/simulate", json=body)
    assert response.status_code == 400
    assert field in {detail["field"] for detail in response.json()["details"]}


def test_an_impossible_orbit_is_refused_before_queueing(orthanc: OrthancServer) -> None:
    before = orthanc.get("/api/jobs", params={"kind": "recon.simulate"}).json()["total"]
    response = orthanc.post(
        "/api/acquisitions/simulate",
        json={"source_to_isocenter_mm": 900, "source_to_detector_mm": 800},
    )
    assert response.status_code == 400
    assert "must exceed the source-to-isocentre distance" in response.json()["error"]
    assert orthanc.get("/api/jobs", params={"kind": "recon.simulate"}).json()["total"] == before


def test_tuning_makes_a_new_series_with_quality_figures(
    orthanc: OrthancServer, simulated: dict
) -> None:
    accepted = orthanc.post(
        "/api/reconstructions",
        json={"series": simulated["series"], "hann_cut": 0.5, "preview": True},
    )
    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["Location"] == f"/api/reconstructions/{accepted.json()['id']}"
    done = orthanc.wait_job(accepted.json()["id"], timeout=60)
    shown = orthanc.get(f"/api/reconstructions/{done['id']}").json()
    assert shown["state"] == "succeeded", shown
    result = shown["result"]
    assert result["preview"] is True and result["grid"]["size"][0] == 32
    assert result["series"] != simulated["automatic"]["result"]["series"]
    assert set(result["qc"]) == {"centreMeanHu", "noiseHu", "uniformityHu", "ringIndexHu"}
    assert abs(result["qc"]["centreMeanHu"] - 20) < 30
    description = orthanc.get(f"/series/{result['series']}").json()["MainDicomTags"]
    assert description["SeriesDescription"].startswith("PREVIEW CBCT FDK hann 0.5 32x")
    series = orthanc.get(f"/studies/{simulated['study']}").json()["Series"]
    assert {simulated["series"], result["series"]} <= set(series)  # a new series, same study

    runs = orthanc.get("/api/reconstructions", params={"series": simulated["series"]}).json()
    ids = [run["id"] for run in runs["reconstructions"]]
    assert {done["id"], simulated["automatic"]["id"]} <= set(ids)
    assert ids == sorted(ids, reverse=True)  # newest first
    assert all(run["params"]["series"] == simulated["series"] for run in runs["reconstructions"])
    assert runs["total"] == len(runs["reconstructions"])
    assert orthanc.get("/api/reconstructions", params={"series": "none"}).json()["total"] == 0


def test_bad_reconstruction_requests(orthanc: OrthancServer, simulated: dict) -> None:
    ct_series = simulated["automatic"]["result"]["series"]
    not_projections = orthanc.post("/api/reconstructions", json={"series": ct_series})
    assert not_projections.status_code == 400
    assert "not a projection series" in not_projections.json()["error"]
    assert orthanc.post("/api/reconstructions", json={"series": "nope"}).status_code == 404
    bad = orthanc.post(
        "/api/reconstructions",
        json={"series": simulated["series"], "hann_cut": 3, "method": "magic"},
    )
    assert {d["field"] for d in bad.json()["details"]} == {"hann_cut", "method"}
    sleeper = orthanc.submit("tests.sleep", seconds=0)
    assert orthanc.get(f"/api/reconstructions/{sleeper['id']}").status_code == 404


@pytest.fixture
def own_acquisition(orthanc: OrthancServer) -> dict:
    """A simulated acquisition of the test's own (a study no other test writes into), with
    many thin slices to catch being stored."""
    simulation = orthanc.wait_job(
        orthanc.post("/api/acquisitions/simulate", json=TALL_ACQUISITION).json()["id"], timeout=120
    )
    reconstruction_of(orthanc, simulation["result"]["series"])  # the automatic one, done
    return simulation["result"]


def test_a_worker_killed_while_storing_slices_leaves_one_whole_series(
    orthanc: OrthancServer, own_acquisition: dict
) -> None:
    study, series = own_acquisition["study"], own_acquisition["series"]
    running, pid, stored = start_and_wait_for_partial_series(orthanc, study, series)
    os.kill(pid, signal.SIGKILL)
    done = orthanc.wait_job(running["id"], timeout=180)
    assert_one_whole_series(orthanc, study, done, stored)


def test_orthanc_killed_while_storing_slices_leaves_one_whole_series(make_orthanc) -> None:
    # Automatic reconstruction off: the study's only reconstruction is the one killed.
    orthanc = make_orthanc(
        hounsfield__extensions=["hounsfield.recon"], hounsfield_recon__automatic=False
    ).start()
    simulation = orthanc.wait_job(
        orthanc.post("/api/acquisitions/simulate", json=TALL_ACQUISITION).json()["id"], timeout=120
    )
    series, study = simulation["result"]["series"], simulation["result"]["study"]
    running, pid, stored = start_and_wait_for_partial_series(orthanc, study, series)
    orthanc.stop(signal.SIGKILL)
    wait_for(lambda: not process_alive(pid), 10, "the worker to die with Orthanc")
    orthanc.start()
    done = orthanc.wait_job(running["id"], timeout=180)
    assert_one_whole_series(orthanc, study, done, stored)


@pytest.mark.parametrize(
    ("method", "described"),
    [
        ("sart", "CBCT SART 2it 10/subset lambda 0.9 32x"),
        ("cg", "CBCT CG 2it 32x"),
        ("tv", "CBCT ADMM-TV 2it strength 4 32x"),
    ],
)
def test_an_iterative_reconstruction_on_request(
    orthanc: OrthancServer, simulated: dict, method: str, described: str
) -> None:
    body = {"series": simulated["series"], "method": method, "iterations": 2, "voxels": 32}
    job = orthanc.post("/api/reconstructions", json=body).json()
    done = orthanc.wait_job(job["id"], timeout=120)
    assert done["state"] == "succeeded", done
    tags = orthanc.get(f"/series/{done['result']['series']}").json()["MainDicomTags"]
    assert tags["SeriesDescription"].startswith(described)
    assert done["result"]["method"] == method


def test_the_command_line_simulator_follows_the_flow(orthanc: OrthancServer) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "hounsfield.recon.cli",
            "--url",
            orthanc.base_url,
            "--projections",
            "60",
            "--detector",
            "48",
            "--arc",
            "200",
            "--noise",
        ],
        env={
            **os.environ,
            "HOUNSFIELD_PASSWORD": ADMIN_PASSWORD,
            "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "plugin"),
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("simulation queued: job ")
    assert lines[-2].startswith("CT series ") and '"noiseHu"' in lines[-2]
    link = lines[-1].removeprefix(f"open it: {orthanc.base_url}")
    assert link.startswith("/ohif/viewer?StudyInstanceUIDs=1.")
    assert orthanc.get(link).status_code == 200  # the viewer's page for that study


def test_automatic_reconstruction_can_be_turned_off(make_orthanc, tmp_path: Path) -> None:
    orthanc = make_orthanc(
        stable_age=1,
        hounsfield__extensions=["hounsfield.recon"],
        hounsfield_recon__automatic=False,
    ).start()
    # Sent as a C-arm sends it (built without the plugin: no worker has to load RTK first).
    orbit = Orbit(500, 800, 0, 360, 60, 32, 24, 1.6)
    path = tmp_path / "projections.dcm"
    acquisition = projection_object(orbit, Sphere((0.0, 0.0, 0.0), 6.0, 1.0), [], "no-auto")
    acquisition.save_as(path, enforce_file_format=True)
    orthanc.store(path)
    found = orthanc.post("/tools/lookup", data=acquisition.SeriesInstanceUID).json()
    series = next(item["ID"] for item in found if item["Type"] == "Series")
    study = orthanc.get(f"/series/{series}").json()["ParentStudy"]

    def judged() -> dict | None:
        """The stable-study hook's verdict on the series, once its event is wholly delivered
        (the hook records the verdict, then queues the reconstruction when automatic)."""
        verdict = orthanc.get("/api/reconstructions", params={"series": series}).json()["series"]
        if verdict is None or orthanc.get("/api/health").json()["components"]["events"]["pending"]:
            return None
        return verdict if orthanc.get(f"/studies/{study}").json()["IsStable"] else None

    verdict = wait_for(judged, 30, "the study to become stable and be judged")
    assert verdict["reconstructable"] is True, verdict  # it would have been reconstructed
    assert orthanc.get("/api/jobs", params={"kind": "recon.reconstruct"}).json()["total"] == 0
    accepted = orthanc.post("/api/reconstructions", json={"series": series, "preview": True})
    assert accepted.status_code == 202  # on request it still works

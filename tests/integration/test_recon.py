"""CBCT end to end: projections in (simulated, or sent with storescu), a CT series out."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from hounsfield.recon.geometry import CircularGeometry
from hounsfield.recon.params import WATER_ATTENUATION_PER_MM
from hounsfield.recon.projections import build_projection_dataset
from tests.support.server import OrthancServer, wait_for

SMALL = {"projections": 90, "detector_columns": 64, "detector_rows": 48, "pixel_spacing_mm": 1.0}


def reconstruction_of(orthanc: OrthancServer, series_id: str) -> dict:
    def find() -> dict | None:
        jobs = orthanc.get("/api/jobs", params={"kind": "recon.fdk", "limit": 500}).json()["jobs"]
        return next((job for job in jobs if job["params"]["series"] == series_id), None)

    job = wait_for(find, 30, f"a reconstruction job for series {series_id}")
    return orthanc.wait_job(job["id"], timeout=120)


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


def test_a_simulated_acquisition_becomes_a_ct_series(
    orthanc: OrthancServer, tmp_path: Path
) -> None:
    accepted = orthanc.post("/api/acquisitions/simulate", json=SMALL)
    assert accepted.status_code == 202, accepted.text
    simulation = orthanc.wait_job(accepted.json()["id"], timeout=120)
    assert simulation["state"] == "succeeded", simulation
    result = reconstruction_of(orthanc, simulation["result"]["series"])
    assert result["state"] == "succeeded", result
    check_ct_series(orthanc, simulation["result"]["study"], result["result"], tmp_path)


def test_projections_sent_with_storescu_are_reconstructed(
    orthanc: OrthancServer, tmp_path: Path
) -> None:
    engine = pytest.importorskip("hounsfield.recon.engine")
    geometry = CircularGeometry(500.0, 800.0, tuple(np.linspace(0, 220, 80)), (1.0, 1.0), (64, 48))
    line_integrals = engine.shepp_logan_projections(geometry, 16.0) * WATER_ATTENUATION_PER_MM
    counts = np.rint(40000 * np.exp(-line_integrals)).astype(np.uint16)
    dataset = build_projection_dataset(
        counts,
        geometry,
        40000.0,
        {"PatientID": "SCU-1", "PatientName": "Modality^Test"},
        series_description="short scan",
        uid_seed="scu-test",
    )
    path = tmp_path / "projections.dcm"
    dataset.save_as(path, enforce_file_format=True)
    orthanc.store(path)
    found = orthanc.post("/tools/lookup", data=dataset.SeriesInstanceUID).json()
    series_id = next(item["ID"] for item in found if item["Type"] == "Series")
    result = reconstruction_of(orthanc, series_id)
    assert result["state"] == "succeeded", result
    assert result["result"]["shortScan"] is True
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

"""Uploading acquisitions and following reconstruction jobs, for tests and benchmarks."""

from __future__ import annotations

import json

import numpy as np
import requests
from pydicom import Dataset
from urllib3 import encode_multipart_formdata

from hounsfield.recon.geometry import CircularGeometry
from hounsfield.recon.params import WATER_ATTENUATION_PER_MM
from hounsfield.recon.projections import build_projection_dataset
from tests.support.server import OrthancServer, wait_for

# A simulated acquisition small enough for a test: 90 projections of 64 x 48, reconstructed
# to 64 x 48 x 64 in well under a second.
SMALL_ACQUISITION = {
    "projections": 90,
    "detector_columns": 64,
    "detector_rows": 48,
    "pixel_spacing_mm": 1.0,
}

# An acquisition to catch a reconstruction while its slices are being stored: a tall,
# narrow detector gives many thin slices for little back-projection. At KILL_VOXELS across,
# 192 slices of 48 x 48 take over a second to store (the tests catch them 2 to 4 slices in)
# and 0.2 s to reconstruct; SMALL_ACQUISITION at 256 voxels gave as many slices, but from
# 28 times the voxels: 7 to 26 s of reconstruction on two cores, for each attempt.
TALL_ACQUISITION = {
    "projections": 60,
    "detector_columns": 32,
    "detector_rows": 128,
    "pixel_spacing_mm": 1.0,
}
KILL_VOXELS = 48


def shepp_logan_acquisition(patient: dict[str, str], description: str, seed: str) -> Dataset:
    """A short-scan projection object (80 views of 64 x 48 over 220 degrees) of the
    Shepp-Logan head, as a C-arm would send it."""
    from hounsfield.recon import engine  # RTK: loaded by the tests that need it

    geometry = CircularGeometry(500.0, 800.0, tuple(np.linspace(0, 220, 80)), (1.0, 1.0), (64, 48))
    line_integrals = engine.shepp_logan_projections(geometry, 16.0) * WATER_ATTENUATION_PER_MM
    counts = np.rint(40000 * np.exp(-line_integrals)).astype(np.uint16)
    return build_projection_dataset(
        counts, geometry, 40000.0, patient, series_description=description, uid_seed=seed
    )


def upload_acquisition(
    orthanc: OrthancServer,
    files: list[bytes],
    geometry: dict | str | None,
    xml: bytes | None = None,
    *,
    timeout: float = 10,
) -> requests.Response:
    """POST /api/acquisitions: a multipart/mixed body whose parts are named as in a form."""
    fields: list[tuple[str, tuple[str, bytes | str, str]]] = [
        ("projections", (f"p{n}.tif", content, "image/tiff")) for n, content in enumerate(files)
    ]
    if geometry is not None:
        text = geometry if isinstance(geometry, str) else json.dumps(geometry)
        fields.append(("geometry", ("geometry.json", text, "application/json")))
    if xml is not None:
        fields.append(("rtk_geometry", ("geometry.xml", xml, "application/xml")))
    body, content_type = encode_multipart_formdata(fields)
    mixed = content_type.replace("multipart/form-data", "multipart/mixed")
    return orthanc.post(
        "/api/acquisitions", data=body, headers={"Content-Type": mixed}, timeout=timeout
    )


def reconstruction_job(orthanc: OrthancServer, series_id: str) -> dict:
    """The automatic reconstruction job of a projection series, once queued."""

    def find() -> dict | None:
        jobs = orthanc.get("/api/jobs", params={"kind": "recon.reconstruct", "limit": 500}).json()[
            "jobs"
        ]
        return next((job for job in jobs if job["params"]["series"] == series_id), None)

    return wait_for(find, 30, f"a reconstruction job for series {series_id}")


def reconstruction_of(orthanc: OrthancServer, series_id: str, timeout: float = 120) -> dict:
    """The automatic reconstruction job of a projection series, once it has finished."""
    return orthanc.wait_job(reconstruction_job(orthanc, series_id)["id"], timeout=timeout)


def ct_series_of(orthanc: OrthancServer, study_id: str, size_marker: str) -> list[str]:
    found = []
    for series_id in orthanc.get(f"/studies/{study_id}").json()["Series"]:
        tags = orthanc.get(f"/series/{series_id}").json()["MainDicomTags"]
        if tags.get("Modality") == "CT" and size_marker in tags.get("SeriesDescription", ""):
            found.append(series_id)
    return found


def start_and_wait_for_partial_series(
    orthanc: OrthancServer, study: str, series: str, voxels: int = KILL_VOXELS
) -> tuple[dict, int, int]:
    """A reconstruction ``voxels`` across, caught while its slices are being stored: (the
    job, its worker's pid, how many slices were in Orthanc). UIDs that were not derived
    from the job would leave a second, partial series behind the killed attempt."""
    job = orthanc.post("/api/reconstructions", json={"series": series, "voxels": voxels}).json()

    def partly_stored() -> tuple[dict, int] | None:
        running = orthanc.job(job["id"])
        if running["state"] != "running" or running["progress"] < 90:
            return None
        for ct in ct_series_of(orthanc, study, f" {voxels}x"):
            stored = len(orthanc.get(f"/series/{ct}").json()["Instances"])
            if stored:
                return running, stored
        return None

    running, stored = wait_for(partly_stored, 120, "the first slices to be stored", 0.02)
    return running, int(running["worker"].rsplit("/", 1)[1]), stored


def assert_one_whole_series(
    orthanc: OrthancServer, study: str, done: dict, stored: int, voxels: int = KILL_VOXELS
) -> None:
    """The retried job's series is the only one, with every slice exactly once."""
    assert done["state"] == "succeeded" and done["attempts"] == 2, done
    slices = done["result"]["slices"]
    assert 0 < stored < slices, "the kill must come while slices are being stored"
    assert ct_series_of(orthanc, study, f" {voxels}x") == [done["result"]["series"]]
    instances = orthanc.get(f"/series/{done['result']['series']}/instances").json()
    assert len(instances) == slices
    uids = {instance["MainDicomTags"]["SOPInstanceUID"] for instance in instances}
    numbers = sorted(int(instance["MainDicomTags"]["InstanceNumber"]) for instance in instances)
    assert len(uids) == slices and numbers == list(range(1, slices + 1))

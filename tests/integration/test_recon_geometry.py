"""The reconstruction held to a truth built without any of its code: a sphere phantom
projected by tests/support/scanner.py (a C-arm as DICOM describes it), sent by C-STORE,
reconstructed automatically, and read back from Orthanc as a viewer reads it, through
the CT series' ImagePositionPatient, ImageOrientationPatient and PixelSpacing.

Each insert sits off every midline, so a mirrored, rotated or shifted volume puts it in
the wrong place; water and two materials are held to their Hounsfield values.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest

from tests.support.angiography import dciodvfy_errors
from tests.support.recon import reconstruction_of
from tests.support.scanner import Orbit, Sphere, projection_object
from tests.support.server import OrthancServer

BODY = Sphere((0.0, 0.0, 0.0), 38.0, 1.0)  # water
BONE_LIKE = Sphere((18.0, -12.0, 8.0), 7.0, 1.5)  # +500 HU: left, anterior, toward the head
FAT_LIKE = Sphere((-15.0, 14.0, -6.0), 7.0, 0.8)  # -200 HU: right, posterior, toward the feet
ORBITS = {
    "full-scan": Orbit(500, 800, 0, 360, 180, 96, 80, 1.6),
    "short-scan": Orbit(500, 800, -100, 220, 110, 96, 80, 1.6),
    # The detector displaced 30 mm sideways on a full turn: it sees each half of a field
    # wider than itself (64 columns of 1.6 mm would see a 64 mm wide field centred).
    "displaced-detector": Orbit(500, 800, 0, 360, 200, 64, 80, 1.6, (30.0, 0.0)),
}


@dataclass
class Volume:
    hounsfield: np.ndarray  # (slice, row, column)
    points: np.ndarray  # patient coordinates (slice, row, column, xyz), mm
    files: list[bytes]

    def within(self, sphere: Sphere, margin: float) -> np.ndarray:
        distance = np.linalg.norm(self.points - np.asarray(sphere.centre), axis=-1)
        return distance < sphere.radius + margin


def read_series(orthanc: OrthancServer, series: str) -> Volume:
    """Every slice, placed by its own ImagePositionPatient and orientation."""
    slices = []
    for instance in orthanc.get(f"/series/{series}").json()["Instances"]:
        data = orthanc.get(f"/instances/{instance}/file").content
        slices.append((pydicom.dcmread(io.BytesIO(data)), data))
    slices.sort(key=lambda item: float(item[0].ImagePositionPatient[2]))
    hounsfield, points = [], []
    for ds, _ in slices:
        hounsfield.append(ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
        origin = np.asarray(ds.ImagePositionPatient, dtype=float)
        orientation = np.asarray(ds.ImageOrientationPatient, dtype=float)
        row_step, column_step = (float(v) for v in ds.PixelSpacing)
        rows, columns = np.meshgrid(np.arange(ds.Rows), np.arange(ds.Columns), indexing="ij")
        points.append(
            origin
            + columns[..., None] * column_step * orientation[:3]
            + rows[..., None] * row_step * orientation[3:]
        )
    return Volume(np.asarray(hounsfield), np.asarray(points), [data for _, data in slices])


@pytest.fixture(scope="module")
def reconstructed(orthanc: OrthancServer, tmp_path_factory) -> dict[str, Volume]:
    """Each orbit's acquisition sent as a C-arm sends it, and its automatic reconstruction
    (all sent at once: their studies become stable and are reconstructed side by side)."""
    folder = Path(tmp_path_factory.mktemp("scanner"))
    paths = {name: folder / f"{name}.dcm" for name in ORBITS}
    for name, orbit in ORBITS.items():
        projection_object(orbit, BODY, [BONE_LIKE, FAT_LIKE], f"geometry-{name}").save_as(
            paths[name], enforce_file_format=True
        )
    orthanc.store(*paths.values())
    volumes = {}
    for name, path in paths.items():
        found = orthanc.post("/tools/lookup", data=pydicom.dcmread(path).SeriesInstanceUID).json()
        projections = next(item["ID"] for item in found if item["Type"] == "Series")
        job = reconstruction_of(orthanc, projections, timeout=300)
        assert job["state"] == "succeeded", job
        volumes[name] = read_series(orthanc, job["result"]["series"])
    return volumes


@pytest.mark.parametrize("orbit", list(ORBITS))
@pytest.mark.parametrize("insert", [BONE_LIKE, FAT_LIKE], ids=["bone-like", "fat-like"])
def test_an_insert_is_found_where_it_is(reconstructed: dict, orbit: str, insert: Sphere) -> None:
    volume = reconstructed[orbit]
    contrast = 1000.0 * (insert.density - BODY.density)
    # Where the volume has the insert's value (half its contrast or more), near the body
    looks_like = (volume.hounsfield - 0.0) * np.sign(contrast) > abs(contrast) / 2
    looks_like &= volume.within(BODY, -3.0)
    found = volume.points[looks_like].mean(axis=0)
    assert np.linalg.norm(found - np.asarray(insert.centre)) < 1.5, (orbit, found)
    core = volume.within(insert, -2.0)
    assert core.sum() > 300
    assert abs(volume.hounsfield[core].mean() - contrast) < 15, volume.hounsfield[core].mean()


@pytest.mark.parametrize("orbit", list(ORBITS))
def test_water_is_zero(reconstructed: dict, orbit: str) -> None:
    volume = reconstructed[orbit]
    water = volume.within(BODY, -8.0) & ~volume.within(BONE_LIKE, 3.0)
    water &= ~volume.within(FAT_LIKE, 3.0)
    assert water.sum() > 10_000
    assert abs(volume.hounsfield[water].mean()) < 5


def test_every_slice_is_valid_dicom(reconstructed: dict, tmp_path: Path) -> None:
    files = reconstructed["full-scan"].files
    assert len(files) >= 60
    for number, data in enumerate(files):
        path = tmp_path / f"{number}.dcm"
        path.write_bytes(data)
        assert dciodvfy_errors(path) == [], number

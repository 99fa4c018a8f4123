"""Synthetic CT studies for the AI tests: volumes with known truth, as DICOM slices."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from hounsfield.dicom_objects import encode, new_instance, set_unsigned_pixels
from tests.support.server import OrthancServer, wait_for

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
INTERCEPT = -1024


@dataclass(frozen=True)
class Sphere:
    centre: tuple[float, float, float]  # voxel (slice, row, column)
    radius_mm: float
    hu: float

    @property
    def volume_ml(self) -> float:
        return 4 / 3 * np.pi * self.radius_mm**3 / 1000


@dataclass(frozen=True)
class Phantom:
    """A water cylinder (the body) in air, with spheres inside, on an axial grid."""

    shape: tuple[int, int, int] = (40, 96, 96)
    spacing: tuple[float, float, float] = (2.0, 1.5, 1.5)  # slice, row, column (mm)
    body_radius_mm: float = 60.0
    spheres: tuple[Sphere, ...] = field(default_factory=tuple)
    seed: int = 7

    def voxels(self) -> np.ndarray:
        slices, rows, columns = np.indices(self.shape, dtype=np.float32)
        ds, dr, dc = self.spacing
        centre_r, centre_c = (self.shape[1] - 1) / 2, (self.shape[2] - 1) / 2
        radius = np.hypot((rows - centre_r) * dr, (columns - centre_c) * dc)
        hu = np.where(radius <= self.body_radius_mm, 0.0, -1000.0).astype(np.float32)
        hu += np.random.default_rng(self.seed).normal(0, 8, self.shape).astype(np.float32)
        for sphere in self.spheres:
            k, r, c = sphere.centre
            distance = np.sqrt(
                ((slices - k) * ds) ** 2 + ((rows - r) * dr) ** 2 + ((columns - c) * dc) ** 2
            )
            hu[distance <= sphere.radius_mm] = sphere.hu
        return hu


def ct_slices(
    hu: np.ndarray,
    spacing: tuple[float, float, float],
    *,
    patient_id: str = "AI-0001",
    patient_name: str = "PHANTOM^AI",
    description: str = "CT abdomen",
    body_part: str = "ABDOMEN",
    accession: str = "",
) -> Iterator[bytes]:
    """One CT Image Storage file per slice of ``hu`` (slice, row, column): axial, feet
    first in z as slices go, origin at (0, 0, 0), stored unsigned with intercept -1024."""
    seed = f"{patient_id}:{description}:{hu.shape}"
    study = {
        "PatientID": patient_id,
        "PatientName": patient_name,
        "StudyInstanceUID": generate_uid(entropy_srcs=[seed, "study"]),
        "StudyDate": "20261124",
        "StudyTime": "101500",
        "StudyID": "1",
        "AccessionNumber": accession,
        "StudyDescription": description,
    }
    series_uid = generate_uid(entropy_srcs=[seed, "series"])
    frame_of_reference = generate_uid(entropy_srcs=[seed, "frame"])
    stored = np.clip(np.rint(hu) - INTERCEPT, 0, 65535).astype(np.uint16)
    for index in range(hu.shape[0]):
        ds: Dataset = new_instance(
            CT_IMAGE_STORAGE, generate_uid(entropy_srcs=[seed, str(index)]), study
        )
        ds.Modality = "CT"
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = 2
        ds.SeriesDescription = description
        ds.BodyPartExamined = body_part
        ds.FrameOfReferenceUID = frame_of_reference
        ds.PositionReferenceIndicator = ""
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = index + 1
        ds.ImagePositionPatient = [0.0, 0.0, index * spacing[0]]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [spacing[1], spacing[2]]
        ds.SliceThickness = spacing[0]
        ds.RescaleIntercept = INTERCEPT
        ds.RescaleSlope = 1
        ds.KVP = 120
        set_unsigned_pixels(ds, stored[index])
        yield encode(ds)


def store_series(orthanc: OrthancServer, slices: Iterator[bytes]) -> str:
    """Store the slices; Orthanc's study id."""
    study = ""
    for data in slices:
        answer = orthanc.post("/instances", data=data)
        assert answer.status_code == 200, answer.text
        study = answer.json()["ParentStudy"]
    return study


def wait_for_jobs(orthanc: OrthancServer, job_ids: list[int], timeout: float = 120) -> list[dict]:
    """The jobs once every one has finished (succeeded, failed or cancelled)."""

    def finished() -> list[dict] | None:
        jobs = [orthanc.get(f"/api/jobs/{job}").json() for job in job_ids]
        done = all(job["state"] in ("succeeded", "failed", "cancelled") for job in jobs)
        return jobs if done else None

    return wait_for(finished, timeout, f"jobs {job_ids} to finish", interval=0.3)


@dataclass(frozen=True)
class Head:
    """A skull (an ellipsoidal bone shell) around brain, with hyperdense spheres inside."""

    shape: tuple[int, int, int] = (36, 96, 96)
    spacing: tuple[float, float, float] = (3.0, 2.0, 2.0)
    semi_axes_mm: tuple[float, float, float] = (50.0, 80.0, 65.0)  # slice, row, column
    skull_mm: float = 6.0
    brain_hu: float = 35.0
    spheres: tuple[Sphere, ...] = field(default_factory=tuple)
    seed: int = 11

    def voxels(self) -> np.ndarray:
        grid = np.indices(self.shape, dtype=np.float32)
        centre = [(n - 1) / 2 for n in self.shape]
        # The ellipsoid's "radius" of each voxel in mm along its own direction.
        scaled = np.sqrt(
            sum(
                ((grid[i] - centre[i]) * self.spacing[i] / self.semi_axes_mm[i]) ** 2
                for i in range(3)
            )
        )
        mean_axis = float(np.mean(self.semi_axes_mm))
        depth_mm = (1 - scaled) * mean_axis  # about how far inside the outer surface
        rng = np.random.default_rng(self.seed)
        hu = np.full(self.shape, -1000.0, np.float32)
        hu[depth_mm >= 0] = 1000.0
        inside = depth_mm >= self.skull_mm
        hu[inside] = self.brain_hu + rng.normal(0, 4, int(inside.sum()))
        slices, rows, columns = grid
        ds, dr, dc = self.spacing
        for sphere in self.spheres:
            k, r, c = sphere.centre
            distance = np.sqrt(
                ((slices - k) * ds) ** 2 + ((rows - r) * dr) ** 2 + ((columns - c) * dc) ** 2
            )
            hu[distance <= sphere.radius_mm] = sphere.hu
        return hu

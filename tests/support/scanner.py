"""A C-arm as the DICOM standard describes it, written without any of the plugin's code:
the truth the reconstruction tests hold our geometry to.

Conventions (the patient supine, head first; LPS patient coordinates: +X the patient's
left, +Y posterior, +Z toward the head; the orbit about the patient's Z axis through the
isocentre, the origin):

- PositionerPrimaryAngle (PS3.3 C.8.7.5.1.2): the detector's position about the patient,
  0 above the chest (the beam posterior to anterior), +90 at the patient's left (LAO).
  A detector at angle t lies in the direction R(t)(0, -1, 0) from the isocentre, the source
  opposite it at R(t)(0, SID, 0), R(t) the rotation about Z taking (x, y) to
  (x cos t - y sin t, x sin t + y cos t).
- PositionerPrimaryAngleIncrement: each frame's angle, relative to the first frame's.
- The image as radiographs are read: at angle 0 the columns run toward the patient's left
  (the viewer faces the patient) and turn with the C-arm (column axis R(t)(1, 0, 0)); the
  first row is toward the head (row axis -Z).
- Intensities: counts = I0 exp(-sum of mu x path length), written with I0 and the detector
  offset (u, v: the detector's centre moved along its column and row axes, mm) in the
  "HOUNSFIELD CBCT" private block the README documents.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

XA_STORAGE = "1.2.840.10008.5.1.4.1.1.12.1"
WATER_MU = 0.0195  # per mm, the plugin's default effective water attenuation


@dataclass(frozen=True)
class Sphere:
    centre: tuple[float, float, float]  # LPS, mm
    radius: float  # mm
    density: float  # attenuation relative to water: 1 water, 2 about +1000 HU, 0 air


@dataclass(frozen=True)
class Orbit:
    source_to_isocentre: float
    source_to_detector: float
    first_angle: float
    arc: float  # degrees covered by the frames (each frame's share included)
    frames: int
    columns: int
    rows: int
    pixel_mm: float
    offset: tuple[float, float] = (0.0, 0.0)

    @property
    def angles(self) -> np.ndarray:
        step = self.arc / self.frames
        return self.first_angle + step * np.arange(self.frames)


def _rotation(angle_degrees: float) -> np.ndarray:
    t = np.radians(angle_degrees)
    return np.array([[np.cos(t), -np.sin(t), 0.0], [np.sin(t), np.cos(t), 0.0], [0, 0, 1.0]])


def line_integrals(orbit: Orbit, body: Sphere, inserts: list[Sphere]) -> np.ndarray:
    """(frame, row, column) of the integral of mu along each ray, per the conventions above."""
    columns = (np.arange(orbit.columns) - (orbit.columns - 1) / 2) * orbit.pixel_mm
    rows = (np.arange(orbit.rows) - (orbit.rows - 1) / 2) * orbit.pixel_mm
    u, v = np.meshgrid(columns + orbit.offset[0], rows + orbit.offset[1])
    result = np.zeros((orbit.frames, orbit.rows, orbit.columns))
    for frame, angle in enumerate(orbit.angles):
        rotation = _rotation(angle)
        source = rotation @ np.array([0.0, orbit.source_to_isocentre, 0.0])
        centre = rotation @ np.array(
            [0.0, -(orbit.source_to_detector - orbit.source_to_isocentre), 0.0]
        )
        column_axis, row_axis = rotation @ np.array([1.0, 0, 0]), np.array([0.0, 0, -1])
        pixels = centre + u[..., None] * column_axis + v[..., None] * row_axis
        directions = pixels - source
        directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
        total = body.density * _chords(source, directions, body)
        for insert in inserts:
            total += (insert.density - body.density) * _chords(source, directions, insert)
        result[frame] = WATER_MU * total
    return result


def _chords(source: np.ndarray, directions: np.ndarray, sphere: Sphere) -> np.ndarray:
    """Length of each ray (unit ``directions`` from ``source``) inside ``sphere``."""
    to_centre = np.asarray(sphere.centre) - source
    along = directions @ to_centre
    squared_distance = to_centre @ to_centre - along**2
    return 2.0 * np.sqrt(np.clip(sphere.radius**2 - squared_distance, 0.0, None))


def xa_object(seed: str) -> Dataset:
    """An empty X-ray angiographic object with UIDs derived from ``seed``."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = XA_STORAGE
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(
        entropy_srcs=[seed, "instance"]
    )
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[seed, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[seed, "series"])
    return ds


def projection_object(orbit: Orbit, body: Sphere, inserts: list[Sphere], seed: str) -> Dataset:
    """The acquisition as a C-arm would send it: one multi-frame XA object."""
    i0 = 60000.0
    counts = np.clip(np.rint(i0 * np.exp(-line_integrals(orbit, body, inserts))), 1, 65535)
    ds = xa_object(seed)
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = (
        "Phantom^Spheres",
        seed,
        "",
        "O",
    )
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20261124", "120000", "1", ""
    ds.ReferringPhysicianName, ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "", "XA", 1, 1
    ds.SeriesDescription, ds.Manufacturer = f"Sphere phantom {seed}", "Test C-arm"
    ds.PatientPosition = "HFS"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "SINGLE PLANE"]
    ds.Laterality, ds.PatientOrientation = "", ""
    ds.KVP, ds.XRayTubeCurrent, ds.ExposureTime, ds.Exposure = "90", "200", "10", "2"
    ds.RadiationSetting, ds.PixelIntensityRelationship = "GR", "LIN"
    ds.DistanceSourceToDetector = f"{orbit.source_to_detector:g}"
    ds.DistanceSourceToPatient = f"{orbit.source_to_isocentre:g}"
    ds.ImagerPixelSpacing = [f"{orbit.pixel_mm:g}", f"{orbit.pixel_mm:g}"]
    ds.PositionerMotion = "DYNAMIC"
    ds.PositionerPrimaryAngle, ds.PositionerSecondaryAngle = f"{orbit.first_angle:g}", "0"
    first = orbit.angles[0]
    ds.PositionerPrimaryAngleIncrement = [f"{angle - first:.6g}" for angle in orbit.angles]
    ds.PositionerSecondaryAngleIncrement = ["0"] * orbit.frames
    ds.NumberOfFrames, ds.FrameTime, ds.FrameIncrementPointer = orbit.frames, "20", 0x00181063
    ds.Rows, ds.Columns, ds.SamplesPerPixel = orbit.rows, orbit.columns, 1
    ds.PhotometricInterpretation, ds.PixelRepresentation = "MONOCHROME2", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelData = counts.astype(np.uint16).tobytes()
    block = ds.private_block(0x0029, "HOUNSFIELD CBCT", create=True)
    block.add_new(0x10, "FD", i0)
    block.add_new(0x11, "FD", [float(value) for value in orbit.offset])
    return ds

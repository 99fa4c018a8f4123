"""A series from Orthanc as one ``Volume``, or the reason it cannot be one.

Core: every feature that reads a CT series as a grid of Hounsfield units loads it here, and
none needs to import another extension to do so.

Each slice's file is read (a few at a time: Orthanc answers them in parallel) and checked
before its pixels are used: an image (pixel data, one sample, integer pixels, one frame),
one orientation, one size and pixel spacing, one frame of reference; slices sorted along
the normal, evenly spaced (within 1 %, or 0.05 mm). Anything else is a ``VolumeError``
naming the problem, so that an SR, a PDF, an RTSTRUCT, a localizer or a mixed series fails
cleanly in its job and every other job goes on.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from hounsfield.orthanc_api import OrthancApi

Voxel = tuple[float, float, float]  # (slice, row, column), fractional for a centroid
Point = tuple[float, float, float]  # patient coordinates (x, y, z) in mm


class VolumeError(Exception):
    """The series cannot be one volume (not an image, one slice, uneven spacing...): the
    message says why, for the job's error and the user."""


@dataclass(frozen=True)
class Volume:
    """One series as a volume in Hounsfield units, slices sorted along their normal.

    ``voxels`` is float32 (slices, rows, columns). ``spacing`` is (between slices, between
    rows, between columns) in mm: the slice spacing measured from the positions, then
    DICOM's PixelSpacing (row spacing first). ``orientation`` is ImageOrientationPatient
    (the row direction's cosines, then the column direction's), ``origin`` the
    ImagePositionPatient of the first slice (the centre of its first voxel).
    """

    voxels: np.ndarray
    spacing: tuple[float, float, float]
    origin: Point
    orientation: tuple[float, float, float, float, float, float]
    instances: tuple[str, ...]  # SOPInstanceUID of each slice
    sop_class: str  # of the slices
    series_uid: str
    study_uid: str
    frame_of_reference: str
    tags: Mapping[str, str] = field(default_factory=dict)  # Modality, BodyPartExamined...

    @property
    def normal(self) -> np.ndarray:
        row, column = np.array(self.orientation[:3]), np.array(self.orientation[3:])
        return np.cross(row, column)

    @property
    def voxel_ml(self) -> float:
        """The volume of one voxel in ml (1 ml = 1000 mm^3)."""
        return float(np.prod(self.spacing)) / 1000.0

    def patient_point(self, voxel: Voxel) -> Point:
        """Where a voxel (fractional indices allowed) lies in patient coordinates (mm)."""
        k, r, c = voxel
        slice_mm, row_mm, column_mm = self.spacing
        row, column = np.array(self.orientation[:3]), np.array(self.orientation[3:])
        point = (
            np.array(self.origin)
            + k * slice_mm * self.normal
            + r * row_mm * column  # down the rows: the column direction
            + c * column_mm * row  # along a row: the row direction
        )
        x, y, z = (float(v) for v in point)
        return (x, y, z)

    def instance_at(self, voxel: Voxel) -> str:
        """The SOP instance of the slice nearest to ``voxel``."""
        index = min(max(round(voxel[0]), 0), len(self.instances) - 1)
        return self.instances[index]


FETCHERS = 4  # files read at once
# What a feature may learn of the series from the volume: never the patient's identity (a
# remote service is sent what it is given).
DESCRIPTIVE_TAGS = (
    "Modality",
    "BodyPartExamined",
    "SeriesDescription",
    "StudyDescription",
    "Manufacturer",
    "ManufacturerModelName",
    "ConvolutionKernel",
    "SliceThickness",
)
NOT_IMAGES = {"SR", "DOC", "KO", "PR", "SEG", "RTSTRUCT", "RTPLAN", "RTDOSE", "RTRECORD", "REG"}
TOLERANCE = 1e-3  # direction cosines


@dataclass(frozen=True)
class LoadedSeries:
    volume: Volume
    sources: tuple[Dataset, ...]  # each slice's header (no pixel data), in volume order


def load_series(orthanc: OrthancApi, series_id: str, *, max_voxels: int) -> LoadedSeries:
    series = orthanc.get_json(f"/series/{series_id}")
    modality = series.get("MainDicomTags", {}).get("Modality", "")
    if modality in NOT_IMAGES:
        raise VolumeError(f"a {modality} series holds no images to analyse")
    instances: list[str] = series["Instances"]
    if len(instances) < 2:
        raise VolumeError("a single image is not a volume: at least two slices are needed")
    first = _read(orthanc, instances[0])
    header = SliceHeader.of(first, 1)
    total = header.rows * header.columns * len(instances)
    if total > max_voxels:
        raise VolumeError(
            f"{len(instances)} slices of {header.rows}x{header.columns} are {total:,} voxels,"
            f" more than the {max_voxels:,} this server analyses (MaxVoxels)"
        )
    with ThreadPoolExecutor(FETCHERS) as pool:
        slices = [first, *pool.map(lambda i: _read(orthanc, i), instances[1:])]
    return assemble(slices)


def _read(orthanc: OrthancApi, instance: str) -> Dataset:
    return pydicom.dcmread(io.BytesIO(orthanc.get_bytes(f"/instances/{instance}/file")))


def _numbers(ds: Dataset, name: str, count: int) -> tuple[float, ...]:
    values = ds.get(name)
    if values is None or isinstance(values, str | bytes):
        values = ()
    elif not isinstance(values, Sequence):
        values = (values,)
    numbers = tuple(float(v) for v in values)
    if len(numbers) != count or not np.isfinite(numbers).all():
        raise ValueError(f"{name} must hold {count} finite numbers")
    return numbers


@dataclass(frozen=True)
class SliceHeader:
    """What a slice's header says about its place in a volume, read once and checked."""

    rows: int
    columns: int
    position: tuple[float, ...]
    orientation: tuple[float, ...]
    pixel_spacing: tuple[float, ...]
    slope: float
    intercept: float
    frame_of_reference: str

    @classmethod
    def of(cls, ds: Dataset, number: int) -> SliceHeader:
        """``number`` names the slice in the error."""
        if "PixelData" not in ds:
            raise VolumeError(f"slice {number} holds no pixel data")
        try:
            if int(ds.get("SamplesPerPixel", 1)) != 1:
                raise VolumeError("colour images are not analysed (one sample per pixel needed)")
            if int(ds.get("NumberOfFrames", 1) or 1) > 1:
                raise VolumeError("multi-frame images are not analysed: send one image per slice")
            if int(ds.get("BitsAllocated", 0)) not in (8, 16, 32):
                raise VolumeError(f"{ds.get('BitsAllocated')}-bit pixels are not analysed")
            header = cls(
                rows=int(ds.Rows),
                columns=int(ds.Columns),
                position=_numbers(ds, "ImagePositionPatient", 3),
                orientation=_numbers(ds, "ImageOrientationPatient", 6),
                pixel_spacing=_numbers(ds, "PixelSpacing", 2),
                slope=float(ds.get("RescaleSlope", 1)),
                intercept=float(ds.get("RescaleIntercept", 0)),
                frame_of_reference=str(ds.get("FrameOfReferenceUID", "")),
            )
        except (AttributeError, TypeError, ValueError, OverflowError) as error:
            raise VolumeError(f"slice {number}'s header has no usable geometry: {error}") from None
        if min(header.rows, header.columns) < 1 or min(header.pixel_spacing) <= 0:
            raise VolumeError(f"slice {number} has no pixels or no positive PixelSpacing")
        if not (np.isfinite(header.slope) and np.isfinite(header.intercept)):
            raise VolumeError(f"slice {number}'s rescale is not a finite number")
        return header


def _same(values: Sequence[object], what: str) -> None:
    if any(value != values[0] for value in values):
        raise VolumeError(f"the slices differ in {what}: not one volume")


def assemble(slices: Sequence[Dataset]) -> LoadedSeries:
    """The slices (any order) as one volume; raises ``VolumeError`` when they are not."""
    headers = [SliceHeader.of(ds, number) for number, ds in enumerate(slices, start=1)]
    orientation = np.array([header.orientation for header in headers])
    if np.abs(orientation - orientation[0]).max() > TOLERANCE:
        raise VolumeError("the slices differ in orientation: not one volume")
    _same([(header.rows, header.columns) for header in headers], "size")
    _same([tuple(round(v, 4) for v in header.pixel_spacing) for header in headers], "pixel spacing")
    _same([header.frame_of_reference for header in headers], "frame of reference")
    row, column = orientation[0][:3], orientation[0][3:]
    normal = np.cross(row, column)
    if abs(np.linalg.norm(normal) - 1) > 0.01:
        raise VolumeError("ImageOrientationPatient does not hold two unit perpendicular axes")
    positions = np.array([header.position for header in headers])
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    gaps = np.diff(along[order])
    if gaps.min() < 0.01:
        raise VolumeError("two slices share one position: not one volume")
    spacing = float(np.median(gaps))
    if np.abs(gaps - spacing).max() > max(0.01 * spacing, 0.05):
        raise VolumeError(
            f"uneven slice spacing ({gaps.min():.2f} to {gaps.max():.2f} mm): missing or"
            " extra slices"
        )
    head = headers[order[0]]
    voxels = np.empty((len(slices), head.rows, head.columns), np.float32)
    ordered = [slices[i] for i in order]
    for index, i in enumerate(order):
        try:
            pixels = slices[i].pixel_array
        except Exception as error:  # pydicom's decoders raise many kinds
            raise VolumeError(f"slice {index + 1}'s pixels cannot be decoded: {error}") from error
        if pixels.dtype.kind not in "iu" or pixels.shape != voxels.shape[1:]:
            raise VolumeError(
                f"slice {index + 1}'s pixels ({pixels.dtype}, {pixels.shape}) are not"
                f" {head.rows}x{head.columns} integers"
            )
        voxels[index] = pixels.astype(np.float32) * headers[i].slope + headers[i].intercept
        del slices[i].PixelData
    x, y, z = head.position
    rx, ry, rz, cx, cy, cz = head.orientation
    first = ordered[0]
    volume = Volume(
        voxels=voxels,
        spacing=(spacing, head.pixel_spacing[0], head.pixel_spacing[1]),
        origin=(x, y, z),
        orientation=(rx, ry, rz, cx, cy, cz),
        instances=tuple(str(ds.get("SOPInstanceUID", "")) for ds in ordered),
        sop_class=str(first.get("SOPClassUID", "")),
        series_uid=str(first.get("SeriesInstanceUID", "")),
        study_uid=str(first.get("StudyInstanceUID", "")),
        frame_of_reference=head.frame_of_reference,
        tags={name: str(first.get(name, "") or "") for name in DESCRIPTIVE_TAGS},
    )
    return LoadedSeries(volume, tuple(ordered))

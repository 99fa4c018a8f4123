"""A series from Orthanc as one ``Volume``, or the reason it cannot be one.

Each slice's file is read (a few at a time: Orthanc answers them in parallel) and checked
before its pixels are used: an image (pixel data, one sample, integer pixels, one frame),
one orientation, one size and pixel spacing, one frame of reference; slices sorted along
the normal, evenly spaced (within 1 %, or 0.05 mm). Anything else is an ``AnalysisError``
naming the problem, so that an SR, a PDF, an RTSTRUCT, a localizer or a mixed series fails
cleanly in its job and every other analysis goes on.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from hounsfield.ai.model import AnalysisError, Volume
from hounsfield.orthanc_api import OrthancApi

FETCHERS = 4  # files read at once
# What an analyzer may know of the series: never the patient's identity (the remote
# provider sends what it is given).
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
GEOMETRY = {"ImagePositionPatient": 3, "ImageOrientationPatient": 6, "PixelSpacing": 2}


@dataclass(frozen=True)
class LoadedSeries:
    volume: Volume
    sources: tuple[Dataset, ...]  # each slice's header (no pixel data), in volume order


def load_series(orthanc: OrthancApi, series_id: str, *, max_voxels: int) -> LoadedSeries:
    series = orthanc.get_json(f"/series/{series_id}")
    modality = series.get("MainDicomTags", {}).get("Modality", "")
    if modality in NOT_IMAGES:
        raise AnalysisError(f"a {modality} series holds no images to analyse")
    instances: list[str] = series["Instances"]
    if len(instances) < 2:
        raise AnalysisError("a single image is not a volume: at least two slices are needed")
    first = _read(orthanc, instances[0])
    _check_image(first)
    total = int(first.Rows) * int(first.Columns) * len(instances)
    if total > max_voxels:
        raise AnalysisError(
            f"{len(instances)} slices of {first.Rows}x{first.Columns} are {total:,} voxels,"
            f" more than the {max_voxels:,} this server analyses (MaxVoxels)"
        )
    with ThreadPoolExecutor(FETCHERS) as pool:
        slices = [first, *pool.map(lambda i: _read(orthanc, i), instances[1:])]
    return assemble(slices)


def _read(orthanc: OrthancApi, instance: str) -> Dataset:
    return pydicom.dcmread(io.BytesIO(orthanc.get_bytes(f"/instances/{instance}/file")))


def _check_image(ds: Dataset) -> None:
    if "PixelData" not in ds:
        raise AnalysisError(f"instance {ds.get('SOPInstanceUID', '?')} holds no pixel data")
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise AnalysisError("colour images are not analysed (one sample per pixel needed)")
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise AnalysisError("multi-frame images are not analysed: send one image per slice")
    if int(ds.get("BitsAllocated", 0)) not in (8, 16, 32):
        raise AnalysisError(f"{ds.get('BitsAllocated')}-bit pixels are not analysed")
    for name, length in GEOMETRY.items():
        values = ds.get(name) or ()
        if len(values) != length or not all(np.isfinite(float(v)) for v in values):
            raise AnalysisError(f"slices without a valid {name} have no geometry to analyse")
    if min(float(v) for v in ds.PixelSpacing) <= 0:
        raise AnalysisError("PixelSpacing must be positive")


def _same(values: Sequence[object], what: str) -> None:
    if any(value != values[0] for value in values):
        raise AnalysisError(f"the slices differ in {what}: not one volume")


def assemble(slices: Sequence[Dataset]) -> LoadedSeries:
    """The slices (any order) as one volume; raises ``AnalysisError`` when they are not."""
    for ds in slices:
        _check_image(ds)
    orientation = np.array([[float(v) for v in ds.ImageOrientationPatient] for ds in slices])
    if np.abs(orientation - orientation[0]).max() > TOLERANCE:
        raise AnalysisError("the slices differ in orientation: not one volume")
    _same([(int(ds.Rows), int(ds.Columns)) for ds in slices], "size")
    _same([tuple(round(float(v), 4) for v in ds.PixelSpacing) for ds in slices], "pixel spacing")
    _same([ds.get("FrameOfReferenceUID", "") for ds in slices], "frame of reference")
    row, column = orientation[0][:3], orientation[0][3:]
    normal = np.cross(row, column)
    if abs(np.linalg.norm(normal) - 1) > 0.01:
        raise AnalysisError("ImageOrientationPatient does not hold two unit perpendicular axes")
    positions = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in slices])
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    gaps = np.diff(along[order])
    if gaps.min() < 0.01:
        raise AnalysisError("two slices share one position: not one volume")
    spacing = float(np.median(gaps))
    if np.abs(gaps - spacing).max() > max(0.01 * spacing, 0.05):
        raise AnalysisError(
            f"uneven slice spacing ({gaps.min():.2f} to {gaps.max():.2f} mm): missing or"
            " extra slices"
        )
    ordered = [slices[i] for i in order]
    voxels = np.empty((len(ordered), int(ordered[0].Rows), int(ordered[0].Columns)), np.float32)
    for index, ds in enumerate(ordered):
        try:
            pixels = ds.pixel_array
        except Exception as error:  # pydicom's decoders raise many kinds
            raise AnalysisError(f"slice {index + 1}'s pixels cannot be decoded: {error}") from error
        if pixels.dtype.kind not in "iu":
            raise AnalysisError(f"{pixels.dtype} pixels are not analysed (integers needed)")
        slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
        voxels[index] = pixels.astype(np.float32) * slope + intercept
        del ds.PixelData
    head = ordered[0]
    row_spacing, column_spacing = (float(v) for v in head.PixelSpacing)
    x, y, z = (float(v) for v in positions[order[0]])
    rx, ry, rz, cx, cy, cz = (float(v) for v in orientation[0])
    volume = Volume(
        voxels=voxels,
        spacing=(spacing, row_spacing, column_spacing),
        origin=(x, y, z),
        orientation=(rx, ry, rz, cx, cy, cz),
        instances=tuple(str(ds.SOPInstanceUID) for ds in ordered),
        sop_class=str(head.SOPClassUID),
        series_uid=str(head.SeriesInstanceUID),
        study_uid=str(head.StudyInstanceUID),
        frame_of_reference=str(head.get("FrameOfReferenceUID", "")),
        tags={name: str(head.get(name, "") or "") for name in DESCRIPTIVE_TAGS},
    )
    return LoadedSeries(volume, tuple(ordered))

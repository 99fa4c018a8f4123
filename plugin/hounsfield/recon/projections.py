"""Projection series as DICOM: a multi-frame X-ray (XA) object carrying its geometry.

Standard attributes hold the geometry: DistanceSourceToDetector, DistanceSourceToPatient,
ImagerPixelSpacing (row, column), PositionerPrimaryAngle (first frame) and
PositionerPrimaryAngleIncrement. Modalities write the increments either relative to
the first frame (0, a, 2a...) or frame to frame (a, a, a...); both are read. The
unattenuated intensity I0 and detector offsets, which XA has no attribute for, go in
a private block ("HOUNSFIELD CBCT").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from hounsfield.dicom_objects import new_instance, set_unsigned_pixels
from hounsfield.recon.geometry import CircularGeometry, GeometryError

XA_STORAGE = "1.2.840.10008.5.1.4.1.1.12.1"
PRIVATE_GROUP = 0x0029
PRIVATE_CREATOR = "HOUNSFIELD CBCT"
I0_ELEMENT, OFFSET_ELEMENT = 0x10, 0x11
DEFAULT_I0 = 65535.0


class ProjectionError(ValueError):
    """Not a usable projection series; the message says what is missing or wrong."""


@dataclass(frozen=True)
class Acquisition:
    intensities: np.ndarray  # (projection, row, column), detector counts
    geometry: CircularGeometry
    i0: float

    def line_integrals(self) -> np.ndarray:
        counts = np.maximum(self.intensities.astype(np.float32), 1.0)
        return np.log(np.float32(self.i0) / counts)


def coarsen(
    line_integrals: np.ndarray,
    geometry: CircularGeometry,
    *,
    bin_factor: int = 2,
    max_projections: int = 180,
) -> tuple[np.ndarray, CircularGeometry]:
    """Fewer, coarser projections for a preview: bin detector pixels, keep every k-th angle."""
    frames, rows, columns = line_integrals.shape
    keep = max(1, frames // max_projections)
    rows_b, columns_b = rows // bin_factor, columns // bin_factor
    binned = (
        line_integrals[::keep, : rows_b * bin_factor, : columns_b * bin_factor]
        .reshape(-1, rows_b, bin_factor, columns_b, bin_factor)
        .mean(axis=(2, 4), dtype=np.float32)
    )
    du, dv = geometry.pixel_spacing
    coarse = CircularGeometry(
        geometry.source_to_isocenter,
        geometry.source_to_detector,
        geometry.angles[::keep],
        (du * bin_factor, dv * bin_factor),
        (columns_b, rows_b),
        geometry.detector_offset,
    )
    return binned, coarse


def rtk_gantry_angle(primary_angle: float) -> float:
    """RTK's gantry angle for a DICOM PositionerPrimaryAngle, and back (its own inverse).

    DICOM's primary angle grows from RAO to LAO (the detector moving toward the patient's
    left); RTK's gantry angle turns the other way about the same axis, in the patient
    coordinates the CT series is written in (``ct_series``: X = x, Y = z, Z = -y). Found
    with an independent forward projector (tests/support/scanner.py): read as they were,
    inserts off the midline came out mirrored front to back; negated, they land within a
    voxel of where they are, on full, short-scan and displaced-detector orbits.
    """
    return -primary_angle


def read_acquisition(ds: Dataset) -> Acquisition:
    """Geometry and counts of a multi-frame projection object; ProjectionError if unusable."""
    geometry, i0 = geometry_of(ProjectionHeader.from_dataset(ds))
    frames = len(geometry.angles)
    _check_pixel_data_length(ds, frames)
    return Acquisition(ds.pixel_array.reshape(frames, ds.Rows, ds.Columns), geometry, i0)


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _numbers(value: Any) -> list[float] | None:
    """A multi-valued number as pydicom or Orthanc gives it (a list, or text with \\)."""
    if value is None or value == "":
        return None
    items = value.split("\\") if isinstance(value, str) else value
    try:
        return [float(item) for item in np.atleast_1d(np.asarray(items, dtype=object))]
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class ProjectionHeader:
    """What the geometry is read from, whichever way the header was obtained."""

    bits_allocated: int | None
    frames: int
    rows: int | None
    columns: int | None
    source_to_detector: float | None
    source_to_isocenter: float | None
    pixel_spacing: list[float] | None  # (row, column), as ImagerPixelSpacing says it
    first_angle: float
    angle_increments: list[float] | None
    i0: float = DEFAULT_I0
    detector_offset: tuple[float, float] = (0.0, 0.0)

    @classmethod
    def from_dataset(cls, ds: Dataset) -> ProjectionHeader:
        """From the file (in a worker): the private block's I0 and offsets are read too."""
        private = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR) if _has_private(ds) else None
        i0 = float(private[I0_ELEMENT].value) if private and I0_ELEMENT in private else DEFAULT_I0
        offset = (0.0, 0.0)
        if private and OFFSET_ELEMENT in private:
            offset = tuple(float(v) for v in private[OFFSET_ELEMENT].value)
        return cls(**_standard(ds), i0=i0, detector_offset=offset)

    @classmethod
    def from_orthanc(cls, tags: Mapping[str, Any]) -> ProjectionHeader:
        """From Orthanc's simplified tags of the instance (text values; long ones asked
        for with ``?ignore-length=0018-1521``): enough to judge, not to reconstruct."""
        return cls(**_standard(tags))


def _standard(tags: Any) -> dict[str, Any]:
    """The standard attributes, from a pydicom Dataset or Orthanc's simplified tags."""
    frames = _number(tags.get("NumberOfFrames")) or 1
    bits = _number(tags.get("BitsAllocated"))
    rows, columns = _number(tags.get("Rows")), _number(tags.get("Columns"))
    return {
        "bits_allocated": int(bits) if bits is not None else None,
        "frames": int(frames),
        "rows": int(rows) if rows is not None else None,
        "columns": int(columns) if columns is not None else None,
        "source_to_detector": _number(tags.get("DistanceSourceToDetector")),
        "source_to_isocenter": _number(tags.get("DistanceSourceToPatient")),
        "pixel_spacing": _numbers(
            tags.get("ImagerPixelSpacing") or tags.get("DetectorElementSpacing")
        ),
        "first_angle": _number(tags.get("PositionerPrimaryAngle")) or 0.0,
        "angle_increments": _numbers(tags.get("PositionerPrimaryAngleIncrement")),
    }


def geometry_of(header: ProjectionHeader) -> tuple[CircularGeometry, float]:
    """The orbit and I0 a header describes; ProjectionError naming what makes it unusable.

    The one reading of the geometry: the stable-study hook judges a series with it from
    Orthanc's tags, a worker reconstructs with it from the file.
    """
    required = {
        "DistanceSourceToDetector": header.source_to_detector,
        "DistanceSourceToPatient": header.source_to_isocenter,
        "PositionerPrimaryAngleIncrement": header.angle_increments,
        "ImagerPixelSpacing": header.pixel_spacing,
        "Rows": header.rows,
        "Columns": header.columns,
    }
    missing = [name for name, value in required.items() if value is None]
    if missing:
        raise ProjectionError(f"projection geometry is incomplete: missing {', '.join(missing)}")
    if header.bits_allocated != 16:
        raise ProjectionError(f"projections must be 16-bit, found {header.bits_allocated} bits")
    increments = header.angle_increments
    if len(increments) != header.frames:
        raise ProjectionError(
            f"{header.frames} frames but {len(increments)} angle increments "
            "(PositionerPrimaryAngleIncrement)"
        )
    if len(header.pixel_spacing) != 2:
        raise ProjectionError("ImagerPixelSpacing must hold a row and a column spacing")
    relative = increments[0] == 0.0  # 0, a, 2a...: relative to the first frame
    offsets = increments if relative else np.concatenate(([0.0], np.cumsum(increments[1:])))
    row_spacing, column_spacing = header.pixel_spacing
    try:
        geometry = CircularGeometry(
            source_to_isocenter=header.source_to_isocenter,
            source_to_detector=header.source_to_detector,
            angles=tuple(rtk_gantry_angle(float(header.first_angle + o)) for o in offsets),
            pixel_spacing=(column_spacing, row_spacing),
            detector_size=(header.columns, header.rows),
            detector_offset=header.detector_offset,
        )
    except GeometryError as error:
        raise ProjectionError(str(error)) from error
    return geometry, header.i0


def _check_pixel_data_length(ds: Dataset, frames: int) -> None:
    """Native (uncompressed) pixel data must hold every frame: a cut transfer shows here."""
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    if syntax is not None and syntax.is_compressed:
        return  # encapsulated: the frames are counted when decoded
    expected = frames * int(ds.Rows) * int(ds.Columns) * 2
    held = len(ds.PixelData)
    if held < expected:
        raise ProjectionError(
            f"pixel data holds {held} bytes, {frames} frames of "
            f"{ds.Columns}x{ds.Rows} need {expected}"
        )


def _has_private(ds: Dataset) -> bool:
    try:
        ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)
    except KeyError:
        return False
    return True


def projection_instance_uid(uid_seed: str) -> str:
    """The SOPInstanceUID ``build_projection_dataset`` gives the object made from ``uid_seed``."""
    return generate_uid(entropy_srcs=[uid_seed, "sop"])


def build_projection_dataset(
    intensities: np.ndarray,
    geometry: CircularGeometry,
    i0: float,
    study: Mapping[str, Any],
    *,
    series_description: str,
    uid_seed: str,
    series_number: int = 100,
) -> Dataset:
    """One multi-frame XA object holding the projections and their geometry.

    UIDs derive from ``uid_seed`` (see ``ct_series``): re-running makes the same object.
    """
    frames, rows, columns = intensities.shape
    if (columns, rows) != geometry.detector_size or frames != len(geometry.angles):
        raise ProjectionError("projection array does not match the geometry")
    ds = new_instance(XA_STORAGE, projection_instance_uid(uid_seed), study)
    if not ds.StudyInstanceUID:
        ds.StudyInstanceUID = generate_uid(entropy_srcs=[uid_seed, "study"])
    ds.Modality = "XA"
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[uid_seed, "series"])
    ds.SeriesNumber = series_number
    ds.SeriesDescription = series_description
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "SINGLE PLANE"]
    ds.Manufacturer = "Hounsfield"
    ds.Laterality = ""  # Type 2C attributes, present and empty: unknown here
    ds.PatientOrientation = ""
    ds.KVP = ""
    ds.XRayTubeCurrent = ""
    ds.ExposureTime = ""
    ds.Exposure = ""
    ds.RadiationSetting = "GR"
    ds.PixelIntensityRelationship = "LIN"
    ds.DistanceSourceToDetector = f"{geometry.source_to_detector:.6g}"
    ds.DistanceSourceToPatient = f"{geometry.source_to_isocenter:.6g}"
    ds.ImagerPixelSpacing = [f"{geometry.pixel_spacing[1]:.6g}", f"{geometry.pixel_spacing[0]:.6g}"]
    ds.PositionerMotion = "DYNAMIC"
    first = rtk_gantry_angle(geometry.angles[0])
    ds.PositionerPrimaryAngle = f"{first:.6g}"
    ds.PositionerSecondaryAngle = "0"
    ds.PositionerPrimaryAngleIncrement = [
        f"{rtk_gantry_angle(angle) - first:.6g}" for angle in geometry.angles
    ]
    ds.PositionerSecondaryAngleIncrement = ["0"] * frames
    ds.NumberOfFrames = frames
    ds.FrameTime = "10"
    ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTime")
    set_unsigned_pixels(ds, intensities)
    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(I0_ELEMENT, "FD", float(i0))
    block.add_new(OFFSET_ELEMENT, "FD", [float(v) for v in geometry.detector_offset])
    return ds

"""The words of analysis: a volume in, findings, measurements and masks out.

Every analyzer (built-in, ONNX, remote) takes a ``Volume`` and returns an ``Analysis``.
Locations are voxel indices ``(slice, row, column)`` into the volume; the volume turns them
into patient coordinates (mm, DICOM's LPS) and into the slice's SOP instance, so that an
analyzer never deals with DICOM geometry and the results (SR, SEG, the findings API) all
say the same place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import numpy as np

Voxel = tuple[float, float, float]  # (slice, row, column), fractional for a centroid
Point = tuple[float, float, float]  # patient coordinates (x, y, z) in mm


class AnalysisError(Exception):
    """The input cannot be analysed (not an image, one slice, uneven spacing...): the
    message says why, for the job's error and the user."""


class Severity(StrEnum):
    NORMAL = "normal"
    MINOR = "minor"
    MODERATE = "moderate"
    CRITICAL = "critical"


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


@dataclass(frozen=True)
class Finding:
    """Something a radiologist should look at, or an explicit "nothing found".

    ``key`` names the finding within its analyzer's output and is the same every time
    the analyzer runs on the same input ("metal-1", "emphysema"): a re-run after a crash
    replaces, never duplicates. ``centroid`` and ``extent`` (the bounding box's first and
    last voxel, inclusive) are voxel indices; ``segment`` names the ``Segmentation``
    this finding outlines, if any.
    """

    key: str
    category: str
    description: str
    severity: Severity
    confidence: float  # 0-1
    centroid: Voxel | None = None
    extent: tuple[Voxel, Voxel] | None = None
    size_mm: float | None = None  # the largest extent
    volume_ml: float | None = None
    segment: str | None = None


@dataclass(frozen=True)
class Measurement:
    """A figure about the whole volume or a segment: "Lung volume" 5120.4 ml."""

    name: str
    value: float
    unit: str  # UCUM: "ml", "%", "[hnsf'U]", "mm"
    segment: str | None = None  # the segmentation it was measured on


@dataclass(frozen=True)
class Segmentation:
    """A mask on the volume's grid (bool, same shape as ``Volume.voxels``).

    ``structure`` is the SNOMED CT code of what it outlines (code, meaning), e.g.
    ("39607008", "Lung"); ``abnormal`` says whether it is a finding (morphologically
    abnormal structure) rather than anatomy.
    """

    label: str
    mask: np.ndarray
    structure: tuple[str, str]
    abnormal: bool = False


@dataclass(frozen=True)
class Analysis:
    analyzer: str
    version: str
    findings: tuple[Finding, ...] = ()
    measurements: tuple[Measurement, ...] = ()
    segmentations: tuple[Segmentation, ...] = ()


class Analyzer(Protocol):
    """One way of looking at a volume. ``name`` is stable (results are keyed on it);
    ``version`` changes when results would (a re-run then writes new objects)."""

    name: str
    version: str

    def analyze(self, volume: Volume) -> Analysis: ...

"""The words of analysis: a volume in, findings, measurements and masks out.

Every analyzer (built-in, ONNX, remote) takes a ``Volume`` (the core's, from
``hounsfield.volume``) and returns an ``Analysis``. Locations are voxel indices
``(slice, row, column)`` into the volume; the volume turns them into patient coordinates
(mm, DICOM's LPS) and into the slice's SOP instance, so that an analyzer never deals with
DICOM geometry and the results (SR, SEG, the findings API) all say the same place.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import numpy as np

from hounsfield.volume import Volume, VolumeError, Voxel


class AnalysisError(VolumeError):
    """The input cannot be analysed (not an image, one slice, uneven spacing, a broken
    model...): the message says why, for the job's error and the user. A ``VolumeError``
    too: what cannot be analysed as a volume."""


class Severity(StrEnum):
    NORMAL = "normal"
    MINOR = "minor"
    MODERATE = "moderate"
    CRITICAL = "critical"


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

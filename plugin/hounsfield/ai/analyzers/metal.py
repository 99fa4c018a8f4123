"""Metal and other high-density foreign bodies on CT and CBCT.

Definition: a foreign body is a connected region (26-connected, so that a thin wire or
the blooming rim of a clip stays one object) of voxels above ``threshold_hu``. The default
2500 HU lies above every tissue (cortical bone stays under about 2000 HU) except, at
times, tooth enamel; metals (steel, titanium, cobalt-chrome, amalgam) saturate the scale
(3071 HU on the standard 12-bit scale, far higher on the extended one). The one common
non-metal above it is undiluted iodinated contrast in the injected vein (roughly 25-30 HU
per mg of iodine per ml at 120 kV, so a 300 mg/ml contrast medium saturates too). CBCT
values are not calibrated HU, but metal still lies at the top of their range.

Each region is one finding, ``metal-1``, ``metal-2``... by volume (largest first), then by
position (slice, row, column of the centroid), so that the keys are the same on every
run. ``size_mm`` is the largest extent of its bounding box along any axis (voxels times
spacing), ``volume_ml`` its voxel count times the voxel volume.

The helpers here (``measure_regions``, ``bounding_box``, ``require_volume``) are shared
with the other built-in analyzers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from hounsfield.ai.model import (
    Analysis,
    AnalysisError,
    Finding,
    Measurement,
    Segmentation,
    Severity,
    Volume,
    Voxel,
)

FOREIGN_BODY = ("19227008", "Foreign body")  # SNOMED CT, in DICOM CID 7151 and 7158
EVERY_NEIGHBOUR = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class Region:
    """One connected region, measured on the volume's own grid (voxel indices)."""

    label: int  # in the labels array it was measured on
    voxels: int  # on the volume's grid
    centroid: Voxel
    extent: tuple[Voxel, Voxel]  # first and last voxel of the bounding box, inclusive
    size_mm: float
    volume_ml: float
    mean: float  # of the values given, over the region
    peak: float


def measure_regions(
    labels: np.ndarray,
    values: np.ndarray,
    volume: Volume,
    *,
    min_ml: float = 0.0,
    factors: Sequence[int] = (1, 1, 1),
    offset: Sequence[int] = (0, 0, 0),
) -> list[Region]:
    """The regions of ``labels`` (0 is background) of at least ``min_ml``, sorted by volume
    (largest first), then by centroid.

    ``labels`` and ``values`` may be a crop of the volume starting at voxel ``offset``,
    on a grid coarser by ``factors`` (each of their voxels then stands for a block of
    ``factors`` voxels of the volume); positions and sizes come back on the volume's grid.
    """
    count = int(labels.max(initial=0))
    if count == 0:
        return []
    block = int(np.prod(factors))
    sizes = np.bincount(labels[labels > 0].ravel(), minlength=count + 1) * block
    shape = volume.voxels.shape
    regions = []
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None or sizes[label] * volume.voxel_ml < min_ml:
            continue
        inside = labels[box] == label
        found = np.nonzero(inside)
        centroid = tuple(
            float((axis.mean() + start.start) * f + (f - 1) / 2 + o)
            for axis, start, f, o in zip(found, box, factors, offset, strict=True)
        )
        first = tuple(float(s.start * f + o) for s, f, o in zip(box, factors, offset, strict=True))
        last = tuple(
            float(min(s.stop * f - 1 + o, n - 1))
            for s, f, o, n in zip(box, factors, offset, shape, strict=True)
        )
        size_mm = max(
            (b - a + 1) * mm for a, b, mm in zip(first, last, volume.spacing, strict=True)
        )
        inner = values[box][inside]
        regions.append(
            Region(
                label=label,
                voxels=int(sizes[label]),
                centroid=(centroid[0], centroid[1], centroid[2]),
                extent=((first[0], first[1], first[2]), (last[0], last[1], last[2])),
                size_mm=float(size_mm),
                volume_ml=float(sizes[label] * volume.voxel_ml),
                mean=float(inner.mean()),
                peak=float(inner.max()),
            )
        )
    return sorted(regions, key=lambda region: (-region.voxels, region.centroid))


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...] | None:
    """The smallest box holding every true voxel of ``mask``, grown by ``margin``."""
    box = []
    for axis in range(mask.ndim):
        others = tuple(a for a in range(mask.ndim) if a != axis)
        present = np.flatnonzero(mask.any(axis=others))
        if present.size == 0:
            return None
        box.append(slice(max(int(present[0]) - margin, 0), int(present[-1]) + 1 + margin))
    return tuple(box)


def require_volume(volume: Volume, min_slices: int = 1) -> np.ndarray:
    """The voxels as float32 (slices, rows, columns), or AnalysisError if they are not."""
    voxels = volume.voxels
    if voxels.ndim != 3 or voxels.shape[0] < min_slices or min(voxels.shape[1:]) < 8:
        raise AnalysisError(f"not a volume of at least {min_slices} slices: {voxels.shape}")
    return voxels if voxels.dtype == np.float32 else voxels.astype(np.float32)


@dataclass(frozen=True)
class MetalAnalyzer:
    """Metal and high-density foreign bodies (regions above ``threshold_hu``).

    ``min_volume_ml`` (default 0.01 ml = 10 mm^3) drops isolated voxels that noise,
    enamel or a dense calcification push over the threshold (a 0.7 x 0.7 x 1 mm voxel is
    0.5 mm^3, so at least 20 of them are needed), while keeping a surgical clip, which
    blooms to several mm on CT. Severity is MINOR: a foreign body is worth noting, rarely
    urgent. Confidence is 0.9 when the region's peak reaches ``saturation_hu`` (3000 HU,
    where metals go and tissue does not; not 1, as undiluted contrast in the injected vein
    goes there too), else 0.6: a region peaking between 2500 and 3000 HU may be enamel.
    """

    name: str = "metal"
    version: str = "1"
    threshold_hu: float = 2500.0
    min_volume_ml: float = 0.01
    saturation_hu: float = 3000.0

    def analyze(self, volume: Volume) -> Analysis:
        voxels = require_volume(volume)
        dense = voxels > self.threshold_hu
        box = bounding_box(dense, margin=1)
        regions: list[Region] = []
        mask = np.zeros(voxels.shape, dtype=bool)
        if box is not None:
            labels, _ = ndimage.label(dense[box], structure=EVERY_NEIGHBOUR)
            regions = measure_regions(
                labels,
                voxels[box],
                volume,
                min_ml=self.min_volume_ml,
                offset=tuple(s.start for s in box),
            )
            if regions:
                keep = np.zeros(int(labels.max()) + 1, dtype=bool)
                keep[[region.label for region in regions]] = True
                mask[box] = keep[labels]
        findings = tuple(
            Finding(
                key=f"metal-{number}",
                category="foreign-body",
                description=(
                    f"Metal or high-density object, {region.size_mm:.1f} mm, "
                    f"{region.volume_ml:.2f} ml (peak {region.peak:.0f} HU)"
                ),
                severity=Severity.MINOR,
                confidence=0.9 if region.peak >= self.saturation_hu else 0.6,
                centroid=region.centroid,
                extent=region.extent,
                size_mm=round(region.size_mm, 1),
                volume_ml=round(region.volume_ml, 3),
                segment="Metal",
            )
            for number, region in enumerate(regions, start=1)
        )
        if not findings:
            findings = (
                Finding(
                    key="metal-none",
                    category="foreign-body",
                    description=(
                        f"No metal or high-density object (above {self.threshold_hu:.0f} HU) found"
                    ),
                    severity=Severity.NORMAL,
                    confidence=0.9,
                ),
            )
        total = sum(region.volume_ml for region in regions)
        measurements = (
            Measurement("Metal objects", float(len(regions)), "1"),
            Measurement(
                "Metal volume", round(total, 3), "ml", segment="Metal" if regions else None
            ),
        )
        segmentations = (
            (Segmentation("Metal", mask, FOREIGN_BODY, abnormal=True),) if regions else ()
        )
        return Analysis(self.name, self.version, findings, measurements, segmentations)

"""Connected regions and bounding boxes on the volume's grid, for the built-in analyzers.

``metal`` measures its regions on the volume's grid, ``intracranial`` on a coarser one
(``grid``) cropped to the cranial cavity; both report positions and sizes in the volume's
voxels, which ``measure_regions`` gives for either. ``lung`` and ``quality`` crop their
work to a ``bounding_box`` too, and all four start from ``require_volume``. None of it is
one analyzer's, so that no analyzer imports from another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from hounsfield.ai.model import AnalysisError, Volume, Voxel


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


def require_volume(volume: Volume, min_slices: int = 1) -> np.ndarray:
    """The voxels as float32 (slices, rows, columns), or AnalysisError if they are not."""
    voxels = volume.voxels
    if voxels.ndim != 3 or voxels.shape[0] < min_slices or min(voxels.shape[1:]) < 8:
        raise AnalysisError(f"not a volume of at least {min_slices} slices: {voxels.shape}")
    return voxels if voxels.dtype == np.float32 else voxels.astype(np.float32)


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


def region_sizes(labels: np.ndarray, count: int) -> np.ndarray:
    """The number of voxels of each label 0 to ``count`` of ``labels``, 0 for the
    background (label 0)."""
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0
    return sizes


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
    sizes = region_sizes(labels, count) * int(np.prod(factors))
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


def regions_mask(
    labels: np.ndarray,
    regions: Sequence[Region],
    shape: tuple[int, ...],
    box: tuple[slice, ...],
) -> np.ndarray:
    """A mask of ``shape`` holding ``regions``, measured on ``labels``, a crop of that
    shape at ``box``."""
    keep = np.zeros(int(labels.max()) + 1, dtype=bool)
    keep[[region.label for region in regions]] = True
    mask = np.zeros(shape, dtype=bool)
    mask[box] = keep[labels]
    return mask

"""Quality figures of a reconstructed volume, computed where it was made (the worker).

On the middle slices (perpendicular to the rotation axis), in HU:
- centre mean and noise: mean and standard deviation in a central square ROI;
- uniformity: the largest difference between the centre ROI's mean and four
  peripheral ROIs' (north, south, east, west at half the field-of-view radius), as
  in the usual CT constancy tests;
- ring index: concentric rings (a miscalibrated detector element) show as ripples in
  the radial profile around the rotation axis; the index is the standard deviation of
  that profile after removing its trend (a running median, which keeps the object's
  edges as steps instead of smearing them into ripples).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _roi(slab: np.ndarray, row: int, column: int, half: int) -> np.ndarray:
    return slab[:, max(row - half, 0) : row + half + 1, max(column - half, 0) : column + half + 1]


def radial_profile(image: np.ndarray) -> np.ndarray:
    rows, columns = image.shape
    y, x = np.indices(image.shape)
    radius = np.hypot(y - (rows - 1) / 2, x - (columns - 1) / 2).astype(int)
    sums = np.bincount(radius.ravel(), image.ravel())
    counts = np.bincount(radius.ravel())
    return sums[counts > 0] / counts[counts > 0]


def ring_index(image: np.ndarray) -> float:
    inside = min(image.shape) // 2 - 2  # the inscribed circle: corners are outside the FOV
    profile = radial_profile(image)[:inside]
    if profile.size < 8:
        return 0.0
    trend = np.median(np.lib.stride_tricks.sliding_window_view(profile, 5), axis=1)
    return float(np.std(profile[2:-2] - trend))


def quality_figures(hounsfield: np.ndarray) -> dict[str, Any]:
    """``hounsfield`` is (z, y, x) with y the rotation axis, as reconstructed."""
    nz, ny, nx = hounsfield.shape
    middle = hounsfield[:, ny // 2 - max(ny // 8, 1) : ny // 2 + max(ny // 8, 1) + 1, :]
    slab = np.moveaxis(middle, 1, 0)  # (slice, z, x): images perpendicular to the axis
    half = max(min(nz, nx) // 16, 1)
    centre = _roi(slab, nz // 2, nx // 2, half)
    offset = min(nz, nx) // 4  # half the field-of-view radius
    peripheral = [
        _roi(slab, nz // 2 + dz, nx // 2 + dx, half).mean()
        for dz, dx in ((-offset, 0), (offset, 0), (0, -offset), (0, offset))
    ]
    return {
        "centreMeanHu": round(float(centre.mean()), 2),
        "noiseHu": round(float(centre.std()), 2),
        "uniformityHu": round(float(max(abs(p - centre.mean()) for p in peripheral)), 2),
        "ringIndexHu": round(float(np.mean([ring_index(image) for image in slab])), 3),
    }

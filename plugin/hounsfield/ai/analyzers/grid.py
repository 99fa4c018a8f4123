"""The coarser analysis grid and the per-slice morphology of the built-in analyzers.

``lung`` and ``intracranial`` segment whole organs, which needs neither the volume's
sub-millimetre voxels nor their noise: each works on block means over a grid of about
``grid_mm`` voxels and expands its masks back onto the volume's grid (their docstrings
give the time and the accuracy measured that way on synthetic 512 x 512 x 300 volumes).
Both also outline within each axial slice, not in 3D (an airway or the foramen magnum
would open the outline), hence the in-plane structuring elements and
``fill_holes_per_slice`` (``quality`` outlines each slice in 2D too).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from hounsfield.ai.analyzers.regions import require_volume
from hounsfield.ai.model import AnalysisError, Volume

FACES = ndimage.generate_binary_structure(3, 1)  # 6-connectivity
IN_PLANE = np.zeros((3, 3, 3), dtype=bool)  # 4-connectivity within each slice only
IN_PLANE[1] = ndimage.generate_binary_structure(2, 1)
EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity in a 2D image


@dataclass(frozen=True)
class CoarseVolume:
    """A volume's voxels and their block means on a grid coarser by ``factors``."""

    voxels: np.ndarray  # float32, on the volume's grid
    coarse: np.ndarray  # the block means
    factors: tuple[int, int, int]
    spacing: tuple[float, float, float]  # of the coarse grid, mm
    voxel_ml: float  # of a coarse voxel

    def expand(self, coarse: np.ndarray) -> np.ndarray:
        """An array on the coarse grid back on the volume's grid (see ``expand``)."""
        return expand(coarse, self.factors, self.voxels.shape)


def coarse_axial(volume: Volume, grid_mm: float, *, what: str) -> CoarseVolume:
    """The volume on a grid of about ``grid_mm``, or AnalysisError when it is not a volume
    of at least 3 slices, or its slices are not axial ("``what`` needs axial slices")."""
    voxels = require_volume(volume, min_slices=3)
    if abs(float(volume.normal[2])) < 0.7:
        raise AnalysisError(f"{what} needs axial slices")
    factors = coarse_factors(volume, grid_mm)
    spacing = tuple(s * f for s, f in zip(volume.spacing, factors, strict=True))
    return CoarseVolume(
        voxels=voxels,
        coarse=block_mean(voxels, factors),
        factors=factors,
        spacing=(spacing[0], spacing[1], spacing[2]),
        voxel_ml=float(np.prod(spacing)) / 1000.0,
    )


def coarse_factors(volume: Volume, grid_mm: float) -> tuple[int, int, int]:
    """How many voxels along each axis make one voxel of about ``grid_mm``."""
    shape = volume.voxels.shape
    f = [max(1, min(int(grid_mm // s), n)) for s, n in zip(volume.spacing, shape, strict=True)]
    return (f[0], f[1], f[2])


def block_mean(voxels: np.ndarray, factors: tuple[int, int, int]) -> np.ndarray:
    """The mean of each block of ``factors`` voxels (the remainder at the far end of each
    axis is left out): a coarser grid with less noise."""
    if factors == (1, 1, 1):
        return voxels
    k, r, c = (n // f for n, f in zip(voxels.shape, factors, strict=True))
    fk, fr, fc = factors
    total = np.zeros((k, r, c), dtype=np.float32)
    for a, b, d in itertools.product(range(fk), range(fr), range(fc)):
        total += voxels[a : k * fk : fk, b : r * fr : fr, d : c * fc : fc]
    total /= fk * fr * fc
    return total


def expand(coarse: np.ndarray, factors: tuple[int, int, int], shape: tuple[int, ...]) -> np.ndarray:
    """A coarse array back on the full grid (each value repeated over its block; the far
    remainder takes the last block's value)."""
    out = coarse
    for axis, f in enumerate(factors):
        if f > 1:
            out = np.repeat(out, f, axis=axis)
    pad = [(0, n - m) for n, m in zip(shape, out.shape, strict=True)]
    if any(after for _, after in pad):
        out = np.pad(out, pad, mode="edge")
    return out


def reaching_border(mask: np.ndarray) -> np.ndarray:
    """The parts of ``mask`` connected, within their axial slice, to that slice's border
    (one labelling of the whole volume, no loop over slices)."""
    labels, count = ndimage.label(mask, structure=IN_PLANE)
    reaches = np.zeros(count + 1, dtype=bool)
    for edge in (labels[:, 0], labels[:, -1], labels[:, :, 0], labels[:, :, -1]):
        reaches[np.unique(edge)] = True
    reaches[0] = False  # outside the mask
    return reaches[labels]


def fill_holes_per_slice(mask: np.ndarray) -> np.ndarray:
    """Each axial slice's holes filled: the parts of the background that do not reach the
    slice's border."""
    return mask | ~reaching_border(~mask)

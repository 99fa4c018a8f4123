from __future__ import annotations

import numpy as np
import pytest

from hounsfield.ai.analyzers.grid import (
    block_mean,
    coarse_axial,
    coarse_factors,
    expand,
    fill_holes_per_slice,
    reaching_border,
)
from hounsfield.ai.model import AnalysisError
from tests.unit.ai.phantoms import volume_of

SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)


def test_block_means_and_their_expansion() -> None:
    voxels = np.arange(2 * 5 * 7, dtype=np.float32).reshape(2, 5, 7)
    coarse = block_mean(voxels, (1, 2, 3))
    assert coarse.shape == (2, 2, 2)
    assert coarse[0, 0, 0] == pytest.approx(voxels[0, :2, :3].mean())
    assert coarse[1, 1, 1] == pytest.approx(voxels[1, 2:4, 3:6].mean())
    back = expand(coarse, (1, 2, 3), voxels.shape)
    assert back.shape == voxels.shape
    assert back[1, 4, 6] == coarse[1, 1, 1]  # the remainder takes the last block's value


def test_a_block_mean_is_the_mean_over_each_block() -> None:
    voxels = np.random.default_rng(1).normal(0.0, 100.0, (7, 11, 13)).astype(np.float32)
    kept = voxels[:6, :9, :12]  # the remainder at the far end of each axis left out
    expected = kept.reshape(3, 2, 3, 3, 4, 3).mean(axis=(1, 3, 5))
    coarse = block_mean(voxels, (2, 3, 3))
    assert coarse.dtype == np.float32
    np.testing.assert_allclose(coarse, expected, rtol=1e-5, atol=1e-3)


def test_factors_of_one_keep_the_voxels() -> None:
    voxels = np.zeros((3, 8, 8), dtype=np.float32)
    assert block_mean(voxels, (1, 1, 1)) is voxels
    assert expand(voxels, (1, 1, 1), voxels.shape) is voxels


def test_factors_give_voxels_of_about_the_grid_size() -> None:
    fine = volume_of(np.zeros((40, 64, 64)), (0.5, 0.7, 0.7))
    assert coarse_factors(fine, 1.5) == (3, 2, 2)
    assert coarse_factors(fine, 0.4) == (1, 1, 1)  # never finer than the volume
    thin = volume_of(np.zeros((2, 64, 64)), (0.5, 0.7, 0.7))
    assert coarse_factors(thin, 1.5) == (2, 2, 2)  # never more than the axis holds


def test_a_coarse_volume() -> None:
    voxels = np.random.default_rng(2).normal(0.0, 10.0, (12, 20, 30))
    volume = volume_of(voxels, (0.5, 0.7, 0.7))
    grid = coarse_axial(volume, 1.5, what="test analysis")
    assert grid.voxels.dtype == np.float32 and grid.voxels.shape == voxels.shape
    assert grid.factors == (3, 2, 2)
    assert grid.spacing == pytest.approx((1.5, 1.4, 1.4))
    assert grid.voxel_ml == pytest.approx(1.5 * 1.4 * 1.4 / 1000)
    np.testing.assert_array_equal(grid.coarse, block_mean(grid.voxels, (3, 2, 2)))
    mask = grid.coarse > 0
    np.testing.assert_array_equal(grid.expand(mask), expand(mask, (3, 2, 2), voxels.shape))


def test_a_coarse_volume_needs_axial_slices_and_three_of_them() -> None:
    voxels = np.zeros((12, 20, 30))
    with pytest.raises(AnalysisError, match=r"^test analysis needs axial slices$"):
        coarse_axial(volume_of(voxels, orientation=SAGITTAL), 1.5, what="test analysis")
    with pytest.raises(AnalysisError, match="at least 3 slices"):
        coarse_axial(volume_of(voxels[:2]), 1.5, what="test analysis")


def rings() -> np.ndarray:
    """Slice 0: a closed ring (a hole) and a square touching the border; slice 1: the same
    ring with a gap to the outside (no hole)."""
    mask = np.zeros((2, 12, 12), dtype=bool)
    mask[:, 2:8, 2:8] = True
    mask[:, 3:7, 3:7] = False
    mask[0, 9:, 9:] = True
    mask[1, 4, 2] = False
    return mask


def test_the_holes_of_each_slice_are_filled() -> None:
    mask = rings()
    filled = fill_holes_per_slice(mask)
    assert filled[0, 3:7, 3:7].all()  # the hole
    np.testing.assert_array_equal(filled[1], mask[1])  # open to the border: no hole
    np.testing.assert_array_equal(filled & mask, mask)
    assert not filled[:, 0].any() and not filled[:, 8, :8].any()  # the outside stays out


def test_a_slice_of_nothing_or_everything() -> None:
    assert not fill_holes_per_slice(np.zeros((2, 8, 8), dtype=bool)).any()
    assert fill_holes_per_slice(np.ones((2, 8, 8), dtype=bool)).all()
    assert not reaching_border(np.zeros((2, 8, 8), dtype=bool)).any()


def test_what_reaches_the_border_within_its_slice() -> None:
    mask = rings()
    mask[0, 4:6, 4:6] = True  # an island in the ring's hole
    reaching = reaching_border(mask)
    assert reaching[0, 9:, 9:].all()  # the square at the border
    assert not reaching[0, :9, :9].any()  # the ring and the island
    assert not reaching[1].any()  # the ring open to the outside still does not touch it
    np.testing.assert_array_equal(reaching & mask, reaching)

from __future__ import annotations

import numpy as np
import pytest

from hounsfield.ai.analyzers.regions import (
    bounding_box,
    measure_regions,
    region_sizes,
    regions_mask,
    require_volume,
)
from hounsfield.ai.model import AnalysisError
from tests.unit.ai.phantoms import volume_of


def test_the_bounding_box_grows_by_the_margin_within_the_array() -> None:
    mask = np.zeros((4, 10, 12), dtype=bool)
    mask[1, 2, 3] = mask[2, 5, 11] = True
    assert bounding_box(mask) == (slice(1, 3), slice(2, 6), slice(3, 12))
    assert bounding_box(mask, margin=2) == (slice(0, 5), slice(0, 8), slice(1, 14))
    assert bounding_box(np.zeros((4, 10, 12), dtype=bool)) is None


def test_region_sizes_leave_the_background_out() -> None:
    labels = np.array([[0, 1, 1], [2, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(region_sizes(labels, 3), [0, 3, 1, 0])


def test_regions_are_measured_on_the_volume_grid() -> None:
    volume = volume_of(np.zeros((10, 20, 20)), (2.0, 1.0, 0.5))
    labels = np.zeros((6, 6, 6), dtype=np.int32)  # a crop, at (1, 2, 4), of a grid coarser
    labels[1:3, 1:4, 2:3] = 1  # by (1, 2, 2): 2 x 6 x 2 voxels of the volume
    labels[4, 0, 0] = 2  # 1 x 2 x 2 voxels
    values = np.where(labels == 1, 70.0, 40.0)
    values[2, 3, 2] = 90.0
    big, small = measure_regions(labels, values, volume, factors=(1, 2, 2), offset=(1, 2, 4))
    assert big.label == 1 and big.voxels == 24
    assert big.extent == ((2.0, 4.0, 8.0), (3.0, 9.0, 9.0))
    assert big.centroid == pytest.approx((2.5, 6.5, 8.5))
    assert big.size_mm == pytest.approx(6.0)  # 6 rows of 1 mm, against 2 slices of 2 mm
    assert big.volume_ml == pytest.approx(24 * 2.0 * 1.0 * 0.5 / 1000)
    assert big.mean == pytest.approx((5 * 70.0 + 90.0) / 6) and big.peak == 90.0
    assert small.label == 2 and small.voxels == 4
    assert small.extent == ((5.0, 2.0, 4.0), (5.0, 3.0, 5.0))
    only_big = measure_regions(
        labels, values, volume, min_ml=0.01, factors=(1, 2, 2), offset=(1, 2, 4)
    )
    assert [region.label for region in only_big] == [1]
    assert measure_regions(np.zeros((3, 8, 8), dtype=np.int32), values, volume) == []


def test_the_extent_stops_at_the_volume_edge() -> None:
    volume = volume_of(np.zeros((3, 9, 9)))
    labels = np.zeros((3, 4, 4), dtype=np.int32)  # by (1, 2, 2): the 9th row and column
    labels[:, 3, 3] = 1  # are the remainder
    (region,) = measure_regions(labels, labels.astype(float), volume, factors=(1, 2, 2))
    assert region.extent == ((0.0, 6.0, 6.0), (2.0, 7.0, 7.0))
    labels = np.zeros((3, 5, 5), dtype=np.int32)  # a coarse grid with the remainder in it
    labels[:, 4, 4] = 1
    (region,) = measure_regions(labels, labels.astype(float), volume, factors=(1, 2, 2))
    assert region.extent == ((0.0, 8.0, 8.0), (2.0, 8.0, 8.0))


def test_a_mask_of_the_chosen_regions() -> None:
    labels = np.array([[[0, 1, 2], [3, 3, 0]]])
    volume = volume_of(np.zeros((3, 8, 8)))
    regions = [r for r in measure_regions(labels, labels.astype(float), volume) if r.label != 2]
    mask = regions_mask(labels, regions, (3, 4, 5), (slice(1, 2), slice(2, 4), slice(1, 4)))
    expected = np.zeros((3, 4, 5), dtype=bool)
    expected[1, 2, 2] = expected[1, 3, 1] = expected[1, 3, 2] = True
    np.testing.assert_array_equal(mask, expected)


def test_a_volume_is_three_dimensional_float32_and_large_enough() -> None:
    voxels = require_volume(volume_of(np.zeros((3, 8, 8))), min_slices=3)
    assert voxels.dtype == np.float32 and voxels.shape == (3, 8, 8)
    with pytest.raises(AnalysisError, match="at least 3 slices"):
        require_volume(volume_of(np.zeros((2, 8, 8))), min_slices=3)
    with pytest.raises(AnalysisError):
        require_volume(volume_of(np.zeros((3, 8, 7))))

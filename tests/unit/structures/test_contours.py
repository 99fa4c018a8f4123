"""Planar-polygon geometry, against areas and masks known without it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hounsfield.structures.contours import (
    TooComplex,
    drop_repeats,
    edges_cross,
    even_odd_area,
    is_planar,
    orientation_for,
    polygon_normal,
    project,
    raster_mask,
    signed_area,
)

SQUARE = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])  # counter-clockwise
# 30 degrees about z, then 20 about the new x: an oblique plane.
ROW = np.array([math.cos(math.pi / 6), math.sin(math.pi / 6), 0.0])
COLUMN = np.array(
    [
        -math.sin(math.pi / 6) * math.cos(math.pi / 9),
        math.cos(math.pi / 6) * math.cos(math.pi / 9),
        math.sin(math.pi / 9),
    ]
)
OBLIQUE = (*ROW, *COLUMN)


def circle(radius: float, count: int, centre: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    angles = np.linspace(0, 2 * math.pi, count, endpoint=False)
    return np.column_stack(
        (centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles))
    )


def polygon_area(radius: float, count: int) -> float:
    """A regular polygon inscribed in a circle: count triangles of two radii at 2 pi/count."""
    return count / 2 * radius**2 * math.sin(2 * math.pi / count)


def test_the_shoelace_gives_known_areas_signed_by_orientation() -> None:
    assert signed_area(SQUARE) == pytest.approx(100.0)
    assert signed_area(SQUARE[::-1]) == pytest.approx(-100.0)
    assert signed_area(np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 3.0]])) == pytest.approx(6.0)
    far = SQUARE + 1e6  # relative to its first point: nothing lost to cancellation
    assert signed_area(far) == pytest.approx(100.0, abs=1e-6)
    assert signed_area(SQUARE[:2]) == 0.0


def test_a_regular_360_gon_has_its_analytic_area_close_to_the_circle() -> None:
    area = signed_area(circle(20.0, 360))
    assert area == pytest.approx(polygon_area(20.0, 360), rel=1e-12)
    assert area == pytest.approx(math.pi * 20.0**2, rel=1e-4)
    assert area < math.pi * 20.0**2


def test_a_repeated_closing_point_is_dropped_and_changes_no_area() -> None:
    closed = np.vstack((SQUARE, SQUARE[:1], SQUARE[:1]))
    np.testing.assert_array_equal(drop_repeats(closed), SQUARE)
    assert signed_area(closed) == pytest.approx(100.0)
    assert len(drop_repeats(np.zeros((5, 2)))) == 1


def test_a_bow_tie_crosses_itself_and_convex_or_keyhole_polygons_do_not() -> None:
    bow_tie = np.array([[0.0, 0.0], [10.0, 10.0], [10.0, 0.0], [0.0, 10.0]])
    assert edges_cross([bow_tie])
    assert not edges_cross([circle(15.0, 64)])
    assert not edges_cross([np.vstack((SQUARE, SQUARE[:1]))])
    # A hole joined to its outline along one line (drawn out and back): no crossing.
    outer, inner = circle(20.0, 32), circle(10.0, 32)[::-1]
    keyhole = np.vstack((outer, outer[:1], inner, inner[:1]))
    assert not edges_cross([keyhole])
    assert signed_area(keyhole) == pytest.approx(polygon_area(20, 32) - polygon_area(10, 32))


def test_contours_crossing_each_other_are_told_from_nested_ones() -> None:
    assert edges_cross([circle(10.0, 32), circle(10.0, 32, centre=(12.0, 0.0))])
    assert not edges_cross([circle(10.0, 32), circle(5.0, 32)])


def test_a_polygon_that_defeats_the_sweep_is_refused_within_its_bound() -> None:
    # 400 corners alternating between x = 0 and x = 100, closed along x = -10: nearly every
    # edge spans the whole width, so nearly every pair of edges is a candidate (n^2 / 2),
    # past 100 per edge.
    teeth = np.column_stack((np.tile([0.0, 100.0], 200), np.arange(400) * 1.0))
    zigzag = np.vstack((teeth, [[-10.0, 399.0], [-10.0, 0.0]]))
    with pytest.raises(TooComplex):
        edges_cross([zigzag])
    assert not edges_cross([zigzag], pairs_per_edge=400)


def test_even_odd_makes_a_contour_inside_another_a_hole() -> None:
    outer, inner = circle(20.0, 256), circle(10.0, 256, centre=(3.0, -2.0))
    ring = polygon_area(20, 256) - polygon_area(10, 256)
    assert even_odd_area([outer, inner]) == pytest.approx(ring)
    assert even_odd_area([inner[::-1], outer]) == pytest.approx(ring)  # any order, any winding
    assert ring == pytest.approx(math.pi * (20**2 - 10**2), rel=1e-3)
    island = circle(4.0, 256, centre=(3.0, -2.0))
    assert even_odd_area([outer, inner, island]) == pytest.approx(ring + polygon_area(4, 256))
    apart = circle(5.0, 64, centre=(40.0, 0.0))
    assert even_odd_area([outer, apart]) == pytest.approx(
        polygon_area(20, 256) + polygon_area(5, 64)
    )
    with pytest.raises(TooComplex):
        even_odd_area([outer, inner], budget=100)


def test_contours_that_coincide_or_touch_cannot_be_nested() -> None:
    outer = circle(20.0, 64)
    with pytest.raises(ValueError, match="touch or coincide"):
        even_odd_area([outer, outer[::-1].copy()])
    touching = np.vstack(([[20.0, 0.0]], circle(5.0, 16, centre=(15.0, 0.0))[1:]))
    with pytest.raises(ValueError, match="touch or coincide"):
        even_odd_area([outer, touching])


def test_projection_gives_in_plane_coordinates_and_heights() -> None:
    normal = np.cross(ROW, COLUMN)
    points = np.array([3.0 * ROW - 4.0 * COLUMN + 7.5 * normal, -1.0 * ROW + 7.5 * normal])
    in_plane, heights = project(points, OBLIQUE)
    np.testing.assert_allclose(in_plane, [[3.0, -4.0], [-1.0, 0.0]], atol=1e-12)
    np.testing.assert_allclose(heights, [7.5, 7.5], atol=1e-12)


def test_planarity_allows_a_tenth_of_a_millimetre() -> None:
    normal = np.cross(ROW, COLUMN)
    flat = np.array([x * ROW + y * COLUMN + 12.0 * normal for x, y in circle(30.0, 40)])
    assert is_planar(project(flat, OBLIQUE)[1])
    nearly, bent = flat.copy(), flat.copy()
    nearly[5] += 0.05 * normal
    bent[5] += 0.2 * normal
    assert is_planar(project(nearly, OBLIQUE)[1])
    assert not is_planar(project(bent, OBLIQUE)[1])


def test_a_contour_tells_its_own_plane() -> None:
    normal = np.cross(ROW, COLUMN)
    flat = np.array([x * ROW + y * COLUMN + 12.0 * normal for x, y in circle(30.0, 40)])
    found = polygon_normal(flat[::-1])  # either winding: one normal
    assert found is not None
    np.testing.assert_allclose(found, normal if normal[np.argmax(abs(normal))] > 0 else -normal)
    assert is_planar(project(flat, orientation_for(found))[1])
    line = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
    assert polygon_normal(line) is None
    assert orientation_for(np.array([0.0, 0.0, 1.0])) == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def inside_by_loop(polygon: list[tuple[float, float]], row: float, column: float) -> bool:
    """Plain crossing number, one point at a time: a ray towards + column."""
    inside = False
    for (r0, c0), (r1, c1) in zip(polygon, polygon[1:] + polygon[:1], strict=True):
        if (r0 > row) != (r1 > row) and column < c0 + (row - r0) * (c1 - c0) / (r1 - r0):
            inside = not inside
    return inside


def test_the_raster_mask_holds_exactly_the_pixel_centres_inside_a_square() -> None:
    corners = [(2.3, 3.7), (2.3, 11.2), (8.6, 11.2), (8.6, 3.7)]
    mask = raster_mask([np.array(corners)], (16, 20))
    expected = np.zeros((16, 20), dtype=bool)
    for row in range(16):
        for column in range(20):
            expected[row, column] = 2.3 < row < 8.6 and 3.7 < column < 11.2
    np.testing.assert_array_equal(mask, expected)
    assert mask.sum() == 6 * 8  # rows 3 to 8, columns 4 to 11


def test_the_raster_mask_follows_even_odd_and_clips_to_the_slice() -> None:
    outer = [tuple(point) for point in circle(9.3, 50, centre=(4.2, 10.6))]  # past the top
    hole = [tuple(point) for point in circle(3.1, 17, centre=(6.0, 9.0))]
    mask = raster_mask([np.array(outer), np.array(hole)], (24, 30))
    expected = np.zeros((24, 30), dtype=bool)
    for row in range(24):
        for column in range(30):
            expected[row, column] = inside_by_loop(outer, row, column) != inside_by_loop(
                hole, row, column
            )
    np.testing.assert_array_equal(mask, expected)
    assert 0 < mask.sum() < math.pi * 9.3**2
    assert not raster_mask([np.array(outer) + 100], (24, 30)).any()

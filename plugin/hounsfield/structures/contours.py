"""Planar polygons on numpy: the geometry an RT structure set's contours need.

A polygon here is an (n, 2) float array of coordinates in its own plane, closed implicitly:
the last point joins the first. Structure sets often repeat the first point at the end; that
adds a zero-length edge, harmless to every function here (``drop_repeats`` removes it, so
that "fewer than 3 points" can mean fewer than 3 distinct corners).

Contours on one plane combine by the even-odd rule (DICOM PS3.3, ROI Contour Module: a
contour inside another is a hole, one inside the hole an island again): a point belongs to
the region when a ray from it crosses the contours an odd number of times.
``even_odd_area``, ``contains`` and ``raster_mask`` follow that one rule with one
convention for points on a crossing, so an area and a mask made from the same contours
agree.

The polygons come from files a stranger sent, so each function's cost has a stated bound:
see ``edges_cross``, ``contains``, ``on_outline``, ``even_odd_area`` (``nesting_cost``) and
``raster_mask`` (``raster_cost``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

# Heights of one contour's points along its plane's normal may spread this much (mm).
# Contours are written as DS text, usually to 0.01 mm or finer (at most 0.005 mm of rounding),
# and ImageOrientationPatient's cosines to about 1e-6, which tilts a 500 mm field of view by
# 0.0005 mm: a planar contour stays far inside 0.1 mm. A contour that is really tilted or
# bent, or that wanders onto a neighbouring slice (0.5 mm away on the thinnest CT), does not.
PLANARITY_TOLERANCE_MM = 0.1
# Candidate edge pairs ``edges_cross`` may test, per edge: contours of real anatomy need a
# handful; a polygon built so that every edge spans its whole width needs n / 2.
PAIRS_PER_EDGE = 100
# ``nesting_cost`` ``even_odd_area`` may spend (each unit two point-edge tests, about 40 ns
# of numpy in all): two seconds.
NESTING_BUDGET = 50_000_000
# A vertex this close to another contour's outline (mm) is on it: a millionth of a
# millimetre, far below what any drawing tool places apart, yet well above the rounding of
# coordinates of a few hundred mm, so a vertex written on the outline is caught.
TOUCHING_MM = 1e-6
# Elements expanded at once (pairs, point-edge tests, crossings): memory stays a few tens of
# MB whatever the input.
BATCH = 1 << 20


class TooComplex(ValueError):
    """A set of polygons whose check would cost more than its documented bound."""


def normal(orientation: Sequence[float]) -> np.ndarray:
    """The unit normal of an ImageOrientationPatient (row cosines, then column cosines):
    row direction x column direction, the direction slices are stacked along."""
    row = np.asarray(orientation[:3], dtype=float)
    column = np.asarray(orientation[3:6], dtype=float)
    across = np.cross(row, column)
    return across / np.linalg.norm(across)


def project(points: np.ndarray, orientation: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Points (n, 3) in patient coordinates, seen in the plane of ``orientation`` (row
    cosines r, column cosines c, normal n = r x c): their in-plane coordinates (p.r, p.c) as
    an (n, 2) array, and their heights p.n along the normal."""
    axes = np.array([orientation[:3], orientation[3:6], normal(orientation)], dtype=float)
    seen = points @ axes.T
    return seen[:, :2], seen[:, 2]


def polygon_normal(points: np.ndarray) -> np.ndarray | None:
    """The unit normal of a 3-D polygon's plane, or None when it encloses no area (fewer
    than 3 non-collinear points), so that no plane can be told from it.

    Newell's method: the sum of the cross products of consecutive (centred) points, twice
    the vector area. It uses every point, so a contour whose first three points are nearly
    collinear still gives its plane to full precision. The sign is chosen so that the largest
    component is positive: contours drawn either way round give one normal, and an axial
    contour gives +z, its heights then being its z."""
    centred = points - points.mean(axis=0)
    twice_area = np.cross(centred, np.roll(centred, -1, axis=0)).sum(axis=0)
    length = float(np.linalg.norm(twice_area))
    extent = float(np.ptp(centred, axis=0).max())
    if length == 0 or length <= 1e-9 * extent**2:  # collinear, up to rounding
        return None
    unit = twice_area / length
    return unit if unit[np.argmax(np.abs(unit))] > 0 else -unit


def orientation_for(unit_normal: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """An ImageOrientationPatient whose normal is ``unit_normal``, for contours without
    images: the row direction is the patient axis least aligned with the normal, made
    perpendicular to it (x for an axial plane, so axial contours keep their x and y), and the
    column direction normal x row, so that row x column is the normal again."""
    helper = np.eye(3)[np.argmin(np.abs(unit_normal))]
    row = helper - (helper @ unit_normal) * unit_normal
    row /= np.linalg.norm(row)
    column = np.cross(unit_normal, row)
    rx, ry, rz = (float(value) for value in row)
    cx, cy, cz = (float(value) for value in column)
    return rx, ry, rz, cx, cy, cz


def is_planar(heights: np.ndarray, tolerance: float = PLANARITY_TOLERANCE_MM) -> bool:
    """Whether a contour's heights along a plane's normal (``project``) all lie within
    ``tolerance`` of each other (see ``PLANARITY_TOLERANCE_MM`` for why 0.1 mm)."""
    return len(heights) == 0 or float(np.ptp(heights)) <= tolerance


def drop_repeats(polygon: np.ndarray) -> np.ndarray:
    """The polygon's distinct corners, in order from its first: without points equal to the
    one after them (cyclically, so a closing point repeating the first goes too)."""
    if len(polygon) < 2:
        return polygon
    moved = np.any(polygon != np.roll(polygon, -1, axis=0), axis=1)
    return polygon[moved] if moved.any() else polygon[:1]


def signed_area(polygon: np.ndarray) -> float:
    """The shoelace area: positive when the polygon runs counter-clockwise (from the first
    axis towards the second), negative when clockwise. Coordinates are taken relative to the
    first point, so a small contour far from the origin loses nothing to cancellation."""
    if len(polygon) < 3:
        return 0.0
    x, y = (polygon - polygon[0]).T
    return 0.5 * float(x @ np.roll(y, -1) - np.roll(x, -1) @ y)


def _edges(polygons: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Every edge of the closed polygons: (starts, ends), each (edges, 2)."""
    kept = [polygon for polygon in polygons if len(polygon)]
    if not kept:
        return np.empty((0, 2)), np.empty((0, 2))
    starts = np.concatenate(kept)
    ends = np.concatenate([np.roll(polygon, -1, axis=0) for polygon in kept])
    return starts, ends


def _batches(counts: np.ndarray, limit: int) -> Iterator[slice]:
    """Consecutive runs of ``counts`` adding up to at most ``limit`` each (a single count
    above it gets a run of its own), so that work expanded from them fits in memory."""
    totals = np.cumsum(counts)
    start, done = 0, 0
    while start < len(counts):
        stop = max(start + 1, int(np.searchsorted(totals, done + limit, side="right")))
        yield slice(start, stop)
        done = int(totals[stop - 1])
        start = stop


def _expand(counts: np.ndarray, run: slice) -> tuple[np.ndarray, np.ndarray]:
    """For a run of ``counts``: each expanded element's owner (index into counts) and its
    step (0 to count - 1) within its owner."""
    owned = counts[run]
    owners = np.repeat(np.arange(run.start, run.stop), owned)
    firsts = np.cumsum(owned) - owned
    steps = np.arange(int(owned.sum())) - np.repeat(firsts, owned)
    return owners, steps


def _side(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Which side of the line a->b each p lies on: 1 left, -1 right, 0 on it."""
    return np.sign(
        (b[:, 0] - a[:, 0]) * (p[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (p[:, 0] - a[:, 0])
    )


def edges_cross(polygons: Sequence[np.ndarray], pairs_per_edge: int = PAIRS_PER_EDGE) -> bool:
    """Whether any two edges of these closed polygons properly cross: meet at one point
    inside both. Given one polygon, whether it intersects itself; given several, whether any
    crosses itself or another. Touching at a corner and overlapping along a line are not
    crossings, so adjacent edges (which share a corner, and so never properly cross: testing
    them is the same as leaving them out), a repeated closing point and the doubled-back cut
    of a keyhole contour (a hole joined to its outline along one line) all pass.

    Cost: edges are sorted by their smallest x and only pairs whose x ranges overlap are
    tested (a sweep), then only those whose y ranges overlap too, in batches of ``BATCH``.
    Contours of anatomy give a few candidate pairs per edge; a polygon built so that every
    edge spans its whole width gives n(n - 1)/2, so past ``pairs_per_edge`` x n candidates
    ``TooComplex`` is raised before any is tested: time O(n log n + pairs_per_edge x n),
    memory O(n + BATCH)."""
    starts, ends = _edges(polygons)
    count = len(starts)
    if count < 2:
        return False
    centre = starts.mean(axis=0)  # cross products of centred points lose less to rounding
    starts, ends = starts - centre, ends - centre
    order = np.argsort(np.minimum(starts[:, 0], ends[:, 0]), kind="stable")
    starts, ends = starts[order], ends[order]
    low, high = np.minimum(starts, ends), np.maximum(starts, ends)
    # Edges after i (in x order) whose smallest x is within i's x range: i's candidates.
    reach = np.searchsorted(low[:, 0], high[:, 0], side="right")
    counts = reach - np.arange(count) - 1
    if int(counts.sum()) > pairs_per_edge * count:
        raise TooComplex(
            f"{int(counts.sum())} edge pairs to check for crossings, more than"
            f" {pairs_per_edge} per edge"
        )
    for run in _batches(counts, BATCH):
        first, steps = _expand(counts, run)
        second = first + 1 + steps
        overlap = (low[second, 1] <= high[first, 1]) & (low[first, 1] <= high[second, 1])
        first, second = first[overlap], second[overlap]
        a, b, c, d = starts[first], ends[first], starts[second], ends[second]
        crossed = (_side(a, b, c) * _side(a, b, d) < 0) & (_side(c, d, a) * _side(c, d, b) < 0)
        if crossed.any():
            return True
    return False


def contains(polygon: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Which of the points (m, 2) lie inside the polygon, by the crossing number: a ray from
    the point towards +x crosses the polygon's edges an odd number of times. An edge counts
    when one end is above the point's y and the other at or below it (half-open, so a ray
    through a corner counts it once) and it crosses strictly right of the point.

    Cost: m x n edge tests, in batches of ``BATCH``."""
    x0, y0 = polygon[:, 0], polygon[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    rise = np.where(y1 == y0, 1.0, y1 - y0)  # a flat edge never straddles: any divisor will do
    inside = np.zeros(len(points), dtype=bool)
    step = max(1, BATCH // max(1, len(polygon)))
    for first in range(0, len(points), step):
        px = points[first : first + step, 0:1]
        py = points[first : first + step, 1:2]
        straddles = (y0 > py) != (y1 > py)
        crossing = x0 + (py - y0) * (x1 - x0) / rise
        inside[first : first + step] = (straddles & (px < crossing)).sum(axis=1) % 2 == 1
    return inside


def on_outline(polygon: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Which of the points (m, 2) lie on the polygon's outline (within ``TOUCHING_MM`` of
    an edge). Cost: m x n edge tests, in batches of ``BATCH``."""
    start = polygon
    along = np.roll(polygon, -1, axis=0) - start
    length = np.maximum((along**2).sum(axis=1), np.finfo(float).tiny)  # a point-edge: any
    touching = np.zeros(len(points), dtype=bool)
    step = max(1, BATCH // max(1, len(polygon)))
    for first in range(0, len(points), step):
        offset = points[first : first + step, None, :] - start  # (points, edges, 2)
        share = np.clip((offset * along).sum(axis=2) / length, 0.0, 1.0)
        gap = ((offset - share[..., None] * along) ** 2).sum(axis=2)
        touching[first : first + step] = (gap <= TOUCHING_MM**2).any(axis=1)
    return touching


def nesting_cost(polygons: Sequence[np.ndarray]) -> int:
    """What ``even_odd_area`` may spend nesting these polygons: polygons x vertices (none
    for a single polygon)."""
    return len(polygons) * sum(len(polygon) for polygon in polygons) if len(polygons) > 1 else 0


def even_odd_area(polygons: Sequence[np.ndarray], budget: int = NESTING_BUDGET) -> float:
    """The area of the even-odd union of non-crossing polygons on one plane: the sum of
    |area_i| x (-1)^depth_i, where depth_i counts the other polygons containing polygon i.
    Polygons that do not cross are each wholly inside or wholly outside another, so one
    vertex tells which (``edges_cross`` is the check that they do not cross) unless it lies
    on the other's outline: then (a contour written twice, or two touching) ``ValueError``
    is raised, as their nesting cannot be told.

    Cost: each polygon is tested only against the first vertices inside its bounding box,
    at most ``nesting_cost`` x 2 point-edge tests in all; past ``budget`` ``TooComplex`` is
    raised before any is made."""
    areas = np.array([abs(signed_area(polygon)) for polygon in polygons])
    if len(polygons) < 2:
        return float(areas.sum())
    if nesting_cost(polygons) > budget:
        raise TooComplex(
            f"{len(polygons)} contours of {sum(len(p) for p in polygons)} points on one plane:"
            f" more to nest than the {budget:,} tests left"
        )
    firsts = np.array([polygon[0] for polygon in polygons])
    depth = np.zeros(len(polygons), dtype=int)
    for index, polygon in enumerate(polygons):
        boxed = np.all((firsts >= polygon.min(axis=0)) & (firsts <= polygon.max(axis=0)), axis=1)
        boxed[index] = False
        candidates = np.flatnonzero(boxed)
        if on_outline(polygon, firsts[candidates]).any():
            raise ValueError("contours touch or coincide: which is a hole cannot be told")
        depth[candidates] += contains(polygon, firsts[candidates])
    area = float(areas @ np.where(depth % 2 == 1, -1.0, 1.0))
    if area < 0:  # a hole larger than its outline: they meet where no vertex shows it
        raise ValueError("contours touch or coincide: which is a hole cannot be told")
    return area


def _box(starts: np.ndarray, shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """The pixel centres' (top, bottom, left, right) bounding the points, clipped to the
    slice; None when no centre is within."""
    top = max(0, int(np.ceil(starts[:, 0].min())))
    bottom = min(shape[0] - 1, int(np.floor(starts[:, 0].max())))
    left = max(0, int(np.ceil(starts[:, 1].min())))
    right = min(shape[1] - 1, int(np.floor(starts[:, 1].max())))
    return (top, bottom, left, right) if top <= bottom and left <= right else None


def raster_cost(polygons: Sequence[np.ndarray], shape: tuple[int, int]) -> int:
    """At most what ``raster_mask`` spends on these polygons: box rows x (box columns +
    edges), bounding its crossings and the pixels it sums (about 10 ns each)."""
    starts, _ = _edges(polygons)
    box = _box(starts, shape) if len(starts) else None
    if box is None:
        return 0
    top, bottom, left, right = box
    return (bottom - top + 1) * (right - left + 1 + len(starts))


def raster_mask(polygons: Sequence[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Which pixel centres of a (rows, columns) slice lie inside the even-odd union of the
    polygons, given in fractional (row, column) pixel coordinates: pixel (r, c)'s centre is
    the point (r, c).

    ``contains``' crossing-number test, as a scanline: each edge crosses each pixel row it
    straddles (same half-open rule) once, and every crossing flips inside and outside for the
    pixel centres at or right of it; a running sum of the flips along each row, taken modulo
    2, is the test's parity for every pixel at once (a row's crossings are even in number, so
    counting those left of a pixel or those right of it gives one parity).

    Cost: only the polygons' bounding box, clipped to the slice, is worked on: O(crossings +
    box pixels), crossings at most edges x box rows (``raster_cost``), in batches of
    ``BATCH``."""
    mask = np.zeros(shape, dtype=bool)
    starts, ends = _edges(polygons)
    box = _box(starts, shape) if len(starts) else None
    if box is None:
        return mask
    top, bottom, left, right = box
    r0, c0 = starts.T
    r1, c1 = ends.T
    # Pixel rows r with min(r0, r1) <= r < max(r0, r1), within the box.
    first_row = np.maximum(np.ceil(np.minimum(r0, r1)), top).astype(np.int64)
    last_row = np.minimum(np.ceil(np.maximum(r0, r1)) - 1, bottom).astype(np.int64)
    counts = np.maximum(last_row - first_row + 1, 0)
    # One spare column: crossings right of the box flip nothing inside it.
    flips = np.zeros((bottom - top + 1, right - left + 2), dtype=np.int32)
    for run in _batches(counts, BATCH):
        edge, steps = _expand(counts, run)
        row = first_row[edge] + steps
        column = c0[edge] + (row - r0[edge]) * (c1[edge] - c0[edge]) / (r1[edge] - r0[edge])
        first_inside = np.clip(np.ceil(column), left, right + 1).astype(np.int64)
        np.add.at(flips, (row - top, first_inside - left), 1)
    mask[top : bottom + 1, left : right + 1] = np.cumsum(flips[:, :-1], axis=1) % 2 == 1
    return mask

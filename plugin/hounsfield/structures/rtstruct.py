"""An RT structure set (RTSTRUCT) read into its ROIs: each one's contours, volume and HU
statistics, and what is wrong with it.

Volume. A ROI's CLOSED_PLANAR contours are grouped by plane (their height along the
normal: the images' normal when images are given, else the normal of the ROI's first contour
that encloses an area), the contours of a plane are combined by the even-odd rule (a contour
inside another is a hole), and each plane stands for a slab one slice spacing thick centred
on it: volume = sum of plane areas x spacing. That is the midpoint rule for the integral of
the cross-section area A(z) along the normal, whose error is -(h^2 / 24) x the integral of
A''(z): nothing for a cylinder (A constant), and for a sphere of radius R sampled every h mm
-(h^2 / 24) x (-2 pi x 2R) = pi R h^2 / 6, a fraction h^2 / (8 R^2) of its volume (0.1 % for
R = 25 mm, h = 2.5 mm). The slabs end half a spacing beyond the outermost contours, where
a sphere's caps are small. Drawing tools put contours on the image slices, so the images'
spacing is the slab's thickness; without images the median gap between contour planes is
(the median, so that a slice left without a contour does not change it). One plane and no
images leaves the thickness unknown, so there is no volume.

Trust. Everything is read from a file a stranger may have made, so nothing in it raises:
a value pydicom cannot convert, a non-finite or absurd number, a count that lies, a
contour that is open, bent, crossing itself or off the image slices is a problem named on
its ROI, and the other ROIs are measured as usual. Any contour with a problem leaves its
ROI without a volume (a volume from part of the contours would be silently wrong); the
counts are still reported. The work is bounded: ``MAX_POINTS_PER_CONTOUR`` and
``MAX_POINTS`` are checked on the element's raw text before its numbers are converted, and
the geometry in ``contours`` has bounds of its own.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import BytesLengthException
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from hounsfield.structures.contours import (
    NESTING_BUDGET,
    TooComplex,
    drop_repeats,
    edges_cross,
    even_odd_area,
    is_planar,
    nesting_cost,
    normal,
    orientation_for,
    polygon_normal,
    project,
    raster_cost,
    raster_mask,
)

# Per contour, and per structure set (all ROIs together), where real structure sets hold
# some 100 000 points. The structure set's points bound its DS conversion (1.5 s at most)
# and its crossing checks (``contours.edges_cross``, each edge in at most two: 10^8 pairs,
# 2.5 s at most).
MAX_POINTS_PER_CONTOUR = 20_000
MAX_POINTS = 500_000
# What the structure set's ROIs may spend together nesting contours (a plane's worth of
# ``contours.NESTING_BUDGET``, 2 s) and rasterising them for HU (``contours.raster_cost``:
# 1,000 slices of 512 x 512 pixels, 3 s at most).
MAX_NESTING = NESTING_BUDGET
MAX_RASTER = 300_000_000
# Patient coordinates lie within a metre or two of the origin; past a kilometre a value is
# nonsense, and bounding it keeps every area and volume far from overflow.
COORDINATE_LIMIT_MM = 1e6
# Contour heights this close (mm) are one plane, when there are no images to tell.
PLANE_GAP_MM = 0.01
# A contour drawn on an image sits on a slice centre, up to DS rounding (0.005 mm) and the
# cosines' precision; half a spacing is as far off as a contour can be. A quarter splits the
# difference: generous to rounding, yet a contour from a series shifted by half a slice (or
# resampled) is caught.
OFF_SLICE_FRACTION = 0.25
# ImageOrientationPatient's cosines: unit length and perpendicular, within this (what the
# volume loader lets through: a grid it made must be accepted here).
ORTHONORMAL_TOLERANCE = 0.01
OPEN_TYPES = {"OPEN_PLANAR", "OPEN_NONPLANAR"}
# What pydicom raises converting a value it cannot read: ValueError, TypeError,
# AttributeError and OverflowError from the value types; BytesLengthException for a binary
# value whose length is not a multiple of its size; OSError for a sequence it cannot parse.
UNREADABLE = (ValueError, TypeError, AttributeError, OverflowError, OSError, BytesLengthException)

SpacingFrom = Literal["images", "contours"]
JsonObject = dict[str, object]


@dataclass(frozen=True)
class Grid:
    """The referenced image series' geometry, as a volume sorted along its normal."""

    # ImagePositionPatient of the first slice (centre of its first voxel)
    origin: tuple[float, float, float]
    # ImageOrientationPatient: row direction cosines, then column direction cosines
    orientation: tuple[float, float, float, float, float, float]
    spacing: tuple[float, float, float]  # (between slices, between rows, between columns) in mm
    shape: tuple[int, int, int]  # (slices, rows, columns)

    def __post_init__(self) -> None:
        """A grid is made by our own code from checked headers: a wrong one is a bug, said
        at once, rather than volumes measured on it."""
        numbers = np.array([*self.origin, *self.orientation, *self.spacing], dtype=float)
        row, column = np.array(self.orientation[:3]), np.array(self.orientation[3:])
        if not np.isfinite(numbers).all() or min(self.spacing) <= 0 or min(self.shape) < 1:
            raise ValueError(f"not a grid: {self}")
        lengths = np.linalg.norm([row, column], axis=1)
        if np.abs(lengths - 1).max() > ORTHONORMAL_TOLERANCE or abs(row @ column) > (
            ORTHONORMAL_TOLERANCE
        ):
            raise ValueError(f"orientation {self.orientation} is not two perpendicular unit axes")

    def slice_at(self, height: float) -> float:
        """The fractional slice index of a plane at ``height`` along the normal."""
        start = float(np.asarray(self.origin) @ normal(self.orientation))
        return (height - start) / self.spacing[0]

    def pixels(self, in_plane: np.ndarray) -> np.ndarray:
        """In-plane coordinates (p.r, p.c) (``contours.project`` with this orientation) as
        fractional (row, column) indices: moving along a row goes in the row direction (one
        column per spacing[2] mm), moving down rows in the column direction."""
        origin = np.asarray(self.origin, dtype=float)
        row_start = origin @ np.asarray(self.orientation[:3])
        column_start = origin @ np.asarray(self.orientation[3:])
        return np.column_stack(
            (
                (in_plane[:, 1] - column_start) / self.spacing[1],
                (in_plane[:, 0] - row_start) / self.spacing[2],
            )
        )


@dataclass(frozen=True)
class HuStats:
    """HU over the voxels whose centres lie inside a ROI's contours, on its slices."""

    mean: float
    min: float
    max: float
    voxels: int

    def to_json(self) -> JsonObject:
        return {"mean": self.mean, "min": self.min, "max": self.max, "voxels": self.voxels}


@dataclass(frozen=True)
class Roi:
    """One ROI as read: the slice spacing is reported with the volume it made, or not at
    all; ``number`` is None only where the file's ROINumber is missing or unreadable."""

    number: int | None
    name: str
    colour: tuple[int, int, int] | None
    interpreted_type: str | None
    frame_of_reference: str | None
    referenced_series: tuple[str, ...]
    contours: int
    points: int
    geometric_types: tuple[str, ...]
    volume_ml: float | None
    slice_spacing_mm: float | None
    spacing_from: SpacingFrom | None
    hu: HuStats | None
    problems: tuple[str, ...]

    def to_json(self) -> JsonObject:
        return {
            "number": self.number,
            "name": self.name,
            "colour": list(self.colour) if self.colour else None,
            "interpretedType": self.interpreted_type,
            "frameOfReference": self.frame_of_reference,
            "referencedSeries": list(self.referenced_series),
            "contours": self.contours,
            "points": self.points,
            "geometricTypes": list(self.geometric_types),
            "volumeMl": self.volume_ml,
            "sliceSpacingMm": self.slice_spacing_mm,
            "spacingFrom": self.spacing_from,
            "hu": self.hu.to_json() if self.hu else None,
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class StructureSet:
    """A structure set's ROIs; ``problems`` are about the file as a whole (the ROIs carry
    their own)."""

    label: str
    name: str
    frame_of_reference: tuple[str, ...]
    referenced_series: tuple[str, ...]
    rois: tuple[Roi, ...]
    problems: tuple[str, ...]

    def to_json(self) -> JsonObject:
        return {
            "label": self.label,
            "name": self.name,
            "frameOfReference": list(self.frame_of_reference),
            "referencedSeries": list(self.referenced_series),
            "rois": [roi.to_json() for roi in self.rois],
            "problems": list(self.problems),
        }


@dataclass
class _Problems:
    """Problems found, each prefixed with where it was found (say, "contour 3: ")."""

    found: list[str] = field(default_factory=list)
    where: str = ""

    def add(self, problem: str) -> None:
        self.found.append(self.where + problem)

    def at(self, where: str) -> _Problems:
        return _Problems(self.found, where)


def _value(ds: Dataset, keyword: str, problems: _Problems) -> object:
    """The element's value, None when absent or when pydicom cannot convert it (a problem)."""
    try:
        return ds.get(keyword)
    except UNREADABLE as error:
        problems.add(f"{keyword} cannot be read ({type(error).__name__})")
        return None


def _text(ds: Dataset, keyword: str, problems: _Problems) -> str | None:
    value = _value(ds, keyword, problems)
    if value is None:
        return None
    if isinstance(value, str):
        return str(value)
    if isinstance(value, MultiValue) and all(isinstance(part, str) for part in value):
        return "\\".join(str(part) for part in value)
    problems.add(f"{keyword} is not text")
    return None


def _as_integer(value: object) -> int | None:
    """An integer from what pydicom gives for IS: an int, an integral float, or the text it
    kept because it was not valid IS."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _integer(ds: Dataset, keyword: str, problems: _Problems) -> int | None:
    value = _value(ds, keyword, problems)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number = _as_integer(value)
    if number is None:
        problems.add(f"{keyword} is not an integer")
    return number


def _sequence(ds: Dataset, keyword: str, problems: _Problems) -> list[Dataset] | None:
    value = _value(ds, keyword, problems)
    if value is None:
        return None
    if not isinstance(value, Sequence):
        problems.add(f"{keyword} is not a sequence")
        return None
    return list(value)


def _value_count(ds: Dataset, keyword: str) -> int:
    """How many values an element holds, without converting them: a still-raw DS element's
    values are counted by their separators, at C speed."""
    element = ds.get_item(keyword)
    if element is None:
        return 0
    if isinstance(element, RawDataElement):
        raw = element.value
        return raw.count(b"\\") + 1 if raw else 0
    return element.VM


def _colour(ds: Dataset, problems: _Problems) -> tuple[int, int, int] | None:
    value = _value(ds, "ROIDisplayColor", problems)
    if value is None:
        return None
    parts = [_as_integer(part) for part in value] if isinstance(value, MultiValue) else []
    levels = [part for part in parts if part is not None and 0 <= part <= 255]
    if len(parts) == 3 and len(levels) == 3:
        red, green, blue = levels
        return red, green, blue
    problems.add("ROIDisplayColor is not three integers from 0 to 255")
    return None


def _points(ds: Dataset, problems: _Problems) -> np.ndarray | None:
    """ContourData as (n, 3) finite coordinates, or None when it cannot be (a problem)."""
    value = _value(ds, "ContourData", problems)
    values = list(value) if isinstance(value, MultiValue | list | tuple) else [value]
    if value is None or (isinstance(value, str) and not value) or not values:
        problems.add("no ContourData")
        return None
    try:  # DS numbers, or the text pydicom kept because it was not valid DS
        numbers = np.array(values, dtype=float).reshape(-1)
    except (ValueError, TypeError, OverflowError):
        problems.add("ContourData holds values that are not numbers")
        return None
    if not np.isfinite(numbers).all():
        problems.add("ContourData holds non-finite numbers")
        return None
    if np.abs(numbers).max() > COORDINATE_LIMIT_MM:
        problems.add("ContourData holds coordinates more than a kilometre from the origin")
        return None
    if len(numbers) % 3:
        problems.add(f"ContourData holds {len(numbers)} values, not a multiple of 3")
        return None
    declared = _integer(ds, "NumberOfContourPoints", problems)
    if declared is not None and declared != len(numbers) // 3:
        problems.add(
            f"NumberOfContourPoints is {declared} but ContourData holds {len(numbers) // 3} points"
        )
        return None
    return numbers.reshape(-1, 3)


@dataclass(frozen=True)
class _Contour:
    """A closed planar contour that passed every check."""

    corners: np.ndarray  # (n, 2) distinct in-plane coordinates (mm), n >= 3
    height: float  # along the normal (mm)
    slice: int | None  # the image slice it lies on, with images


@dataclass
class _Budget:
    """What the structure set may still spend, all its ROIs together."""

    points: int
    nesting: int
    raster: int


@dataclass(frozen=True)
class _Context:
    """What every ROI of one structure set is read against."""

    frames: dict[str, tuple[str, ...]]
    contours: dict[int, list[Dataset]]  # ROIContourSequence items by ReferencedROINumber
    observations: dict[int, list[Dataset]]  # RTROIObservationsSequence items, likewise
    numbers: Counter[int | None]  # how many ROIs use each ROINumber
    images: Grid | None
    voxels: np.ndarray | None
    budget: _Budget


def read_structures(
    ds: Dataset, images: Grid | None = None, voxels: np.ndarray | None = None
) -> StructureSet:
    """Every ROI of an RTSTRUCT with its counts, volume and (given the referenced series'
    ``images`` grid and its ``voxels`` in HU, shape ``images.shape``) HU statistics, and the
    problems found. Raises only for a wrong call (voxels without or unlike their grid, or not
    finite); never for anything in ``ds``."""
    if voxels is not None:
        if images is None or voxels.shape != images.shape:
            raise ValueError("voxels need the images' grid, and its shape")
        if not np.isfinite(voxels).all():
            raise ValueError("voxels must be finite HU")
    problems = _Problems()
    label = _text(ds, "StructureSetLabel", problems) or ""
    name = _text(ds, "StructureSetName", problems) or ""
    frames = _frames(ds, problems)
    series = tuple(dict.fromkeys(uid for uids in frames.values() for uid in uids))
    items = _sequence(ds, "StructureSetROISequence", problems)
    if items is None:
        problems.add("no StructureSetROISequence: not an RT structure set")
        return StructureSet(label, name, tuple(frames), series, (), tuple(problems.found))
    per_roi = [_Problems() for _ in items]
    numbers = [
        _integer(item, "ROINumber", found) for item, found in zip(items, per_roi, strict=True)
    ]
    context = _Context(
        frames=frames,
        contours=_by_roi(ds, "ROIContourSequence", problems),
        observations=_by_roi(ds, "RTROIObservationsSequence", problems),
        numbers=Counter(numbers),
        images=images,
        voxels=voxels,
        budget=_Budget(MAX_POINTS, MAX_NESTING, MAX_RASTER),
    )
    rois = tuple(
        _roi(item, number, found, context)
        for item, number, found in zip(items, numbers, per_roi, strict=True)
    )
    return StructureSet(label, name, tuple(frames), series, rois, tuple(problems.found))


def _frames(ds: Dataset, problems: _Problems) -> dict[str, tuple[str, ...]]:
    """Each referenced frame of reference's UID, with the series it maps to."""
    frames: dict[str, tuple[str, ...]] = {}
    for item in _sequence(ds, "ReferencedFrameOfReferenceSequence", problems) or []:
        uid = _text(item, "FrameOfReferenceUID", problems)
        if not uid:
            problems.add("a ReferencedFrameOfReferenceSequence item has no FrameOfReferenceUID")
            continue
        series = list(frames.get(uid, ()))
        for study in _sequence(item, "RTReferencedStudySequence", problems) or []:
            for referenced in _sequence(study, "RTReferencedSeriesSequence", problems) or []:
                series.append(_text(referenced, "SeriesInstanceUID", problems) or "")
        frames[uid] = tuple(dict.fromkeys(found for found in series if found))
    return frames


def _by_roi(ds: Dataset, keyword: str, problems: _Problems) -> dict[int, list[Dataset]]:
    """A sequence's items by their ReferencedROINumber; an item without one belongs to no
    ROI, a problem of the file."""
    found: dict[int, list[Dataset]] = {}
    for position, item in enumerate(_sequence(ds, keyword, problems) or [], start=1):
        number = _integer(item, "ReferencedROINumber", problems.at(f"{keyword} item {position}: "))
        if number is None:
            problems.add(f"{keyword} item {position} names no ROI (ReferencedROINumber)")
        else:
            found.setdefault(number, []).append(item)
    return found


def _roi(item: Dataset, number: int | None, problems: _Problems, context: _Context) -> Roi:
    name = _text(item, "ROIName", problems) or ""
    frame = _text(item, "ReferencedFrameOfReferenceUID", problems)
    if frame is None and "ReferencedFrameOfReferenceUID" not in item:
        problems.add("no ReferencedFrameOfReferenceUID")
    elif frame is not None and frame not in context.frames:
        problems.add(f"frame of reference {frame} is not in ReferencedFrameOfReferenceSequence")
    # Where the file is ambiguous about which contours are this ROI's, none are measured.
    measurable = True
    if number is None:
        if "ROINumber" not in item:
            problems.add("no ROINumber")
        measurable = False
    elif context.numbers[number] > 1:
        problems.add(f"ROI number {number} is used by {context.numbers[number]} ROIs")
        measurable = False
    shapes = context.contours.get(number, []) if number is not None else []
    if len(shapes) > 1:
        problems.add(f"{len(shapes)} ROIContourSequence items for this ROI")
        measurable = False
    observations = context.observations.get(number, []) if number is not None else []
    interpreted = _text(observations[0], "RTROIInterpretedType", problems) if observations else None
    colour = _colour(shapes[0], problems) if shapes else None
    contours = (_sequence(shapes[0], "ContourSequence", problems) or []) if shapes else []
    if not contours:
        problems.add("no contours")
    counts = [_value_count(contour, "ContourData") for contour in contours]
    points = sum(count // 3 for count in counts)
    within_budget = points <= context.budget.points
    if within_budget:
        context.budget.points -= points
    else:
        problems.add(
            f"{points} points, past what is left of the structure set's limit of {MAX_POINTS}:"
            " not measured"
        )
        measurable = False
    types, closed, complete = _contours(contours, counts, problems, read=within_budget)
    measurable = measurable and complete
    checked = _checked(closed, problems, context.images)
    measurable = measurable and checked is not None and len(checked) == len(closed)
    volume, spacing, spacing_from, hu = None, None, None, None
    if measurable and checked:
        planes = _planes(checked, context.images)
        volume, spacing, spacing_from = _volume(planes, problems, context)
        if volume is not None and context.images and context.voxels is not None:
            hu = _hu(planes, context.images, context.voxels, problems, context.budget)
    return Roi(
        number=number,
        name=name,
        colour=colour,
        interpreted_type=interpreted or None,
        frame_of_reference=frame,
        referenced_series=context.frames.get(frame, ()) if frame else (),
        contours=len(contours),
        points=points,
        geometric_types=tuple(sorted(types)),
        volume_ml=round(volume, 3) if volume is not None else None,
        slice_spacing_mm=round(spacing, 3) if spacing is not None else None,
        spacing_from=spacing_from,
        hu=hu,
        problems=tuple(problems.found),
    )


def _contours(
    contours: list[Dataset], counts: list[int], problems: _Problems, *, read: bool
) -> tuple[set[str], list[tuple[_Problems, np.ndarray]], bool]:
    """The contours' geometric types, the CLOSED_PLANAR ones' points (each with where its
    problems go), and whether every contour was read without a problem. Only the types are
    read when ``read`` is false (the structure set's point budget is spent)."""
    types: set[str] = set()
    closed: list[tuple[_Problems, np.ndarray]] = []
    complete = True
    for position, (contour, count) in enumerate(zip(contours, counts, strict=True), start=1):
        found = problems.at(f"contour {position}: ")
        kind = _text(contour, "ContourGeometricType", found)
        if kind is None:
            if "ContourGeometricType" not in contour:
                found.add("no ContourGeometricType")
            complete = False
            continue
        types.add(kind)
        if not read:
            continue
        if count > 3 * MAX_POINTS_PER_CONTOUR:
            found.add(f"{count // 3} points, more than the limit of {MAX_POINTS_PER_CONTOUR}")
            complete = False
            continue
        data = _points(contour, found)
        if data is None:
            complete = False
        elif kind == "CLOSED_PLANAR":
            closed.append((found, data))
        elif kind in OPEN_TYPES:
            found.add(f"open ({kind}): it encloses no volume")
            complete = False
        elif kind != "POINT":
            found.add(f"unknown geometric type {kind!r}")
            complete = False
        # A POINT contour (an isocentre, a marker) is a point by design: no volume, and
        # nothing wrong with it.
    return types, closed, complete


def _checked(
    closed: list[tuple[_Problems, np.ndarray]], problems: _Problems, images: Grid | None
) -> list[_Contour] | None:
    """The closed contours that pass every check, seen in the images' plane or else in the
    plane of the first contour that encloses an area; None when no contour does."""
    if not closed:
        return []
    if images is not None:
        orientation = images.orientation
    else:
        normals = (polygon_normal(data) for _, data in closed)
        first = next((found for found in normals if found is not None), None)
        if first is None:
            problems.add("no contour encloses an area: no plane can be told")
            return None
        orientation = orientation_for(first)
    checked = [_check(data, orientation, images, found) for found, data in closed]
    return [contour for contour in checked if contour is not None]


def _check(
    data: np.ndarray,
    orientation: tuple[float, float, float, float, float, float],
    images: Grid | None,
    found: _Problems,
) -> _Contour | None:
    in_plane, heights = project(data, orientation)
    if not is_planar(heights):
        own = polygon_normal(data)
        if own is not None and is_planar(project(data, orientation_for(own))[1]):
            found.add(
                "not parallel to the images' plane"
                if images
                else "not parallel to the ROI's first contour that encloses an area"
            )
        else:
            found.add("not planar: its points lie more than 0.1 mm off one plane")
        return None
    corners = drop_repeats(in_plane)
    if len(corners) < 3:
        found.add("fewer than 3 distinct points")
        return None
    try:
        if edges_cross([corners]):
            found.add("crosses itself")
            return None
    except TooComplex as error:
        found.add(str(error))
        return None
    height = float(heights.mean())
    if images is None:
        return _Contour(corners, height, None)
    position = images.slice_at(height)
    nearest = round(position)
    off = abs(position - nearest) * images.spacing[0]
    if off > OFF_SLICE_FRACTION * images.spacing[0]:
        found.add(f"lies between image slices, {off:.2f} mm from the nearest")
        return None
    if not 0 <= nearest < images.shape[0]:
        found.add("lies outside the images")
        return None
    return _Contour(corners, height, nearest)


def _planes(checked: list[_Contour], images: Grid | None) -> list[list[_Contour]]:
    """The contours by plane, in order along the normal: by image slice when there are
    images, else by height (a new plane wherever the gap exceeds ``PLANE_GAP_MM``)."""
    if images is not None:
        by_slice: dict[int | None, list[_Contour]] = {}
        for contour in sorted(checked, key=lambda contour: contour.height):
            by_slice.setdefault(contour.slice, []).append(contour)
        return list(by_slice.values())
    planes: list[list[_Contour]] = []
    for contour in sorted(checked, key=lambda contour: contour.height):
        if planes and contour.height - planes[-1][-1].height <= PLANE_GAP_MM:
            planes[-1].append(contour)
        else:
            planes.append([contour])
    return planes


def _height(plane: list[_Contour]) -> float:
    return float(np.mean([contour.height for contour in plane]))


def _volume(
    planes: list[list[_Contour]], problems: _Problems, context: _Context
) -> tuple[float | None, float | None, SpacingFrom | None]:
    """Volume (ml), slice spacing (mm) and where the spacing came from; all None when the
    planes' areas or the spacing cannot be known (a problem)."""
    images = context.images
    areas: list[float] = []
    for plane in planes:
        where = problems.at(f"plane at {_height(plane):.2f} mm: ")
        polygons = [contour.corners for contour in plane]
        try:
            if len(polygons) > 1 and edges_cross(polygons):
                where.add("contours cross each other")
                continue
            areas.append(even_odd_area(polygons, budget=context.budget.nesting))
        except ValueError as error:  # too complex to nest, or touching
            where.add(str(error))
            continue
        context.budget.nesting -= nesting_cost(polygons)
    if len(areas) < len(planes):
        return None, None, None
    if images is not None:
        spacing, source = images.spacing[0], "images"
    elif len(planes) > 1:
        gaps = np.diff([_height(plane) for plane in planes])
        spacing, source = float(np.median(gaps)), "contours"
    else:
        problems.add("contours on one plane only and no images: no slice spacing can be known")
        return None, None, None
    return sum(areas) * spacing / 1000, spacing, source


def _hu(
    planes: list[list[_Contour]],
    images: Grid,
    voxels: np.ndarray,
    problems: _Problems,
    budget: _Budget,
) -> HuStats | None:
    """HU over the voxels whose centres lie inside each plane's even-odd union, on the
    plane's slice; None (a problem) past what is left of ``MAX_RASTER``."""
    slice_shape = (images.shape[1], images.shape[2])
    outlines = [[images.pixels(contour.corners) for contour in plane] for plane in planes]
    cost = sum(raster_cost(polygons, slice_shape) for polygons in outlines)
    if cost > budget.raster:
        problems.add(
            f"no HU statistics: {cost:,} pixel tests, past what is left of the structure"
            f" set's limit of {MAX_RASTER:,}"
        )
        return None
    budget.raster -= cost
    total, low, high, count = 0.0, np.inf, -np.inf, 0
    for plane, polygons in zip(planes, outlines, strict=True):
        mask = raster_mask(polygons, slice_shape)
        inside = voxels[plane[0].slice][mask]
        if inside.size:
            total += float(inside.sum(dtype=np.float64))
            low, high = min(low, float(inside.min())), max(high, float(inside.max()))
            count += int(inside.size)
    if not count:
        problems.add("no voxel centre inside the contours")
        return None
    return HuStats(round(total / count, 1), round(low, 1), round(high, 1), count)

"""RT structure sets made from known shapes (a cylinder, a sphere) on a CT grid: what a
treatment planning system would send, with analytic volumes to check against."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset

from hounsfield.structures.rtstruct import Grid

FRAME = "1.2.826.0.1.3680043.10.1411.1"
SERIES = "1.2.826.0.1.3680043.10.1411.2"
RT_STRUCTURE_SET_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"
CYLINDER_RADIUS, CYLINDER_HEIGHT, SPHERE_RADIUS = 20.0, 50.0, 25.0
POINTS = 128  # per circle


@dataclass
class Shape:
    """One ROI to write: its contours as (kind, (n, 3) points in mm)."""

    name: str
    contours: list[tuple[str, np.ndarray]]
    interpreted: str = "ORGAN"
    colour: tuple[int, int, int] = (255, 0, 0)
    extra: dict[str, object] = field(default_factory=dict)


def axes(grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    row, column = np.array(grid.orientation[:3]), np.array(grid.orientation[3:])
    return row, column, np.cross(row, column)


def voxel_centre(grid: Grid, k: float, r: float, c: float) -> np.ndarray:
    row, column, normal = axes(grid)
    return (
        np.array(grid.origin)
        + k * grid.spacing[0] * normal
        + r * grid.spacing[1] * column
        + c * grid.spacing[2] * row
    )


def circle(grid: Grid, centre: np.ndarray, radius: float, count: int = POINTS) -> np.ndarray:
    """A circle in the grid's plane through ``centre``, counter-clockwise, first point last
    again (as many planning systems write them)."""
    row, column, _ = axes(grid)
    angles = np.linspace(0, 2 * math.pi, count, endpoint=False)
    ring = centre + radius * (np.outer(np.cos(angles), row) + np.outer(np.sin(angles), column))
    return np.vstack((ring, ring[:1]))


def cylinder(grid: Grid, axis: tuple[float, float], first: int) -> list[np.ndarray]:
    """Circles on the slices first .. first + 19: 20 slabs of 2.5 mm, 50 mm high."""
    slabs = round(CYLINDER_HEIGHT / grid.spacing[0])
    return [
        circle(grid, voxel_centre(grid, k, *axis), CYLINDER_RADIUS)
        for k in range(first, first + slabs)
    ]


def sphere(grid: Grid, centre: tuple[float, float, float]) -> list[np.ndarray]:
    """Circles of radius sqrt(R^2 - z^2) on the slices strictly inside the sphere; centre
    is (slice, row, column), the slice a whole number."""
    middle = voxel_centre(grid, *centre)
    _, _, normal = axes(grid)
    found = []
    for k in range(grid.shape[0]):
        z = (k - centre[0]) * grid.spacing[0]
        if abs(z) < SPHERE_RADIUS:
            found.append(circle(grid, middle + z * normal, math.sqrt(SPHERE_RADIUS**2 - z**2)))
    return found


def closed(contours: Sequence[np.ndarray]) -> list[tuple[str, np.ndarray]]:
    return [("CLOSED_PLANAR", points) for points in contours]


def structure_set(shapes: Sequence[Shape], *, series: str = SERIES, frame: str = FRAME) -> Dataset:
    """A minimal valid RTSTRUCT holding the shapes as ROIs 1, 2, ... in one frame of
    reference, which maps to one CT series."""
    ds = Dataset()
    ds.SOPClassUID = RT_STRUCTURE_SET_STORAGE
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.1411.3"
    ds.Modality = "RTSTRUCT"
    ds.StructureSetLabel = "PHANTOMS"
    ds.StructureSetName = "Known shapes"
    referenced_series = Dataset()
    referenced_series.SeriesInstanceUID = series
    study = Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    study.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.10.1411.4"
    study.RTReferencedSeriesSequence = [referenced_series]
    reference = Dataset()
    reference.FrameOfReferenceUID = frame
    reference.RTReferencedStudySequence = [study]
    ds.ReferencedFrameOfReferenceSequence = [reference]
    ds.StructureSetROISequence, ds.ROIContourSequence, ds.RTROIObservationsSequence = [], [], []
    for number, shape in enumerate(shapes, start=1):
        roi = Dataset()
        roi.ROINumber = number
        roi.ReferencedFrameOfReferenceUID = frame
        roi.ROIName = shape.name
        roi.ROIGenerationAlgorithm = "MANUAL"
        ds.StructureSetROISequence.append(roi)
        contours = []
        for position, (kind, points) in enumerate(shape.contours, start=1):
            contour = Dataset()
            contour.ContourGeometricType = kind
            contour.NumberOfContourPoints = len(points)
            contour.ContourNumber = position
            contour.ContourData = [round(float(value), 4) for value in points.ravel()]
            contours.append(contour)
        outline = Dataset()
        outline.ROIDisplayColor = list(shape.colour)
        outline.ContourSequence = contours
        outline.ReferencedROINumber = number
        ds.ROIContourSequence.append(outline)
        observation = Dataset()
        observation.ObservationNumber = number
        observation.ReferencedROINumber = number
        observation.RTROIInterpretedType = shape.interpreted
        observation.ROIInterpreter = ""
        ds.RTROIObservationsSequence.append(observation)
    return ds

"""The acquisition geometry of a circular cone-beam orbit, validated.

RTK's conventions: the rotation axis is y, gantry angles are in degrees, detector
coordinates are centred on the source-to-isocentre ray, offsets shift the detector.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MAX_DISTANCE_MM = 5000.0


class GeometryError(ValueError):
    """The geometry cannot describe a real acquisition; the message names the problem."""


@dataclass(frozen=True)
class CircularGeometry:
    source_to_isocenter: float  # SID, mm
    source_to_detector: float  # SDD, mm
    angles: tuple[float, ...]  # degrees, one per projection, strictly monotonic
    pixel_spacing: tuple[float, float]  # (columns, rows) at the detector, mm
    detector_size: tuple[int, int]  # (columns, rows)
    detector_offset: tuple[float, float] = (0.0, 0.0)  # (u, v), mm

    def __post_init__(self) -> None:
        sid, sdd = self.source_to_isocenter, self.source_to_detector
        if not (10.0 <= sid <= MAX_DISTANCE_MM):
            raise GeometryError(f"source-to-isocentre distance {sid} mm is not plausible")
        if not (sid < sdd <= MAX_DISTANCE_MM):
            raise GeometryError(
                f"source-to-detector distance {sdd} mm must exceed the source-to-isocentre "
                f"distance {sid} mm"
            )
        if len(self.angles) < 3:
            raise GeometryError("at least 3 projection angles are needed")
        steps = np.diff(np.asarray(self.angles, dtype=float))
        if not (np.all(steps > 0) or np.all(steps < 0)):
            raise GeometryError("projection angles must be strictly monotonic")
        if self.arc > 400.0:
            raise GeometryError(f"the orbit covers {self.arc:.0f} degrees; at most 400 expected")
        if any(not (0.0 < spacing <= 10.0) for spacing in self.pixel_spacing):
            raise GeometryError(f"detector pixel spacing {self.pixel_spacing} mm is not plausible")
        if any(size < 2 for size in self.detector_size):
            raise GeometryError(f"detector size {self.detector_size} is too small")

    @property
    def step(self) -> float:
        return abs(self.angles[-1] - self.angles[0]) / (len(self.angles) - 1)

    @property
    def arc(self) -> float:
        """Angular coverage, counting each projection's own share of the orbit."""
        return abs(self.angles[-1] - self.angles[0]) + self.step

    @property
    def short_scan(self) -> bool:
        return bool(self.arc < 360.0 - self.step / 2)

    @property
    def magnification(self) -> float:
        return self.source_to_detector / self.source_to_isocenter

    def field_of_view_radius(self) -> float:
        """Radius (mm) of the cylinder the orbit sees whole, at the isocentre.

        A detector displaced sideways on a full turn sees each half of a wider field from
        one side or the other (what the displacement is for, and what RTK's displaced-
        detector weighting reconstructs); on a short scan it only narrows the field.
        """
        columns, _ = self.detector_size
        half_width, offset = columns * self.pixel_spacing[0] / 2, abs(self.detector_offset[0])
        half_width += -offset if self.short_scan else offset
        return self.source_to_isocenter * math.sin(math.atan(half_width / self.source_to_detector))

    def default_volume(self, voxels_across: int | None = None) -> VolumeGrid:
        """A grid covering the field of view at the detector's resolution (or ``voxels_across``)."""
        radius = self.field_of_view_radius()
        _, rows = self.detector_size
        height = rows * self.pixel_spacing[1] / self.magnification
        if voxels_across is None:
            spacing = self.pixel_spacing[0] / self.magnification
            voxels_across = max(2, math.ceil(2 * radius / spacing))
        else:
            spacing = 2 * radius / voxels_across
        slices = max(1, round(height / spacing))
        return VolumeGrid((voxels_across, slices, voxels_across), (spacing,) * 3)


@dataclass(frozen=True)
class VolumeGrid:
    """A reconstruction grid centred on the isocentre: size (x, y, z) and spacing in mm."""

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]

    @property
    def origin(self) -> tuple[float, float, float]:
        return tuple(-(n - 1) * s / 2 for n, s in zip(self.size, self.spacing, strict=True))

    @property
    def voxel_count(self) -> int:
        nx, ny, nz = self.size
        return nx * ny * nz

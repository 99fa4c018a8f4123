"""Synthetic CT volumes with a known truth, for the analyzers' tests.

Geometry is given in mm from the volume's centre, in the volume's axis order (z along the
slices, y down the rows, x along a row), so that a phantom looks the same at any size
and resolution (a 64 px test phantom, a 512 x 512 x 300 timing run). The volumes are
axial: the row direction is +x (patient left), the column direction +y (posterior), the
slices go up +z (superior, the last slice is the highest).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hounsfield.volume import Volume, Voxel

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
UID_ROOT = "2.25.3141592653589793"

Mm = tuple[float, float, float]  # (z, y, x) in mm from the volume's centre


def volume_of(
    voxels: np.ndarray,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    *,
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    tags: Mapping[str, str] | None = None,
    orientation: tuple[float, float, float, float, float, float] = AXIAL,
) -> Volume:
    """A ``Volume`` of these voxels (float32, slices x rows x columns), by default with an
    axial geometry: slice k at z = origin z + k * spacing[0]."""
    voxels = np.asarray(voxels, dtype=np.float32)
    if voxels.ndim != 3:
        raise ValueError(f"voxels must be 3D, not {voxels.shape}")
    series = f"{UID_ROOT}.{voxels.shape[0]}.{voxels.shape[1]}.{voxels.shape[2]}"
    return Volume(
        voxels=voxels,
        spacing=(float(spacing[0]), float(spacing[1]), float(spacing[2])),
        origin=(float(origin[0]), float(origin[1]), float(origin[2])),
        orientation=orientation,
        instances=tuple(f"{series}.{k + 1}" for k in range(voxels.shape[0])),
        sop_class=CT_IMAGE_STORAGE,
        series_uid=series,
        study_uid=f"{UID_ROOT}.1",
        frame_of_reference=f"{UID_ROOT}.2",
        tags=dict(tags) if tags is not None else {"Modality": "CT"},
    )


def grid(shape: Sequence[int], spacing: Sequence[float]) -> tuple[np.ndarray, ...]:
    """Open grids (z, y, x) of each voxel's position in mm from the volume's centre."""
    return tuple(
        ((np.arange(n, dtype=np.float32) - (n - 1) / 2) * s).reshape(
            [-1 if a == axis else 1 for a in range(3)]
        )
        for axis, (n, s) in enumerate(zip(shape, spacing, strict=True))
    )


def voxel_at(shape: Sequence[int], spacing: Sequence[float], point: Mm) -> Voxel:
    """The (fractional) voxel index of a point given in mm from the centre."""
    k, r, c = (p / s + (n - 1) / 2 for p, s, n in zip(point, spacing, shape, strict=True))
    return (k, r, c)


def ellipsoid(shape: Sequence[int], spacing: Sequence[float], centre: Mm, radii: Mm) -> np.ndarray:
    z, y, x = grid(shape, spacing)
    return (
        ((z - centre[0]) / radii[0]) ** 2
        + ((y - centre[1]) / radii[1]) ** 2
        + ((x - centre[2]) / radii[2]) ** 2
    ) <= 1.0


def sphere(shape: Sequence[int], spacing: Sequence[float], centre: Mm, radius: float) -> np.ndarray:
    return ellipsoid(shape, spacing, centre, (radius, radius, radius))


def elliptic_cylinder(
    shape: Sequence[int],
    spacing: Sequence[float],
    centre: tuple[float, float],
    radii: tuple[float, float],
    z_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """An elliptic cylinder along z (``centre`` and ``radii`` are (y, x) in mm), through
    every slice or only those within ``z_range`` (mm)."""
    z, y, x = grid(shape, spacing)
    section = ((y - centre[0]) / radii[0]) ** 2 + ((x - centre[1]) / radii[1]) ** 2 <= 1.0
    along = (
        np.ones_like(z, dtype=bool) if z_range is None else (z >= z_range[0]) & (z <= z_range[1])
    )
    return np.broadcast_to(section & along, tuple(shape)).copy()


def tube(
    shape: Sequence[int], spacing: Sequence[float], start: Mm, end: Mm, radius: float
) -> np.ndarray:
    """The voxels within ``radius`` mm of the segment from ``start`` to ``end`` (mm)."""
    z, y, x = grid(shape, spacing)
    a = [float(v) for v in start]
    d = [float(e) - v for e, v in zip(end, a, strict=True)]
    length2 = d[0] ** 2 + d[1] ** 2 + d[2] ** 2
    t = ((z - a[0]) * d[0] + (y - a[1]) * d[1] + (x - a[2]) * d[2]) / length2
    t = np.clip(t, 0.0, 1.0)
    distance2 = (z - a[0] - t * d[0]) ** 2 + (y - a[1] - t * d[1]) ** 2 + (x - a[2] - t * d[2]) ** 2
    return distance2 <= radius**2


def noisy(voxels: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    if sigma <= 0:
        return voxels.astype(np.float32)
    rng = np.random.default_rng(seed)
    return (voxels + rng.standard_normal(voxels.shape, dtype=np.float32) * sigma).astype(np.float32)


@dataclass(frozen=True)
class Chest:
    """A chest phantom and its truth: masks of each lung (vessels inside included) and of
    the airways outside the lungs."""

    volume: Volume
    left_lung: np.ndarray
    right_lung: np.ndarray
    airways: np.ndarray
    left_centre: Mm  # +x: patient left
    left_radii: Mm
    right_centre: Mm
    right_radii: Mm


def chest_phantom(
    shape: Sequence[int] = (48, 96, 96),
    spacing: Sequence[float] = (5.0, 3.3, 3.3),
    *,
    emphysema: float = 0.0,
    noise: float = 15.0,
    ribs: bool = False,
    seed: int = 0,
) -> Chest:
    """A 240 mm tall chest: outside air (-1000 HU), a body (40 HU elliptic cylinder,
    300 x 220 mm), two lungs (-850 HU ellipsoids, 170 mm tall, 140 mm deep, 90 mm wide on
    the left, 110 mm on the right: 1.12 and 1.37 l) with a vessel (40 HU, 10 mm across)
    inside each, a trachea (-1000 HU, 16 mm) coming down from the top slice to a carina,
    two bronchi (12 mm) from the carina into the lungs.
    ``emphysema``: the fraction of lung parenchyma voxels (chosen at random) at -980 HU.
    ``ribs``: a bony ring (700 HU) inside the body wall."""
    shape = tuple(shape)
    z, _, _ = grid(shape, spacing)
    top = float(z.max())
    left: Mm = (-15.0, 0.0, 65.0)
    left_radii: Mm = (85.0, 70.0, 45.0)
    right: Mm = (-15.0, 0.0, -65.0)
    right_radii: Mm = (85.0, 70.0, 55.0)
    voxels = np.full(shape, -1000.0, dtype=np.float32)
    voxels[elliptic_cylinder(shape, spacing, (0.0, 0.0), (110.0, 150.0))] = 40.0
    if ribs:
        outer = elliptic_cylinder(shape, spacing, (0.0, 0.0), (102.0, 142.0))
        inner = elliptic_cylinder(shape, spacing, (0.0, 0.0), (96.0, 136.0))
        voxels[outer & ~inner] = 700.0
    carina: Mm = (50.0, -10.0, 0.0)
    airways = tube(shape, spacing, (top + 10.0, -10.0, 0.0), carina, 8.0)
    for side in (1.0, -1.0):
        airways |= tube(shape, spacing, carina, (20.0, -5.0, side * 35.0), 6.0)
    voxels[airways] = -1000.0
    left_lung = ellipsoid(shape, spacing, left, left_radii)
    right_lung = ellipsoid(shape, spacing, right, right_radii)
    lungs = left_lung | right_lung
    voxels[lungs] = -850.0
    vessels = elliptic_cylinder(shape, spacing, (0.0, 70.0), (5.0, 5.0), (-60.0, 40.0))
    vessels |= elliptic_cylinder(shape, spacing, (0.0, -70.0), (5.0, 5.0), (-60.0, 40.0))
    vessels &= lungs
    voxels[vessels] = 40.0
    if emphysema > 0:
        parenchyma = np.flatnonzero(lungs & ~vessels)
        rng = np.random.default_rng(seed + 1)
        chosen = rng.choice(parenchyma, size=round(emphysema * parenchyma.size), replace=False)
        voxels.ravel()[chosen] = -980.0
    return Chest(
        volume=volume_of(noisy(voxels, noise, seed), spacing, tags=_tags("CHEST")),
        left_lung=left_lung,
        right_lung=right_lung,
        airways=airways & ~lungs,
        left_centre=left,
        left_radii=left_radii,
        right_centre=right,
        right_radii=right_radii,
    )


@dataclass(frozen=True)
class Blob:
    """A sphere of ``hu`` HU, centre in mm from the volume's centre."""

    centre: Mm
    radius: float
    hu: float


@dataclass(frozen=True)
class Head:
    volume: Volume
    cavity: np.ndarray  # inside the skull
    skull: np.ndarray


def head_phantom(
    shape: Sequence[int] = (48, 112, 112),
    spacing: Sequence[float] = (2.5, 2.0, 2.0),
    *,
    blobs: Sequence[Blob] = (),
    noise: float = 5.0,
    seed: int = 0,
) -> Head:
    """A head: scalp (40 HU, 4 mm), skull (1000 HU, 7 mm) as ellipsoid shells (outer 150 x
    190 x 170 mm, centred 30 mm below the volume's centre so that the vertex is inside
    and the bottom slice cuts through the skull), brain at 35 HU with two CSF ventricles
    (8 HU), then ``blobs`` (e.g. a 70 HU sphere), and Gaussian noise."""
    shape = tuple(shape)
    centre: Mm = (-30.0, 0.0, 0.0)
    outer: Mm = (85.0, 95.0, 75.0)
    voxels = np.full(shape, -1000.0, dtype=np.float32)
    scalp = ellipsoid(shape, spacing, centre, _grown(outer, 4.0))
    head = ellipsoid(shape, spacing, centre, outer)
    cavity = ellipsoid(shape, spacing, centre, _grown(outer, -7.0))
    voxels[scalp] = 40.0
    voxels[head] = 1000.0
    voxels[cavity] = 35.0
    for side in (1.0, -1.0):
        voxels[ellipsoid(shape, spacing, (0.0, -5.0, side * 12.0), (20.0, 30.0, 6.0))] = 8.0
    for blob in blobs:
        voxels[sphere(shape, spacing, blob.centre, blob.radius)] = blob.hu
    return Head(
        volume=volume_of(noisy(voxels, noise, seed), spacing, tags=_tags("HEAD")),
        cavity=cavity,
        skull=head & ~cavity,
    )


def water_cylinder(
    shape: Sequence[int] = (24, 96, 96),
    spacing: Sequence[float] = (2.0, 2.0, 2.0),
    *,
    radius: float = 80.0,
    noise: float = 10.0,
    seed: int = 0,
) -> np.ndarray:
    """The voxels of a water cylinder (0 HU, ``radius`` mm, along z) in air: add to them,
    then make a volume with ``volume_of``."""
    voxels = np.full(tuple(shape), -1000.0, dtype=np.float32)
    voxels[elliptic_cylinder(shape, spacing, (0.0, 0.0), (radius, radius))] = 0.0
    return noisy(voxels, noise, seed)


def _tags(body_part: str) -> dict[str, str]:
    return {"Modality": "CT", "BodyPartExamined": body_part}


def _grown(radii: Mm, mm: float) -> Mm:
    return (radii[0] + mm, radii[1] + mm, radii[2] + mm)

"""Image quality of CT and CBCT volumes: noise, uniformity, rings, metal streaks,
truncation.

All figures are measured on ``sample_slices`` (24) axial slices spread evenly over the
volume (each is a property of the whole acquisition, so a sample gives them as well as
every slice, and keeps a 512 x 512 x 300 volume within 2 s on two cores). The object in a
slice is the largest connected region above -500 HU (the patient or phantom: the table is
usually apart from it, on its mattress), holes filled.

- Noise: the median, over homogeneous water/soft-tissue pixels, of the standard
  deviation in a ``noise_window_mm`` (5 mm) square around each pixel. Homogeneous means
  the whole window lies between -200 and 200 HU; the median then keeps the many windows
  of a single tissue and ignores those straddling tissue borders, so that it measures
  noise on patients as well as on a water phantom. Finding "High noise" above
  ``noise_limit_hu`` (50 HU): routine soft-tissue CT is about 10-20 HU; low-dose scans,
  sharp kernels and CBCT go above.
- Uniformity: as in the usual CT constancy tests (IEC 61223-3-5, the ACR phantom), the
  largest difference between the centre and four peripheral regions (north, south, east,
  west), here the medians of a central disc (a quarter of the object's radius) and of four
  90-degree sectors of the ring at 0.65-0.85 of the radius: medians, so that a phantom's
  inserts or a rib do not count, and sectors, so that a gradient across the object does.
  It only means something on a uniform object, so it is measured on slices where at least
  90 % of the object lies within 100 HU of its median (a water phantom, not a patient),
  and not reported otherwise. Finding "Non-uniformity" (cupping or capping, typical of
  CBCT) above ``uniformity_limit_hu`` (10 HU, twice the 5 HU usually asked of a water
  phantom, so that only clear cupping is flagged).
- Rings: concentric rings around the rotation axis (a miscalibrated detector element).
  ``hounsfield.recon.qc.ring_index`` (the ripple of the whole image's radial profile) is
  made for phantoms: on anatomy (each slice clipped to -200..200 HU, the median over the
  slices) it measured 2.2 HU on the head phantom of the tests and 5.2 HU on the chest
  phantom with ribs, as much as real rings give. Here the same idea is kept
  on what rings change and anatomy does not: each quiet soft-tissue pixel's difference
  from its window's mean (a thin ring stays in it, organs do not; quiet: local standard
  deviation within 3 times the noise, which drops tissue borders), averaged over each
  circle around the image's centre (a ring is the same all around, noise and texture
  average out); the index is the standard deviation of that profile over the radii with
  at least 100 such pixels, less what the noise alone gives (the mean of variance / count),
  the median over the slices. Finding "Ring artifacts" above ``ring_limit_hu`` (1 HU;
  measured on a water phantom with 10 HU noise: 0.0 without rings, 0.7 with 5 HU rings on
  every 4th pixel of radius, 1.5 with 10 HU rings, 3.3 with 20 HU; 0.0 on the chest and
  head phantoms).
- Metal streaks: in slices with metal (above ``metal_hu``), the pixels of the object
  between 3 and ``streak_band_mm`` (30 mm) from the metal; a pixel is on a streak when it
  differs by more than ``streak_hu`` (150 HU) from the median of its 5 mm neighbourhood
  (at least 5 x 5 pixels: a streak is a thin line, which the median ignores; organs and
  noise are not). Measured on a water phantom with a 6 mm rod: 0.0 % without streaks,
  12 % with six 3 mm wide lines of +-200 HU through the rod, 31 % at +-400 HU. Finding
  "Metal streak artifacts" above ``streak_limit_percent`` (5 %) of those pixels.
- Truncation: the object reaching the edge of the reconstructed field of view (the
  inscribed circle of the image: its outermost 2 pixels). A slice is truncated when more
  than ``truncated_edge_fraction`` (5 %) of that edge belongs to the object; finding
  "Truncated field of view" when at least ``truncation_limit_percent`` (10 %) of the
  slices are. Values outside the field of view that are not air (some CBCT pad with 0)
  would read as truncation.

Every finding is MINOR (a reason to read with care, or to repeat a phantom test); the
confidence grows from 0.6 at the limit to 0.95 at twice the limit. Otherwise one NORMAL
finding "Image quality within limits".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from hounsfield.ai.analyzers.grid import EIGHT
from hounsfield.ai.analyzers.regions import bounding_box, region_sizes, require_volume
from hounsfield.ai.model import Analysis, Finding, Measurement, Severity, Volume

HU = "[hnsf'U]"


@dataclass(frozen=True)
class _Slice:
    image: np.ndarray
    body: np.ndarray  # the object, holes filled


@dataclass(frozen=True)
class _Local:
    """Each pixel's window: whether it lies wholly in water/soft tissue, its standard
    deviation, and the pixel's difference from the window's mean."""

    soft: np.ndarray
    std: np.ndarray
    residual: np.ndarray


@dataclass(frozen=True)
class QualityAnalyzer:
    """Noise, uniformity, rings, metal streaks and truncation (see the module's docstring)."""

    name: str = "quality"
    version: str = "1"
    noise_limit_hu: float = 50.0
    uniformity_limit_hu: float = 10.0
    ring_limit_hu: float = 1.0
    streak_limit_percent: float = 5.0
    truncation_limit_percent: float = 10.0
    truncated_edge_fraction: float = 0.05
    noise_window_mm: float = 5.0
    metal_hu: float = 2500.0
    streak_hu: float = 150.0
    streak_band_mm: float = 30.0
    sample_slices: int = 24

    def analyze(self, volume: Volume) -> Analysis:
        voxels = require_volume(volume)
        picks = np.unique(np.linspace(0, voxels.shape[0] - 1, self.sample_slices).round())
        slices = [_object(voxels[int(k)]) for k in picks]
        pixel_mm = float(volume.spacing[1]), float(volume.spacing[2])
        window = tuple(max(3, 2 * round(self.noise_window_mm / mm / 2) + 1) for mm in pixel_mm)
        local = [_local(s.image, (window[0], window[1])) for s in slices]

        figures: dict[str, tuple[float, float, str]] = {}  # key: (value, limit, finding)
        measurements = []
        noise = _noise(local, (window[0], window[1]))
        if noise is not None:
            measurements.append(Measurement("Noise", round(noise, 2), HU))
            figures["high-noise"] = (noise, self.noise_limit_hu, f"High noise: {noise:.1f} HU")
            uniformity = _uniformity(slices)
            if uniformity is not None:
                measurements.append(Measurement("Uniformity", round(uniformity, 2), HU))
                figures["non-uniformity"] = (
                    uniformity,
                    self.uniformity_limit_hu,
                    f"Non-uniformity (cupping or capping): {uniformity:.1f} HU centre to edge",
                )
            rings = _rings(local, noise)
            if rings is not None:
                measurements.append(Measurement("Ring index", round(rings, 3), HU))
                figures["ring-artifacts"] = (
                    rings,
                    self.ring_limit_hu,
                    f"Ring artifacts: ring index {rings:.1f} HU",
                )
        streaks = self._streaks(voxels, pixel_mm)
        if streaks is not None:
            measurements.append(Measurement("Metal streak pixels", round(streaks, 2), "%"))
            figures["streak-artifacts"] = (
                streaks,
                self.streak_limit_percent,
                f"Metal streak artifacts: {streaks:.1f} % of the pixels near metal",
            )
        truncated = self._truncation(slices)
        measurements.append(Measurement("Truncated slices", round(truncated, 1), "%"))
        figures["truncation"] = (
            truncated,
            self.truncation_limit_percent,
            f"Truncated field of view: the object reaches its edge in {truncated:.0f} % of slices",
        )

        findings = tuple(
            Finding(
                key=key,
                category="image-quality",
                description=text,
                severity=Severity.MINOR,
                confidence=round(min(0.95, 0.6 + 0.35 * (value / limit - 1)), 2),
            )
            for key, (value, limit, text) in figures.items()
            if value > limit
        ) or (
            Finding(
                key="quality",
                category="image-quality",
                description="Image quality within limits",
                severity=Severity.NORMAL,
                confidence=0.8,
            ),
        )
        return Analysis(self.name, self.version, findings, tuple(measurements))

    def _streaks(self, voxels: np.ndarray, pixel_mm: tuple[float, float]) -> float | None:
        with_metal = np.flatnonzero((voxels > self.metal_hu).any(axis=(1, 2)))
        if with_metal.size == 0:
            return None
        spread = np.linspace(0, with_metal.size - 1, self.sample_slices).round().astype(int)
        band = [max(1, round(self.streak_band_mm / mm)) for mm in pixel_mm]
        gap = [max(1, round(3.0 / mm)) for mm in pixel_mm]
        median = [max(5, 2 * round(5.0 / mm / 2) + 1) for mm in pixel_mm]
        streak = total = 0
        for k in with_metal[np.unique(spread)]:
            image = voxels[int(k)]
            metal = image > self.metal_hu
            box = bounding_box(metal, margin=max(band) + max(median))
            assert box is not None  # this slice has metal
            part = image[box]
            dense = metal[box].view(np.uint8)
            near = ndimage.maximum_filter(dense, size=(2 * band[0] + 1, 2 * band[1] + 1))
            close = ndimage.maximum_filter(dense, size=(2 * gap[0] + 1, 2 * gap[1] + 1))
            ring = near.astype(bool) & ~close.astype(bool) & _object(image).body[box]
            if not ring.any():
                continue
            residual = np.abs(part - ndimage.median_filter(part, size=(median[0], median[1])))
            streak += int((ring & (residual > self.streak_hu)).sum())
            total += int(ring.sum())
        return 100.0 * streak / total if total else None

    def _truncation(self, slices: list[_Slice]) -> float:
        rows, columns = slices[0].image.shape
        r, c = np.indices((rows, columns))
        radius = np.hypot(r - (rows - 1) / 2, c - (columns - 1) / 2)
        edge_radius = min(rows, columns) / 2
        edge = (radius >= edge_radius - 2) & (radius < edge_radius)
        truncated = sum(1 for s in slices if s.body[edge].mean() > self.truncated_edge_fraction)
        return 100.0 * truncated / len(slices)


def _object(image: np.ndarray) -> _Slice:
    """The largest connected region above -500 HU, holes filled."""
    labels, count = ndimage.label(image > -500, structure=EIGHT)
    if count == 0:
        return _Slice(image, np.zeros(image.shape, dtype=bool))
    sizes = region_sizes(labels, count)
    return _Slice(image, ndimage.binary_fill_holes(labels == int(np.argmax(sizes))))


def _local(image: np.ndarray, window: tuple[int, int]) -> _Local:
    values = image.astype(np.float64)
    n = window[0] * window[1]
    inside = ((values >= -200) & (values <= 200)).astype(np.float32)
    soft = ndimage.uniform_filter(inside, window) > 0.999
    mean = ndimage.uniform_filter(values, window)
    square = ndimage.uniform_filter(values * values, window)
    std = np.sqrt(np.maximum(square - mean * mean, 0.0) * n / (n - 1))
    return _Local(soft, std, values - mean)


def _noise(local: list[_Local], window: tuple[int, int]) -> float | None:
    """The median local standard deviation over the water/soft-tissue windows, divided by
    what the median of a sample standard deviation is for Gaussian noise (the square root
    of the median of chi-square with n - 1 degrees of freedom over n - 1, Wilson and
    Hilferty's approximation): 0.958 for a 3 x 3 window, 0.993 for 7 x 7."""
    values = np.concatenate([each.std[each.soft] for each in local])
    if values.size < 100:
        return None
    k = window[0] * window[1] - 1
    median_ratio = (1 - 2 / (9 * k)) ** 1.5
    return float(np.median(values)) / median_ratio


def _uniformity(slices: list[_Slice]) -> float | None:
    """Centre to periphery, on the slices of a uniform object (see the module's
    docstring): the median of each ROI, so that an insert or a rib in it does not count."""
    differences = []
    rows, columns = np.indices(slices[0].image.shape)
    for s in slices:
        inside = s.image[s.body]
        if inside.size < 400:
            continue
        median = float(np.median(inside))
        if np.mean(np.abs(inside - median) <= 100) < 0.9:
            continue
        r0, c0 = (float(a.mean()) for a in np.nonzero(s.body))
        radius = float(np.sqrt(inside.size / np.pi))
        distance = np.hypot(rows - r0, columns - c0) / radius
        angle = np.degrees(np.arctan2(rows - r0, columns - c0))
        centre = s.image[s.body & (distance <= 0.25)]
        annulus = s.body & (distance >= 0.65) & (distance <= 0.85)
        sectors = [
            s.image[annulus & (np.abs((angle - towards + 180) % 360 - 180) <= 45)]
            for towards in (-90, 90, 180, 0)  # north (up the rows), south, west, east
        ]
        if centre.size < 10 or min(sector.size for sector in sectors) < 10:
            continue
        middle = float(np.median(centre))
        differences.append([float(np.median(sector)) - middle for sector in sectors])
    if not differences:
        return None
    return float(np.max(np.abs(np.mean(differences, axis=0))))


def _rings(local: list[_Local], noise: float) -> float | None:
    """The ripple of the radial profile (around the image's centre) of each pixel's
    difference from its window's mean, over quiet soft-tissue pixels, less what noise
    alone gives; the median over the slices."""
    indices: list[float] = []
    for each in local:
        quiet = each.soft & (each.std <= 3 * noise)
        rows, columns = quiet.shape
        r, c = np.nonzero(quiet)
        radius = np.hypot(r - (rows - 1) / 2, c - (columns - 1) / 2).astype(np.intp)
        residual = each.residual[quiet]
        counts = np.bincount(radius)
        sums = np.bincount(radius, residual)
        enough = counts >= 100
        if enough.sum() < 8:
            continue
        profile = sums[enough] / counts[enough]
        floor = float(np.mean(residual.var() / counts[enough]))
        indices.append(float(np.sqrt(max(profile.var() - floor, 0.0))))
    return float(np.median(indices)) if indices else None

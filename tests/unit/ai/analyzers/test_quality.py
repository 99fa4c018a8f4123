from __future__ import annotations

import numpy as np
import pytest

from hounsfield.ai.analyzers import BUILT_IN
from hounsfield.ai.analyzers.quality import QualityAnalyzer
from hounsfield.ai.model import Analysis, Severity
from tests.unit.ai.phantoms import (
    chest_phantom,
    elliptic_cylinder,
    grid,
    head_phantom,
    volume_of,
    water_cylinder,
)

SHAPE = (24, 96, 96)
SPACING = (2.0, 2.0, 2.0)  # a 192 mm field of view
RADIUS = 80.0  # the water cylinder's


def analyse(voxels: np.ndarray, spacing: tuple[float, float, float] = SPACING) -> Analysis:
    return QualityAnalyzer().analyze(volume_of(voxels, spacing))


def figures(analysis: Analysis) -> dict[str, float]:
    return {m.name: m.value for m in analysis.measurements}


def problems(analysis: Analysis) -> list[str]:
    return [f.key for f in analysis.findings if f.severity != Severity.NORMAL]


def in_plane_radius() -> np.ndarray:
    """Each pixel's distance from the image's centre, in mm (rows x columns)."""
    _, y, x = grid(SHAPE, SPACING)
    return np.hypot(y, x)[0]


def test_it_is_built_in() -> None:
    assert isinstance(BUILT_IN["quality"], QualityAnalyzer)


@pytest.mark.parametrize("noise", [5.0, 10.0, 30.0])
def test_noise_is_measured_in_hu(noise: float) -> None:
    analysis = analyse(water_cylinder(SHAPE, SPACING, radius=RADIUS, noise=noise))
    assert figures(analysis)["Noise"] == pytest.approx(noise, rel=0.03)
    units = {m.name: m.unit for m in analysis.measurements}
    assert units["Noise"] == "[hnsf'U]" and units["Truncated slices"] == "%"


def test_a_clean_water_phantom_is_within_limits() -> None:
    analysis = analyse(water_cylinder(SHAPE, SPACING, radius=RADIUS, noise=10.0))
    (finding,) = analysis.findings
    assert finding.severity == Severity.NORMAL
    assert finding.description == "Image quality within limits"
    values = figures(analysis)
    assert values["Uniformity"] < 2.0 and values["Ring index"] < 0.5
    assert values["Truncated slices"] == 0.0 and "Metal streak pixels" not in values


def test_high_noise_is_a_finding() -> None:
    analysis = analyse(water_cylinder(SHAPE, SPACING, radius=RADIUS, noise=80.0))
    assert problems(analysis) == ["high-noise"]
    assert analysis.findings[0].severity == Severity.MINOR


def test_cupping_shows_as_non_uniformity() -> None:
    voxels = water_cylinder(SHAPE, SPACING, radius=RADIUS, noise=10.0)
    edge = 30.0  # HU brighter at the edge than at the centre, growing with r^2
    cup = edge * (in_plane_radius() / RADIUS) ** 2
    voxels = np.where(voxels > -500, voxels + cup, voxels).astype(np.float32)
    analysis = analyse(voxels)
    # peripheral ROIs at 3/4 of the radius: (3/4)^2 of the edge's difference
    assert figures(analysis)["Uniformity"] == pytest.approx(edge * 0.75**2, rel=0.2)
    assert problems(analysis) == ["non-uniformity"]


def test_rings_are_a_finding() -> None:
    voxels = water_cylinder(SHAPE, SPACING, radius=RADIUS, noise=10.0)
    pixels = np.round(in_plane_radius() / SPACING[1]).astype(int)
    rings = 10.0 * (pixels % 4 == 0)  # a 10 HU ring every 4th pixel of radius
    voxels = np.where(voxels > -500, voxels + rings, voxels).astype(np.float32)
    analysis = analyse(voxels)
    assert figures(analysis)["Ring index"] > 1.2
    assert problems(analysis) == ["ring-artifacts"]


def test_an_object_reaching_the_edge_of_the_field_is_truncated() -> None:
    analysis = analyse(water_cylinder(SHAPE, SPACING, radius=100.0, noise=10.0))
    assert figures(analysis)["Truncated slices"] == 100.0
    assert problems(analysis) == ["truncation"]


def test_streaks_around_metal_are_a_finding() -> None:
    voxels = water_cylinder(SHAPE, SPACING, radius=RADIUS, noise=10.0)
    rod = elliptic_cylinder(SHAPE, SPACING, (10.0, -20.0), (3.0, 3.0))
    voxels[rod] = 3071.0
    clean = analyse(voxels.copy())
    assert figures(clean)["Metal streak pixels"] < 1.0 and problems(clean) == []
    _, y, x = grid(SHAPE, SPACING)
    dy, dx = (y - 10.0)[0], (x + 20.0)[0]
    angle, distance = np.arctan2(dy, dx), np.hypot(dy, dx)
    streaks = np.zeros((SHAPE[1], SHAPE[2]), dtype=np.float32)
    for k, a in enumerate(np.linspace(0, np.pi, 6, endpoint=False)):  # dark and bright lines
        on_line = np.abs(np.sin(angle - a)) * distance < 1.6
        streaks[on_line] = 400.0 if k % 2 else -400.0
    voxels = np.where((voxels > -500) & ~rod, voxels + streaks, voxels).astype(np.float32)
    analysis = analyse(voxels)
    assert figures(analysis)["Metal streak pixels"] > 10.0
    assert "streak-artifacts" in problems(analysis)


@pytest.mark.parametrize("phantom", ["chest", "head"])
def test_anatomy_is_not_an_artifact(phantom: str) -> None:
    volume = chest_phantom(ribs=True).volume if phantom == "chest" else head_phantom().volume
    analysis = QualityAnalyzer().analyze(volume)
    assert problems(analysis) == []
    assert figures(analysis)["Noise"] == pytest.approx(15.0 if phantom == "chest" else 5.0, rel=0.1)


def test_inserts_in_a_water_phantom_are_no_non_uniformity() -> None:
    voxels = water_cylinder(SHAPE, SPACING, radius=RADIUS, noise=0.0)
    for centre, radius, hu in (
        ((0.0, 0.0), 8.0, -100.0),
        ((20.0, 30.0), 15.0, 120.0),
        ((-30.0, -10.0), 20.0, 60.0),
        ((45.0, -35.0), 10.0, -100.0),
    ):
        voxels[elliptic_cylinder(SHAPE, SPACING, centre, (radius, radius))] = hu
    analysis = analyse(voxels + np.random.default_rng(7).normal(0, 10, SHAPE).astype(np.float32))
    assert figures(analysis)["Uniformity"] < 3.0
    assert problems(analysis) == []

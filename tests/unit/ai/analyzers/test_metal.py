from __future__ import annotations

import math

import numpy as np
import pytest

from hounsfield.ai.analyzers import BUILT_IN
from hounsfield.ai.analyzers.metal import MetalAnalyzer
from hounsfield.ai.model import Analysis, Severity
from tests.unit.ai.phantoms import sphere, tube, volume_of, voxel_at, water_cylinder

SHAPE = (40, 112, 112)
SPACING = (1.0, 1.0, 1.0)
# centres on voxel corners, so that a sphere of radius r spans exactly 2r voxels
BALL = ((-10.5, 20.5, 15.5), 6.0)  # a pellet: centre (mm), radius (mm)
ROD = ((8.5, -15.5, -40.0), (8.5, -15.5, 40.0), 2.5)  # a nail along x: ends, radius


def within(a: tuple[float, ...], b: tuple[float, ...], voxels: float = 2.0) -> bool:
    return max(abs(x - y) for x, y in zip(a, b, strict=True)) <= voxels


@pytest.fixture(scope="module")
def with_metal() -> Analysis:
    voxels = water_cylinder(SHAPE, SPACING, radius=50.0)
    voxels[sphere(SHAPE, SPACING, *BALL)] = 3071.0
    voxels[tube(SHAPE, SPACING, *ROD)] = 3500.0
    return MetalAnalyzer().analyze(volume_of(voxels, SPACING))


def test_it_is_built_in() -> None:
    assert isinstance(BUILT_IN["metal"], MetalAnalyzer)


def test_each_object_is_a_finding_largest_first(with_metal: Analysis) -> None:
    rod, ball = with_metal.findings
    assert (rod.key, ball.key) == ("metal-1", "metal-2")
    (start, end, r) = ROD
    rod_ml = (math.pi * r**2 * (end[2] - start[2]) + 4 / 3 * math.pi * r**3) / 1000
    ball_ml = 4 / 3 * math.pi * BALL[1] ** 3 / 1000
    assert rod.volume_ml == pytest.approx(rod_ml, rel=0.1)
    assert ball.volume_ml == pytest.approx(ball_ml, rel=0.1)
    assert rod.size_mm == pytest.approx(end[2] - start[2] + 2 * r, rel=0.1)
    assert ball.size_mm == pytest.approx(2 * BALL[1], rel=0.1)
    middle = tuple((a + b) / 2 for a, b in zip(start, end, strict=True))
    assert rod.centroid is not None and ball.centroid is not None
    assert within(rod.centroid, voxel_at(SHAPE, SPACING, (middle[0], middle[1], middle[2])))
    assert within(ball.centroid, voxel_at(SHAPE, SPACING, BALL[0]))
    assert rod.extent is not None
    first, last = rod.extent
    assert within(first, voxel_at(SHAPE, SPACING, (start[0], start[1], start[2] - r)), 4)
    assert within(last, voxel_at(SHAPE, SPACING, (end[0], end[1], end[2] + r)), 4)
    for finding in (rod, ball):
        assert finding.severity == Severity.MINOR and finding.category == "foreign-body"
        assert finding.confidence == 0.9 and finding.segment == "Metal"


def test_all_metal_is_one_abnormal_segmentation(with_metal: Analysis) -> None:
    (segmentation,) = with_metal.segmentations
    assert segmentation.abnormal and segmentation.structure == ("19227008", "Foreign body")
    assert segmentation.mask.shape == SHAPE and segmentation.mask.dtype == bool
    total = sum(f.volume_ml or 0.0 for f in with_metal.findings)
    assert segmentation.mask.sum() / 1000 == pytest.approx(total, rel=0.01)


def test_keys_are_stable_and_ties_go_by_position() -> None:
    voxels = water_cylinder(SHAPE, SPACING, radius=50.0, seed=1)
    lower, upper = (-10.5, 0.5, 0.5), (10.5, 0.5, 0.5)
    for centre in (upper, lower):
        voxels[sphere(SHAPE, SPACING, centre, 4.0)] = 3071.0
    volume = volume_of(voxels, SPACING)
    first = MetalAnalyzer().analyze(volume).findings
    assert first == MetalAnalyzer().analyze(volume).findings
    assert first[0].key == "metal-1" and first[0].centroid is not None
    assert within(first[0].centroid, voxel_at(SHAPE, SPACING, lower))


def test_water_bone_and_specks_are_no_metal() -> None:
    voxels = water_cylinder(SHAPE, SPACING, radius=50.0, noise=20.0, seed=2)
    voxels[sphere(SHAPE, SPACING, (0.5, 0.5, 0.5), 8.0)] = 1800.0  # dense cortical bone
    voxels[20, 56, 85] = 4000.0  # one voxel: 0.001 ml
    analysis = MetalAnalyzer().analyze(volume_of(voxels, SPACING))
    (finding,) = analysis.findings
    assert finding.severity == Severity.NORMAL and finding.key == "metal-none"
    assert analysis.segmentations == ()
    assert {m.name: m.value for m in analysis.measurements}["Metal objects"] == 0
    # the threshold is a parameter: at 1500 HU the bone is an object
    lowered = MetalAnalyzer(threshold_hu=1500.0).analyze(volume_of(voxels, SPACING))
    assert [f.key for f in lowered.findings] == ["metal-1"]
    assert lowered.findings[0].confidence == 0.6  # below 3000 HU: maybe not metal


def test_the_smallest_object_is_a_parameter() -> None:
    voxels = water_cylinder(SHAPE, SPACING, radius=50.0, noise=0.0)
    voxels[sphere(SHAPE, SPACING, (0.5, 0.5, 0.5), 2.0)] = 3071.0  # 0.03 ml
    volume = volume_of(voxels, SPACING)
    assert MetalAnalyzer().analyze(volume).findings[0].key == "metal-1"
    assert MetalAnalyzer(min_volume_ml=0.1).analyze(volume).findings[0].key == "metal-none"


def test_it_works_on_a_coarse_anisotropic_grid() -> None:
    spacing = (3.0, 0.5, 0.5)
    shape = (12, 96, 96)
    voxels = np.zeros(shape, dtype=np.float32)
    centre = (1.5, 0.25, 0.25)
    voxels[sphere(shape, spacing, centre, 6.0)] = 3071.0
    (finding,) = MetalAnalyzer().analyze(volume_of(voxels, spacing)).findings
    assert finding.centroid is not None
    assert within(finding.centroid, voxel_at(shape, spacing, centre))
    assert finding.volume_ml == pytest.approx(4 / 3 * math.pi * 216 / 1000, rel=0.1)


def test_size_counts_whole_voxels_times_spacing() -> None:
    spacing = (3.0, 0.5, 0.5)
    voxels = np.zeros((12, 64, 64), dtype=np.float32)
    voxels[4:7, 10:30, 40:42] = 3071.0  # 9 x 10 x 1 mm, 3 x 20 x 2 voxels
    (finding,) = MetalAnalyzer().analyze(volume_of(voxels, spacing)).findings
    assert finding.size_mm == 10.0
    assert finding.extent == ((4.0, 10.0, 40.0), (6.0, 29.0, 41.0))
    assert finding.centroid == (5.0, 19.5, 40.5)
    assert finding.volume_ml == pytest.approx(3 * 20 * 2 * 0.75 / 1000)

from __future__ import annotations

import math

import pytest

from hounsfield.ai.analyzers import BUILT_IN
from hounsfield.ai.analyzers.intracranial import IntracranialAnalyzer
from hounsfield.ai.model import Analysis, AnalysisError, Severity
from tests.unit.ai.phantoms import (
    Blob,
    Head,
    chest_phantom,
    head_phantom,
    sphere,
    volume_of,
    voxel_at,
    water_cylinder,
)

# in the left hemisphere, away from the ventricles and the skull; the centre on voxel
# corners, so that the 10 mm radius spans exactly 20 mm of voxels along each axis
BLOOD = Blob(centre=(0.0, 30.0, -40.0), radius=10.0, hu=70.0)


@pytest.fixture(scope="module")
def bleeding() -> tuple[Head, Analysis]:
    head = head_phantom(blobs=[BLOOD])
    return head, IntracranialAnalyzer().analyze(head.volume)


def test_it_is_built_in() -> None:
    assert isinstance(BUILT_IN["intracranial"], IntracranialAnalyzer)


def test_a_hyperdense_region_is_found_where_it_is(bleeding: tuple[Head, Analysis]) -> None:
    head, analysis = bleeding
    (finding,) = analysis.findings
    assert finding.key == "hyperdensity-1" and finding.severity == Severity.CRITICAL
    assert finding.category == "intracranial-hyperdensity"
    truth = voxel_at(head.volume.voxels.shape, head.volume.spacing, BLOOD.centre)
    assert finding.centroid is not None
    assert max(abs(a - b) for a, b in zip(finding.centroid, truth, strict=True)) <= 2
    assert finding.volume_ml == pytest.approx(4 / 3 * math.pi * BLOOD.radius**3 / 1000, rel=0.1)
    assert finding.size_mm == pytest.approx(2 * BLOOD.radius, rel=0.1)
    assert finding.confidence >= 0.8  # its mean is near 70 HU, the middle of 50-90


def test_the_finding_names_no_diagnosis(bleeding: tuple[Head, Analysis]) -> None:
    _, analysis = bleeding
    description = analysis.findings[0].description
    assert description.startswith("Hyperdense intracranial region, needs review")
    for word in ("haemorrhage", "hemorrhage", "bleed", "blood"):
        assert word not in description.lower()


def test_the_region_is_an_abnormal_segmentation(bleeding: tuple[Head, Analysis]) -> None:
    head, analysis = bleeding
    (segmentation,) = analysis.segmentations
    assert segmentation.abnormal and segmentation.label == analysis.findings[0].segment
    shape, spacing = head.volume.voxels.shape, head.volume.spacing
    truth = sphere(shape, spacing, BLOOD.centre, BLOOD.radius)
    mask = segmentation.mask
    assert mask.shape == shape and 2 * (mask & truth).sum() / (mask.sum() + truth.sum()) > 0.85


def test_a_clean_head_says_so() -> None:
    analysis = IntracranialAnalyzer().analyze(head_phantom(noise=10.0, seed=4).volume)
    (finding,) = analysis.findings
    assert finding.severity == Severity.NORMAL
    assert finding.description == "No hyperdense intracranial region found"
    assert analysis.segmentations == ()
    cavity = {m.name: m.value for m in analysis.measurements}["Intracranial volume analysed"]
    assert cavity > 800  # most of the 1.5 l cavity, less the rim and the open bottom slices


def test_small_regions_and_regions_out_of_range_are_left_out() -> None:
    blobs = [
        Blob((0.0, 30.0, -40.0), 3.0, 70.0),  # 0.11 ml: under the 0.5 ml minimum
        Blob((0.0, 30.0, 40.0), 10.0, 45.0),  # grey matter-like
    ]
    analysis = IntracranialAnalyzer().analyze(head_phantom(blobs=blobs).volume)
    assert [f.severity for f in analysis.findings] == [Severity.NORMAL]
    smaller = IntracranialAnalyzer(min_region_ml=0.05).analyze(head_phantom(blobs=blobs).volume)
    assert [f.key for f in smaller.findings] == ["hyperdensity-1"]


def test_regions_are_ordered_by_volume() -> None:
    blobs = [Blob((0.0, 30.0, 40.0), 6.0, 80.0), BLOOD]
    analysis = IntracranialAnalyzer().analyze(head_phantom(blobs=blobs).volume)
    big, small = analysis.findings
    assert (big.key, small.key) == ("hyperdensity-1", "hyperdensity-2")
    assert (big.volume_ml or 0) > (small.volume_ml or 0)
    assert big.confidence > small.confidence  # 70 HU is in the middle of 50-90, 80 is not


def test_a_volume_without_a_skull_is_not_a_head() -> None:
    with pytest.raises(AnalysisError, match="no skull found: not a head CT"):
        IntracranialAnalyzer().analyze(volume_of(water_cylinder(), (2.0, 2.0, 2.0)))


def test_a_chest_with_ribs_is_not_a_head() -> None:
    with pytest.raises(AnalysisError, match="no skull found: not a head CT"):
        IntracranialAnalyzer().analyze(chest_phantom(ribs=True).volume)


def test_a_coarser_analysis_grid_finds_the_same_region() -> None:
    head = head_phantom(blobs=[BLOOD])
    (finding,) = IntracranialAnalyzer(grid_mm=4.0).analyze(head.volume).findings  # 2 x 2 px
    truth = voxel_at(head.volume.voxels.shape, head.volume.spacing, BLOOD.centre)
    assert finding.centroid is not None
    assert max(abs(a - b) for a, b in zip(finding.centroid, truth, strict=True)) <= 2
    assert finding.volume_ml == pytest.approx(4 / 3 * math.pi * BLOOD.radius**3 / 1000, rel=0.1)

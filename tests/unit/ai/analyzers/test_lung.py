from __future__ import annotations

import math

import numpy as np
import pytest

from hounsfield.ai.analyzers import BUILT_IN
from hounsfield.ai.analyzers.lung import LungAnalyzer
from hounsfield.ai.model import Analysis, AnalysisError, Severity
from tests.unit.ai.phantoms import Chest, chest_phantom, head_phantom, volume_of


def ellipsoid_ml(radii: tuple[float, float, float]) -> float:
    return 4 / 3 * math.pi * radii[0] * radii[1] * radii[2] / 1000


def measured(analysis: Analysis) -> dict[str, float]:
    return {m.name: m.value for m in analysis.measurements}


@pytest.fixture(scope="module")
def healthy() -> tuple[Chest, Analysis]:
    chest = chest_phantom()
    return chest, LungAnalyzer().analyze(chest.volume)


@pytest.fixture(scope="module")
def emphysematous() -> tuple[Chest, Analysis]:
    chest = chest_phantom(emphysema=0.12, seed=3)
    return chest, LungAnalyzer().analyze(chest.volume)


def test_it_is_built_in() -> None:
    assert isinstance(BUILT_IN["lung"], LungAnalyzer)
    assert BUILT_IN["lung"].name == "lung"


def test_each_lung_is_measured_on_its_side(healthy: tuple[Chest, Analysis]) -> None:
    chest, analysis = healthy
    figures = measured(analysis)
    left, right = ellipsoid_ml(chest.left_radii), ellipsoid_ml(chest.right_radii)
    assert right > left * 1.15  # the phantom tells left from right by size
    assert figures["Left lung volume"] == pytest.approx(left, rel=0.1)
    assert figures["Right lung volume"] == pytest.approx(right, rel=0.1)
    assert figures["Lung volume"] == pytest.approx(left + right, rel=0.1)


def test_the_mask_is_the_lungs_without_outside_air_or_airways(
    healthy: tuple[Chest, Analysis],
) -> None:
    chest, analysis = healthy
    (segmentation,) = analysis.segmentations
    assert segmentation.label == "Lung" and segmentation.structure == ("39607008", "Lung")
    assert not segmentation.abnormal
    mask = segmentation.mask
    assert mask.dtype == bool and mask.shape == chest.volume.voxels.shape
    truth = chest.left_lung | chest.right_lung  # vessels inside included
    assert 2 * (mask & truth).sum() / (mask.sum() + truth.sum()) > 0.97
    assert chest.airways.sum() > 200 and not (mask & chest.airways).any()
    outside = chest.volume.voxels < -500
    outside[truth | chest.airways] = False
    assert not (mask & outside).any()


def test_a_healthy_lung_is_a_normal_finding(healthy: tuple[Chest, Analysis]) -> None:
    _, analysis = healthy
    (finding,) = analysis.findings
    assert finding.key == "emphysema" and finding.severity == Severity.NORMAL
    assert "0.0 %" in finding.description
    assert measured(analysis)["LAA%-950"] == pytest.approx(0.0, abs=0.05)


def test_laa_950_is_the_share_of_lung_voxels_below_minus_950(
    emphysematous: tuple[Chest, Analysis],
) -> None:
    chest, analysis = emphysematous
    truth = chest.left_lung | chest.right_lung
    expected = 100.0 * float(np.mean(chest.volume.voxels[truth] < -950))
    # 12 % of the parenchyma at -980 HU (noise puts ~2 % of those above -950), vessels not
    assert 10.0 < expected < 12.0
    figures = measured(analysis)
    assert figures["LAA%-950"] == pytest.approx(expected, abs=0.3)
    left = 100.0 * float(np.mean(chest.volume.voxels[chest.left_lung] < -950))
    assert figures["Left lung LAA%-950"] == pytest.approx(left, abs=0.3)
    (finding,) = analysis.findings
    assert finding.key == "emphysema" and finding.severity == Severity.MODERATE
    assert finding.description.startswith("Emphysema present")
    assert finding.segment == "Lung" and 0.5 <= finding.confidence <= 1.0


def test_the_emphysema_cut_off_is_5_percent() -> None:
    chest = chest_phantom(emphysema=0.04, seed=5)
    truth = chest.left_lung | chest.right_lung
    expected = 100.0 * float(np.mean(chest.volume.voxels[truth] < -950))
    analysis = LungAnalyzer().analyze(chest.volume)
    assert measured(analysis)["LAA%-950"] == pytest.approx(expected, abs=0.3)
    assert analysis.findings[0].severity == Severity.NORMAL
    stricter = LungAnalyzer(emphysema_percent=3.0).analyze(chest.volume)
    assert stricter.findings[0].severity == Severity.MODERATE


def test_a_head_has_no_lungs() -> None:
    with pytest.raises(AnalysisError, match="no lung fields"):
        LungAnalyzer().analyze(head_phantom().volume)


def test_air_alone_has_no_lungs() -> None:
    with pytest.raises(AnalysisError, match="no lung fields"):
        LungAnalyzer().analyze(volume_of(np.full((8, 32, 32), -1000.0)))


def test_a_volume_of_one_slice_is_refused() -> None:
    with pytest.raises(AnalysisError):
        LungAnalyzer().analyze(volume_of(np.zeros((1, 32, 32))))


def test_a_coarser_analysis_grid_gives_the_same_figures(
    emphysematous: tuple[Chest, Analysis],
) -> None:
    chest, fine = emphysematous
    coarse = LungAnalyzer(grid_mm=6.6).analyze(chest.volume)  # 2 x 2 pixels a block
    assert coarse.segmentations[0].mask.shape == chest.volume.voxels.shape
    for name, value in measured(fine).items():
        if name.endswith("volume"):
            assert measured(coarse)[name] == pytest.approx(value, rel=0.1)
        else:
            assert measured(coarse)[name] == pytest.approx(value, abs=0.5)


def test_slices_stored_head_first_with_rows_going_anterior(
    healthy: tuple[Chest, Analysis],
) -> None:
    chest, analysis = healthy
    # columns still go to patient left, rows go anterior (-y): the normal is -z, so the
    # first slice is the most superior one
    flipped = volume_of(
        chest.volume.voxels[::-1, ::-1, :],
        chest.volume.spacing,
        orientation=(1.0, 0.0, 0.0, 0.0, -1.0, 0.0),
    )
    assert flipped.normal[2] < 0
    again = LungAnalyzer().analyze(flipped)
    assert measured(again) == pytest.approx(measured(analysis), rel=0.01, abs=0.05)
    assert not (again.segmentations[0].mask[::-1, ::-1, :] & chest.airways).any()

"""Slices into one volume, or a clear reason why not."""

from __future__ import annotations

import io
import random

import numpy as np
import pydicom
import pytest

from hounsfield.volume import VolumeError, assemble, load_series
from tests.support.ai import ct_slices

SPACING = (2.5, 0.7, 0.8)


def slices(hu: np.ndarray) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(io.BytesIO(data)) for data in ct_slices(hu, SPACING)]


@pytest.fixture
def hu() -> np.ndarray:
    return np.random.default_rng(3).integers(-1000, 2000, (6, 10, 12)).astype(np.float32)


def test_slices_in_any_order_make_the_volume_they_came_from(hu: np.ndarray) -> None:
    given = slices(hu)
    random.Random(1).shuffle(given)
    loaded = assemble(given)
    volume = loaded.volume
    np.testing.assert_array_equal(volume.voxels, hu)
    assert volume.spacing == pytest.approx(SPACING)
    assert volume.origin == (0.0, 0.0, 0.0)
    assert [ds.InstanceNumber for ds in loaded.sources] == [1, 2, 3, 4, 5, 6]
    assert all("PixelData" not in ds for ds in loaded.sources)
    # Slice 3, row 4, column 5: z = 3 x 2.5, y = 4 x 0.7, x = 5 x 0.8 (mm).
    assert volume.patient_point((3, 4, 5)) == pytest.approx((4.0, 2.8, 7.5))
    assert volume.instance_at((3.4, 0, 0)) == loaded.sources[3].SOPInstanceUID
    assert volume.tags["Modality"] == "CT"
    assert "PatientName" not in volume.tags


def test_slices_listed_against_the_normal_are_sorted_along_it(hu: np.ndarray) -> None:
    given = slices(hu)
    for ds in given:  # columns run along -y: the normal is -z, slices go the other way
        ds.ImageOrientationPatient = [1, 0, 0, 0, -1, 0]
    volume = assemble(given).volume
    np.testing.assert_array_equal(volume.voxels, hu[::-1])
    assert volume.origin[2] == pytest.approx(5 * SPACING[0])


def test_a_missing_slice_is_uneven_spacing(hu: np.ndarray) -> None:
    given = slices(hu)
    del given[2]
    with pytest.raises(VolumeError, match="uneven slice spacing"):
        assemble(given)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda ds: setattr(ds, "ImageOrientationPatient", [0, 1, 0, 0, 0, -1]), "orientation"),
        (lambda ds: setattr(ds, "PixelSpacing", [0.5, 0.5]), "pixel spacing"),
        (lambda ds: setattr(ds, "FrameOfReferenceUID", "1.2.3"), "frame of reference"),
        (lambda ds: setattr(ds, "ImagePositionPatient", [0, 0, 0]), "share one position"),
        (lambda ds: delattr(ds, "PixelSpacing"), "PixelSpacing"),
        (lambda ds: delattr(ds, "PixelData"), "no pixel data"),
        (lambda ds: setattr(ds, "SamplesPerPixel", 3), "colour"),
        (lambda ds: setattr(ds, "NumberOfFrames", 4), "multi-frame"),
    ],
)
def test_slices_that_are_not_one_volume_are_refused(hu: np.ndarray, change, complaint) -> None:
    given = slices(hu)
    change(given[3])
    with pytest.raises(VolumeError, match=complaint):
        assemble(given)


def test_pixels_that_cannot_be_decoded_are_refused(hu: np.ndarray) -> None:
    given = slices(hu)
    given[1].PixelData = given[1].PixelData[:100]  # cut short
    with pytest.raises(VolumeError, match="cannot be decoded"):
        assemble(given)


class FakeOrthanc:
    """The two of Orthanc's routes ``load_series`` reads: the series, then each file."""

    def __init__(self, modality: str, files: list[bytes]) -> None:
        self.modality = modality
        self.files = files

    def get_json(self, path: str) -> dict[str, object]:
        assert path == "/series/s"
        instances = [f"i{n}" for n in range(len(self.files))]
        return {"MainDicomTags": {"Modality": self.modality}, "Instances": instances}

    def get_bytes(self, path: str) -> bytes:
        return self.files[int(path.removeprefix("/instances/i").removesuffix("/file"))]


def test_a_series_from_orthanc_is_one_volume(hu: np.ndarray) -> None:
    orthanc = FakeOrthanc("CT", list(ct_slices(hu, SPACING)))
    loaded = load_series(orthanc, "s", max_voxels=hu.size)  # type: ignore[arg-type]
    np.testing.assert_array_equal(loaded.volume.voxels, hu)


@pytest.mark.parametrize(
    ("modality", "count", "max_voxels", "complaint"),
    [
        ("SR", 6, 10**6, "^a SR series holds no images to analyse$"),
        ("CT", 1, 10**6, "^a single image is not a volume: at least two slices are needed$"),
        ("CT", 6, 100, r"^6 slices of 10x12 are 720 voxels, more than the 100 this server"),
    ],
)
def test_a_series_that_is_not_one_volume_is_refused(
    hu: np.ndarray, modality: str, count: int, max_voxels: int, complaint: str
) -> None:
    orthanc = FakeOrthanc(modality, list(ct_slices(hu, SPACING))[:count])
    with pytest.raises(VolumeError, match=complaint):
        load_series(orthanc, "s", max_voxels=max_voxels)  # type: ignore[arg-type]

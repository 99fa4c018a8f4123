from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest

from hounsfield.config import ConfigError
from hounsfield.recon.ct_series import SeriesInfo, ct_slices
from hounsfield.recon.geometry import CircularGeometry, GeometryError
from hounsfield.recon.params import tv_penalties
from hounsfield.recon.projections import (
    ProjectionError,
    build_projection_dataset,
    coarsen,
    read_acquisition,
)
from hounsfield.recon.rules import DetectionRules
from hounsfield.registry import Registry

ANGLES = tuple(float(a) for a in np.linspace(0, 358, 180))


def geometry(**changes) -> CircularGeometry:
    values = {
        "source_to_isocenter": 500.0,
        "source_to_detector": 800.0,
        "angles": ANGLES,
        "pixel_spacing": (0.5, 0.6),
        "detector_size": (40, 30),
    }
    return CircularGeometry(**(values | changes))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"source_to_isocenter": -5.0}, "source-to-isocentre distance -5.0 mm"),
        ({"source_to_detector": 400.0}, "must exceed the source-to-isocentre"),
        ({"source_to_detector": 90000.0}, "must exceed"),
        ({"angles": (0.0, 10.0, 5.0, 20.0)}, "strictly monotonic"),
        ({"angles": (0.0, 1.0)}, "at least 3"),
        ({"angles": tuple(np.linspace(0, 720, 100))}, "at most 400"),
        ({"pixel_spacing": (0.0, 1.0)}, "pixel spacing"),
    ],
)
def test_absurd_geometry_is_refused_by_name(changes: dict, message: str) -> None:
    with pytest.raises(GeometryError, match=message):
        geometry(**changes)


def test_scan_kind_and_default_grid() -> None:
    full = geometry()
    assert not full.short_scan and full.arc == pytest.approx(360.0)
    assert geometry(angles=tuple(np.linspace(0, 200, 100))).short_scan
    grid = full.default_volume()
    assert grid.spacing[0] == pytest.approx(0.5 / 1.6)
    assert grid.origin[0] == pytest.approx(-(grid.size[0] - 1) * grid.spacing[0] / 2)


def round_trip(ds: pydicom.Dataset) -> pydicom.Dataset:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


def test_projections_round_trip_through_dicom() -> None:
    counts = np.random.default_rng(1).integers(100, 60000, (180, 30, 40), dtype=np.uint16)
    original = geometry(detector_offset=(3.5, -1.0), angles=tuple(a + 30 for a in ANGLES))
    ds = round_trip(
        build_projection_dataset(
            counts, original, 60000.0, {"PatientID": "P1"}, series_description="CBCT", uid_seed="t1"
        )
    )
    tags = {
        "Modality": ds.Modality,
        "NumberOfFrames": str(ds.NumberOfFrames),
        "DistanceSourceToDetector": str(ds.DistanceSourceToDetector),
        "PositionerPrimaryAngleIncrement": "0\\2",
    }
    assert DetectionRules().matches(tags)

    def rules(section: dict) -> DetectionRules:
        return Registry(configuration={"HounsfieldRecon": section}).section(
            DetectionRules, "HounsfieldRecon"
        )

    assert not rules({"MinimumFrames": 500}).matches(tags)
    assert not rules({"Modalities": ["RF"]}).matches(tags)
    with pytest.raises(ConfigError, match=r"HounsfieldRecon\.MinimumFrames"):
        rules({"MinimumFrames": 1})
    acquisition = read_acquisition(ds)
    assert acquisition.geometry == original
    assert acquisition.i0 == 60000.0
    assert np.array_equal(acquisition.intensities, counts)
    assert acquisition.line_integrals()[0, 0, 0] == pytest.approx(np.log(60000 / counts[0, 0, 0]))


def flat_projections() -> pydicom.Dataset:
    """A projection object as read back from a file: 180 uniform frames."""
    counts = np.ones((180, 30, 40), np.uint16)
    return round_trip(
        build_projection_dataset(
            counts, geometry(), 1000.0, {}, series_description="x", uid_seed="t2"
        )
    )


def test_frame_to_frame_increments_are_read_too() -> None:
    ds = flat_projections()
    ds.PositionerPrimaryAngleIncrement = ["2"] * 180  # each frame 2 degrees after the previous
    # DICOM's 0, 2, 4 degrees toward LAO are RTK's gantry angles 0, -2, -4 (its sense is
    # the other: tests/integration/test_recon_geometry.py holds it to an independent truth)
    assert read_acquisition(ds).geometry.angles[:3] == (0.0, -2.0, -4.0)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda ds: delattr(ds, "DistanceSourceToDetector"), "missing DistanceSourceToDetector"),
        (
            lambda ds: setattr(ds, "PositionerPrimaryAngleIncrement", ["0", "1"]),
            "180 frames but 2 angle increments",
        ),
        (lambda ds: setattr(ds, "DistanceSourceToPatient", "2000"), "must exceed"),
        (
            lambda ds: setattr(
                ds, "PositionerPrimaryAngleIncrement", ["0"] + ["5", "3"] * 89 + ["7"]
            ),
            "strictly monotonic",
        ),
    ],
)
def test_unusable_projection_objects_are_refused(damage, message: str) -> None:
    ds = flat_projections()
    damage(ds)
    with pytest.raises(ProjectionError, match=message):
        read_acquisition(ds)


def test_ct_slices_carry_geometry_and_units() -> None:
    grid = geometry().default_volume(8)
    volume = np.zeros((8, grid.size[1], 8))
    volume[:, 2, :] = 1000.0
    info = SeriesInfo("FDK test", 200, "1.2.840.10008.5.1.4.1.1.12.1", "1.2.3", "FDK")
    slices = [
        round_trip(ds) for ds in ct_slices(volume, grid, {"PatientID": "P1"}, info, uid_seed="t3")
    ]
    assert len(slices) == grid.size[1]
    third = slices[2]
    assert (
        third.pixel_array.max() * float(third.RescaleSlope) + float(third.RescaleIntercept) == 1000
    )
    positions = [float(ds.ImagePositionPatient[2]) for ds in slices]
    assert np.allclose(np.diff(positions), -grid.spacing[1], atol=1e-3)
    assert len({ds.SeriesInstanceUID for ds in slices}) == 1
    assert third.SourceImageSequence[0].ReferencedSOPInstanceUID == "1.2.3"


def test_coarsening_bins_pixels_and_thins_angles() -> None:
    line = np.arange(360 * 4 * 6, dtype=np.float32).reshape(360, 4, 6)
    fine = geometry(angles=tuple(float(a) for a in np.linspace(0, 359, 360)), detector_size=(6, 4))
    coarse_line, coarse = coarsen(line, fine, bin_factor=2, max_projections=180)
    assert coarse_line.shape == (180, 2, 3)
    assert coarse_line[0, 0, 0] == line[0, :2, :2].mean()
    assert coarse.angles == fine.angles[::2]
    assert coarse.pixel_spacing == (1.0, 1.2) and coarse.detector_size == (3, 2)


def test_tv_penalties_carry_over_between_units_and_sizes() -> None:
    alpha, beta = tv_penalties(4.0, rays=1000, voxels=500, water_attenuation=1.0)
    assert (alpha, beta) == (8.0, 80.0)
    # Attenuation per mm instead of water units: alpha follows the units, beta does not.
    assert tv_penalties(4.0, 1000, 500, 0.02) == pytest.approx((0.16, 80.0))
    # Twice the rays for the same volume: both weights keep pace with the data term.
    assert tv_penalties(4.0, 2000, 500, 1.0) == (16.0, 160.0)


def test_each_module_of_the_methods_package_is_a_method_a_request_may_name() -> None:
    import pkgutil

    from pydantic import ValidationError

    from hounsfield.recon import methods
    from hounsfield.recon.params import ReconstructionRequest

    modules = {info.name for info in pkgutil.iter_modules(methods.__path__)}
    assert set(methods.METHODS) == modules == {"fdk", "sart", "cg", "tv"}
    for name in modules:
        assert ReconstructionRequest(series="s", method=name).method == name
    with pytest.raises(ValidationError, match="one of: cg, fdk, sart, tv"):
        ReconstructionRequest(series="s", method="mlem")

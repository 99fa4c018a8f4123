"""Judging projection objects as they arrive, from the bytes Orthanc hands the plugin."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest

from hounsfield.recon.admission import projection_refusal
from hounsfield.recon.geometry import CircularGeometry
from hounsfield.recon.projections import build_projection_dataset
from hounsfield.recon.rules import DetectionRules

RULES = DetectionRules()


def projection_object(columns: int = 20) -> pydicom.Dataset:
    geometry = CircularGeometry(500.0, 800.0, tuple(range(0, 360, 10)), (1.0, 1.0), (columns, 10))
    counts = np.full((36, 10, columns), 1000, np.uint16)
    return build_projection_dataset(
        counts,
        geometry,
        2000.0,
        {"StudyInstanceUID": "1.2.3.4"},
        series_description="x",
        uid_seed="a",
    )


def file_bytes(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_a_usable_projection_object_is_admitted() -> None:
    assert projection_refusal(file_bytes(projection_object()), RULES) is None


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda ds: setattr(ds, "PositionerPrimaryAngleIncrement", ["0", "10"]),
            "36 frames but 2 angle increments",
        ),
        (lambda ds: setattr(ds, "DistanceSourceToPatient", "900"), "must exceed"),
        (lambda ds: delattr(ds, "DistanceSourceToPatient"), "missing DistanceSourceToPatient"),
        (lambda ds: setattr(ds, "PixelData", ds.PixelData[:1000]), "pixel data holds 1000 bytes"),
    ],
)
def test_an_unusable_projection_object_is_refused_by_name(damage, message: str) -> None:
    ds = projection_object()
    damage(ds)
    refusal = projection_refusal(file_bytes(ds), RULES)
    assert refusal is not None and message in refusal.reason
    assert refusal.study_uid == "1.2.3.4"


@pytest.mark.parametrize("columns", [20, 200], ids=["pixels-read", "pixels-deferred"])
def test_a_transfer_cut_short_is_refused(columns: int) -> None:
    whole = file_bytes(projection_object(columns))
    refusal = projection_refusal(whole[:-1000], RULES)
    assert refusal is not None
    assert "ends inside its pixel data" in refusal.reason or "pixel data holds" in refusal.reason


def test_objects_the_rules_do_not_select_pass_untouched() -> None:
    ds = projection_object()
    ds.PositionerPrimaryAngleIncrement = ["0", "10"]  # broken, but...
    ds.Modality = "CT"  # ...not a modality the rules select
    assert projection_refusal(file_bytes(ds), RULES) is None
    assert projection_refusal(b"not DICOM at all", RULES) is None
    quiet = DetectionRules.from_configuration({"HounsfieldRecon": {"Modalities": ["RF"]}})
    ds.Modality = "XA"
    assert projection_refusal(file_bytes(ds), quiet) is None

"""One reading of the geometry: a header read from the file (a worker) and the same header
as Orthanc's simplified tags (the stable-study hook) give the same verdict."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest

from hounsfield.recon.geometry import CircularGeometry
from hounsfield.recon.projections import (
    ProjectionError,
    ProjectionHeader,
    build_projection_dataset,
    geometry_of,
)


def as_orthanc_tags(ds: pydicom.Dataset) -> dict[str, str]:
    """What /instances/{id}/simplified-tags gives: each value as text, lists with \\."""
    tags = {}
    for element in ds:
        if element.keyword and element.VR not in ("SQ", "OB", "OW") and element.value is not None:
            value = element.value
            many = isinstance(value, pydicom.multival.MultiValue)
            tags[element.keyword] = "\\".join(map(str, value)) if many else str(value)
    return tags


def projections(**changes: object) -> pydicom.Dataset:
    geometry = CircularGeometry(600.0, 1000.0, tuple(np.linspace(0, 200, 24)), (0.8, 0.8), (40, 30))
    ds = build_projection_dataset(
        np.full((24, 30, 40), 500, np.uint16),
        geometry,
        4000.0,
        {},
        series_description="p",
        uid_seed="candidates",
    )
    for name, value in changes.items():
        if value is None:
            delattr(ds, name)
        else:
            setattr(ds, name, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


def verdict(header: ProjectionHeader) -> str | CircularGeometry:
    try:
        return geometry_of(header)[0]
    except ProjectionError as error:
        return str(error)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, None),
        ({"BitsAllocated": 8}, "projections must be 16-bit, found 8 bits"),
        ({"DistanceSourceToPatient": None}, "missing DistanceSourceToPatient"),
        ({"PositionerPrimaryAngleIncrement": ["0", "5"]}, "24 frames but 2 angle increments"),
        ({"DistanceSourceToDetector": "300"}, "must exceed the source-to-isocentre"),
        ({"ImagerPixelSpacing": None}, "missing ImagerPixelSpacing"),
    ],
)
def test_the_file_and_orthancs_tags_give_one_verdict(changes: dict, expected: str | None) -> None:
    ds = projections(**changes)
    from_file = verdict(ProjectionHeader.from_dataset(ds))
    from_tags = verdict(ProjectionHeader.from_orthanc(as_orthanc_tags(ds)))
    assert from_file == from_tags
    if expected is None:
        assert isinstance(from_file, CircularGeometry) and len(from_file.angles) == 24
    else:
        assert expected in from_file

"""RT structure sets as a stranger may write them, read without a traceback: contour data
that is not numbers, not finite, huge or of the wrong length; counts that lie; geometric
types that do not exist; sequences and references missing. Whatever comes in,
``read_structures`` answers a StructureSet whose JSON holds no NaN and no infinity, with one
ROI per StructureSetROISequence item and no negative volume."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from hounsfield.structures.rtstruct import Grid, read_structures

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FRAME = "1.2.826.0.1.3680043.10.1411.9"
GRID = Grid(
    origin=(0.0, 0.0, 0.0),
    orientation=(1, 0, 0, 0, 1, 0),
    spacing=(2.5, 1.0, 1.0),
    shape=(6, 12, 12),
)
VOXELS = np.random.default_rng(7).normal(0, 100, GRID.shape)
TYPES = ["CLOSED_PLANAR", "OPEN_PLANAR", "OPEN_NONPLANAR", "POINT", "", "closed_planar", "XOR"]
SEQUENCES = [
    "StructureSetROISequence",
    "ROIContourSequence",
    "RTROIObservationsSequence",
    "ReferencedFrameOfReferenceSequence",
]

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom on invalid values


def raw(keyword: str, vr: str, value: bytes) -> RawDataElement:
    """An element as a file gives it: pydicom converts its text only when it is read."""
    return RawDataElement(Tag(keyword), vr, len(value), value, 0, True, True)


def text(values: list[str]) -> bytes:
    return "\\".join(values).encode("utf-8", "surrogatepass")


tokens = st.one_of(
    st.floats().map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["nan", "-inf", "1e999", "1e-999", "2e300", "abc", "", " ", "0x1F", "1,5"]),
    st.text(max_size=6),
)
# Coordinates near the grid, on its slices or off them: real geometry to check, often
# degenerate (a few round values make repeated points, collinear and touching edges).
coordinates = st.one_of(
    st.sampled_from([0.0, 2.0, 5.5, 10.0, 12.0, -3.0]), st.floats(-20, 30, allow_nan=False)
)
heights = st.one_of(st.sampled_from([0.0, 2.5, 5.0, 7.5, 12.5]), st.floats(-5, 20))


@st.composite
def polygons(draw: st.DrawFn) -> bytes:
    z = draw(heights)
    corners = draw(st.lists(st.tuples(coordinates, coordinates), min_size=3, max_size=12))
    return text([repr(v) for x, y in corners for v in (x, y, z)])


@st.composite
def rings(draw: st.DrawFn) -> bytes:
    """A regular polygon: a contour with nothing wrong with it, or that crosses or holds
    others drawn on its plane."""
    x, y, z = draw(coordinates), draw(coordinates), draw(heights)
    radius, count = draw(st.floats(0.5, 8)), draw(st.integers(3, 24))
    # Now and then far too large: areas and volumes that would overflow to infinity.
    scale = draw(st.sampled_from([1.0] * 6 + [1e7, 1e160, 1e300]))
    angles = np.linspace(0, 2 * np.pi, count, endpoint=False)
    corners = zip(x + radius * np.cos(angles), y + radius * np.sin(angles), strict=True)
    return text([f"{v * scale:.6g}" for cx, cy in corners for v in (cx, cy, z)])


contour_data = st.one_of(rings(), polygons(), st.lists(tokens, max_size=20).map(text))
integers = st.one_of(
    st.integers(-2, 40).map(lambda n: str(n).encode()),
    st.sampled_from([b"abc", b"1.5", b"99999999999999999999", b"", b"1\\2"]),
)


@st.composite
def contours(draw: st.DrawFn) -> Dataset:
    contour = Dataset()
    if draw(st.integers(0, 2)):  # two in three: values as a planning system writes them
        data = draw(rings())
        contour.ContourGeometricType = "CLOSED_PLANAR"
        contour["ContourData"] = raw("ContourData", "DS", data)
        count = str(len(data.split(b"\\")) // 3).encode()
        contour["NumberOfContourPoints"] = raw("NumberOfContourPoints", "IS", count)
        return contour
    if draw(st.integers(0, 3)):
        contour.ContourGeometricType = draw(st.sampled_from(["CLOSED_PLANAR"] * 4 + TYPES))
    data = draw(contour_data)
    if draw(st.integers(0, 5)):
        contour["ContourData"] = raw("ContourData", "DS", data)
    honest = str(len(data.split(b"\\")) // 3).encode()
    count = draw(st.sampled_from([b"", honest]) | integers)
    if count:
        contour["NumberOfContourPoints"] = raw("NumberOfContourPoints", "IS", count)
    return contour


@st.composite
def structure_sets(draw: st.DrawFn) -> Dataset:
    ds = Dataset()
    ds.Modality = "RTSTRUCT"
    frame = Dataset()
    frame.FrameOfReferenceUID = FRAME
    ds.ReferencedFrameOfReferenceSequence = [frame]
    ds.StructureSetROISequence = Sequence()
    ds.ROIContourSequence = Sequence()
    ds.RTROIObservationsSequence = Sequence()
    for index in range(1, draw(st.integers(0, 3)) + 1):
        number = draw(integers) if draw(st.integers(0, 4)) == 0 else str(index).encode()
        roi = Dataset()
        roi["ROINumber"] = raw("ROINumber", "IS", number)
        if draw(st.integers(0, 3)):
            roi.ReferencedFrameOfReferenceUID = draw(st.sampled_from([FRAME, FRAME, "1.2.3"]))
        ds.StructureSetROISequence.append(roi)
        outline = Dataset()
        referenced = draw(integers) if draw(st.integers(0, 4)) == 0 else number
        outline["ReferencedROINumber"] = raw("ReferencedROINumber", "IS", referenced)
        if draw(st.booleans()):
            colour = text(draw(st.lists(tokens, max_size=4)))
            outline["ROIDisplayColor"] = raw("ROIDisplayColor", "IS", colour)
        if draw(st.integers(0, 4)):
            outline.ContourSequence = draw(st.lists(contours(), min_size=1, max_size=6))
        ds.ROIContourSequence.append(outline)
        observation = Dataset()
        observation["ReferencedROINumber"] = raw("ReferencedROINumber", "IS", number)
        observation.RTROIInterpretedType = draw(st.sampled_from(["ORGAN", "", "ISOCENTER"]))
        ds.RTROIObservationsSequence.append(observation)
    for keyword in draw(st.lists(st.sampled_from(SEQUENCES), unique=True, max_size=2)):
        if draw(st.integers(0, 3)) == 0:
            delattr(ds, keyword)
    return ds


@SETTINGS
@given(ds=structure_sets(), with_images=st.booleans())
def test_any_structure_set_reads_into_rois_with_json_that_holds_only_numbers(
    ds: Dataset, with_images: bool
) -> None:
    items = ds.get("StructureSetROISequence")
    structures = read_structures(ds, GRID, VOXELS) if with_images else read_structures(ds)
    json.dumps(structures.to_json(), allow_nan=False)
    assert len(structures.rois) == (len(items) if items is not None else 0)
    for roi in structures.rois:
        assert roi.volume_ml is None or roi.volume_ml >= 0
        assert (roi.volume_ml is None) == (roi.spacing_from is None)
        assert roi.hu is None or (with_images and roi.hu.voxels > 0)

"""RT structure sets built here from known shapes (and pydicom's own), read into ROIs whose
volumes and HU are checked against formulas and masks computed in the test."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from hounsfield.structures import rtstruct
from hounsfield.structures.rtstruct import Grid, Roi, read_structures
from tests.support.structures import (
    CYLINDER_HEIGHT,
    CYLINDER_RADIUS,
    POINTS,
    SERIES,
    SPHERE_RADIUS,
    Shape,
    axes,
    circle,
    closed,
    cylinder,
    sphere,
    structure_set,
    voxel_centre,
)

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
# 30 degrees about z, then 20 about the new x.
_A, _B = math.pi / 6, math.pi / 9
OBLIQUE = (
    math.cos(_A),
    math.sin(_A),
    0.0,
    -math.sin(_A) * math.cos(_B),
    math.cos(_A) * math.cos(_B),
    math.sin(_B),
)
# 1 mm pixels, 2.5 mm slices; the origin off any round number.
CT = Grid(
    origin=(-48.0, -40.0, -40.0), orientation=AXIAL, spacing=(2.5, 1.0, 1.0), shape=(40, 80, 96)
)
TILTED = Grid(
    origin=(-30.0, -25.0, -20.0), orientation=OBLIQUE, spacing=(2.5, 1.0, 1.0), shape=(40, 80, 96)
)


def reread(ds: Dataset) -> Dataset:
    """The dataset as a file would give it: every value still raw text until read."""
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, implicit_vr=True, little_endian=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()), force=True)


def by_name(structures: rtstruct.StructureSet) -> dict[str, Roi]:
    return {roi.name: roi for roi in structures.rois}


def cylinder_ml() -> float:
    return math.pi * CYLINDER_RADIUS**2 * CYLINDER_HEIGHT / 1000


def sphere_ml() -> float:
    return 4 / 3 * math.pi * SPHERE_RADIUS**3 / 1000


@pytest.mark.parametrize("grid", [CT, TILTED], ids=["axial", "oblique"])
def test_a_cylinder_and_a_sphere_have_their_analytic_volumes(grid: Grid) -> None:
    ds = structure_set(
        [
            Shape("cylinder", closed(cylinder(grid, (30.0, 35.0), first=12))),
            Shape("sphere", closed(sphere(grid, (18.0, 40.3, 52.6)))),
        ]
    )
    for images, source in ((grid, "images"), (None, "contours")):
        rois = by_name(read_structures(ds, images))
        for name, expected in (("cylinder", cylinder_ml()), ("sphere", sphere_ml())):
            roi = rois[name]
            assert roi.problems == ()
            assert roi.volume_ml == pytest.approx(expected, rel=0.03)
            assert roi.slice_spacing_mm == pytest.approx(2.5)
            assert roi.spacing_from == source
            assert roi.hu is None
    assert rois["cylinder"].contours == 20
    assert rois["cylinder"].points == 20 * (POINTS + 1)
    assert rois["sphere"].contours == 19  # z = -22.5 .. 22.5 mm
    assert rois["sphere"].geometric_types == ("CLOSED_PLANAR",)


def test_what_a_file_gives_is_what_memory_gives() -> None:
    ds = structure_set(
        [
            Shape("sphere", closed(sphere(CT, (18.0, 40.3, 52.6)))),
            Shape("open", [("OPEN_PLANAR", circle(CT, voxel_centre(CT, 3, 40, 40), 5.0))]),
        ]
    )
    assert read_structures(reread(ds), CT).to_json() == read_structures(ds, CT).to_json()


@pytest.mark.parametrize("grid", [CT, TILTED], ids=["axial", "oblique"])
def test_hu_statistics_cover_the_voxels_inside_the_contours(grid: Grid) -> None:
    centre = (18.0, 40.3, 52.6)  # slice, row, column: off the pixel grid in-plane
    k, r, c = np.meshgrid(*(np.arange(n) for n in grid.shape), indexing="ij")
    row, column, normal = axes(grid)
    offsets = (
        np.array(grid.origin)
        - voxel_centre(grid, *centre)
        + (k * grid.spacing[0])[..., None] * normal
        + (r * grid.spacing[1])[..., None] * column
        + (c * grid.spacing[2])[..., None] * row
    )
    inside = np.linalg.norm(offsets, axis=-1) < SPHERE_RADIUS
    voxels = np.where(inside, 60.0, -1000.0)
    ds = structure_set([Shape("sphere", closed(sphere(grid, centre)))])
    roi = read_structures(ds, grid, voxels).rois[0]
    assert roi.problems == ()
    assert roi.hu is not None
    assert roi.hu.mean == pytest.approx(60.0, abs=1.0)
    assert (roi.hu.min, roi.hu.max) == (voxels[inside].min(), voxels[inside].max())
    # The 128-gons sit inside their circles, missing at most the odd centre within a
    # hundredth of a millimetre of the sphere's surface.
    assert roi.hu.voxels == pytest.approx(int(inside.sum()), rel=0.005)
    assert roi.hu.voxels <= inside.sum()


def test_a_ring_is_its_outline_less_its_hole() -> None:
    outer = cylinder(CT, (30.0, 35.0), first=12)
    inner = [circle(CT, points[:-1].mean(axis=0), 8.0) for points in outer]
    rois = read_structures(structure_set([Shape("ring", closed(outer + inner))]), CT).rois
    expected = math.pi * (CYLINDER_RADIUS**2 - 8.0**2) * CYLINDER_HEIGHT / 1000
    assert rois[0].volume_ml == pytest.approx(expected, rel=0.03)
    assert rois[0].problems == ()


def test_each_broken_roi_names_its_problem_and_the_others_are_measured() -> None:
    good = cylinder(CT, (30.0, 35.0), first=12)
    bow_tie = good[3].copy()
    bow_tie[[10, 70]] = bow_tie[[70, 10]]
    lifted = good[4].copy()
    up = np.array([0.0, 0.0, 1.0])  # mm
    lifted[7] += up
    off_slice = [points + up for points in good]
    tilted = [*good[:2], good[2] + np.outer(good[2][:, 0] / 40, up)]  # 1 mm in 40
    shapes = [
        Shape("good", closed(good)),
        Shape("open", [*closed(good[:5]), ("OPEN_PLANAR", good[5]), *closed(good[6:])]),
        Shape("crossed", closed([*good[:3], bow_tie, *good[4:]])),
        Shape("no frame", closed(good)),
        Shape("strange frame", closed(good)),
        Shape("miscounted", closed(good)),
        Shape("not a multiple of 3", closed(good)),
        Shape("bent", closed([*good[:4], lifted, *good[5:]])),
        Shape("between slices", closed(off_slice)),
        Shape("not parallel", closed(tilted)),
        Shape("two points", closed([good[0][:2]])),
        Shape("overlapping", closed([good[0], good[0] + (10.0, 0.0, 0.0)])),
        Shape("twice", closed([good[0], good[0]])),
        Shape("empty", []),
        Shape("isocentre", [("POINT", voxel_centre(CT, 20, 40, 48)[None])], "ISOCENTER"),
        Shape("no contours", []),
    ]
    ds = structure_set(shapes)
    del ds.StructureSetROISequence[3].ReferencedFrameOfReferenceUID
    ds.StructureSetROISequence[4].ReferencedFrameOfReferenceUID = "1.2.3.4"
    ds.ROIContourSequence[5].ContourSequence[2].NumberOfContourPoints = POINTS + 2
    ds.ROIContourSequence[6].ContourSequence[1].ContourData = [1.0, 2.0, 3.0, 4.0]
    del ds.ROIContourSequence[15]  # "no contours": no ROIContourSequence item at all
    structures = read_structures(ds, CT)
    rois = by_name(structures)
    assert len(structures.rois) == len(shapes)
    expected_problems = {
        "good": [],
        "open": ["contour 6: open (OPEN_PLANAR): it encloses no volume"],
        "crossed": ["contour 4: crosses itself"],
        "no frame": ["no ReferencedFrameOfReferenceUID"],
        "strange frame": [
            "frame of reference 1.2.3.4 is not in ReferencedFrameOfReferenceSequence"
        ],
        "miscounted": [
            f"contour 3: NumberOfContourPoints is {POINTS + 2} but ContourData holds"
            f" {POINTS + 1} points"
        ],
        "not a multiple of 3": ["contour 2: ContourData holds 4 values, not a multiple of 3"],
        "bent": ["contour 5: not planar: its points lie more than 0.1 mm off one plane"],
        "between slices": [
            f"contour {n}: lies between image slices, 1.00 mm from the nearest"
            for n in range(1, 21)
        ],
        "not parallel": ["contour 3: not parallel to the images' plane"],
        "two points": ["contour 1: fewer than 3 distinct points"],
        "overlapping": ["plane at -10.00 mm: contours cross each other"],
        "twice": ["plane at -10.00 mm: contours touch or coincide: which is a hole cannot be told"],
        "empty": ["no contours"],
        "isocentre": [],
        "no contours": ["no contours"],
    }
    assert {name: list(roi.problems) for name, roi in rois.items()} == expected_problems
    measured = {name for name, roi in rois.items() if roi.volume_ml is not None}
    assert measured == {"good", "no frame", "strange frame"}
    for name in measured:
        assert rois[name].volume_ml == pytest.approx(cylinder_ml(), rel=0.03)
    assert rois["open"].contours == 20  # counted all the same
    assert rois["open"].geometric_types == ("CLOSED_PLANAR", "OPEN_PLANAR")
    assert rois["miscounted"].points == 20 * (POINTS + 1)
    assert rois["isocentre"].geometric_types == ("POINT",)
    assert (rois["isocentre"].volume_ml, rois["isocentre"].spacing_from) == (None, None)
    assert rois["no frame"].frame_of_reference is None
    assert rois["no frame"].referenced_series == ()
    assert rois["good"].referenced_series == (SERIES,)


def test_one_plane_without_images_has_no_slice_spacing() -> None:
    ds = structure_set([Shape("flat", closed(cylinder(CT, (30.0, 35.0), first=12)[:1]))])
    roi = read_structures(ds).rois[0]
    assert roi.volume_ml is None
    assert roi.problems == (
        "contours on one plane only and no images: no slice spacing can be known",
    )
    with_images = read_structures(ds, CT).rois[0]
    expected = math.pi * CYLINDER_RADIUS**2 * 2.5 / 1000
    assert with_images.volume_ml == pytest.approx(expected, rel=0.01)


def raw(keyword: str, vr: str, value: bytes) -> RawDataElement:
    """An element as a file gives it: text pydicom converts only when it is read."""
    return RawDataElement(Tag(keyword), vr, len(value), value, 0, True, True)


@pytest.mark.filterwarnings("ignore:Invalid value")
def test_values_pydicom_cannot_make_sense_of_are_problems_of_their_roi() -> None:
    good = cylinder(CT, (30.0, 35.0), first=12)
    ds = structure_set([Shape(name, closed(good)) for name in ("a", "b", "c", "d", "e", "f")])
    ds.StructureSetROISequence[0]["ROINumber"] = raw("ROINumber", "IS", b"one")
    contours = [outline.ContourSequence for outline in ds.ROIContourSequence]
    contours[1][0]["ContourData"] = raw("ContourData", "DS", b"1\\2\\abc")
    contours[2][0]["ContourData"] = raw("ContourData", "DS", b"1\\nan\\3")
    contours[3][0]["ContourData"] = raw("ContourData", "DS", b"1\\2e300\\3")
    ds.ROIContourSequence[4]["ROIDisplayColor"] = raw("ROIDisplayColor", "IS", b"1\\2")
    contours[5][0].ContourData = []
    structures = read_structures(ds, CT)
    assert [list(roi.problems) for roi in structures.rois] == [
        ["ROINumber is not an integer", "no contours"],
        ["contour 1: ContourData holds values that are not numbers"],
        ["contour 1: ContourData holds non-finite numbers"],
        ["contour 1: ContourData holds coordinates more than a kilometre from the origin"],
        ["ROIDisplayColor is not three integers from 0 to 255"],
        ["contour 1: no ContourData"],
    ]
    assert structures.rois[0].number is None
    assert structures.rois[4].colour is None
    assert structures.rois[4].volume_ml == pytest.approx(cylinder_ml(), rel=0.03)
    json.dumps(structures.to_json(), allow_nan=False)


def test_past_the_point_limits_an_roi_is_named_not_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    good = cylinder(CT, (30.0, 35.0), first=12)  # 20 contours of 129 points
    ds = reread(structure_set([Shape(name, closed(good)) for name in ("a", "b", "c")]))
    monkeypatch.setattr(rtstruct, "MAX_POINTS", 2 * 20 * (POINTS + 1))
    monkeypatch.setattr(rtstruct, "MAX_POINTS_PER_CONTOUR", POINTS)
    rois = read_structures(ds).rois
    assert rois[0].problems[0] == f"contour 1: {POINTS + 1} points, more than the limit of {POINTS}"
    assert len(rois[0].problems) == 20
    assert rois[2].problems == (
        f"{20 * (POINTS + 1)} points, past what is left of the structure set's limit of"
        f" {2 * 20 * (POINTS + 1)}: not measured",
    )
    assert [roi.points for roi in rois] == [20 * (POINTS + 1)] * 3
    assert [roi.volume_ml for roi in rois] == [None, None, None]


def test_past_the_geometry_limits_a_volume_or_hu_is_named_not_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outer = cylinder(CT, (30.0, 35.0), first=12)
    inner = [circle(CT, points[:-1].mean(axis=0), 8.0) for points in outer]
    ds = structure_set([Shape("ring", closed(outer + inner)), Shape("cylinder", closed(outer[:3]))])
    voxels = np.zeros(CT.shape)
    # Nesting a plane's two circles costs 2 x 256 (their corners, without the repeated
    # closing points); HU on a plane about 41 x (41 + 128).
    monkeypatch.setattr(rtstruct, "MAX_NESTING", 3 * 2 * 2 * POINTS)
    monkeypatch.setattr(rtstruct, "MAX_RASTER", 2 * 41 * (41 + POINTS))
    ring, flat = read_structures(ds, CT, voxels).rois
    assert ring.volume_ml is None
    assert ring.problems == tuple(
        f"plane at {-10 + 2.5 * k:.2f} mm: 2 contours of 256 points on one plane: more to"
        " nest than the 0 tests left"
        for k in range(3, 20)
    )
    assert flat.volume_ml == pytest.approx(3 * math.pi * CYLINDER_RADIUS**2 * 2.5 / 1000, 0.01)
    assert flat.hu is None
    assert flat.problems[0].startswith("no HU statistics: ")


def test_a_dataset_that_is_no_structure_set_says_so() -> None:
    structures = read_structures(Dataset())
    assert structures.to_json() == {
        "label": "",
        "name": "",
        "frameOfReference": [],
        "referencedSeries": [],
        "rois": [],
        "problems": ["no StructureSetROISequence: not an RT structure set"],
    }


def test_a_wrong_call_is_refused() -> None:
    with pytest.raises(ValueError):
        read_structures(Dataset(), None, np.zeros((2, 2, 2)))
    with pytest.raises(ValueError):
        read_structures(Dataset(), CT, np.zeros((2, 2, 2)))
    with pytest.raises(ValueError):
        Grid((0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 1.0, 0.0, 0.0), (1.0, 1.0, 1.0), (1, 1, 1))
    with pytest.raises(ValueError):
        Grid((0.0, 0.0, 0.0), AXIAL, (0.0, 1.0, 1.0), (1, 1, 1))


def shoelace(xy: list[tuple[float, float]]) -> float:
    twice = 0.0
    for (x0, y0), (x1, y1) in zip(xy, xy[1:] + xy[:1], strict=True):
        twice += x0 * y1 - x1 * y0
    return abs(twice) / 2


def test_pydicoms_structure_set_reads_as_pydicom_reads_it() -> None:
    ds = pydicom.dcmread(get_testdata_file("rtstruct.dcm"), force=True)
    structures = read_structures(ds)
    # What pydicom itself reads, walking the dataset.
    colours = {
        int(item.ReferencedROINumber): [int(v) for v in item.ROIDisplayColor]
        for item in ds.ROIContourSequence
    }
    outlines = {
        int(item.ReferencedROINumber): item.ContourSequence for item in ds.ROIContourSequence
    }
    types = {
        int(item.ReferencedROINumber): str(item.RTROIInterpretedType)
        for item in ds.RTROIObservationsSequence
    }
    expected = [
        {
            "number": int(roi.ROINumber),
            "name": str(roi.ROIName),
            "colour": colours[int(roi.ROINumber)],
            "interpretedType": types[int(roi.ROINumber)],
            "contours": len(outlines[int(roi.ROINumber)]),
            "points": sum(int(c.NumberOfContourPoints) for c in outlines[int(roi.ROINumber)]),
            "geometricTypes": sorted(
                {str(c.ContourGeometricType) for c in outlines[int(roi.ROINumber)]}
            ),
        }
        for roi in ds.StructureSetROISequence
    ]
    found = [{key: roi.to_json()[key] for key in expected[0]} for roi in structures.rois]
    assert found == expected
    assert [roi.name for roi in structures.rois] == ["patient", "Isocenter 1", "Isocenter 2"]
    frame = ds.ReferencedFrameOfReferenceSequence[0]
    assert structures.frame_of_reference == (frame.FrameOfReferenceUID,)
    assert structures.referenced_series == (
        frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0].SeriesInstanceUID,
    )
    # The patient's volume: each plane's shoelace area, 10 mm slabs (the gap between planes).
    planes: dict[float, float] = {}
    for contour in outlines[1]:
        values = [float(v) for v in contour.ContourData]
        xy = list(zip(values[0::3], values[1::3], strict=True))
        planes[values[2]] = planes.get(values[2], 0.0) + shoelace(xy)
    heights = sorted(planes)
    assert np.diff(heights).tolist() == [10.0, 10.0]
    patient, *isocentres = structures.rois
    assert patient.volume_ml == pytest.approx(sum(planes.values()) * 10.0 / 1000, abs=1e-3)
    assert (patient.slice_spacing_mm, patient.spacing_from) == (10.0, "contours")
    assert patient.problems == ()
    for isocentre in isocentres:
        assert isocentre.volume_ml is None
        assert isocentre.problems == ()
    json.dumps(structures.to_json(), allow_nan=False)

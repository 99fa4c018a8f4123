"""RT-STRUCT contents through a real Orthanc: a planning CT (a water cylinder with a sphere of
60 HU) and a structure set drawn on it, the way a treatment planning system sends them;
pydicom's own rtstruct.dcm, whose images this server never saw; a broken ROI beside good
ones. Volumes are checked against the formulas, HU against what the phantom holds."""

from __future__ import annotations

import io
import math
import sqlite3
from collections.abc import Callable
from contextlib import closing

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from hounsfield.structures.rtstruct import Grid
from tests.support.ai import Phantom, Sphere, ct_slices, store_series
from tests.support.server import OrthancServer, wait_for
from tests.support.structures import (
    CYLINDER_HEIGHT,
    CYLINDER_RADIUS,
    RT_STRUCTURE_SET_STORAGE,
    SPHERE_RADIUS,
    Shape,
    closed,
    cylinder,
    sphere,
    structure_set,
)

# The phantom's grid as ct_slices writes it: axial, origin (0, 0, 0), z growing with slices.
PHANTOM = Phantom(
    shape=(40, 96, 96),
    spacing=(2.0, 1.5, 1.5),
    spheres=(Sphere(centre=(20, 30, 30), radius_mm=SPHERE_RADIUS, hu=60.0),),
)
GRID = Grid((0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), PHANTOM.spacing, PHANTOM.shape)


def as_file(ds: pydicom.Dataset, study: pydicom.Dataset) -> bytes:
    """The structure set as a planning system's file: in the CT's study, with file meta."""
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "StudyDate", "StudyID"):
        setattr(ds, keyword, study.get(keyword, ""))
    ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 9
    ds.StructureSetDate, ds.StructureSetTime = "20261125", "090000"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def structures(orthanc: OrthancServer, series: str) -> dict:
    """The answer once read (202 while a worker reads it)."""

    def read() -> dict | None:
        answer = orthanc.get(f"/api/series/{series}/structures")
        assert answer.status_code in (200, 202), answer.text
        return answer.json() if answer.status_code == 200 else None

    return wait_for(read, 90, f"the structures of series {series}", 0.3)


def stored_series(orthanc: OrthancServer, data: bytes) -> str:
    answer = orthanc.post("/instances", data=data)
    assert answer.status_code == 200, answer.text
    return orthanc.get(f"/instances/{answer.json()['ID']}").json()["ParentSeries"]


@pytest.fixture(scope="module")
def planned(orthanc: OrthancServer) -> dict:
    """The CT and its structure set in one study: a sphere (on the 60 HU sphere), a
    cylinder (in water) and an open contour."""
    slices = list(ct_slices(PHANTOM.voxels(), PHANTOM.spacing, patient_id="RT-0001"))
    store_series(orthanc, iter(slices))
    first = pydicom.dcmread(io.BytesIO(slices[0]))
    shapes = [
        Shape("Sphere", closed(sphere(GRID, (20, 30, 30))), interpreted="PTV"),
        Shape("Cylinder", closed(cylinder(GRID, (60.0, 66.0), first=5)), colour=(0, 128, 255)),
        Shape("Open", [("OPEN_PLANAR", sphere(GRID, (20, 30, 30))[5])]),
    ]
    ds = structure_set(shapes, series=first.SeriesInstanceUID, frame=first.FrameOfReferenceUID)
    series = stored_series(orthanc, as_file(ds, first))
    return {"series": series, "answer": structures(orthanc, series), "ct": first}


def test_volumes_and_hu_of_structures_drawn_on_the_planning_ct(planned: dict) -> None:
    answer = planned["answer"]
    [structure_set_] = answer["structureSets"]
    assert structure_set_["images"]["present"] and structure_set_["images"]["problem"] is None
    rois = {roi["name"]: roi for roi in structure_set_["rois"]}
    sphere_roi, cylinder_roi, open_roi = rois["Sphere"], rois["Cylinder"], rois["Open"]

    analytic_sphere = 4 / 3 * math.pi * SPHERE_RADIUS**3 / 1000
    analytic_cylinder = math.pi * CYLINDER_RADIUS**2 * CYLINDER_HEIGHT / 1000
    assert sphere_roi["volumeMl"] == pytest.approx(analytic_sphere, rel=0.03)
    assert cylinder_roi["volumeMl"] == pytest.approx(analytic_cylinder, rel=0.03)
    assert sphere_roi["spacingFrom"] == "images" and sphere_roi["sliceSpacingMm"] == 2.0
    assert sphere_roi["interpretedType"] == "PTV" and cylinder_roi["colour"] == [0, 128, 255]
    assert sphere_roi["frameOfReference"] == planned["ct"].FrameOfReferenceUID
    assert sphere_roi["referencedSeries"] == [planned["ct"].SeriesInstanceUID]
    assert sphere_roi["contours"] == len(sphere(GRID, (20, 30, 30)))
    # HU: the phantom's sphere is 60 everywhere; the cylinder is in water (0, noise 8 HU)
    assert sphere_roi["hu"]["mean"] == pytest.approx(60, abs=1)
    assert sphere_roi["hu"]["min"] >= -40 and sphere_roi["hu"]["max"] == 60
    assert cylinder_roi["hu"]["mean"] == pytest.approx(0, abs=2)
    assert not sphere_roi["problems"] and not cylinder_roi["problems"]
    # The broken ROI names its problem, and has no volume
    assert open_roi["volumeMl"] is None and open_roi["problems"]
    assert "OPEN_PLANAR" in " ".join(open_roi["problems"])


def test_a_structure_set_whose_images_are_elsewhere(orthanc: OrthancServer, planned: dict) -> None:
    """pydicom's rtstruct.dcm: ROIs as pydicom reads them, the volume from the contours."""
    ds = pydicom.dcmread(get_testdata_file("rtstruct.dcm"), force=True)
    expected = {int(roi.ROINumber): roi.ROIName for roi in ds.StructureSetROISequence}
    points = {
        int(item.ReferencedROINumber): sum(
            int(c.NumberOfContourPoints) for c in item.ContourSequence
        )
        for item in ds.ROIContourSequence
    }
    ds.SOPClassUID = RT_STRUCTURE_SET_STORAGE
    series = stored_series(orthanc, as_file(ds, planned["ct"]))
    [structure_set_] = structures(orthanc, series)["structureSets"]
    assert "not on this server" in structure_set_["images"]["problem"]
    rois = {roi["number"]: roi for roi in structure_set_["rois"]}
    assert {number: roi["name"] for number, roi in rois.items()} == expected
    assert {number: roi["points"] for number, roi in rois.items()} == points
    assert rois[1]["spacingFrom"] == "contours" and rois[1]["volumeMl"] > 0
    assert rois[2]["volumeMl"] is None and not rois[2]["problems"]  # an isocentre: a point


def test_only_rtstruct_series_have_structures(
    orthanc: OrthancServer, planned: dict, dicom_file: Callable
) -> None:
    ct_series = orthanc.post("/tools/lookup", data=planned["ct"].SeriesInstanceUID).json()
    answer = orthanc.get(f"/api/series/{ct_series[0]['ID']}/structures")
    assert answer.status_code == 404 and "not RTSTRUCT" in answer.json()["error"]
    assert orthanc.get("/api/series/no-such-series/structures").status_code == 404


def test_a_deleted_study_takes_its_structures_along(orthanc: OrthancServer) -> None:
    voxels = np.full((4, 16, 16), -1000.0, np.float32)
    slices = list(ct_slices(voxels, (2.0, 1.0, 1.0), patient_id="RT-0002"))
    study = store_series(orthanc, iter(slices))
    first = pydicom.dcmread(io.BytesIO(slices[0]))
    grid = Grid((0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), (2.0, 1.0, 1.0), (4, 16, 16))
    shapes = [Shape("Beyond the images", closed(cylinder(grid, (8.0, 8.0), first=0)))]
    ds = structure_set(shapes, series=first.SeriesInstanceUID, frame=first.FrameOfReferenceUID)
    series = stored_series(orthanc, as_file(ds, first))
    [kept] = structures(orthanc, series)["structureSets"]
    assert kept["rois"][0]["problems"]  # drawn past the 4 slices: said, not measured
    database = orthanc.workdir / "data" / "hounsfield" / "hounsfield.db"

    def rows() -> int:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
            query = "SELECT count(*) FROM structure_sets WHERE series_id = ?"
            return connection.execute(query, (series,)).fetchone()[0]

    assert rows() == 1
    assert orthanc.http.delete(orthanc.url(f"/studies/{study}")).status_code == 200
    wait_for(lambda: rows() == 0, 30, "the deleted study's structures to be forgotten")
    assert orthanc.get(f"/api/series/{series}/structures").status_code == 404

"""The SR and SEG of an analysis: valid DICOM (dciodvfy, DCMTK's SR reader), read back
with highdicom to the same findings, outlines and masks, and the same UIDs on a re-run.

The series is built here with pydicom (12 axial CT slices of 32 x 32), with its ``Volume``,
so that nothing but ``hounsfield.ai.model`` and ``hounsfield.ai.dicom`` is under test.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from hounsfield.ai.dicom import LOCAL_SCHEME, ResultObjects, derived_uid, result_objects
from hounsfield.ai.model import Analysis, Finding, Measurement, Segmentation, Severity, Volume

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
SLICES, ROWS, COLUMNS = 12, 32, 32
SPACING = (2.5, 0.8, 0.7)  # between slices, rows, columns (mm)
ORIGIN = (-12.0, -13.0, -40.0)
SEED = "job-42/lung"


def ct_series(seed: str = "patient-1") -> tuple[Volume, list[Dataset]]:
    """Single-frame CT Image Storage slices, stored 0..4095 with intercept -1024, and the
    ``Volume`` an intake would make of them (slices sorted along +z)."""

    def uid(*parts: str) -> str:
        return str(generate_uid(entropy_srcs=["\0".join((seed, *parts))]))

    stored = np.full((SLICES, ROWS, COLUMNS), 24, np.uint16)  # -1000 HU: air
    stored[:, 6:26, 4:28] = 1064  # +40 HU: soft tissue
    slices = []
    for k in range(SLICES):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
        ds.SOPClassUID = CT_IMAGE_STORAGE
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid("slice", str(k))
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientName, ds.PatientID = "Doe^Jane", "P-0001"
        ds.PatientBirthDate, ds.PatientSex = "19600203", "F"
        ds.StudyInstanceUID, ds.StudyID = uid("study"), "S1"
        ds.StudyDate, ds.StudyTime = "20240105", "093000"
        ds.AccessionNumber, ds.ReferringPhysicianName = "ACC-1", ""
        ds.StudyDescription = "CT chest"
        ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "CT", uid("series"), 2
        ds.SeriesDescription, ds.BodyPartExamined = "Chest 2.5 mm", "CHEST"
        ds.Manufacturer = "Test scanner"
        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = uid("frame"), ""
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber, ds.AcquisitionNumber, ds.KVP = k + 1, 1, "120"
        ds.ImagePositionPatient = [ORIGIN[0], ORIGIN[1], ORIGIN[2] + k * SPACING[0]]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [SPACING[1], SPACING[2]], SPACING[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = ROWS, COLUMNS
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.PixelData = stored[k].tobytes()
        slices.append(ds)
    volume = Volume(
        voxels=(stored.astype(np.float32) - 1024.0),
        spacing=SPACING,
        origin=ORIGIN,
        orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
        instances=tuple(str(ds.SOPInstanceUID) for ds in slices),
        sop_class=CT_IMAGE_STORAGE,
        series_uid=uid("series"),
        study_uid=uid("study"),
        frame_of_reference=uid("frame"),
        tags={"Modality": "CT", "BodyPartExamined": "CHEST"},
    )
    return volume, slices


def lung_analysis(*, overlapping: bool = True) -> Analysis:
    """A nodule with location, size, volume and its mask; "image quality" without a
    location; two whole-volume measurements on the lung mask. The nodule lies inside the
    lungs (overlapping segments) unless ``overlapping`` is False."""
    lungs = np.zeros((SLICES, ROWS, COLUMNS), bool)
    lungs[1:11, 6:26, 4:28] = True
    if not overlapping:
        lungs[:, 10:21, 12:23] = False
    nodule = np.zeros_like(lungs)
    nodule[4:8, 10:20, 12:22] = True
    return Analysis(
        analyzer="lung",
        version="1.0",
        findings=(
            Finding(
                key="nodule-1",
                category="nodule",
                description="Solid nodule, right upper lobe",
                severity=Severity.MODERATE,
                confidence=0.83,
                centroid=(5.6, 14.5, 16.5),
                extent=((4.0, 10.0, 12.0), (7.0, 19.0, 21.0)),
                size_mm=8.1,
                volume_ml=0.35,
                segment="nodule-1",
            ),
            Finding(
                key="quality",
                category="image-quality",
                description="Image quality within limits",
                severity=Severity.NORMAL,
                confidence=0.97,
            ),
        ),
        measurements=(
            Measurement("Lung volume", 5120.4, "ml", segment="lungs"),
            Measurement("Emphysema index (LAA-950)", 3.2, "%", segment="lungs"),
        ),
        segmentations=(
            Segmentation("lungs", lungs, ("39607008", "Lung")),
            Segmentation("nodule-1", nodule, ("27925004", "Nodule"), abnormal=True),
        ),
    )


@pytest.fixture(scope="module")
def series() -> tuple[Volume, list[Dataset]]:
    return ct_series()


@pytest.fixture(scope="module")
def objects(series: tuple[Volume, list[Dataset]]) -> ResultObjects:
    volume, sources = series
    return result_objects(volume, sources, lung_analysis(), uid_seed=SEED)


def saved(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def dciodvfy(path: Path) -> list[str]:
    """dciodvfy's errors and warnings; what it says beyond them (the IOD's name) is left out."""
    checked = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    lines = (checked.stdout + checked.stderr).splitlines()
    return [line for line in lines if "Error" in line or "Warning" in line]


def dsrdump_problems(path: Path) -> list[str]:
    """DCMTK's SR reader checks what dciodvfy does not: the content tree's relationship
    constraints for the SR IOD (it refuses e.g. a CONTAINS below a TEXT)."""
    checked = subprocess.run(["dsrdump", str(path)], capture_output=True, text=True, timeout=60)
    problems = [
        line
        for line in checked.stderr.splitlines()
        if line.startswith(("E:", "F:")) or (line.startswith("W:") and "VR checker" not in line)
    ]
    return problems if problems or checked.returncode == 0 else [f"exit {checked.returncode}"]


def sr_items(ds: Dataset) -> list[Dataset]:
    """Every content item of the tree, depth first."""
    found: list[Dataset] = []
    pending = list(ds.ContentSequence)
    while pending:
        item = pending.pop(0)
        found.append(item)
        pending[:0] = list(item.get("ContentSequence", []))
    return found


def named(items: list[Dataset], value: str) -> list[Dataset]:
    return [item for item in items if item.ConceptNameCodeSequence[0].get("CodeValue") == value]


# --- valid DICOM ----------------------------------------------------------------------


@pytest.mark.parametrize("volumetric_groups", [False, True], ids=["ohif", "volumetric"])
def test_sr_and_seg_pass_dciodvfy(
    series: tuple[Volume, list[Dataset]], volumetric_groups: bool, tmp_path: Path
) -> None:
    volume, sources = series
    made = result_objects(
        volume, sources, lung_analysis(), uid_seed=SEED, volumetric_groups=volumetric_groups
    )
    assert made.sr is not None and made.seg is not None
    for name, ds in (("sr", made.sr), ("seg", made.seg)):
        said = dciodvfy(saved(ds, tmp_path / f"{name}.dcm"))
        assert [line for line in said if "Error" in line] == [], name
        # Left: our own coding scheme, which dciodvfy cannot know (it is declared in the
        # SR's Coding Scheme Identification Sequence).
        assert all(f"<{LOCAL_SCHEME}>" in line for line in said), said
    assert dsrdump_problems(tmp_path / "sr.dcm") == []


def test_report_without_outlines_passes_dciodvfy(
    series: tuple[Volume, list[Dataset]], tmp_path: Path
) -> None:
    """Findings without location only: TID 1500 with no "Imaging Measurements" at all."""
    volume, sources = series
    analysis = replace(lung_analysis(), findings=lung_analysis().findings[1:], segmentations=())
    made = result_objects(volume, sources, analysis, uid_seed=SEED)
    assert made.sr is not None and made.seg is None
    path = saved(made.sr, tmp_path / "sr.dcm")
    assert [line for line in dciodvfy(path) if "Error" in line] == []
    assert dsrdump_problems(path) == []
    top = [item.ConceptNameCodeSequence[0].CodeValue for item in made.sr.ContentSequence]
    assert codes.DCM.ImagingMeasurements.value not in top
    assert "C0034375" in top  # Qualitative Evaluations
    assert named(sr_items(made.sr), "111028")  # an Image Library, as TID 1500 requires


# --- the SR ---------------------------------------------------------------------------


def test_sr_belongs_to_the_study_and_names_itself(
    objects: ResultObjects, series: tuple[Volume, list[Dataset]]
) -> None:
    volume, sources = series
    sr = objects.sr
    assert sr is not None and objects.seg is not None
    assert sr.SOPClassUID == COMPREHENSIVE_SR
    assert sr.StudyInstanceUID == sources[0].StudyInstanceUID == volume.study_uid
    assert (sr.PatientID, str(sr.PatientName)) == ("P-0001", "Doe^Jane")
    assert sr.Modality == "SR"
    assert sr.SeriesDescription == "AI lung (hounsfield 1.0)"
    assert objects.seg.SeriesDescription == "AI lung masks (hounsfield 1.0)"
    assert sr.Manufacturer == objects.seg.Manufacturer == "Hounsfield"
    assert sr.SeriesNumber != objects.seg.SeriesNumber
    assert sr.SeriesInstanceUID != objects.seg.SeriesInstanceUID
    assert (sr.CompletionFlag, sr.VerificationFlag, sr.PreliminaryFlag) == (
        "COMPLETE",
        "UNVERIFIED",
        "PRELIMINARY",
    )
    assert sr.ConceptNameCodeSequence[0].CodeValue == "126000"  # what OHIF insists on
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert {ref.ReferencedSOPInstanceUID for ref in evidence.ReferencedSOPSequence} == set(
        volume.instances
    )
    schemes = [item.CodingSchemeDesignator for item in sr.CodingSchemeIdentificationSequence]
    assert LOCAL_SCHEME in schemes


def test_located_finding_reads_back_as_an_outlined_group(
    objects: ResultObjects, series: tuple[Volume, list[Dataset]], tmp_path: Path
) -> None:
    volume, _ = series
    assert objects.sr is not None
    report = hd.sr.srread(saved(objects.sr, tmp_path / "sr.dcm")).content
    assert isinstance(report, hd.sr.MeasurementReport)
    (group,) = report.get_planar_roi_measurement_groups()
    assert group.tracking_identifier == "nodule-1"
    assert group.tracking_uid == derived_uid(SEED, "finding", "nodule-1")
    assert group.finding_type == hd.sr.CodedConcept("27925004", "SCT", "Nodule")
    values = {m.name.meaning: (m.value, m.unit.value) for m in group.get_measurements()}
    assert values == {
        "Length": (8.1, "mm"),
        "Volume": (0.35, "ml"),
        "Certainty of Finding": (83.0, "%"),
    }
    (severity,) = group.get_qualitative_evaluations(name=codes.SCT.Severity)
    assert (severity.value.value, severity.value.scheme_designator) == ("moderate", LOCAL_SCHEME)
    (comment,) = named(list(group[0].ContentSequence), "121106")
    assert comment.TextValue == "Solid nodule, right upper lobe"
    (algorithm,) = named(list(group[0].ContentSequence), "111001")
    assert algorithm.TextValue == "lung"

    # The outline: the extent's rows 10-19 and columns 12-21, pixel edges, on the slice
    # of the centroid (5.6 -> slice 6).
    region = group.roi
    assert region is not None and region.graphic_type == hd.sr.GraphicTypeValues.POLYLINE
    np.testing.assert_array_equal(region.value, [[12, 10], [22, 10], [22, 20], [12, 20], [12, 10]])
    reference = region.ContentSequence[0].ReferencedSOPSequence[0]
    assert reference.ReferencedSOPInstanceUID == volume.instances[6]
    assert reference.ReferencedSOPClassUID == CT_IMAGE_STORAGE
    library = named(sr_items(objects.sr), "111028")[0]
    listed = [
        item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
        for item in sr_items(library)
        if item.ValueType == "IMAGE"
    ]
    assert listed == [volume.instances[6]]


def test_unlocated_findings_and_measurements_are_qualitative_evaluations(
    objects: ResultObjects,
) -> None:
    """Nothing without an outline inside "Imaging Measurements": OHIF 3.13.2 throws there."""
    assert objects.sr is not None
    (imaging,) = named(list(objects.sr.ContentSequence), "126010")
    assert all(
        any(item.ValueType == "SCOORD" for item in group.ContentSequence)
        for group in imaging.ContentSequence
    )
    (evaluations,) = named(list(objects.sr.ContentSequence), "C0034375")
    quality, lung_volume, emphysema = evaluations.ContentSequence
    assert (quality.ValueType, quality.TextValue) == ("TEXT", "Image quality within limits")
    assert quality.ConceptNameCodeSequence[0].CodeMeaning == "Image quality"
    properties = {p.ConceptNameCodeSequence[0].CodeValue: p for p in quality.ContentSequence}
    assert properties["246112005"].ConceptCodeSequence[0].CodeValue == "normal"
    assert float(properties["111012"].MeasuredValueSequence[0].NumericValue) == 97.0
    assert properties["112039"].TextValue == "quality"
    assert str(properties["112040"].UID) == derived_uid(SEED, "finding", "quality")
    assert (lung_volume.ConceptNameCodeSequence[0].CodeMeaning, lung_volume.TextValue) == (
        "Lung volume",
        "5120.4 ml",
    )
    (number,) = lung_volume.ContentSequence
    assert float(number.MeasuredValueSequence[0].NumericValue) == 5120.4
    unit = number.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0]
    assert (unit.CodeValue, unit.CodingSchemeDesignator) == ("ml", "UCUM")
    assert emphysema.TextValue == "3.2 %"
    code = emphysema.ConceptNameCodeSequence[0]
    assert len(code.CodeValue) <= 16 and code.CodeMeaning == "Emphysema index (LAA-950)"


def test_volumetric_groups_reference_the_segment(
    series: tuple[Volume, list[Dataset]], tmp_path: Path
) -> None:
    volume, sources = series
    made = result_objects(volume, sources, lung_analysis(), uid_seed=SEED, volumetric_groups=True)
    assert made.sr is not None and made.seg is not None
    report = hd.sr.srread(saved(made.sr, tmp_path / "sr.dcm")).content
    assert [g.tracking_identifier for g in report.get_planar_roi_measurement_groups()] == [
        "nodule-1"
    ]
    (quality,) = report.get_image_measurement_groups()
    assert quality.tracking_uid == derived_uid(SEED, "finding", "quality")
    (severity,) = quality.get_qualitative_evaluations(name=codes.SCT.Severity)
    assert severity.value.value == "normal"
    (lungs,) = report.get_volumetric_roi_measurement_groups()
    segment = lungs.referenced_segment
    assert segment is not None
    assert segment[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == made.seg.SOPInstanceUID
    assert segment[0].ReferencedSOPSequence[0].ReferencedSegmentNumber == 1
    values = {m.name.meaning: (m.value, m.unit.value) for m in lungs.get_measurements()}
    assert values == {"Lung volume": (5120.4, "ml"), "Emphysema index (LAA-950)": (3.2, "%")}
    evidence = made.sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
    assert made.seg.SeriesInstanceUID in {s.SeriesInstanceUID for s in evidence}


def test_centroid_without_extent_is_a_point(series: tuple[Volume, list[Dataset]]) -> None:
    volume, sources = series
    dot = Finding(
        key="metal-1",
        category="metal",
        description="Metal",
        severity=Severity.MINOR,
        confidence=0.5,
        centroid=(2.2, 3.0, 30.0),
    )
    made = result_objects(volume, sources, Analysis("metal", "2"), uid_seed=SEED)
    assert made.sr is None and made.seg is None  # nothing to say: nothing to store
    made = result_objects(volume, sources, Analysis("metal", "2", findings=(dot,)), uid_seed=SEED)
    assert made.sr is not None
    (scoord,) = [item for item in sr_items(made.sr) if item.ValueType == "SCOORD"]
    assert scoord.GraphicType == "POINT"
    assert [float(v) for v in scoord.GraphicData] == [30.5, 3.5]  # the voxel's centre
    image = scoord.ContentSequence[0].ReferencedSOPSequence[0]
    assert image.ReferencedSOPInstanceUID == volume.instances[2]
    (finding,) = named(sr_items(made.sr), "121071")
    assert finding.ConceptCodeSequence[0].CodeValue == "metal"
    assert finding.ConceptCodeSequence[0].CodingSchemeDesignator == LOCAL_SCHEME


# --- the SEG --------------------------------------------------------------------------


@pytest.mark.parametrize("overlapping", [True, False], ids=["overlapping", "apart"])
def test_seg_masks_read_back_pixel_for_pixel(
    series: tuple[Volume, list[Dataset]], overlapping: bool, tmp_path: Path
) -> None:
    volume, sources = series
    headers = [
        pydicom.dcmread(saved(ds, tmp_path / f"{k}.dcm"), stop_before_pixels=True)
        for k, ds in enumerate(sources)
    ]
    analysis = lung_analysis(overlapping=overlapping)
    made = result_objects(volume, headers, analysis, uid_seed=SEED)
    assert made.seg is not None
    seg = hd.seg.segread(saved(made.seg, tmp_path / "seg.dcm"))
    assert seg.SOPClassUID == SEGMENTATION_STORAGE
    assert seg.segmentation_type == hd.seg.SegmentationTypeValues.BINARY
    assert seg.SegmentsOverlap == ("YES" if overlapping else "NO")
    assert seg.NumberOfFrames == SLICES * 2  # empty frames kept, for OHIF
    assert seg.StudyInstanceUID == volume.study_uid
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == volume.series_uid
    lungs, nodule = seg.SegmentSequence
    assert (lungs.SegmentLabel, nodule.SegmentLabel) == ("lungs", "nodule-1")
    assert lungs.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "91723000"
    assert nodule.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003"
    assert lungs.SegmentedPropertyTypeCodeSequence[0].CodeValue == "39607008"
    assert nodule.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Nodule"
    assert lungs.SegmentAlgorithmType == "AUTOMATIC"
    assert lungs.SegmentAlgorithmName == "lung"
    algorithm = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == ("lung", "1.0")
    assert len(lungs.RecommendedDisplayCIELabValue) == 3
    pixels = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=list(volume.instances), segment_numbers=[1, 2]
    )
    assert pixels.shape == (SLICES, ROWS, COLUMNS, 2)
    np.testing.assert_array_equal(pixels[..., 0], analysis.segmentations[0].mask)
    np.testing.assert_array_equal(pixels[..., 1], analysis.segmentations[1].mask)


def test_seg_is_none_without_masks(series: tuple[Volume, list[Dataset]]) -> None:
    volume, sources = series
    made = result_objects(
        volume, sources, replace(lung_analysis(), segmentations=()), uid_seed=SEED
    )
    assert made.seg is None and made.sr is not None
    assert made.datasets == [made.sr]


# --- identity and input ---------------------------------------------------------------


def tracking_uids(made: ResultObjects) -> list[str]:
    assert made.sr is not None
    return [
        str(item.UID)
        for item in sr_items(made.sr)
        if item.ValueType == "UIDREF" and item.ConceptNameCodeSequence[0].CodeValue == "112040"
    ]


def uids(made: ResultObjects) -> list[str]:
    return [str(uid) for ds in made.datasets for uid in (ds.SeriesInstanceUID, ds.SOPInstanceUID)]


def test_same_seed_same_uids_other_seed_other_uids(
    objects: ResultObjects, series: tuple[Volume, list[Dataset]]
) -> None:
    volume, sources = series
    again = result_objects(volume, sources, lung_analysis(), uid_seed=SEED)
    other = result_objects(volume, sources, lung_analysis(), uid_seed="job-43/lung")
    assert uids(again) == uids(objects)
    assert len(set(uids(objects))) == 4
    assert not set(uids(other)) & set(uids(objects))
    assert tracking_uids(again) == tracking_uids(objects)
    assert len(tracking_uids(objects)) == 2
    assert not set(tracking_uids(other)) & set(tracking_uids(objects))


def test_sources_must_follow_the_volume(series: tuple[Volume, list[Dataset]]) -> None:
    volume, sources = series
    with pytest.raises(ValueError, match="order"):
        result_objects(volume, sources[::-1], lung_analysis(), uid_seed=SEED)
    small = replace(
        lung_analysis(),
        segmentations=(Segmentation("x", np.zeros((2, 2, 2), bool), ("39607008", "Lung")),),
    )
    with pytest.raises(ValueError, match="shape"):
        result_objects(volume, sources, small, uid_seed=SEED)

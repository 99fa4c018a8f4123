"""One analysis as DICOM objects that OHIF shows: a TID 1500 Measurement Report and a SEG.

Made with highdicom 0.28.2. The choices, and what they rest on:

- The SR is a Comprehensive SR (88.33): its SCOORD content items are 2D image coordinates,
  which is all this module writes, and OHIF 3.13.2 hands 88.33 to the same SR handler as
  88.34 (``sopClassUids`` in its ``cornerstone-dicom-sr`` bundle).
- OHIF 3.13.2 displays a measurement group only when it holds an SCOORD/SCOORD3D item, and
  it *throws* on a group that has none: ``_processNonGeometricallyDefinedMeasurement``
  returns ``coords: []`` and ``_checkIfCanAddMeasurementsToDisplaySet`` then reads
  ``measurement.coords[0].ReferencedSOPSequence`` (read in ``ohif/dist/7248.bundle.*.js``).
  A TID 1501 group for "Image quality within limits" or a TID 1411 group that references a
  SEG segment would thus break the whole SR in the viewer. So by default the "Imaging
  Measurements" container holds only TID 1410 groups with an image region (one per
  finding that has a location), and everything without geometry (findings without a
  location, whole-volume measurements) goes into TID 1500's own "Qualitative Evaluations"
  container (UMLS C0034375; TEXT items, their coded severity, certainty, tracking and
  NUM value as HAS PROPERTIES children, which DCMTK's ``dsrdump`` accepts for the
  Comprehensive SR IOD), which OHIF does not read.
  ``volumetric_groups=True`` writes them as standard TID 1501 / TID 1411 groups instead
  (what dcmqi, 3D Slicer and highdicom read), for archives that OHIF does not open.
- Every group carries a tracking identifier (the finding's key) and a tracking UID derived
  from ``uid_seed`` and the key, so a re-run names the same finding the same way; OHIF
  needs both (it reads ``TrackingIdentifier.TextValue`` and the UIDREF unguarded).
- Severity is a qualitative evaluation, (246112005, SCT, "Severity") = one of our own codes
  in the local scheme ``99HOUNSFIELD`` (normal, minor, moderate, critical): SNOMED's
  mild/moderate/severe grade a disease, while ours say how soon a radiologist must look.
  Confidence is a NUM (111012, DCM, "Certainty of Finding") in percent (UCUM "%"), as the
  CAD SR templates record it; OHIF lists NUMs of a group next to its outline.
- The description is a TEXT (121106, DCM, "Comment"): the concept OHIF's own SR writer
  uses for free text.
- A finding's category is coded with SNOMED CT where ``CATEGORY_CODES`` knows it, else as
  a local code (value: the category, meaning: the category in words); the local scheme
  is declared in the SR's Coding Scheme Identification Sequence.
- Image coordinates follow DICOM PS3.3 C.18.6.1.1: (column, row), the first pixel's top
  left corner at (0, 0), its centre at (0.5, 0.5). The rectangle around an extent runs
  along the outer edges of its first and last voxels.
- The SEG is BINARY, one segment per ``Segmentation``, with every frame written
  (``omit_empty_frames=False``: OHIF loses masks otherwise; OHIF's SEG loader splits
  overlapping segments itself).
- Time for 512x512x300, two masks, two findings, two measurements (2-core AMD EPYC, warm;
  the first call in a process about 1.5-2x): 0.6 s and +0.3 GB peak when the masks do
  not overlap, 2.6 s and +1.0 GB when they do (see ``_pixel_array``); the SEG is 20 MB
  (600 frames). The SR takes 0.1 s and 50 kB since its Image Library lists only the
  outlined slices (see ``_library``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import highdicom as hd
import numpy as np
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from highdicom.sr import CodedConcept
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from hounsfield.ai.model import Analysis, Finding, Measurement, Segmentation, Volume

MANUFACTURER = "Hounsfield"
SR_SERIES_NUMBER = 9910
SEG_SERIES_NUMBER = 9911
LOCAL_SCHEME = "99HOUNSFIELD"

QUALITATIVE_EVALUATIONS = CodedConcept("C0034375", "UMLS", "Qualitative Evaluations")
CERTAINTY = codes.DCM.CertaintyOfFinding  # (111012, DCM), 0-100 %
SEVERITY = codes.SCT.Severity  # (246112005, SCT)
COMMENT = codes.DCM.Comment  # (121106, DCM)
MILLILITER = CodedConcept("ml", "UCUM", "milliliter")  # codes.UCUM has no Milliliter
UNIT_MEANINGS = {
    "ml": "milliliter",
    "mm": "millimeter",
    "mm2": "square millimeter",
    "mm3": "cubic millimeter",
    "%": "Percent",
    "[hnsf'U]": "Hounsfield unit",
    "1": "no units",
}

# Categories with a SNOMED CT concept (codes checked against pydicom's DICOM code tables);
# any other category becomes a local code.
CATEGORY_CODES: dict[str, tuple[str, str, str]] = {
    "hemorrhage": ("50960005", "SCT", "Hemorrhage"),
    "intracranial-hemorrhage": ("1386000", "SCT", "Intracranial hemorrhage"),
    "nodule": ("27925004", "SCT", "Nodule"),
    "mass": ("4147007", "SCT", "Mass"),
    "lesion": ("52988006", "SCT", "Lesion"),
}

# Recommended display colours (RGB) by segment: anatomy in calm colours, abnormal in warm.
ANATOMY_COLOURS = ((128, 174, 128), (0, 151, 206), (241, 214, 145), (177, 122, 101))
ABNORMAL_COLOURS = ((230, 40, 40), (255, 140, 0), (250, 220, 0), (200, 0, 200))


@dataclass(frozen=True)
class ResultObjects:
    """The SR and SEG of one analysis: ``sr`` is None when the analysis says nothing at all
    (no findings, no measurements), ``seg`` when it has no segmentation."""

    sr: Dataset | None
    seg: Dataset | None

    @property
    def datasets(self) -> list[Dataset]:
        """The objects to store, the SEG first (the SR may reference it)."""
        return [ds for ds in (self.seg, self.sr) if ds is not None]


def result_objects(
    volume: Volume,
    sources: Sequence[Dataset],
    analysis: Analysis,
    *,
    uid_seed: str,
    sr_series_number: int = SR_SERIES_NUMBER,
    seg_series_number: int = SEG_SERIES_NUMBER,
    algorithm_family: Code = codes.cid7162.ArtificialIntelligence,
    volumetric_groups: bool = False,
) -> ResultObjects:
    """The SR (and SEG, if the analysis has masks) of ``analysis`` on ``volume``.

    ``sources`` are the headers of the analysed slices (pixel data may be absent) in the
    order of ``volume.instances``: the SEG's frames and the SR's image references follow
    them, and both objects take patient and study from them. All UIDs derive from
    ``uid_seed``: the same analysis run again gives the same objects (Orthanc keeps one
    copy). ``algorithm_family`` is CID 7162 (e.g. ``codes.cid7162.HistogramAnalysis`` for
    a classical analyzer). ``volumetric_groups``: see the module's docstring.
    """
    if [str(ds.SOPInstanceUID) for ds in sources] != list(volume.instances):
        raise ValueError("sources must be the volume's slices, in the volume's order")
    for segmentation in analysis.segmentations:
        if segmentation.mask.shape != volume.voxels.shape:
            raise ValueError(
                f"mask {segmentation.label!r} has shape {segmentation.mask.shape}, "
                f"the volume {volume.voxels.shape}"
            )
    seg = (
        _segmentation(sources, analysis, uid_seed, seg_series_number, algorithm_family)
        if analysis.segmentations
        else None
    )
    sr = _measurement_report(
        volume, sources, analysis, uid_seed, sr_series_number, seg, volumetric_groups
    )
    return ResultObjects(sr=sr, seg=seg)


def series_description(analysis: Analysis, what: str = "") -> str:
    """The series' description, e.g. "AI lung (hounsfield 1.0)": at most 64 characters (LO),
    the analyzer's name cut to fit."""
    tail = f"{' ' + what if what else ''} ({MANUFACTURER.lower()} {analysis.version})"
    return f"AI {analysis.analyzer[: max(64 - 3 - len(tail), 1)]}{tail}"[:64]


def derived_uid(uid_seed: str, *parts: str) -> str:
    """A UID from the seed and a path of names. pydicom hashes the plain concatenation of
    ``entropy_srcs``, so the parts are joined with NUL to keep ("a", "bc") from ("ab", "c")."""
    return str(generate_uid(entropy_srcs=["\0".join((uid_seed, *parts))]))


def local_code(text: str) -> CodedConcept:
    """A concept of our own scheme: the value is the text in lower case, runs of other
    characters than letters and digits as "-", the meaning the text (64 characters at
    most). A value over 16 characters (SH) becomes its first 9 and a hash: highdicom
    would write it as LongCodeValue, and its own reader then fails on the group
    (``ReferencedSegment.from_sequence`` reads ``CodeValue`` of every item)."""
    value = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unnamed"
    if len(value) > 16:
        value = f"{value[:9].rstrip('-')}-{hashlib.sha1(value.encode()).hexdigest()[:6]}"
    return CodedConcept(value, LOCAL_SCHEME, text[:64] or value)


def category_code(category: str) -> CodedConcept:
    """SNOMED CT where ``CATEGORY_CODES`` has the category, else a local code."""
    known = CATEGORY_CODES.get(category.lower())
    if known:
        return CodedConcept(*known)
    return local_code(category.replace("-", " ").replace("_", " ").capitalize())


def unit_code(unit: str) -> CodedConcept:
    return CodedConcept(unit, "UCUM", UNIT_MEANINGS.get(unit, unit))


def severity_code(finding: Finding) -> CodedConcept:
    """normal, minor, moderate or critical in the local scheme (see the module's docstring)."""
    return CodedConcept(finding.severity.value, LOCAL_SCHEME, finding.severity.value.capitalize())


# --- SEG ------------------------------------------------------------------------------


def _segmentation(
    sources: Sequence[Dataset],
    analysis: Analysis,
    uid_seed: str,
    series_number: int,
    family: Code,
) -> Dataset:
    """A BINARY SEG, one segment per mask, every frame kept (``omit_empty_frames=False``)."""
    algorithm = hd.AlgorithmIdentificationSequence(
        name=analysis.analyzer[:64],
        family=family,
        version=analysis.version[:64],
        source=MANUFACTURER,
    )
    descriptions = [
        _segment_description(number, segmentation, algorithm, uid_seed)
        for number, segmentation in enumerate(analysis.segmentations, start=1)
    ]
    return hd.seg.Segmentation(
        source_images=list(sources),
        pixel_array=_pixel_array([s.mask for s in analysis.segmentations]),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=derived_uid(uid_seed, "seg", "series"),
        series_number=series_number,
        sop_instance_uid=derived_uid(uid_seed, "seg", "instance"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=analysis.analyzer[:64],
        software_versions=analysis.version[:64],
        device_serial_number=analysis.analyzer[:64],
        omit_empty_frames=False,
        content_label=_content_label(analysis.analyzer),
        content_description=series_description(analysis, "masks"),
        series_description=series_description(analysis, "masks"),
    )


def _pixel_array(masks: Sequence[np.ndarray]) -> np.ndarray:
    """The masks as highdicom takes them fastest: a label map (slices, rows, columns) of
    segment numbers when no two overlap, else a bool stack (..., segments).

    For 512x512x300 and two masks, highdicom took 0.5 s and peaked at 0.46 GB from a
    label map, but 2.5 s and 1.1 GB from the stack, whose overlap test sums it into int64
    (``workers`` changes nothing for a native transfer syntax). One mask: 0.4 s."""
    if len(masks) < 256:
        labels = np.zeros(masks[0].shape, np.uint8)
        for number, mask in enumerate(masks, start=1):
            if np.logical_and(mask, labels).any():
                break
            labels[mask.astype(bool, copy=False)] = number
        else:
            return labels
    return np.stack([mask.astype(bool, copy=False) for mask in masks], axis=-1)


def _segment_description(
    number: int,
    segmentation: Segmentation,
    algorithm: hd.AlgorithmIdentificationSequence,
    uid_seed: str,
) -> hd.seg.SegmentDescription:
    """Category "Morphologically Abnormal Structure" for a finding, else "Anatomical
    Structure"; the type is the mask's SNOMED CT structure."""
    if segmentation.abnormal:
        category = codes.SCT.MorphologicallyAbnormalStructure
        colours = ABNORMAL_COLOURS
    else:
        category = codes.SCT.AnatomicalStructure
        colours = ANATOMY_COLOURS
    value, meaning = segmentation.structure
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=segmentation.label[:64],
        segmented_property_category=category,
        segmented_property_type=CodedConcept(value, "SCT", meaning),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm,
        tracking_uid=derived_uid(uid_seed, "segment", segmentation.label),
        tracking_id=segmentation.label[:64],
        display_color=hd.color.CIELabColor.from_rgb(*colours[(number - 1) % len(colours)]),
    )


def _content_label(analyzer: str) -> str:
    """Content Label is a CS: upper case letters, digits, space and "_", 16 at most."""
    return re.sub(r"[^A-Z0-9_ ]", "_", f"AI_{analyzer}".upper())[:16]


# --- SR -------------------------------------------------------------------------------

Group = (
    hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations
    | hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations
    | hd.sr.MeasurementsAndQualitativeEvaluations
)


def _measurement_report(
    volume: Volume,
    sources: Sequence[Dataset],
    analysis: Analysis,
    uid_seed: str,
    series_number: int,
    seg: Dataset | None,
    volumetric_groups: bool,
) -> Dataset | None:
    """TID 1500 in a Comprehensive SR; None when there is nothing to say."""
    by_uid = {str(ds.SOPInstanceUID): ds for ds in sources}
    algorithm = hd.sr.AlgorithmIdentification(
        name=analysis.analyzer[:64], version=analysis.version[:64]
    )
    located = [f for f in analysis.findings if _has_location(f)]
    unlocated = [f for f in analysis.findings if not _has_location(f)]
    groups: list[Group] = [
        _planar_group(volume, by_uid, finding, algorithm, uid_seed) for finding in located
    ]
    evaluations: list[hd.sr.ContentItem] = []
    if volumetric_groups:
        groups += [_finding_group(finding, algorithm, uid_seed) for finding in unlocated]
        groups += _measurement_groups(analysis, algorithm, uid_seed, seg)
    else:
        evaluations += [_finding_text(finding, uid_seed) for finding in unlocated]
        evaluations += [_measurement_text(measurement) for measurement in analysis.measurements]
    if not groups and not evaluations:
        return None

    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=derived_uid("hounsfield-analyzer", analysis.analyzer),
            name=analysis.analyzer[:64],
            manufacturer_name=MANUFACTURER,
            model_name=f"{analysis.analyzer} {analysis.version}"[:64],
        ),
    )
    modality = volume.tags.get("Modality") or str(sources[0].get("Modality", ""))
    procedure = codes.LN.CTUnspecifiedBodyRegion if modality == "CT" else codes.SCT.ImagingProcedure
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=procedure,
        # highdicom wants at least one group; TID 1500 wants "Imaging Measurements" or
        # "Qualitative Evaluations" (or both): a placeholder's container comes out again.
        imaging_measurements=groups or [_placeholder_group()],
        referenced_images=_library(groups, sources),
    )
    root = report[0]
    if not groups:
        imaging = codes.DCM.ImagingMeasurements.value
        root.ContentSequence = hd.sr.ContentSequence(
            [i for i in root.ContentSequence if i.ConceptNameCodeSequence[0].CodeValue != imaging]
        )
    if evaluations:
        container = hd.sr.ContainerContentItem(
            name=QUALITATIVE_EVALUATIONS,
            relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
        )
        container.ContentSequence = hd.sr.ContentSequence(evaluations)
        root.ContentSequence.append(container)

    volumetric = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations
    references_seg = seg is not None and any(isinstance(g, volumetric) for g in groups)
    return hd.sr.ComprehensiveSR(
        # The SEG is evidence only where a TID 1411 group references it (highdicom
        # refuses references to instances that are not evidence).
        evidence=[*sources, seg] if references_seg and seg is not None else list(sources),
        content=report,
        series_instance_uid=derived_uid(uid_seed, "sr", "series"),
        series_number=series_number,
        sop_instance_uid=derived_uid(uid_seed, "sr", "instance"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
        is_final=False,  # PreliminaryFlag PRELIMINARY: no person has checked it yet
        is_verified=False,
        series_description=series_description(analysis),
        coding_schemes=[
            CodingSchemeIdentificationItem(
                designator=LOCAL_SCHEME,
                name="Hounsfield local codes",
                responsible_organization=MANUFACTURER,
            )
        ],
    )


def _library(groups: Sequence[Group], sources: Sequence[Dataset]) -> list[Dataset]:
    """The Image Library (TID 1600): the slices the report outlines on, or the series'
    first slice when it outlines none (TID 1500 requires the library). All 300 slices of a
    series made the SR 1.2 MB and took 9 s to describe and 10 s more to copy; the whole
    series is listed anyway in the Current Requested Procedure Evidence Sequence."""
    outlined = {
        str(item.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
        for group in groups
        for item in group[0].ContentSequence
        if item.ValueType == "SCOORD"
    }
    return [ds for ds in sources if str(ds.SOPInstanceUID) in outlined] or [sources[0]]


def _has_location(finding: Finding) -> bool:
    return finding.centroid is not None or finding.extent is not None


def _tracking(uid_seed: str, kind: str, key: str) -> hd.sr.TrackingIdentifier:
    return hd.sr.TrackingIdentifier(uid=derived_uid(uid_seed, kind, key), identifier=key[:64])


def _finding_measurements(finding: Finding) -> list[hd.sr.Measurement]:
    """Size (SCT "Length", mm), volume (SCT "Volume", ml) and the confidence as
    (111012, DCM, "Certainty of Finding") in percent."""
    measurements = []
    if finding.size_mm is not None:
        measurements.append(
            hd.sr.Measurement(
                name=codes.SCT.Length, value=float(finding.size_mm), unit=codes.UCUM.Millimeter
            )
        )
    if finding.volume_ml is not None:
        measurements.append(
            hd.sr.Measurement(
                name=codes.SCT.Volume, value=float(finding.volume_ml), unit=MILLILITER
            )
        )
    measurements.append(
        hd.sr.Measurement(
            name=CERTAINTY, value=round(100.0 * finding.confidence, 3), unit=codes.UCUM.Percent
        )
    )
    return measurements


def _severity(finding: Finding) -> hd.sr.QualitativeEvaluation:
    return hd.sr.QualitativeEvaluation(name=SEVERITY, value=severity_code(finding))


def _add_comment(group: Group, text: str) -> Group:
    """The description as a TEXT (121106, DCM, "Comment") at the end of the group."""
    group[0].ContentSequence.append(
        hd.sr.TextContentItem(
            name=COMMENT, value=text, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
        )
    )
    return group


def _planar_group(
    volume: Volume,
    sources: dict[str, Dataset],
    finding: Finding,
    algorithm: hd.sr.AlgorithmIdentification,
    uid_seed: str,
) -> Group:
    """TID 1410 for a finding with a location: what OHIF outlines on the slice."""
    group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=_tracking(uid_seed, "finding", finding.key),
        referenced_region=_region(volume, sources, finding),
        finding_type=category_code(finding.category),
        algorithm_id=algorithm,
        measurements=_finding_measurements(finding),
        qualitative_evaluations=[_severity(finding)],
    )
    return _add_comment(group, finding.description)


def _region(volume: Volume, sources: dict[str, Dataset], finding: Finding) -> hd.sr.ImageRegion:
    """A closed POLYLINE around the extent's rows and columns, on the slice of the
    centroid (of the extent's middle slice without one); a POINT without an extent."""
    if finding.centroid is not None:
        at = finding.centroid
    else:
        assert finding.extent is not None
        first, last = finding.extent
        at = ((first[0] + last[0]) / 2, (first[1] + last[1]) / 2, (first[2] + last[2]) / 2)
    sop_instance = volume.instance_at(at)
    source = hd.sr.SourceImageForRegion(
        referenced_sop_class_uid=str(sources[sop_instance].SOPClassUID),
        referenced_sop_instance_uid=sop_instance,
    )
    if finding.extent is None:
        _, row, column = at
        return hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.POINT,
            graphic_data=np.array([[column + 0.5, row + 0.5]]),
            source_image=source,
        )
    (_, r0, c0), (_, r1, c1) = finding.extent
    top, bottom = min(r0, r1), max(r0, r1) + 1.0
    left, right = min(c0, c1), max(c0, c1) + 1.0
    corners = [(left, top), (right, top), (right, bottom), (left, bottom), (left, top)]
    return hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        graphic_data=np.array(corners, dtype=float),
        source_image=source,
    )


def _finding_group(
    finding: Finding, algorithm: hd.sr.AlgorithmIdentification, uid_seed: str
) -> Group:
    """TID 1501 for a finding without a location (``volumetric_groups`` only)."""
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=_tracking(uid_seed, "finding", finding.key),
        finding_type=category_code(finding.category),
        algorithm_id=algorithm,
        measurements=_finding_measurements(finding),
        qualitative_evaluations=[_severity(finding)],
    )
    return _add_comment(group, finding.description)


def _measurement_groups(
    analysis: Analysis,
    algorithm: hd.sr.AlgorithmIdentification,
    uid_seed: str,
    seg: Dataset | None,
) -> list[Group]:
    """Whole-volume measurements, one group per segment they were measured on: TID 1411
    with a Referenced Segment (built directly: ``ReferencedSegment.from_segmentation``
    raised AttributeError on a one-segment SEG), TID 1501 for those on no segment."""
    numbers = {s.label: n for n, s in enumerate(analysis.segmentations, start=1)}
    by_segment: dict[str | None, list[Measurement]] = {}
    for measurement in analysis.measurements:
        segment = measurement.segment if measurement.segment in numbers else None
        by_segment.setdefault(segment, []).append(measurement)
    groups: list[Group] = []
    for segment, measurements in by_segment.items():
        values = [_numeric(m) for m in measurements]
        if segment is None or seg is None:
            groups.append(
                hd.sr.MeasurementsAndQualitativeEvaluations(
                    tracking_identifier=_tracking(uid_seed, "measurements", "whole-volume"),
                    algorithm_id=algorithm,
                    measurements=values,
                )
            )
            continue
        reference = hd.sr.ReferencedSegment(
            sop_class_uid=str(seg.SOPClassUID),
            sop_instance_uid=str(seg.SOPInstanceUID),
            segment_number=numbers[segment],
            source_series=hd.sr.SourceSeriesForSegmentation(
                str(seg.ReferencedSeriesSequence[0].SeriesInstanceUID)
            ),
        )
        groups.append(
            hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=_tracking(uid_seed, "measurements", f"{segment}-measurements"),
                referenced_segment=reference,
                algorithm_id=algorithm,
                measurements=values,
            )
        )
    return groups


def _numeric(measurement: Measurement) -> hd.sr.Measurement:
    return hd.sr.Measurement(
        name=local_code(measurement.name),
        value=float(measurement.value),
        unit=unit_code(measurement.unit),
    )


def _properties(items: Iterable[hd.sr.ContentItem]) -> hd.sr.ContentSequence:
    return hd.sr.ContentSequence(list(items))


def _finding_text(finding: Finding, uid_seed: str) -> hd.sr.TextContentItem:
    """A finding without location for "Qualitative Evaluations": TEXT (the finding's
    category) = description, with its severity, certainty and tracking as properties."""
    has_properties = hd.sr.RelationshipTypeValues.HAS_PROPERTIES
    text = hd.sr.TextContentItem(
        name=category_code(finding.category),
        value=finding.description,
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    )
    text.ContentSequence = _properties(
        [
            hd.sr.CodeContentItem(
                name=SEVERITY, value=severity_code(finding), relationship_type=has_properties
            ),
            hd.sr.NumContentItem(
                name=CERTAINTY,
                value=round(100.0 * finding.confidence, 3),
                unit=codes.UCUM.Percent,
                relationship_type=has_properties,
            ),
            hd.sr.TextContentItem(
                name=codes.DCM.TrackingIdentifier,
                value=finding.key[:64],
                relationship_type=has_properties,
            ),
            hd.sr.UIDRefContentItem(
                name=codes.DCM.TrackingUniqueIdentifier,
                value=derived_uid(uid_seed, "finding", finding.key),
                relationship_type=has_properties,
            ),
        ]
    )
    return text


def _measurement_text(measurement: Measurement) -> hd.sr.TextContentItem:
    """A whole-volume measurement for "Qualitative Evaluations": TEXT "5120.4 ml", with
    the coded NUM as its property."""
    name = local_code(measurement.name)
    text = hd.sr.TextContentItem(
        name=name,
        value=f"{measurement.value:g} {measurement.unit}",
        relationship_type=hd.sr.RelationshipTypeValues.CONTAINS,
    )
    number = _numeric(measurement)[0]
    number.RelationshipType = hd.sr.RelationshipTypeValues.HAS_PROPERTIES.value
    text.ContentSequence = _properties([number])
    return text


def _placeholder_group() -> hd.sr.MeasurementsAndQualitativeEvaluations:
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid="1.2.3", identifier="placeholder")
    )

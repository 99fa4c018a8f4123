"""A signed report as DICOM, stored back into its study: Encapsulated PDF and Basic Text SR.

Each in a series of its own (one for the PDFs, one for the SRs of the study; a version is
an instance, numbered as the version). OHIF shows the PDF (its ``dicom-pdf`` extension);
other systems read the text from the SR. The SR follows the spirit of TID 2000 (Basic
Diagnostic Imaging Report): the root "Diagnostic Imaging Report" contains one TEXT item
per section, named with the DCM headings of CID 7001; an amendment names the versions it
replaces (Predecessor Documents) and carries its reason as an "Addendum". Both pass
``dciodvfy`` without errors (tests/integration/test_reading.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from hounsfield.dicom_objects import new_instance
from hounsfield.reading.model import SECTIONS

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
PDF_SERIES_NUMBER, SR_SERIES_NUMBER = 9901, 9902
MANUFACTURER = "Hounsfield"

REPORT_CODE = ("18748-4", "LN", "Diagnostic Imaging Report")
HEADINGS = {  # CID 7001 Diagnostic Imaging Report Headings
    "clinical_information": ("121060", "DCM", "History"),
    "technique": ("121064", "DCM", "Current Procedure Descriptions"),
    "comparison": ("121066", "DCM", "Prior Procedure Descriptions"),
    "findings": ("121070", "DCM", "Findings"),
    "impression": ("121072", "DCM", "Impressions"),
    "recommendations": ("121074", "DCM", "Recommendations"),
}
ADDENDUM = ("121078", "DCM", "Addendum")


@dataclass(frozen=True)
class ReportObjects:
    """Where a signed version goes: its UIDs were chosen when it was signed, so that a
    publication that runs again stores the very same objects (Orthanc keeps one copy)."""

    number: int
    signer: str
    signed_at: str  # ISO 8601
    title: str
    sections: Mapping[str, str]
    pdf_series_uid: str
    pdf_sop_uid: str
    sr_series_uid: str
    sr_sop_uid: str
    amendment_reason: str | None = None
    replaces: tuple[str, ...] = ()  # SOP Instance UIDs of the earlier SRs
    institution: str = ""


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _dicom_time(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _common(ds: Dataset, report: ReportObjects, series_uid: str, series_number: int) -> None:
    signed = _dicom_time(report.signed_at)
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = series_number
    ds.InstanceNumber = report.number
    ds.Manufacturer = MANUFACTURER
    ds.ContentDate = ds.InstanceCreationDate = signed.strftime("%Y%m%d")
    ds.ContentTime = ds.InstanceCreationTime = signed.strftime("%H%M%S")
    ds.SeriesDate, ds.SeriesTime = ds.ContentDate, ds.ContentTime


def encapsulated_pdf(study: Mapping[str, Any], report: ReportObjects, pdf: bytes) -> Dataset:
    """PS3.3 A.45.1: Encapsulated PDF IOD."""
    ds = new_instance(ENCAPSULATED_PDF, report.pdf_sop_uid, study)
    _common(ds, report, report.pdf_series_uid, PDF_SERIES_NUMBER)
    ds.Modality = "DOC"
    ds.SeriesDescription = "Report (PDF)"
    ds.ConversionType = "WSD"  # made on a workstation (SC Equipment module)
    ds.AcquisitionDateTime = _dicom_time(report.signed_at).strftime("%Y%m%d%H%M%S")
    ds.BurnedInAnnotation = "YES"  # the PDF names the patient
    ds.DocumentTitle = report.title[:64]
    ds.ConceptNameCodeSequence = Sequence([_code(*REPORT_CODE)])
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")  # even length
    ds.EncapsulatedDocumentLength = len(pdf)
    return ds


def basic_text_sr(study: Mapping[str, Any], report: ReportObjects) -> Dataset:
    """PS3.3 A.35.1: Basic Text SR IOD, verified by the signer."""
    ds = new_instance(BASIC_TEXT_SR, report.sr_sop_uid, study)
    _common(ds, report, report.sr_series_uid, SR_SERIES_NUMBER)
    ds.Modality = "SR"
    ds.SeriesDescription = "Report"
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "VERIFIED"
    observer = Dataset()
    # The user name as the family name: a PN of one component is the retired form.
    observer.VerifyingObserverName = f"{report.signer.replace('^', ' ')}^"
    observer.VerifyingObserverIdentificationCodeSequence = Sequence()
    observer.VerifyingOrganization = (report.institution or MANUFACTURER)[:64]
    observer.VerificationDateTime = _dicom_time(report.signed_at).strftime("%Y%m%d%H%M%S")
    ds.VerifyingObserverSequence = Sequence([observer])
    ds.PerformedProcedureCodeSequence = Sequence()
    if report.replaces:
        ds.PredecessorDocumentsSequence = Sequence(
            [
                _reference(study["StudyInstanceUID"], report.sr_series_uid, uid)
                for uid in report.replaces
            ]
        )
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence([_code(*REPORT_CODE)])
    ds.ContinuityOfContent = "SEPARATE"
    items = [
        _text(HEADINGS[name], report.sections[name])
        for name in SECTIONS
        if report.sections.get(name, "").strip()
    ]
    if report.amendment_reason:
        items.append(_text(ADDENDUM, report.amendment_reason))
    ds.ContentSequence = Sequence(items)
    return ds


def _text(concept: tuple[str, str, str], text: str) -> Dataset:
    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = "TEXT"
    item.ConceptNameCodeSequence = Sequence([_code(*concept)])
    item.TextValue = text
    return item


def _reference(study_uid: str, series_uid: str, sop_uid: str) -> Dataset:
    sop = Dataset()
    sop.ReferencedSOPClassUID = BASIC_TEXT_SR
    sop.ReferencedSOPInstanceUID = sop_uid
    series = Dataset()
    series.SeriesInstanceUID = series_uid
    series.ReferencedSOPSequence = Sequence([sop])
    item = Dataset()
    item.StudyInstanceUID = study_uid
    item.ReferencedSeriesSequence = Sequence([series])
    return item

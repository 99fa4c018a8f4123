"""The ``reading.publish`` job: a signed version into its study as Encapsulated PDF and SR.

Queued by the signature itself (same transaction), run by a worker: rendering a PDF takes
a tenth of a second or more (fpdf2 on a long report), no time for an HTTP thread. The
objects' UIDs were chosen at signing, so a job that runs again after a crash stores the
same two objects, not new ones. A study deleted before its report is published is not an
error: the report stays in our tables, listed as orphaned.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hounsfield.api import JobContext, get_if_found
from hounsfield.dicom_objects import STUDY_ATTRIBUTES, encode
from hounsfield.reading import dicom, pdf
from hounsfield.reading.settings import ReadingSettings
from hounsfield.reading.templates import shelf
from hounsfield.reading.worklist import imaged_modalities


def study_tags(job: JobContext, study_id: str) -> dict[str, Any] | None:
    """The study's patient and study attributes, as Orthanc indexed them (None: deleted)."""
    study = get_if_found(job.orthanc, f"/studies/{study_id}")
    if study is None:
        return None
    tags = {**study.get("PatientMainDicomTags", {}), **study.get("MainDicomTags", {})}
    return {name: tags.get(name, "") for name in STUDY_ATTRIBUTES}


def publish(job: JobContext, settings: ReadingSettings) -> dict[str, Any]:
    params = job.params
    study = study_tags(job, params["study"])
    if study is None:
        return {"published": False, "reason": "the study was deleted; the report is kept"}
    series = job.orthanc.get_json(f"/studies/{params['study']}/series")
    imaged = imaged_modalities(series)
    templates = shelf(Path(settings.templates) if settings.templates else None)
    title = templates.title(params["template"], params["language"])
    first = (
        pdf.Signature(params["firstSigner"], params["firstSigned"])
        if params["firstSigner"]
        else None
    )
    document = pdf.render(
        pdf.PrintedReport(
            language=params["language"],
            template_title=title,
            patient={
                "name": str(study["PatientName"]).replace("^", " ").strip(),
                "id": study["PatientID"],
                "birth_date": study["PatientBirthDate"],
                "sex": study["PatientSex"],
            },
            study={
                "date": study["StudyDate"],
                "accession": study["AccessionNumber"],
                "description": study["StudyDescription"],
                "modalities": ", ".join(imaged),
            },
            sections=params["sections"],
            number=params["number"],
            signature=pdf.Signature(params["signer"], params["signed"]),
            digest=params["sha256"],
            first_signature=first,
            amendment_reason=params["reason"],
            institution=settings.institution,
            logo=Path(settings.logo) if settings.logo else None,
        )
    )
    job.progress(50, "PDF rendered")
    objects = dicom.ReportObjects(
        number=params["number"],
        signer=params["signer"],
        signed_at=params["signed"],
        title=pdf.catalogue(pdf.CATALOGUE).text(params["language"], "report.document_title"),
        sections=params["sections"],
        pdf_series_uid=params["pdfSeriesUid"],
        pdf_sop_uid=params["pdfSopUid"],
        sr_series_uid=params["srSeriesUid"],
        sr_sop_uid=params["srSopUid"],
        amendment_reason=params["reason"],
        replaces=tuple(params["replaces"]),
        institution=settings.institution,
    )
    stored = [
        job.orthanc.store(encode(dicom.encapsulated_pdf(study, objects, document))),
        job.orthanc.store(encode(dicom.basic_text_sr(study, objects))),
    ]
    if _holds_only(job, params["study"], {answer["ParentSeries"] for answer in stored}):
        # Deleted while the PDF was rendered: storing created the study again, holding only
        # the report; the plugin deletes it again when it sees it (``sync.study_arrived``).
        return {"published": False, "reason": "the study was deleted; the report is kept"}
    return {"published": True, "pdf": stored[0]["ID"], "sr": stored[1]["ID"]}


def _holds_only(job: JobContext, study_id: str, series_ids: set[str]) -> bool:
    series = get_if_found(job.orthanc, f"/studies/{study_id}/series") or []
    return all(item["ID"] in series_ids for item in series)

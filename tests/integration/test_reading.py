"""The radiologist's day over HTTP, against a real Orthanc with the reading extension.

Stored with storescu -> the worklist row appears -> claimed (a second radiologist gets 409)
-> draft -> a stale save gets 409 -> signed -> the PDF's text (read back with pypdf) holds
the report -> Encapsulated PDF and SR are in the study and pass dciodvfy -> amended ->
history has both -> the referrer reads the signed report and nothing else.
"""

from __future__ import annotations

import dataclasses
import io
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from pypdf import PdfReader

from hounsfield.app import migrations
from hounsfield.db import SqliteDatabase, apply_migrations
from hounsfield.jobs.context import JobContext
from hounsfield.jobs.queue import DatabaseJobQueue
from hounsfield.orthanc_http import OrthancHttpClient
from hounsfield.reading.desk import PUBLISH
from hounsfield.reading.publish import publish
from hounsfield.reading.settings import ReadingSettings
from tests.support.reading import (
    BASIC_TEXT_SR,
    ENCAPSULATED_PDF,
    REPORT,
    Department,
    reading_server,
    stored_study,
)
from tests.support.server import OrthancServer, wait_for


def pdf_text(document: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(document)).pages)


def instances_of_class(orthanc: OrthancServer, study_id: str, sop_class: str) -> list[str]:
    found = []
    for instance in orthanc.get(f"/studies/{study_id}/instances").json():
        tags = orthanc.get(f"/instances/{instance['ID']}/simplified-tags").json()
        if tags.get("SOPClassUID") == sop_class:
            found.append(instance["ID"])
    return found


def dciodvfy_errors(orthanc: OrthancServer, instance: str, folder: Path) -> list[str]:
    path = folder / f"{instance}.dcm"
    path.write_bytes(orthanc.get(f"/instances/{instance}/file").content)
    checked = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in checked.stderr.splitlines() if line.startswith("Error")]


@pytest.fixture(scope="module")
def department(tmp_path_factory: pytest.TempPathFactory, dicom_file) -> Iterator[Department]:
    orthanc = reading_server(
        tmp_path_factory.mktemp("reading"),
        "hounsfield.reading",
        hounsfield_reading__institution="Radiologie, Hôpital Saint-Éloi",
        hounsfield_reading__report_bytes=4096,
    )
    yield Department(orthanc, dicom_file)
    orthanc.stop()


def test_a_study_read_claimed_written_signed_amended_and_published(
    department: Department, dicom_file, tmp_path: Path
) -> None:
    orthanc = department.orthanc
    path = dicom_file("CT_small.dcm", PatientName="Müller^Zoë", AccessionNumber="ACC-READ-1")
    orthanc.store(path)
    study, uid = stored_study(orthanc, path)
    department.hire("dr-ana", "radiologist")
    department.hire("dr-ben", "radiologist")
    department.hire("tech-cy", "technician")
    department.hire("ref-dee", "referrer", studies=[uid])

    # The row appears, unread, found by a folded wildcard on the name
    wait_for(lambda: department.row(study), 30, "the study's worklist row")
    found = department.call("dr-ana", "GET", "/api/worklist?patientName=*MULLER*zoe").json()
    assert [row["id"] for row in found["studies"]] == [study]
    assert found["studies"][0]["status"] == "unread"
    assert found["studies"][0]["modalities"] == ["CT"]

    # One radiologist at a time
    claimed = department.call("dr-ana", "POST", f"/api/studies/{study}/claim")
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["status"] == "in_progress"
    second = department.call("dr-ben", "POST", f"/api/studies/{study}/claim")
    assert second.status_code == 409
    assert second.json()["holder"] == "dr-ana"
    assert department.call("tech-cy", "POST", f"/api/studies/{study}/claim").status_code == 403

    # A new report starts from the suggested template, filled from the tags (kV of CT_small)
    proposal = department.call("dr-ana", "GET", f"/api/studies/{study}/report").json()
    assert proposal["version"] == 0 and proposal["status"] is None
    assert proposal["template"] == "generic"
    assert "120 kV" in proposal["sections"]["technique"]

    body = {
        "template": "ct-chest",
        "language": "en",
        "sections": {
            "clinical_information": "Cough for three weeks.",
            "findings": "A 6 mm nodule in the right upper lobe. <script>alert(1)</script>",
            "impression": "Small pulmonary nodule.",
        },
        "version": 0,
    }
    saved = department.call("dr-ana", "PUT", f"/api/studies/{study}/report", json=body)
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == 1 and saved.json()["status"] == "draft"
    stale = department.call("dr-ana", "PUT", f"/api/studies/{study}/report", json=body)
    assert stale.status_code == 409 and stale.json()["version"] == 1
    not_holder = department.call(
        "dr-ben", "PUT", f"/api/studies/{study}/report", json={**body, "version": 1}
    )
    assert not_holder.status_code == 409 and not_holder.json()["holder"] == "dr-ana"
    assert department.call("ref-dee", "GET", f"/api/studies/{study}/report").status_code == 404
    assert department.row(study)["status"] == "draft"

    # Signed by the holder only, at the current version
    refused = department.call(
        "dr-ben", "POST", f"/api/studies/{study}/report/sign", json={"version": 1}
    )
    assert refused.status_code == 409
    signed = department.call(
        "dr-ana", "POST", f"/api/studies/{study}/report/sign", json={"version": 1}
    )
    assert signed.status_code == 200, signed.text
    assert signed.json()["status"] == "final" and signed.json()["signer"] == "dr-ana"
    row = department.row(study)
    assert row["status"] == "final" and row["assignedTo"] is None and row["signed"]
    locked = department.call(
        "dr-ana", "PUT", f"/api/studies/{study}/report", json={**body, "version": 2}
    )
    assert locked.status_code == 409 and "amend" in locked.json()["error"]

    pdf = wait_for(
        lambda: (
            (r := department.call("dr-ana", "GET", f"/api/studies/{study}/report/pdf")).ok and r
        ),
        60,
        "the signed report's PDF",
    )
    assert pdf.headers["Content-Type"] == "application/pdf"
    text = pdf_text(pdf.content)
    assert "A 6 mm nodule in the right upper lobe. <script>alert(1)</script>" in text
    assert "Müller Zoë" in text and "Radiologie, Hôpital Saint-Éloi" in text
    assert "Signed by dr-ana" in text and "Page 1 of 1" in text

    # Back in the PACS: one Encapsulated PDF and one SR, valid, each in a series of its own
    wait_for(lambda: instances_of_class(orthanc, study, BASIC_TEXT_SR), 30, "the report SR")
    (pdf_instance,) = instances_of_class(orthanc, study, ENCAPSULATED_PDF)
    (sr_instance,) = instances_of_class(orthanc, study, BASIC_TEXT_SR)
    for instance in (pdf_instance, sr_instance):
        assert dciodvfy_errors(orthanc, instance, tmp_path) == []
    series = {
        orthanc.get(f"/instances/{i}").json()["ParentSeries"] for i in (pdf_instance, sr_instance)
    }
    assert len(series) == 2
    sr = pydicom.dcmread(io.BytesIO(orthanc.get(f"/instances/{sr_instance}/file").content))
    assert [item.TextValue for item in sr.ContentSequence][-1] == "Small pulmonary nodule."
    assert sr.VerificationFlag == "VERIFIED"

    # Amended with a reason: a second version, the first still readable
    amendment = {
        **body,
        "sections": {**body["sections"], "impression": "Small nodule; CT in 12 months."},
        "version": 2,
        "reason": "Follow-up advice added",
    }
    amended = department.call(
        "dr-ben", "POST", f"/api/studies/{study}/report/amend", json=amendment
    )
    assert amended.status_code == 200, amended.text
    assert amended.json()["number"] == 2 and amended.json()["status"] == "amended"
    history = department.call("dr-ana", "GET", f"/api/studies/{study}/report/history").json()
    assert [(v["number"], v["status"], v["signer"]) for v in history["versions"]] == [
        (1, "final", "dr-ana"),
        (2, "amended", "dr-ben"),
    ]
    assert history["versions"][0]["sections"]["impression"] == "Small pulmonary nodule."
    second_pdf = wait_for(
        lambda: (
            (r := department.call("dr-ana", "GET", f"/api/studies/{study}/report/pdf?version=2")).ok
            and r
        ),
        60,
        "the amendment's PDF",
    )
    amended_text = pdf_text(second_pdf.content)
    assert "AMENDED REPORT (version 2)" in amended_text
    assert "Follow-up advice added" in amended_text and "First signed by dr-ana" in amended_text
    wait_for(lambda: len(instances_of_class(orthanc, study, BASIC_TEXT_SR)) == 2, 30, "2nd SR")
    newest = max(
        instances_of_class(orthanc, study, BASIC_TEXT_SR),
        key=lambda i: orthanc.get(f"/instances/{i}/simplified-tags").json()["InstanceNumber"],
    )
    newest_sr = pydicom.dcmread(io.BytesIO(orthanc.get(f"/instances/{newest}/file").content))
    replaced = newest_sr.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0]
    assert replaced.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == sr.SOPInstanceUID
    assert dciodvfy_errors(orthanc, newest, tmp_path) == []

    # The referrer reads the signed report of the linked study, and nothing else
    referrer = department.call("ref-dee", "GET", f"/api/studies/{study}/report").json()
    assert referrer["sections"]["impression"] == "Small nodule; CT in 12 months."
    assert department.call("ref-dee", "GET", f"/api/studies/{study}/report/pdf").ok
    assert department.call("ref-dee", "GET", "/api/worklist").status_code == 403
    assert (
        department.call("ref-dee", "PUT", f"/api/studies/{study}/report", json=body).status_code
        == 403
    )


def claimed_study(department: Department, radiologist: str, **attributes: str) -> str:
    """A new study stored, in the worklist, claimed by ``radiologist``."""
    path = department.dicom_file("CT_small.dcm", **attributes)
    department.orthanc.store(path)
    study, _ = stored_study(department.orthanc, path)
    wait_for(lambda: department.row(study), 30, "the study's worklist row")
    if radiologist not in department.people:
        department.hire(radiologist, "radiologist")
    answer = department.call(radiologist, "POST", f"/api/studies/{study}/claim")
    assert answer.status_code == 200, answer.text
    return study


@pytest.fixture(scope="module")
def drafted(department: Department) -> str:
    """A study with a saved draft, held by dr-eve."""
    study = claimed_study(department, "dr-eve")
    saved = department.call("dr-eve", "PUT", f"/api/studies/{study}/report", json=REPORT)
    assert saved.status_code == 200, saved.text
    return study


@pytest.mark.parametrize(
    ("body", "status", "complaint"),
    [
        (b"{not json", 400, "JSON"),
        (b"[" * 1000, 400, "nested deeper"),
        ({**REPORT, "template": "ct-knee"}, 400, "unknown template"),
        ({**REPORT, "language": "it"}, 400, "language"),
        ({**REPORT, "sections": {"history": "x"}}, 400, "sections"),
        ({**REPORT, "version": -1}, 400, "version"),
        ({**REPORT, "version": 7}, 409, "stale"),
        ({**REPORT, "sections": {"findings": "x" * 5000}}, 413, "4096 bytes"),
    ],
)
def test_bad_reports_are_refused_and_the_draft_stays(
    department: Department, drafted: str, body: object, status: int, complaint: str
) -> None:
    study = drafted
    current = department.call("dr-eve", "GET", f"/api/studies/{study}/report").json()
    if isinstance(body, bytes):
        answer = department.call(
            "dr-eve",
            "PUT",
            f"/api/studies/{study}/report",
            data=body,
            headers={"Content-Type": "application/json"},
        )
    else:
        body = {**body, "version": body["version"] or current["version"]}
        answer = department.call("dr-eve", "PUT", f"/api/studies/{study}/report", json=body)
    assert answer.status_code == status, answer.text
    assert complaint.lower() in answer.text.lower()
    after = department.call("dr-eve", "GET", f"/api/studies/{study}/report").json()
    assert after == current


@pytest.mark.parametrize(
    ("path", "complaint"),
    [
        ("/api/worklist?sort=patient_name", "sort"),
        ("/api/worklist?status=read", "status"),
        ("/api/worklist?priority=asap", "priority"),
        ("/api/worklist?from=2026-13", "from"),
        ("/api/worklist?limit=100000", "limit"),
    ],
)
def test_bad_worklist_queries_are_named(department: Department, path: str, complaint: str) -> None:
    answer = department.call("admin", "GET", path)
    assert answer.status_code == 400
    assert complaint in answer.json()["error"]


def test_priority_and_assignment(department: Department) -> None:
    study = claimed_study(department, "dr-fay")
    department.hire("tech-gus", "technician")
    raised = department.call(
        "tech-gus", "PUT", f"/api/studies/{study}/priority", json={"priority": "stat"}
    )
    assert raised.status_code == 200 and raised.json()["priority"] == "stat"
    assert (
        department.call(
            "tech-gus", "PUT", f"/api/studies/{study}/priority", json={"priority": "asap"}
        ).status_code
        == 400
    )
    first = department.call("admin", "GET", "/api/worklist?limit=1").json()["studies"][0]
    assert first["id"] == study  # the only stat study heads the list
    department.hire("dr-hal", "radiologist")
    refused = department.call(
        "tech-gus", "PUT", f"/api/studies/{study}/assignment", json={"user": "dr-hal"}
    )
    assert refused.status_code == 403
    not_a_reader = department.call(
        "admin", "PUT", f"/api/studies/{study}/assignment", json={"user": "tech-gus"}
    )
    assert not_a_reader.status_code == 400
    given = department.call(
        "admin", "PUT", f"/api/studies/{study}/assignment", json={"user": "dr-hal"}
    )
    assert given.status_code == 200 and given.json()["assignedTo"] == "dr-hal"
    mine = department.call("dr-hal", "GET", "/api/worklist?assigned=me").json()["studies"]
    assert [row["id"] for row in mine] == [study]
    trail = department.call("admin", "GET", "/api/audit?action=reading.assign").json()
    assert any(entry["resource"] == f"/studies/{study}" for entry in trail["entries"])


LABELS = {  # the findings heading of each language, written here, not read from our catalogues
    "en": "Findings",
    "fr": "Résultats",
    "de": "Befund",
    "es": "Hallazgos",
    "ru": "Описание",
}


@pytest.mark.parametrize("language", sorted(LABELS))
def test_the_signed_pdf_speaks_the_reports_language(department: Department, language: str) -> None:
    study = claimed_study(
        department, "dr-ivy", PatientName="Петрова^Мария", SpecificCharacterSet="ISO_IR 192"
    )
    text = {"findings": f"Текст {language}: без патологии.", "impression": "—"}
    body = {"template": "ct-chest", "language": language, "sections": text, "version": 0}
    assert department.call("dr-ivy", "PUT", f"/api/studies/{study}/report", json=body).ok
    assert department.call(
        "dr-ivy", "POST", f"/api/studies/{study}/report/sign", json={"version": 1}
    ).ok
    pdf = wait_for(
        lambda: (
            (r := department.call("dr-ivy", "GET", f"/api/studies/{study}/report/pdf")).ok and r
        ),
        60,
        "the PDF",
    )
    printed = pdf_text(pdf.content)
    assert LABELS[language] in printed
    assert f"Текст {language}: без патологии." in printed and "Петрова Мария" in printed


def test_a_deleted_study_leaves_the_worklist_and_keeps_its_report(department: Department) -> None:
    study = claimed_study(department, "dr-jo")
    assert department.call("dr-jo", "PUT", f"/api/studies/{study}/report", json=REPORT).ok
    assert department.call(
        "dr-jo", "POST", f"/api/studies/{study}/report/sign", json={"version": 1}
    ).ok
    assert department.call("admin", "DELETE", f"/studies/{study}").ok
    wait_for(lambda: department.row(study) is None, 30, "the row to leave the worklist")
    orphans = department.call("admin", "GET", "/api/reports/orphaned").json()["reports"]
    assert study in [report["study"] for report in orphans]
    assert department.call("dr-jo", "GET", "/api/reports/orphaned").status_code == 403
    history = department.call("admin", "GET", f"/api/studies/{study}/report/history").json()
    assert [version["signer"] for version in history["versions"]] == ["dr-jo"]


class DeletingOrthanc(OrthancHttpClient):
    """Orthanc over HTTP, as a worker reaches it, where an admin deletes ``study`` just
    before the ``before``-th object is stored: the windows between a publishing job's first
    look at the study and its stores, which a loaded machine holds open long enough to hit."""

    def __init__(self, base_url: str, token: str, study: str, before: int) -> None:
        super().__init__(base_url, token)
        self.study, self.before, self.stores = study, before, 0

    def store(self, dicom: bytes) -> dict:
        self.stores += 1
        if self.stores == self.before:
            self.delete(f"/studies/{self.study}")
        return super().store(dicom)


@pytest.mark.parametrize("before", [1, 2], ids=["before-the-pdf", "between-pdf-and-sr"])
def test_a_report_published_as_its_study_is_deleted_does_not_bring_the_study_back(
    department: Department, tmp_path: Path, before: int
) -> None:
    orthanc = department.orthanc
    study = claimed_study(department, "dr-kai", AccessionNumber=f"ACC-GONE-{before}")
    assert department.call("dr-kai", "PUT", f"/api/studies/{study}/report", json=REPORT).ok
    assert department.call(
        "dr-kai", "POST", f"/api/studies/{study}/report/sign", json={"version": 1}
    ).ok
    [queued] = [
        job
        for job in orthanc.get("/api/jobs", params={"kind": PUBLISH}).json()["jobs"]
        if job["params"]["study"] == study
    ]
    orthanc.wait_job(queued["id"], timeout=60)  # published once, by the worker
    database = SqliteDatabase(tmp_path / "publish.db")  # only to make a Job: never reported
    apply_migrations(database, migrations([]))
    queue = DatabaseJobQueue(database)
    again = dataclasses.replace(queue.enqueue(PUBLISH, queued["params"]), id=queued["id"])
    token = orthanc.login("admin", orthanc.env["HOUNSFIELD_ADMIN_PASSWORD"])
    client = DeletingOrthanc(orthanc.base_url, token, study, before)

    result = publish(JobContext(queue, again, "test", client), ReadingSettings())
    assert result == {"published": False, "reason": "the study was deleted; the report is kept"}
    wait_for(  # stored again, the study held only the report: the plugin deletes it again
        lambda: orthanc.get(f"/studies/{study}").status_code == 404, 30, "the study to go again"
    )
    wait_for(lambda: department.row(study) is None, 30, "the row to leave the worklist")
    orphans = department.call("admin", "GET", "/api/reports/orphaned").json()["reports"]
    assert study in [report["study"] for report in orphans]


def test_nothing_is_lost_when_orthanc_is_killed_mid_flow(tmp_path: Path, dicom_file) -> None:
    department = Department(reading_server(tmp_path, "hounsfield.reading"), dicom_file)
    try:
        study = claimed_study(department, "dr-kim")
        assert department.call("dr-kim", "PUT", f"/api/studies/{study}/report", json=REPORT).ok
        department.orthanc.stop(signal.SIGKILL)

        department = Department(reading_server(tmp_path, "hounsfield.reading"), dicom_file)
        department.sign_in("dr-kim")
        draft = department.call("dr-kim", "GET", f"/api/studies/{study}/report").json()
        assert (draft["status"], draft["version"]) == ("draft", 1)
        assert department.row(study)["assignedTo"] == "dr-kim"
        signed = department.call(
            "dr-kim", "POST", f"/api/studies/{study}/report/sign", json={"version": 1}
        )
        assert signed.ok, signed.text
        department.orthanc.stop(signal.SIGKILL)  # perhaps before the PDF was stored

        department = Department(reading_server(tmp_path, "hounsfield.reading"), dicom_file)
        department.sign_in("dr-kim")
        wait_for(
            lambda: department.call("dr-kim", "GET", f"/api/studies/{study}/report/pdf").ok,
            60,
            "the PDF of the report signed before the kill",
        )
        assert department.row(study)["status"] == "final"
    finally:
        department.orthanc.stop()


def test_the_worklist_catches_up_with_what_happened_while_it_was_off(
    tmp_path: Path, dicom_file
) -> None:
    kept, removed = dicom_file("CT_small.dcm"), dicom_file("MR_small.dcm")
    department = Department(reading_server(tmp_path, "hounsfield.reading"), dicom_file)
    department.orthanc.store(removed)
    gone, _ = stored_study(department.orthanc, removed)
    wait_for(lambda: department.row(gone), 30, "the first study's row")
    department.orthanc.stop()

    plain = reading_server(tmp_path)  # the same Orthanc without the reading extension
    plain.store(kept)
    added, _ = stored_study(plain, kept)
    assert plain.http.delete(plain.url(f"/studies/{gone}"), timeout=10).ok
    plain.stop()

    department = Department(reading_server(tmp_path, "hounsfield.reading"), dicom_file)
    try:
        wait_for(lambda: department.row(added), 30, "the study stored while the reading was off")
        wait_for(lambda: department.row(gone) is None, 30, "the deleted study to leave")
        assert department.row(added)["modalities"] == ["CT"]
    finally:
        department.orthanc.stop()

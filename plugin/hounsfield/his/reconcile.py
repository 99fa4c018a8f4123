"""A study arrives: find its order, carry the order into the reading worklist, and compare
the patient with what the HIS says.

Matching (IHE Scheduled Workflow's reconciliation): the accession number names the order;
without one, the patient's only order scheduled on the study's day. A matched scheduled
order is completed (it leaves the Modality Worklist); the study's worklist row takes the
order's procedure and priority. A study whose patient ID, name, birth date or sex disagree
with the HIS is recorded as a mismatch for a technician: the proposed correction is
applied only once confirmed (``start_correction``), through Orthanc's modify, which keeps
the original study.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from hounsfield.api import EventContext, OrthancApi, get_if_found
from hounsfield.db import Row
from hounsfield.his.model import Patient
from hounsfield.his.orders import OrderBook, OrderConflict, OrderRecord
from hounsfield.reading.model import Priority as ReadingPriority
from hounsfield.reading.worklist import StudySummary, Worklist

log = logging.getLogger(__name__)


def _name_key(name: str) -> str:
    """Person names compared as people read them: case, spaces and empty trailing
    components ("DOE^JANE^^") aside."""
    return "^".join(part.strip().casefold() for part in name.split("^")).rstrip("^")


def differences(summary: StudySummary, patient: Patient) -> dict[str, dict[str, str]]:
    """What the study says that the HIS says otherwise (only what the HIS knows)."""
    pairs = {
        "PatientID": (summary.patient_id, patient.id, str.strip),
        "PatientName": (summary.patient_name, patient.name, _name_key),
        "PatientBirthDate": (summary.patient_birth_date, patient.birth_date, str.strip),
        "PatientSex": (summary.patient_sex, patient.sex, str.strip),
    }
    found = {}
    for tag, (ours, theirs, key) in pairs.items():
        if theirs and key(ours) != key(theirs):
            found[tag] = {"study": ours, "his": theirs}
    return found


def study_arrived(context: EventContext) -> None:
    """``study.new`` and ``study.stable``: link the study to its order and check its
    patient (each step guarded, so the two events and a retry do it once)."""
    study_id = context.event.resource_id
    summary = StudySummary.read(context.orthanc, study_id)
    if summary is None:
        return
    link(OrderBook(context.database), Worklist(context.database), summary)


def carry_order(worklist: Worklist, summary: StudySummary, record: OrderRecord) -> None:
    """The study's worklist row takes its order's procedure and priority; the row is
    written first when the reading extension's handler of the study has not run yet."""
    procedure = record.order.requested_procedure
    priority = ReadingPriority.parse(record.order.priority.value)
    if not worklist.ordered(summary.study_id, procedure, priority):
        worklist.upsert(summary)
        worklist.ordered(summary.study_id, procedure, priority)


def link(book: OrderBook, worklist: Worklist, summary: StudySummary) -> OrderRecord | None:
    record = book.for_study(summary.study_id) or book.match(
        summary.accession, summary.patient_id, summary.study_date
    )
    if record is not None:
        if record.study_id is None:
            try:
                record = book.complete(record.id, summary.study_id)
            except OrderConflict:
                record = book.get(record.id)  # cancelled meanwhile: linked all the same
        carry_order(worklist, summary, record)
    patient = record.order.patient if record is not None else book.patient(summary.patient_id)
    if patient is not None:
        found = differences(summary, patient)
        if found and book.record_mismatch(
            summary.study_id, patient.id, found, order_id=record.id if record else None
        ):
            log.warning("study %s disagrees with the HIS on %s", summary.study_id, ", ".join(found))
    return record


def modify_request(found: dict[str, Any]) -> dict[str, Any]:
    """Orthanc's modify of the study, run as an Orthanc job: the HIS's values replace the
    study's, with new UIDs, so that the original (kept by Orthanc) and the corrected copy
    are both whole studies."""
    return {
        "Replace": {tag: values["his"] for tag, values in found.items()},
        "KeepSource": True,
        "Asynchronous": True,
    }


def start_correction(orthanc: OrthancApi, book: OrderBook, mismatch: Row, user: str) -> Row:
    """Confirmed: hand the modify to Orthanc's own job engine (it stores the copy on its
    threads, not on the request's) and remember its job; ``finish_corrections`` links the
    copy once the job is done."""
    job = orthanc.post_json(
        f"/studies/{mismatch['study_id']}/modify",
        modify_request(json.loads(mismatch["differences"])),
    )
    return book.start_correction(mismatch["id"], user, job["ID"])


def finish_corrections(orthanc: OrthancApi, book: OrderBook, worklist: Worklist) -> int:
    """Corrections whose Orthanc job ended: the copy replaces the original in the reading
    worklist and takes over its order; a failed one is open again with the reason. The
    job is this instance's (Orthanc's jobs are per instance): another's is left to it."""
    finished = 0
    for mismatch in book.corrections_under_way():
        job = get_if_found(orthanc, f"/jobs/{mismatch['orthanc_job']}")
        if job is None:
            continue
        if job.get("State") == "Failure":
            book.correction_failed(mismatch["id"], str(job.get("ErrorDescription") or "failed"))
            finished += 1
        elif job.get("State") == "Success":
            link_correction(orthanc, book, worklist, mismatch, job["Content"]["ID"])
            finished += 1
    return finished


def link_correction(
    orthanc: OrthancApi, book: OrderBook, worklist: Worklist, mismatch: Row, corrected: str
) -> None:
    summary = StudySummary.read(orthanc, corrected)
    if summary is not None:
        worklist.upsert(summary)
    worklist.replace(mismatch["study_id"], corrected)
    if mismatch["order_id"] is not None:
        book.relink(int(mismatch["order_id"]), corrected)
        if summary is not None:
            carry_order(worklist, summary, book.get(int(mismatch["order_id"])))
    book.corrected(mismatch["id"], corrected)
    log.info("study %s corrected as %s", mismatch["study_id"], corrected)

"""The HIS extension's API: patients from the HIS, orders, mismatches and merges."""

from __future__ import annotations

import functools
import json
import secrets
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from hounsfield.api import (
    ACQUISITION,
    ADMIN,
    STAFF,
    HttpError,
    OrthancError,
    Request,
    Response,
    RouteTable,
)
from hounsfield.db import Row
from hounsfield.his.fhir import FhirClient, HisPatient, HisUnavailable
from hounsfield.his.model import Order, OrderStatus, PlaceOrder, Source
from hounsfield.his.orders import OrderBook, OrderConflict, OrderFilter
from hounsfield.his.reconcile import start_correction
from hounsfield.his.settings import SECTION, FhirSettings, HisSettings
from hounsfield.reading.worklist import Worklist

routes = RouteTable()
MISMATCH_STATUSES = ("open", "correcting", "corrected", "dismissed")


def _settings(request: Request) -> HisSettings:
    return request.services.registry.section(HisSettings, SECTION)


@functools.cache
def fhir_client(settings: FhirSettings) -> FhirClient:
    """One client per configuration in the process: its cache is shared by every request."""
    return FhirClient(settings)


def _fhir(request: Request) -> FhirClient:
    settings = _settings(request).fhir
    if not settings.base_url:
        raise HttpError(503, "no HIS is configured (HounsfieldHIS.Fhir.BaseUrl)")
    return fhir_client(settings)


def _his_error(error: HisUnavailable) -> HttpError:
    """The HIS did not answer in time (504) or answered wrongly (502): the rest of the
    product goes on; only this lookup fails."""
    return HttpError(504 if error.timeout else 502, str(error))


def _date(value: str) -> str:
    """YYYY-MM-DD or YYYYMMDD, as YYYYMMDD."""
    return datetime.strptime(value.replace("-", ""), "%Y%m%d").strftime("%Y%m%d")


@routes.get("/api/patients", roles=STAFF, audit="patient.search")
def search_patients(request: Request) -> dict[str, Any]:
    """FHIR ``Patient`` search at the HIS: by identifier (MRN), name or birth date."""
    identifier = request.query_value("identifier")
    name = request.query_value("name")
    birthdate = request.query_value("birthdate", _date)
    if not (identifier or name or birthdate):
        raise HttpError(400, "search by 'identifier', 'name' or 'birthdate'")
    for value in (identifier, name):
        if value is not None and len(value) > 64:
            raise HttpError(400, "a search term is at most 64 characters")
    try:
        found = _fhir(request).search_patients(
            identifier=identifier,
            name=name,
            birthdate=f"{birthdate[:4]}-{birthdate[4:6]}-{birthdate[6:]}" if birthdate else None,
        )
    except HisUnavailable as error:
        raise _his_error(error) from error
    return {"patients": [patient_json(patient) for patient in found]}


def patient_json(found: HisPatient) -> dict[str, str]:
    patient = found.patient
    return {
        "id": patient.id,
        "name": patient.name,
        "birth_date": patient.birth_date,
        "sex": patient.sex,
        "fhirId": found.fhir_id,
    }


def _imaging_history(request: Request, patient_id: str) -> list[dict[str, Any]]:
    """The patient's studies in Orthanc, with what the worklist knows of their reading."""
    studies = request.services.orthanc.post_json(
        "/tools/find",
        {"Level": "Study", "Query": {"PatientID": patient_id}, "Expand": True, "Limit": 500},
    )
    worklist = Worklist(request.services.db)
    history = []
    for study in studies:
        tags = study.get("MainDicomTags", {})
        entry = {
            "id": study["ID"],
            "studyInstanceUid": tags.get("StudyInstanceUID", ""),
            "date": tags.get("StudyDate", ""),
            "description": tags.get("StudyDescription", ""),
            "accession": tags.get("AccessionNumber", ""),
        }
        try:
            row = worklist.get(study["ID"])
        except LookupError:
            entry.update(status=None, reportStatus=None)
        else:
            entry.update(status=row["status"], reportStatus=row["report_status"])
        history.append(entry)
    return sorted(history, key=lambda entry: entry["date"], reverse=True)


@routes.get("/api/patients/{id}", roles=STAFF, audit="patient.view")
def patient(request: Request) -> dict[str, Any]:
    """The patient (our patient ID, the HIS's MRN): demographics from the HIS, their
    imaging history in the PACS with its reports, and their orders."""
    patient_id = request.path_params["id"]
    if len(patient_id) > 64:
        raise HttpError(400, "a patient ID is at most 64 characters")
    try:
        found = _fhir(request).search_patients(identifier=patient_id)
    except HisUnavailable as error:
        raise _his_error(error) from error
    if not found:
        raise HttpError(404, f"the HIS knows no patient {patient_id}")
    orders = OrderBook(request.services.db).search(OrderFilter(patient_id=patient_id))
    return {
        **patient_json(found[0]),
        "studies": _imaging_history(request, patient_id),
        "orders": [order.to_json() for order in orders],
    }


def _statuses(value: str) -> tuple[OrderStatus, ...]:
    return tuple(OrderStatus(name) for name in value.split(",") if name)


@routes.get("/api/orders", roles=STAFF, audit="patient.search")
def list_orders(request: Request) -> dict[str, Any]:
    """Orders by scheduled day (``date``, or ``from``/``to``), ``status`` (comma-separated),
    ``modality``, ``station``, ``patient`` and ``accession``; by scheduled time."""
    day = request.query_value("date", _date)
    wanted = OrderFilter(
        statuses=request.query_value("status", _statuses, ()),
        date_from=day or request.query_value("from", _date),
        date_to=day or request.query_value("to", _date),
        modality=request.query_value("modality"),
        station_ae=request.query_value("station"),
        patient_id=request.query_value("patient"),
        accession=request.query_value("accession"),
        limit=request.query_value("limit", int, 200),
    )
    if not 1 <= wanted.limit <= 1000:
        raise HttpError(400, "query parameter 'limit' must be between 1 and 1000")
    orders = OrderBook(request.services.db).search(wanted)
    return {"orders": [order.to_json() for order in orders]}


@routes.post("/api/orders", roles=ACQUISITION)
def place_order(request: Request) -> Response:
    """An order entered by hand; it is on the Modality Worklist at once. 409 when its
    accession number is already another order's."""
    order = request.parse(Order)
    book = OrderBook(request.services.db)
    # Each form is a new order: a second one with the same accession number is refused.
    command = PlaceOrder(Source.MANUAL, secrets.token_hex(8), order)
    try:
        record = book.place(command, by=request.user().username)
    except OrderConflict as conflict:
        raise HttpError(409, str(conflict)) from conflict
    request.audit(
        "order.place", "ok", f"/api/orders/{record.id}", {"accession": order.accession_number}
    )
    return Response.json(record.to_json(), status=201)


def _order_id(request: Request) -> int:
    return int(request.path_params["id"])


@routes.get("/api/orders/{id:int}", roles=STAFF, audit="patient.view")
def get_order(request: Request) -> dict[str, Any]:
    try:
        return OrderBook(request.services.db).get(_order_id(request)).to_json()
    except KeyError:
        raise HttpError(404, f"no order {request.path_params['id']}") from None


@routes.post("/api/orders/{id:int}/cancel", roles=ACQUISITION)
def cancel_order(request: Request) -> dict[str, Any]:
    """Off the Modality Worklist; 409 once completed or cancelled."""
    book = OrderBook(request.services.db)
    try:
        record = book.cancel(_order_id(request))
    except KeyError:
        raise HttpError(404, f"no order {request.path_params['id']}") from None
    except OrderConflict as conflict:
        raise HttpError(409, str(conflict)) from conflict
    request.audit("order.cancel", "ok", f"/api/orders/{record.id}", {})
    return record.to_json()


def mismatch_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "study": row["study_id"],
        "order": row["order_id"],
        "patientId": row["patient_id"],
        "differences": json.loads(row["differences"]),
        "status": row["status"],
        "found": row["found_at"],
        "decidedBy": row["decided_by"],
        "decided": row["decided_at"],
        "error": row["error"],
        "correctedStudy": row["corrected_study_id"],
    }


@routes.get("/api/his/mismatches", roles=STAFF, audit="patient.search")
def mismatches(request: Request) -> dict[str, Any]:
    """Studies whose patient disagrees with the HIS (``status``: open, correcting,
    corrected, dismissed)."""
    status = request.query_value("status")
    if status not in (None, *MISMATCH_STATUSES):
        raise HttpError(400, f"query parameter 'status' is one of {', '.join(MISMATCH_STATUSES)}")
    rows = OrderBook(request.services.db).mismatches(status=status)
    return {"mismatches": [mismatch_json(row) for row in rows]}


def _open_mismatch(request: Request) -> Row:
    try:
        row = OrderBook(request.services.db).mismatch(int(request.path_params["id"]))
    except KeyError:
        raise HttpError(404, f"no mismatch {request.path_params['id']}") from None
    if row["status"] != "open":
        raise HttpError(409, f"mismatch {row['id']} is already {row['status']}")
    return row


@routes.post("/api/his/mismatches/{id:int}/correct", roles=ACQUISITION)
def correct_mismatch(request: Request) -> Response:
    """Apply the HIS's values to the study through Orthanc's modify (the original kept):
    202 with the mismatch, ``correcting`` until the copy is linked (``corrected``, with
    ``correctedStudy``) or the modify failed (``open`` again, with ``error``)."""
    row = _open_mismatch(request)
    try:
        request.services.orthanc.get_json(f"/studies/{row['study_id']}")
    except OrthancError as error:
        raise HttpError(409, f"study {row['study_id']} is no longer in the PACS") from error
    book = OrderBook(request.services.db)
    try:
        started = start_correction(request.services.orthanc, book, row, request.user().username)
    except OrderConflict as conflict:
        raise HttpError(409, str(conflict)) from conflict
    request.audit(
        "study.correct",
        "ok",
        f"/studies/{row['study_id']}",
        {"mismatch": row["id"], "differences": json.loads(row["differences"])},
    )
    return Response.json(mismatch_json(started), status=202)


@routes.get("/api/his/mismatches/{id:int}", roles=STAFF, audit="patient.view")
def get_mismatch(request: Request) -> dict[str, Any]:
    try:
        return mismatch_json(
            OrderBook(request.services.db).mismatch(int(request.path_params["id"]))
        )
    except KeyError:
        raise HttpError(404, f"no mismatch {request.path_params['id']}") from None


class Dismissal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = ""


@routes.post("/api/his/mismatches/{id:int}/dismiss", roles=ACQUISITION)
def dismiss_mismatch(request: Request) -> dict[str, Any]:
    """The study is right as it is (the HIS will be corrected instead)."""
    body = request.parse(Dismissal) if request.body.strip() else Dismissal()
    row = _open_mismatch(request)
    try:
        decided = OrderBook(request.services.db).dismiss_mismatch(
            row["id"], request.user().username
        )
    except OrderConflict as conflict:
        raise HttpError(409, str(conflict)) from conflict
    request.audit(
        "study.correct",
        "ok",
        f"/studies/{row['study_id']}",
        {"mismatch": row["id"], "dismissed": True, "reason": body.reason[:500]},
    )
    return mismatch_json(decided)


@routes.get("/api/his/merges", roles=ADMIN, audit="patient.search")
def merges(request: Request) -> dict[str, Any]:
    """Patients the HIS merged (ADT^A40), with the studies still filed under the prior
    identifier: stored DICOM is never rewritten behind the admins' back."""
    book = OrderBook(request.services.db)
    answer = []
    for row in book.merges():
        studies = request.services.orthanc.post_json(
            "/tools/find", {"Level": "Study", "Query": {"PatientID": row["prior_id"]}}
        )
        answer.append(
            {
                "id": row["id"],
                "priorId": row["prior_id"],
                "patientId": row["patient_id"],
                "message": row["message_id"],
                "received": row["received_at"],
                "acknowledgedBy": row["acknowledged_by"],
                "acknowledged": row["acknowledged_at"],
                "studiesUnderPriorId": studies,
            }
        )
    return {"merges": answer}


@routes.post("/api/his/merges/{id:int}/acknowledge", roles=ADMIN)
def acknowledge_merge(request: Request) -> dict[str, Any]:
    merge_id = int(request.path_params["id"])
    if not OrderBook(request.services.db).acknowledge_merge(merge_id, request.user().username):
        raise HttpError(409, f"merge {merge_id} is unknown or already acknowledged")
    request.audit("patient.merge", "ok", f"/api/his/merges/{merge_id}", {})
    return {"id": merge_id, "acknowledged": True}

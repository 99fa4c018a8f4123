"""The order book and reconciliation on arrival, on both backends: an order placed once
per source id, moved only from scheduled, matched by accession (else patient and day),
carried into the reading worklist; mismatches recorded once, merges recorded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from hounsfield.app import migrations
from hounsfield.db import Database
from hounsfield.his.model import (
    CancelOrder,
    MergePatients,
    Order,
    OrderStatus,
    Patient,
    PlaceOrder,
    Priority,
    Source,
    UpdatePatient,
)
from hounsfield.his.orders import MIGRATIONS, OrderBook, OrderConflict, OrderFilter
from hounsfield.his.reconcile import differences, link
from hounsfield.reading.model import Priority as ReadingPriority
from hounsfield.reading.worklist import Worklist, WorklistFilter
from tests.support.databases import BACKENDS, fresh_database
from tests.unit.reading.conftest import summary

JANE = Patient(id="P1", name="DOE^JANE", birth_date="19700102", sex="F")


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with fresh_database(
        request, tmp_path, [*migrations(["hounsfield.reading"]), *MIGRATIONS]
    ) as db:
        yield db


def order(accession: str = "A1", *, patient: Patient = JANE, **fields: object) -> Order:
    values: dict[str, object] = {
        "patient": patient,
        "accession_number": accession,
        "modality": "CT",
        "requested_procedure": "CT chest",
        "scheduled_station_ae": "CT1",
        "scheduled_time": "2026-11-24T09:30:00",
        "priority": "routine",
    }
    values.update(fields)
    return Order.model_validate(values)


def place(book: OrderBook, source_id: str = "O1", **fields: object) -> int:
    accession = str(fields.pop("accession", "A1"))
    return book.place(PlaceOrder(Source.HL7, source_id, order(accession, **fields)), by="t").id


def test_an_order_is_placed_once_per_source_id_and_changed_while_scheduled(
    database: Database,
) -> None:
    book = OrderBook(database)
    first = place(book)
    again = place(book, priority="stat", scheduled_station_ae="CT2")
    assert again == first
    record = book.get(first)
    assert (record.order.priority, record.order.scheduled_station_ae) == (Priority.STAT, "CT2")
    assert record.status is OrderStatus.SCHEDULED
    assert record.study_uid.startswith("1.2.826.0.1.3680043.10.1529.3.")
    book.cancel(first)
    place(book, priority="routine")  # a late resend changes nothing once cancelled
    assert book.get(first).order.priority is Priority.STAT
    assert book.get(first).status is OrderStatus.CANCELLED


def test_an_accession_number_belongs_to_one_order(database: Database) -> None:
    book = OrderBook(database)
    place(book, "O1")
    impostor = JANE.model_copy(update={"name": "SMITH^JOAN", "sex": "O"})
    with pytest.raises(OrderConflict, match="A1"):
        place(book, "O2", patient=impostor)
    assert len(book.search(OrderFilter())) == 1
    assert book.patient("P1") == JANE  # the refused order changed nothing


def test_only_a_scheduled_order_moves(database: Database) -> None:
    book = OrderBook(database)
    order_id = place(book)
    book.complete(order_id, "study-1")
    with pytest.raises(OrderConflict, match="completed"):
        book.cancel(order_id)
    with pytest.raises(OrderConflict):
        book.complete(order_id, "study-2")
    assert book.get(order_id).study_id == "study-1"
    assert book.cancel_from(CancelOrder(Source.HL7, "unknown")) is None


def test_search_by_day_station_and_status(database: Database) -> None:
    book = OrderBook(database)
    place(book, "O1", accession="A1", scheduled_time="2026-11-24T08:00:00")
    place(book, "O2", accession="A2", scheduled_time="2026-11-25T08:00:00")
    place(
        book, "O3", accession="A3", scheduled_time="2026-11-24T07:00:00", scheduled_station_ae="CT2"
    )
    day = book.search(OrderFilter(date_from="20261124", date_to="20261124"))
    assert [r.order.accession_number for r in day] == ["A3", "A1"]  # by time
    assert [r.order.accession_number for r in book.search(OrderFilter(station_ae="CT2"))] == ["A3"]
    book.cancel(day[0].id)
    open_ = book.search(OrderFilter(statuses=(OrderStatus.SCHEDULED,)))
    assert {r.order.accession_number for r in open_} == {"A1", "A2"}


def test_a_time_with_an_offset_is_the_departments_local_time(database: Database) -> None:
    book = OrderBook(database)
    moment = datetime(2026, 11, 24, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    order_id = place(book, scheduled_time=moment.isoformat())
    local = moment.astimezone().replace(tzinfo=None)
    assert book.get(order_id).order.scheduled_time == local


def test_demographics_follow_the_his(database: Database) -> None:
    book = OrderBook(database)
    order_id = place(book)
    book.apply(UpdatePatient(JANE.model_copy(update={"name": "SMITH^JANE"})), by="hl7")
    assert book.get(order_id).order.patient.name == "SMITH^JANE"


def test_a_merge_is_recorded_and_moves_only_scheduled_orders(database: Database) -> None:
    book = OrderBook(database)
    scheduled = place(book, "O1", accession="A1")
    done = place(book, "O2", accession="A2")
    book.complete(done, "study-1")
    survivor = Patient(id="P9", name="DOE^JANE", birth_date="19700102", sex="F")
    book.apply(MergePatients("P1", survivor), by="hl7", message_id="MSG7")
    assert book.get(scheduled).order.patient.id == "P9"
    assert book.get(done).order.patient.id == "P1"  # acquired under P1: left for people
    (merge,) = book.merges(unacknowledged=True)
    assert (merge["prior_id"], merge["patient_id"], merge["message_id"]) == ("P1", "P9", "MSG7")
    assert book.acknowledge_merge(merge["id"], "admin")
    assert not book.acknowledge_merge(merge["id"], "admin")
    assert book.merges(unacknowledged=True) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "DOE JANE"),  # no component separator: not how DICOM writes a name
        ("name", "DOE^JANE\\X"),
        ("birth_date", "1970-02-30"),
        ("sex", "X"),
        ("id", ""),
    ],
)
def test_a_patient_is_in_dicom_forms(field: str, value: str) -> None:
    values = {"id": "P1", "name": "DOE^JANE", "birth_date": "1970-01-02", "sex": "F"}
    values[field] = value
    if field == "name" and value == "DOE JANE":
        assert Patient.model_validate(values).name == "DOE JANE"  # one component is a name
        return
    with pytest.raises(ValidationError):
        Patient.model_validate(values)


def test_the_order_form_is_checked() -> None:
    with pytest.raises(ValidationError):
        order(scheduled_station_ae="A" * 17)
    with pytest.raises(ValidationError):
        order(modality="c-t")
    with pytest.raises(ValidationError):
        order(accession="A" * 17)
    assert order(modality="ct").modality == "CT"


def test_differences_are_what_people_would_call_different() -> None:
    same = summary("s", patient_name="doe^jane^^", patient_birth_date="19700102")
    assert differences(same, JANE) == {}
    other = summary("s", patient_name="DOE^JOHN", patient_sex="M")
    assert differences(other, JANE) == {
        "PatientName": {"study": "DOE^JOHN", "his": "DOE^JANE"},
        "PatientSex": {"study": "M", "his": "F"},
    }
    unknown_sex = JANE.model_copy(update={"sex": ""})
    assert "PatientSex" not in differences(other, unknown_sex)  # the HIS does not know


def test_an_arriving_study_completes_its_order_and_takes_its_priority(
    database: Database,
) -> None:
    book, worklist = OrderBook(database), Worklist(database)
    order_id = place(book, priority="stat", requested_procedure="CT head")
    link(book, worklist, summary("study-1", accession="A1"))
    record = book.get(order_id)
    assert (record.status, record.study_id) == (OrderStatus.COMPLETED, "study-1")
    row = worklist.get("study-1")
    assert (row["priority"], row["requested_procedure"]) == (ReadingPriority.STAT, "CT head")
    assert book.mismatches() == []
    # The same study again (study.stable after study.new): nothing more happens.
    link(book, worklist, summary("study-1", accession="A1", stable=True))
    assert book.get(order_id).study_id == "study-1"


def test_without_accession_the_patients_one_order_that_day(database: Database) -> None:
    book, worklist = OrderBook(database), Worklist(database)
    order_id = place(book, "O1", accession="A1", scheduled_time="2026-11-24T08:00:00")
    link(book, worklist, summary("study-1", accession="", study_date="20261124"))
    assert book.get(order_id).study_id == "study-1"
    place(book, "O2", accession="A2", scheduled_time="2026-11-25T08:00:00")
    place(book, "O3", accession="A3", scheduled_time="2026-11-25T10:00:00")
    assert link(book, worklist, summary("study-2", accession="", study_date="20261125")) is None


def test_a_study_that_disagrees_with_the_his_is_flagged_once(database: Database) -> None:
    book, worklist = OrderBook(database), Worklist(database)
    order_id = place(book)
    wrong = summary("study-1", accession="A1", patient_name="DOE^JOAN", patient_birth_date="")
    link(book, worklist, wrong)
    link(book, worklist, wrong)
    (mismatch,) = book.mismatches(status="open")
    assert mismatch["order_id"] == order_id
    assert json.loads(mismatch["differences"]) == {
        "PatientName": {"study": "DOE^JOAN", "his": "DOE^JANE"},
        "PatientBirthDate": {"study": "", "his": "19700102"},
    }
    book.start_correction(mismatch["id"], "tech", "job-1")
    with pytest.raises(OrderConflict, match="correcting"):
        book.dismiss_mismatch(mismatch["id"], "tech")
    assert book.correction_failed(mismatch["id"], "disk full")["status"] == "open"
    assert book.mismatch(mismatch["id"])["error"] == "disk full"
    book.start_correction(mismatch["id"], "tech", "job-2")
    (under_way,) = book.corrections_under_way()
    assert under_way["orthanc_job"] == "job-2"
    assert book.corrected(mismatch["id"], "study-2")["corrected_study_id"] == "study-2"
    with pytest.raises(OrderConflict, match="corrected"):
        book.start_correction(mismatch["id"], "tech", "job-3")


def test_a_replaced_study_leaves_the_reading_worklist(database: Database) -> None:
    worklist = Worklist(database)
    worklist.upsert(summary("original"))
    worklist.upsert(summary("corrected"))
    assert worklist.replace("original", "corrected")
    worklist.upsert(summary("original", stable=True))  # Orthanc still has it: it stays out
    rows, total = worklist.search(WorklistFilter(), user="r", limit=10, offset=0)
    assert [row["study_id"] for row in rows] == ["corrected"]
    assert total == 1

"""The Modality Worklist: queries as findscu sends them, against orders built directly."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from hounsfield.his.model import Order, OrderStatus, Patient, Priority, Source
from hounsfield.his.orders import OrderFilter, OrderRecord
from hounsfield.his.worklist import (
    MODALITY_WORKLIST_FIND,
    WorklistQuery,
    WorklistQueryError,
    item,
    parse_query,
)

# Matching keys are not valid values of their VR (wildcards, ranges, and here worse):
# pydicom warns as they are set.
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR:UserWarning")

STEP_KEYWORDS = {
    "Modality",
    "ScheduledStationAETitle",
    "ScheduledProcedureStepStartDate",
    "ScheduledProcedureStepStartTime",
    "ScheduledPerformingPhysicianName",
}


def record(
    number: int,
    name: str,
    *,
    modality: str = "CT",
    station: str = "CT1",
    when: datetime = datetime(2026, 3, 10, 9, 30),
    status: OrderStatus = OrderStatus.SCHEDULED,
    priority: Priority = Priority.ROUTINE,
) -> OrderRecord:
    patient = Patient(id=f"P{number}", name=name, birth_date="19800102", sex="F")
    order = Order(
        patient=patient,
        accession_number=f"A{number}",
        modality=modality,
        requested_procedure=f"PROCEDURE {number}",
        scheduled_station_ae=station,
        scheduled_time=when,
        priority=priority,
    )
    return OrderRecord(
        id=number,
        source=Source.MANUAL,
        source_id=str(number),
        order=order,
        status=status,
        study_uid=f"1.2.826.0.1.3680043.10.1529.3.{number}",
        study_id=None,
        created_at="2026-03-01T08:00:00",
        updated_at="2026-03-01T08:00:00",
    )


ORDERS = [
    record(1, "DOE^JANE"),
    record(2, "DOE^JOHN", modality="MR", station="MR1", when=datetime(2026, 3, 10, 14, 0)),
    record(3, "ROE^JANE", when=datetime(2026, 3, 11, 8, 0)),
    record(4, "MÜLLER^JÖRG", station="CT2", when=datetime(2026, 3, 12, 10, 15)),
    record(5, "DUE^JANE", modality="MR", station="MR1", when=datetime(2026, 3, 9, 23, 59, 59)),
    record(6, "DOE^JANE", status=OrderStatus.COMPLETED),  # off the worklist
]


def query(*, character_set: str = "", **keys: object) -> bytes:
    """A C-FIND identifier as findscu builds it, written as a DICOM file with file meta
    information."""
    return encode(identifier(character_set=character_set, **keys))


def identifier(*, character_set: str = "", **keys: object) -> Dataset:
    """Empty return keys and the given matching keys."""
    step = Dataset()
    step.Modality = ""
    step.ScheduledStationAETitle = ""
    step.ScheduledProcedureStepStartDate = ""
    step.ScheduledProcedureStepStartTime = ""
    step.ScheduledPerformingPhysicianName = ""
    step.ScheduledProcedureStepDescription = ""
    step.ScheduledProcedureStepID = ""
    keys_of = Dataset()
    if character_set:
        keys_of.SpecificCharacterSet = character_set
    keys_of.PatientName = ""
    keys_of.PatientID = ""
    keys_of.PatientBirthDate = ""
    keys_of.AccessionNumber = ""
    keys_of.StudyInstanceUID = ""
    keys_of.RequestedProcedureID = ""
    keys_of.RequestedProcedurePriority = ""
    keys_of.ScheduledProcedureStepSequence = [step]
    for keyword, value in keys.items():
        setattr(step if keyword in STEP_KEYWORDS else keys_of, keyword, value)
    return keys_of


def encode(dataset: Dataset, *, meta: bool = True, implicit: bool = False) -> bytes:
    buffer = BytesIO()
    if meta:
        dataset.file_meta = FileMetaDataset()
        dataset.file_meta.MediaStorageSOPClassUID = MODALITY_WORKLIST_FIND
        dataset.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
        dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        dataset.save_as(buffer, enforce_file_format=True)
    else:
        dataset.save_as(buffer, implicit_vr=implicit, little_endian=True)
    return buffer.getvalue()


def passes(wanted: OrderFilter, order: OrderRecord) -> bool:
    """What ``OrderBook.search`` selects, in Python."""
    when = f"{order.order.scheduled_time:%Y%m%d}"
    return (
        (not wanted.statuses or order.status in wanted.statuses)
        and wanted.modality in (None, order.order.modality)
        and wanted.station_ae in (None, order.order.scheduled_station_ae)
        and wanted.patient_id in (None, order.order.patient.id)
        and wanted.accession in (None, order.order.accession_number)
        and (wanted.date_from is None or wanted.date_from <= when)
        and (wanted.date_to is None or when <= wanted.date_to)
    )


def answered(data: bytes) -> list[int]:
    """The orders the query matches, by number; checked against the SQL pre-filter, which
    must never drop one of them."""
    asked = parse_query(data)
    matched = [order for order in ORDERS if asked.matches(order)]
    wanted = asked.to_filter()
    assert all(passes(wanted, order) for order in matched)
    return [order.id for order in matched]


# -- matching ---------------------------------------------------------------------------------


def test_a_universal_query_returns_every_scheduled_order() -> None:
    assert answered(query()) == [1, 2, 3, 4, 5]
    assert parse_query(query()) == WorklistQuery()


def test_modality() -> None:
    assert answered(query(Modality="MR")) == [2, 5]
    assert answered(query(Modality="mr")) == []  # CS values are case-sensitive
    assert answered(query(Modality="M?")) == [2, 5]


def test_station_ae_title() -> None:
    assert answered(query(ScheduledStationAETitle="CT1")) == [1, 3]
    assert answered(query(ScheduledStationAETitle="US1")) == []


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        ("20260310", [1, 2]),
        ("20260310-20260311", [1, 2, 3]),
        ("20260311-", [3, 4]),
        ("-20260310", [1, 2, 5]),
        ("20260312-20260310", []),
    ],
)
def test_scheduled_date(dates: str, expected: list[int]) -> None:
    assert answered(query(ScheduledProcedureStepStartDate=dates)) == expected


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ("093000", [1]),
        ("09", [1]),  # a partial time is its whole hour
        ("0800-1015", [1, 3, 4]),
        ("14-", [2, 5]),
        ("-0800", [3]),
        ("235959-", [5]),
        ("235959.5-", []),  # 23:59:59.5 is after 23:59:59
    ],
)
def test_scheduled_time(times: str, expected: list[int]) -> None:
    assert answered(query(ScheduledProcedureStepStartTime=times)) == expected


def test_patient_id() -> None:
    assert answered(query(PatientID="P3")) == [3]
    assert answered(query(PatientID="p3")) == []
    assert answered(query(PatientID="P*")) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("DOE^JANE", [1]),
        ("DOE*", [1, 2]),
        ("*JANE", [1, 3, 5]),
        ("D?E^JANE", [1, 5]),
        ("doe^jane", [1]),  # PN matching ignores case
        ("Doe^J*", [1, 2]),
        ("DOE^JANE^^", [1]),  # empty trailing components are nothing
        ("*", [1, 2, 3, 4, 5]),
        ("DOE", []),
        ("D.E*", []),  # not a regular expression
    ],
)
def test_patient_name(name: str, expected: list[int]) -> None:
    assert answered(query(PatientName=name)) == expected


@pytest.mark.parametrize("character_set", ["ISO_IR 192", "ISO_IR 100"])
def test_accented_names_match_in_either_character_set(character_set: str) -> None:
    assert answered(query(character_set=character_set, PatientName="müller^jörg")) == [4]
    assert answered(query(character_set=character_set, PatientName="M?LLER*")) == [4]


def test_accession_number_and_requested_procedure_id() -> None:
    assert answered(query(AccessionNumber="A4")) == [4]
    assert answered(query(AccessionNumber="A")) == []
    assert answered(query(AccessionNumber="A?")) == [1, 2, 3, 4, 5]
    assert answered(query(RequestedProcedureID="A2")) == [2]


def test_a_list_of_study_uids() -> None:
    uids = [ORDERS[1].study_uid, ORDERS[3].study_uid, "1.2.3"]
    assert answered(query(StudyInstanceUID=uids)) == [2, 4]
    assert answered(query(StudyInstanceUID=ORDERS[0].study_uid)) == [1]


def test_orders_name_no_performing_physician() -> None:
    assert answered(query(ScheduledPerformingPhysicianName="SMITH^ANN")) == []
    assert answered(query(ScheduledPerformingPhysicianName="*")) == [1, 2, 3, 4, 5]


def test_keys_combine() -> None:
    assert answered(query(PatientName="*JANE", Modality="CT")) == [1, 3]
    both = query(
        PatientName="D*",
        Modality="MR",
        ScheduledStationAETitle="MR1",
        ScheduledProcedureStepStartDate="20260310-",
    )
    assert answered(both) == [2]
    assert answered(query(PatientID="P1", AccessionNumber="A2")) == []


def test_a_time_with_an_offset_is_matched_on_the_local_clock() -> None:
    moment = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    local = moment.astimezone()
    order = replace(ORDERS[0], order=ORDERS[0].order.model_copy(update={"scheduled_time": moment}))
    asked = parse_query(
        query(
            ScheduledProcedureStepStartDate=f"{local:%Y%m%d}",
            ScheduledProcedureStepStartTime=f"{local:%H%M}",
        )
    )
    assert asked.matches(order)


@pytest.mark.parametrize("implicit", [True, False])
def test_a_bare_data_set_is_read_as_well(implicit: bool) -> None:
    bare = encode(identifier(PatientName="DOE*", Modality="MR"), meta=False, implicit=implicit)
    assert parse_query(bare) == parse_query(query(PatientName="DOE*", Modality="MR"))
    assert answered(bare) == [2]
    assert parse_query(bytes(128) + b"DICM" + bare) == parse_query(bare)  # no file meta


# -- the SQL pre-filter -----------------------------------------------------------------------


def test_the_filter_selects_exactly_what_it_can() -> None:
    asked = parse_query(
        query(
            PatientID="P1",
            AccessionNumber="A*",
            PatientName="DOE^JANE",
            Modality="CT",
            ScheduledStationAETitle="CT?",
            ScheduledProcedureStepStartDate="20260310-20260311",
        )
    )
    wanted = asked.to_filter()
    assert wanted.statuses == (OrderStatus.SCHEDULED,)
    assert (wanted.date_from, wanted.date_to) == ("20260310", "20260311")
    assert (wanted.patient_id, wanted.modality) == ("P1", "CT")
    assert (wanted.accession, wanted.station_ae) == (None, None)  # wildcards: Python's
    universal = parse_query(query()).to_filter()
    assert (universal.date_from, universal.date_to, universal.patient_id) == (None, None, None)


# -- malformed queries ------------------------------------------------------------------------


def nested(depth: int) -> bytes:
    outer = Dataset()
    outer.PatientName = ""
    inner = outer
    for _ in range(depth):
        child = Dataset()
        inner.ReferencedStudySequence = [child]
        inner = child
    return encode(outer)


def patient_id_as_a_date() -> bytes:
    dataset = identifier()
    dataset.add_new(0x00100020, "DA", "20260101")
    return encode(dataset)


def two_steps() -> bytes:
    dataset = identifier(Modality="CT")
    dataset.ScheduledProcedureStepSequence.append(Dataset())
    return encode(dataset)


@pytest.mark.parametrize(
    ("build", "why"),
    [
        (lambda: b"not a DICOM file at all, just some words", "malformed"),
        (lambda: b"", "no attributes"),
        (lambda: query(ScheduledProcedureStepStartDate="20261301-"), "not a date"),
        (lambda: query(ScheduledProcedureStepStartDate="2026"), "not a date"),
        (lambda: query(ScheduledProcedureStepStartDate="-"), "not a date"),
        (lambda: query(ScheduledProcedureStepStartTime="2500"), "not a time"),
        (lambda: query(ScheduledProcedureStepStartTime="10:30"), "not a time"),
        (lambda: query(StudyInstanceUID="1.2.*"), "not a UID"),
        (lambda: query(PatientID=["P1", "P2"]), "one is allowed"),
        (patient_id_as_a_date, "VR DA, not LO"),
        (two_steps, "more than one item"),
        (lambda: nested(50), "nested deeper than 8"),
    ],
    ids=[
        "not-dicom",
        "empty",
        "month-13",
        "year-only",
        "dash-only",
        "hour-25",
        "colons",
        "uid-wildcard",
        "two-patient-ids",
        "wrong-vr",
        "two-steps",
        "depth-50",
    ],
)
def test_malformed_queries_are_refused(build: Callable[[], bytes], why: str) -> None:
    with pytest.raises(WorklistQueryError, match=why):
        parse_query(build())


def test_the_depth_bound_names_its_limit() -> None:
    assert parse_query(nested(6)) == WorklistQuery()
    with pytest.raises(WorklistQueryError) as refused:
        parse_query(nested(3), max_depth=2)
    assert refused.value.limit == "Limits.DicomDepth"


# -- the worklist item ------------------------------------------------------------------------


def test_the_item_carries_the_order() -> None:
    order = ORDERS[0]
    read = dcmread(BytesIO(item(order)))
    assert read.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert read.file_meta.MediaStorageSOPClassUID == MODALITY_WORKLIST_FIND
    assert read.SpecificCharacterSet == "ISO_IR 192"
    assert (read.PatientName, read.PatientID) == ("DOE^JANE", "P1")
    assert (read.PatientBirthDate, read.PatientSex) == ("19800102", "F")
    assert read.AccessionNumber == "A1"
    assert read.ReferringPhysicianName == ""
    assert read.StudyInstanceUID == order.study_uid
    assert read.RequestedProcedureDescription == "PROCEDURE 1"
    assert read.RequestedProcedureID == "A1"
    assert read.RequestedProcedurePriority == "ROUTINE"
    assert len(read.RequestedProcedureCodeSequence) == 0
    [step] = read.ScheduledProcedureStepSequence
    assert (step.Modality, step.ScheduledStationAETitle) == ("CT", "CT1")
    assert step.ScheduledProcedureStepStartDate == "20260310"
    assert step.ScheduledProcedureStepStartTime == "093000"
    assert step.ScheduledProcedureStepDescription == "PROCEDURE 1"
    assert step.ScheduledProcedureStepID == "A1"
    assert step.ScheduledPerformingPhysicianName == ""
    assert step.ScheduledProcedureStepStatus == "SCHEDULED"
    assert item(order) == item(order)


@pytest.mark.parametrize(
    ("priority", "expected"),
    [(Priority.STAT, "STAT"), (Priority.URGENT, "HIGH"), (Priority.ROUTINE, "ROUTINE")],
)
def test_the_item_priority(priority: Priority, expected: str) -> None:
    order = record(7, "DOE^JANE", priority=priority)
    assert dcmread(BytesIO(item(order))).RequestedProcedurePriority == expected


def test_an_accented_name_round_trips_in_utf8() -> None:
    data = item(ORDERS[3])
    assert "MÜLLER^JÖRG".encode() in data
    assert dcmread(BytesIO(data)).PatientName == "MÜLLER^JÖRG"


@pytest.mark.skipif(shutil.which("dcmdump") is None, reason="DCMTK's dcmdump is not installed")
def test_dcmtk_reads_the_item(tmp_path: Path) -> None:
    path = tmp_path / "item.wl"
    path.write_bytes(item(ORDERS[3]))
    dumped = subprocess.run(
        ["dcmdump", "+U8", str(path)], capture_output=True, check=True, timeout=30
    )
    output = dumped.stdout.decode()
    assert dumped.stderr == b""
    assert "MÜLLER^JÖRG" in output
    assert ORDERS[3].study_uid in output
    assert "(0040,0100) SQ" in output
    assert "[SCHEDULED]" in output

"""The FHIR client against a real HTTP server (tests.support.fhir): searches, reads, the
mapping to DICOM's forms, authorization, the cache, retries, deadlines, limits, and the
ServiceRequest poller. Expected values come from the server's data, written out here."""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from hounsfield.his.fhir import (
    FhirClient,
    HisInvalid,
    HisNotFound,
    HisPatient,
    HisUnavailable,
    ServiceRequestPoller,
)
from hounsfield.his.model import (
    CancelOrder,
    Command,
    Order,
    Patient,
    PlaceOrder,
    Priority,
    Source,
)
from hounsfield.his.settings import FhirSettings
from tests.support.fhir import FhirServer
from tests.support.stack import outcome_on_small_stack

SSN = {"system": "urn:oid:2.16.840.1.113883.4.1", "value": "123-45-6789"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fhir() -> Iterator[FhirServer]:
    with FhirServer() as server:
        server.add_patient(
            "p1",
            mrn="MRN-001",
            family="Doe",
            given=("Jane", "Q"),
            birth_date="1970-03-04",
            gender="female",
            other_identifiers=(SSN,),
        )
        server.add_patient(
            "p2", mrn="MRN-002", family="Dolan", given=("John",), birth_date="1980-12-31"
        )
        server.update("Patient", "p2", gender="male")
        server.add_patient("p3", mrn="MRN-003", family="Smith", given=("Ann",), gender="other")
        yield server


def settings(server: FhirServer, **changes: Any) -> FhirSettings:
    values: dict[str, Any] = {
        "base_url": server.base_url,
        "timeout_seconds": 0.3,
        "retries": 2,
        "backoff_seconds": 0.01,
        "deadline_seconds": 2.0,
        **changes,
    }
    return FhirSettings(**values)


def client(server: FhirServer, **changes: Any) -> FhirClient:
    return FhirClient(settings(server, **changes))


JANE = HisPatient(Patient(id="MRN-001", name="Doe^Jane Q", birth_date="19700304", sex="F"), "p1")
JOHN = HisPatient(Patient(id="MRN-002", name="Dolan^John", birth_date="19801231", sex="M"), "p2")
ANN = HisPatient(Patient(id="MRN-003", name="Smith^Ann", sex="O"), "p3")


def source_ids(commands: list[Command]) -> list[str]:
    return [c.source_id for c in commands if isinstance(c, PlaceOrder | CancelOrder)]


# -- searches and reads ----------------------------------------------------------------------


def test_search_by_identifier_finds_the_patient_by_any_of_its_identifiers(
    fhir: FhirServer,
) -> None:
    his = client(fhir)
    assert his.search_patients(identifier="MRN-001") == [JANE]
    assert his.search_patients(identifier=f"{SSN['system']}|{SSN['value']}") == [JANE]
    assert his.search_patients(identifier="urn:other|MRN-001") == []
    sent = fhir.requests_to("Patient")
    assert [request.query["identifier"] for request in sent] == [
        ["MRN-001"],
        [f"{SSN['system']}|{SSN['value']}"],
        ["urn:other|MRN-001"],
    ]


def test_search_by_name_is_a_case_insensitive_start_of_a_name_part(fhir: FhirServer) -> None:
    his = client(fhir)
    assert sorted(his.search_patients(name="do"), key=lambda found: found.fhir_id) == [JANE, JOHN]
    assert his.search_patients(name="JOHN") == [JOHN]
    assert his.search_patients(name="oe") == []


def test_search_by_birth_date_takes_dicom_or_fhir_dates(fhir: FhirServer) -> None:
    his = client(fhir)
    assert his.search_patients(birthdate="19801231") == [JOHN]
    assert his.search_patients(birthdate="1970-03-04") == [JANE]
    assert [request.query["birthdate"] for request in fhir.requests_to("Patient")] == [
        ["1980-12-31"],
        ["1970-03-04"],
    ]
    with pytest.raises(ValueError, match="birth date"):
        his.search_patients(birthdate="4 March 1970")


def test_search_parameters_combine(fhir: FhirServer) -> None:
    his = client(fhir)
    assert his.search_patients(name="Do", birthdate="19700304") == [JANE]
    assert his.search_patients(name="Smith", identifier="MRN-001") == []


def test_a_search_without_parameters_is_refused_before_asking(fhir: FhirServer) -> None:
    with pytest.raises(ValueError):
        client(fhir).search_patients(name="")
    assert fhir.log == []


def test_read_gives_the_patient_or_not_found(fhir: FhirServer) -> None:
    his = client(fhir)
    assert his.read_patient("p2") == JOHN.patient
    with pytest.raises(HisNotFound):
        his.read_patient("ghost")
    with pytest.raises(HisNotFound):
        his.read_patient("../p2")  # not a FHIR id: never sent
    assert [request.path for request in fhir.log] == ["/fhir/Patient/p2", "/fhir/Patient/ghost"]


def test_mapping_to_dicom_forms(fhir: FhirServer) -> None:
    fhir.add_patient(
        "official",
        family="Official",
        given=("Name",),
        birth_date="1999",  # partial: no DICOM date
        gender="unknown",
        other_names=({"use": "usual", "family": "Nick", "given": ["N"]},),
        other_identifiers=(SSN,),  # no MR: the first identifier
    )
    fhir.add_resource(
        {
            "resourceType": "Patient",
            "id": "textual",  # no identifier at all: the resource id
            "name": [{"text": "Baby of Doe"}],
        }
    )
    his = client(fhir)
    assert his.read_patient("official") == Patient(
        id=SSN["value"], name="Official^Name", birth_date="", sex=""
    )
    assert his.read_patient("textual") == Patient(id="textual", name="Baby of Doe")
    assert his.read_patient("p3") == ANN.patient


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ({"auth": "none"}, None),
        (
            {"auth": "basic", "username": "radiology", "password": "s3cr:t"},
            "Basic " + base64.b64encode(b"radiology:s3cr:t").decode(),
        ),
        ({"auth": "bearer", "token": "tok-123.abc"}, "Bearer tok-123.abc"),
    ],
)
def test_authorization_is_sent_on_every_request(
    fhir: FhirServer, auth: dict[str, str], expected: str | None
) -> None:
    his = client(fhir, **auth)
    his.search_patients(name="Doe")
    his.read_patient("p1")
    assert [request.authorization for request in fhir.log] == [expected, expected]


# -- cache -----------------------------------------------------------------------------------


def test_lookups_are_cached_until_cache_seconds_pass(fhir: FhirServer) -> None:
    clock = FakeClock()
    his = FhirClient(settings(fhir, cache_seconds=60), clock=clock)
    assert his.search_patients(name="Dolan") == [JOHN]
    assert his.read_patient("p2") == JOHN.patient
    fhir.update("Patient", "p2", name=[{"family": "Dolan", "given": ["Johnny"]}])
    clock.now += 59
    assert his.search_patients(name="Dolan") == [JOHN]
    assert his.read_patient("p2") == JOHN.patient
    assert len(fhir.log) == 2
    clock.now += 1
    assert his.search_patients(name="Dolan")[0].patient.name == "Dolan^Johnny"
    assert his.read_patient("p2").name == "Dolan^Johnny"
    assert len(fhir.log) == 4


def test_the_cache_is_keyed_by_the_query_and_bounded(fhir: FhirServer) -> None:
    his = FhirClient(settings(fhir), clock=FakeClock(), cache_entries=2)
    his.search_patients(name="Doe")
    his.search_patients(name="Dolan")
    his.search_patients(name="Doe", birthdate="19700304")  # a third query: "Doe" goes
    his.search_patients(name="Dolan")
    assert len(fhir.log) == 3
    his.search_patients(name="Doe")
    assert len(fhir.log) == 4


def test_cache_with_zero_seconds_keeps_nothing(fhir: FhirServer) -> None:
    his = client(fhir, cache_seconds=0)
    his.read_patient("p1")
    his.read_patient("p1")
    assert len(fhir.log) == 2


def test_threads_share_the_client(fhir: FhirServer) -> None:
    his = client(fhir)
    results: list[list[HisPatient]] = []

    def look() -> None:
        for name in ("Doe", "Dolan", "Smith") * 5:
            results.append(his.search_patients(name=name))

    threads = [threading.Thread(target=look) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 * 15
    assert {tuple(found) for found in results} == {(JANE,), (JOHN,), (ANN,)}
    assert 3 <= len(fhir.log) <= 8 * 3  # at most one miss per thread and query


# -- failures --------------------------------------------------------------------------------


def test_503_twice_then_an_answer_is_retried(fhir: FhirServer) -> None:
    fhir.fail_next(503, times=2)
    assert client(fhir).search_patients(identifier="MRN-002") == [JOHN]
    assert len(fhir.requests_to("Patient")) == 3


@pytest.mark.parametrize(("status", "timeout"), [(429, False), (502, False), (504, True)])
def test_retries_end_with_the_last_failure(fhir: FhirServer, status: int, timeout: bool) -> None:
    fhir.fail_next(status, times=10)
    with pytest.raises(HisUnavailable) as raised:
        client(fhir, retries=3).read_patient("p1")
    assert raised.value.timeout is timeout
    assert f"answered {status}" in raised.value.message
    assert len(fhir.log) == 4


@pytest.mark.parametrize("status", [400, 401, 403, 500])
def test_other_errors_are_not_retried(fhir: FhirServer, status: int) -> None:
    fhir.fail_next(status)
    with pytest.raises(HisUnavailable) as raised:
        client(fhir).search_patients(name="Doe")
    assert not raised.value.timeout
    assert str(status) in raised.value.message
    assert "Doe" not in raised.value.message  # the query names the patient
    assert len(fhir.log) == 1


def test_a_404_on_a_search_is_a_configuration_problem(fhir: FhirServer) -> None:
    his = FhirClient(FhirSettings(base_url=fhir.base_url + "/nowhere", retries=0))
    with pytest.raises(HisUnavailable, match="no Patient search"):
        his.search_patients(name="Doe")


def test_a_slow_server_gives_a_timeout_within_the_deadline(fhir: FhirServer) -> None:
    fhir.delay = 3.0
    his = client(fhir, timeout_seconds=0.3, retries=5, backoff_seconds=0.05, deadline_seconds=0.8)
    start = time.monotonic()
    with pytest.raises(HisUnavailable) as raised:
        his.search_patients(name="Doe")
    elapsed = time.monotonic() - start
    assert raised.value.timeout
    assert elapsed < 0.8 + 1
    assert 2 <= len(fhir.log) <= 3  # 0.3 + 0.05 + 0.3 + 0.1 + the rest, cut


def test_the_last_attempt_is_cut_to_the_deadline(fhir: FhirServer) -> None:
    fhir.delay = 3.0
    his = client(fhir, timeout_seconds=0.5, retries=1, backoff_seconds=0, deadline_seconds=0.6)
    start = time.monotonic()
    with pytest.raises(HisUnavailable) as raised:
        his.read_patient("p1")
    assert raised.value.timeout
    assert len(fhir.log) == 2
    assert time.monotonic() - start < 0.85  # two whole attempts would take 1 s


def test_a_trickling_answer_is_cut_at_the_deadline(fhir: FhirServer) -> None:
    fhir.chunked = True
    fhir.trickle = 0.1  # each piece well within the timeout: only the deadline stops it
    for number in range(30):
        fhir.add_patient(f"t{number}", mrn=f"T{number}", family="Trickle")
    his = client(fhir, timeout_seconds=0.3, retries=0, deadline_seconds=0.5)
    start = time.monotonic()
    with pytest.raises(HisUnavailable) as raised:
        his.search_patients(name="Trickle")
    assert raised.value.timeout
    assert time.monotonic() - start < 0.5 + 0.2


def test_a_server_down_is_unavailable_at_once_and_back_when_up(fhir: FhirServer) -> None:
    his = client(fhir, retries=2, backoff_seconds=0.01)
    fhir.go_down()
    start = time.monotonic()
    with pytest.raises(HisUnavailable) as raised:
        his.search_patients(name="Doe")
    assert not raised.value.timeout
    assert "refused" in raised.value.message
    assert time.monotonic() - start < 1
    fhir.come_up()
    assert his.search_patients(name="Dolan") == [JOHN]


@pytest.mark.parametrize("chunked", [False, True])
def test_an_oversized_answer_is_refused(fhir: FhirServer, chunked: bool) -> None:
    fhir.chunked = chunked
    for number in range(20):
        fhir.add_patient(f"x{number}", mrn=f"X{number}", family="Doe", given=("Many",))
    his = client(fhir, max_response_bytes=4000)
    with pytest.raises(HisInvalid, match="exceeds MaxResponseBytes"):
        his.search_patients(name="Doe")
    assert len(fhir.log) == 1  # not worth retrying
    assert client(fhir, max_response_bytes=4000).read_patient("x1").id == "X1"


@pytest.mark.parametrize(
    ("resource", "complaint"),
    [
        ({"gender": "robot", "name": [{"family": "Doe"}]}, "gender"),
        ({"birthDate": "4 March 1970", "name": [{"family": "Doe"}]}, "birthDate"),
        ({"name": [{"family": "Doe", "given": [3]}]}, "name.0.given.0"),
        ({}, "name"),  # no name: nothing a worklist can show
        ({"name": [{"family": "Doe^Smith"}]}, "name"),  # not a DICOM name component
        ({"identifier": [{"value": "x" * 65}], "name": [{"family": "Doe"}]}, "id"),
    ],
)
def test_an_invalid_patient_is_refused(
    fhir: FhirServer, resource: dict[str, Any], complaint: str
) -> None:
    fhir.add_resource({"resourceType": "Patient", "id": "bad", **resource})
    with pytest.raises(HisInvalid) as raised:
        client(fhir).read_patient("bad")
    assert raised.value.message.startswith("the HIS answered an invalid Patient")
    assert complaint in raised.value.message
    assert not raised.value.timeout


def test_one_invalid_patient_fails_the_search(fhir: FhirServer) -> None:
    fhir.add_resource(
        {"resourceType": "Patient", "id": "bad", "name": [{"family": "Doe"}], "gender": "robot"}
    )
    with pytest.raises(HisInvalid, match="invalid Patient: gender"):
        client(fhir).search_patients(name="Doe")


def test_a_read_answering_another_resource_type_is_refused(fhir: FhirServer) -> None:
    fhir.resources["Patient", "odd"] = {"resourceType": "Practitioner", "id": "odd"}
    with pytest.raises(HisInvalid, match="resourceType"):
        client(fhir).read_patient("odd")


@pytest.mark.parametrize(
    ("content_type", "garbage", "complaint"),
    [
        ("text/html", None, "text/html, not FHIR JSON"),
        ("application/fhir+json", b'{"resourceType": "Bundle"', "malformed JSON"),
        ("application/json", b'{"resourceType": "Bundle", "type": "history"}', "type"),
        ("application/fhir+json", b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
    ],
)
def test_answers_that_are_not_fhir_are_refused(
    fhir: FhirServer, content_type: str, garbage: bytes | None, complaint: str
) -> None:
    fhir.content_type = content_type
    fhir.garbage = garbage
    his = client(fhir)
    outcome = outcome_on_small_stack(lambda: his.search_patients(name="Doe"))
    assert isinstance(outcome, HisInvalid)
    assert complaint in outcome.message


def test_searches_run_on_orthancs_small_stacks(fhir: FhirServer) -> None:
    his = client(fhir)
    assert outcome_on_small_stack(lambda: his.search_patients(name="Dolan")) == [JOHN]


@pytest.mark.parametrize(("page_size", "found", "pages"), [(20, 100, 5), (5, 50, 10)])
def test_next_links_are_followed_within_bounds(
    fhir: FhirServer, page_size: int, found: int, pages: int
) -> None:
    fhir.page_size = page_size
    for number in range(150):
        fhir.add_patient(f"m{number}", mrn=f"M{number:03}", family="Many")
    result = client(fhir).search_patients(name="Many")
    assert [item.patient.id for item in result] == [f"M{number:03}" for number in range(found)]
    assert len(fhir.log) == pages
    assert [request.query.get("_offset") for request in fhir.log[1:]] == [
        [str(page_size * page)] for page in range(1, pages)
    ]


def test_next_links_to_another_server_are_not_followed(fhir: FhirServer) -> None:
    with FhirServer() as elsewhere:
        fhir.page_size = 1
        fhir.next_base = elsewhere.base_url
        with pytest.raises(HisInvalid, match="outside its BaseUrl"):
            client(fhir, auth="bearer", token="secret").search_patients(name="Do")
        assert elsewhere.log == []


# -- ServiceRequest polling ------------------------------------------------------------------


def poller(fhir: FhirServer, **changes: Any) -> tuple[ServiceRequestPoller, list[Command]]:
    applied: list[Command] = []
    return ServiceRequestPoller(client(fhir, **changes), applied.append), applied


def test_an_active_request_places_an_order(fhir: FhirServer) -> None:
    fhir.add_service_request(
        "sr1",
        patient="p1",
        accession="ACC123",
        modality="MR",
        station="MR_3T",
        occurrence="2024-05-02T09:30:00+02:00",
        priority="stat",
        procedure="MRI brain\\with contrast",
    )
    polling, applied = poller(fhir)
    assert polling.poll_once() == 1
    assert applied == [
        PlaceOrder(
            source=Source.FHIR,
            source_id="sr1",
            order=Order(
                patient=JANE.patient,
                accession_number="ACC123",
                modality="MR",
                requested_procedure="MRI brain with contrast",
                scheduled_station_ae="MR_3T",
                scheduled_time=datetime(2024, 5, 2, 9, 30, tzinfo=timezone(timedelta(hours=2))),
                priority=Priority.STAT,
            ),
        )
    ]
    first = fhir.requests_to("ServiceRequest")[0]
    assert first.query == {"_sort": ["_lastUpdated"], "_count": ["100"]}


@pytest.mark.parametrize(
    ("where", "modality", "station"),
    [
        ({"modality_in": "code"}, "CT", "CT_ROOM_1"),
        ({"modality_in": "category"}, "CT", "CT_ROOM_1"),
        ({"station_in": "locationCode", "in_period": True}, "CT", "CT_ROOM_1"),
    ],
)
def test_modality_station_and_time_are_found_where_r4_puts_them(
    fhir: FhirServer, where: dict[str, Any], modality: str, station: str
) -> None:
    fhir.add_service_request(
        "sr1", patient="p2", accession="A1", occurrence="2024-06-01T07:15:00Z", **where
    )
    polling, applied = poller(fhir)
    polling.poll_once()
    [command] = applied
    assert isinstance(command, PlaceOrder)
    assert command.order.modality == modality
    assert command.order.scheduled_station_ae == station
    assert command.order.scheduled_time == datetime(2024, 6, 1, 7, 15, tzinfo=UTC)
    assert command.order.patient == JOHN.patient


@pytest.mark.parametrize(
    ("fhir_priority", "priority"),
    [
        ("routine", Priority.ROUTINE),
        ("urgent", Priority.URGENT),
        ("asap", Priority.URGENT),
        ("stat", Priority.STAT),
        (None, Priority.ROUTINE),
    ],
)
def test_priorities(fhir: FhirServer, fhir_priority: str | None, priority: Priority) -> None:
    fhir.add_service_request("sr1", patient="p1", accession="A1", priority=fhir_priority)
    polling, applied = poller(fhir)
    polling.poll_once()
    [command] = applied
    assert isinstance(command, PlaceOrder)
    assert command.order.priority is priority


def test_statuses_and_intents(fhir: FhirServer) -> None:
    for status in ("active", "revoked", "entered-in-error", "completed", "draft", "on-hold"):
        fhir.add_service_request(status, patient="p1", accession=status[:16], status=status)
    fhir.add_service_request("proposal", patient="p1", accession="P1", intent="proposal")
    polling, applied = poller(fhir)
    assert polling.poll_once() == 3
    assert source_ids(applied) == ["active", "revoked", "entered-in-error"]
    assert isinstance(applied[0], PlaceOrder)
    assert applied[1:] == [
        CancelOrder(Source.FHIR, "revoked"),
        CancelOrder(Source.FHIR, "entered-in-error"),
    ]


def test_each_poll_asks_only_for_changes(fhir: FhirServer) -> None:
    fhir.add_service_request("sr1", patient="p1", accession="A1")
    newest = fhir.add_service_request("sr2", patient="p2", accession="A2")
    polling, applied = poller(fhir)
    assert polling.poll_once() == 2
    assert polling.poll_once() == 0
    since = fhir.requests_to("ServiceRequest")[1].query["_lastUpdated"][0]
    assert since.startswith("gt")
    assert datetime.fromisoformat(since[2:]) == datetime.fromisoformat(
        newest["meta"]["lastUpdated"]
    )
    fhir.update("ServiceRequest", "sr1", status="revoked")
    assert polling.poll_once() == 1
    assert applied[2:] == [CancelOrder(Source.FHIR, "sr1")]
    assert source_ids(applied[:2]) == ["sr1", "sr2"]
    assert len(fhir.requests_to("Patient/p1")) == 1  # patients read through the cache


def test_requests_a_scanner_cannot_do_are_skipped_with_a_warning(
    fhir: FhirServer, caplog: pytest.LogCaptureFixture
) -> None:
    fhir.add_service_request("no-accession", patient="p1", accession=None)
    fhir.add_service_request("no-modality", patient="p1", accession="A2", modality=None)
    fhir.add_service_request("no-station", patient="p1", accession="A3", station=None)
    fhir.add_service_request("no-time", patient="p1", accession="A4", occurrence="2024-05")
    fhir.add_service_request("no-patient", patient="ghost", accession="A5")
    fhir.add_service_request("long-accession", patient="p1", accession="A" * 17)
    fhir.add_resource({"resourceType": "ServiceRequest", "id": "invalid", "status": "bogus"})
    fhir.add_service_request("good", patient="p2", accession="A6")
    polling, applied = poller(fhir)
    with caplog.at_level(logging.WARNING, logger="hounsfield.his.fhir"):
        assert polling.poll_once() == 1
    assert source_ids(applied) == ["good"]
    warned = caplog.text
    for skipped, why in [
        ("no-accession", "no accession number"),
        ("no-modality", "no modality"),
        ("no-station", "no station"),
        ("no-time", "no scheduled time"),
        ("no-patient", "Patient/ghost"),
        ("long-accession", "accession_number"),
        ("invalid", "status"),
    ]:
        assert f"ServiceRequest/{skipped} skipped" in warned
        assert why in warned
    assert polling.since == datetime.fromisoformat(
        fhir.resources["ServiceRequest", "good"]["meta"]["lastUpdated"]
    )


def test_a_failed_poll_is_retried_by_the_next(fhir: FhirServer) -> None:
    fhir.add_service_request("sr1", patient="p1", accession="A1")
    polling, applied = poller(fhir, retries=0)
    fhir.go_down()
    assert polling.poll_once() == 0
    assert polling.since is None
    fhir.come_up()
    assert polling.poll_once() == 1
    assert source_ids(applied) == ["sr1"]


def test_a_command_that_fails_to_apply_is_applied_again(fhir: FhirServer) -> None:
    fhir.add_service_request("sr1", patient="p1", accession="A1")
    fhir.add_service_request("sr2", patient="p1", accession="A2", status="revoked")
    applied: list[Command] = []
    failures = [RuntimeError("database is locked")]

    def apply(command: Command) -> None:
        if isinstance(command, CancelOrder) and failures:
            raise failures.pop()
        applied.append(command)

    polling = ServiceRequestPoller(client(fhir), apply)
    assert polling.poll_once() == 1
    assert polling.since is None
    assert polling.poll_once() == 2
    assert [type(command) for command in applied] == [PlaceOrder, PlaceOrder, CancelOrder]

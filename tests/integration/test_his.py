"""The HIS side through a real Orthanc: orders in, the Modality Worklist read by dcmtk's
findscu as a scanner would, studies sent with storescu matched to their orders, and a
demographics correction applied only once confirmed."""

from __future__ import annotations

import datetime as dt
import itertools
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import hl7
import pydicom
import pytest
from hl7.client import MLLPClient
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import ModalityWorklistInformationFind

from tests.support.fhir import FhirServer
from tests.support.server import OrthancServer, wait_for

pytestmark = pytest.mark.orthanc
TODAY = dt.date.today()
ACCESSIONS = (f"MWL{n:05d}" for n in itertools.count(int(dt.datetime.now().timestamp()) % 90000))


def new_order(orthanc: OrthancServer, **fields: object) -> dict:
    body: dict[str, object] = {
        "patient": {"id": "MWL-P1", "name": "MÜLLER^JÖRG", "birth_date": "1961-03-04", "sex": "M"},
        "accession_number": next(ACCESSIONS),
        "modality": "CT",
        "requested_procedure": "CT head without contrast",
        "scheduled_station_ae": "CT_MWL_1",
        "scheduled_time": f"{TODAY.isoformat()}T10:15:00",
        "priority": "routine",
    }
    body.update(fields)
    response = orthanc.post("/api/orders", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def findscu(orthanc: OrthancServer, folder: Path, *keys: str) -> list[Dataset]:
    """dcmtk's findscu as a modality asks for its worklist: the answers, as written."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.dcm"):
        old.unlink()
    step = "(0040,0100)[0]"
    asked = [
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "AccessionNumber",
        "StudyInstanceUID",
        "RequestedProcedureDescription",
        "RequestedProcedurePriority",
        f"{step}.Modality",
        f"{step}.ScheduledStationAETitle",
        f"{step}.ScheduledProcedureStepStartDate",
        f"{step}.ScheduledProcedureStepStartTime",
        f"{step}.ScheduledProcedureStepStatus",
    ]
    given = {key.split("=")[0] for key in keys}
    wanted = [*(key for key in asked if key not in given), *keys]
    arguments = [part for key in wanted for part in ("-k", key)]
    done = subprocess.run(
        [
            "findscu",
            "-W",
            "-aec",
            "HOUNSFIELD",
            "-aet",
            "CT_MWL_1",
            "-X",
            "-od",
            str(folder),
            *arguments,
            "127.0.0.1",
            str(orthanc.dicom_port),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return [pydicom.dcmread(path) for path in sorted(folder.glob("*.dcm"))]


def accessions(answers: list[Dataset]) -> set[str]:
    return {answer.AccessionNumber for answer in answers}


def test_scanners_get_the_open_orders_that_match(orthanc: OrthancServer, tmp_path: Path) -> None:
    day = TODAY.strftime("%Y%m%d")
    tomorrow = (TODAY + dt.timedelta(days=1)).strftime("%Y%m%d")
    head = new_order(orthanc, priority="stat")
    chest = new_order(
        orthanc,
        modality="MR",
        scheduled_station_ae="MR_MWL_1",
        patient={"id": "MWL-P2", "name": "DOE^JANE", "birth_date": "19800101", "sex": "F"},
    )
    later = new_order(
        orthanc,
        scheduled_time=f"{(TODAY + dt.timedelta(days=1)).isoformat()}T08:00",
        patient={"id": "MWL-P3", "name": "Łukasz^Dvořák", "birth_date": "", "sex": ""},
    )
    cancelled = new_order(orthanc)
    assert orthanc.post(f"/api/orders/{cancelled['id']}/cancel").status_code == 200
    ours = {head["accession_number"], chest["accession_number"], later["accession_number"]}

    def ask(*keys: str) -> set[str]:
        return accessions(findscu(orthanc, tmp_path / "answers", *keys)) & (
            ours | {cancelled["accession_number"]}
        )

    step = "(0040,0100)[0]"
    assert ask() == ours  # the cancelled order is off the worklist
    assert ask(f"{step}.Modality=CT") == {head["accession_number"], later["accession_number"]}
    assert ask(f"{step}.ScheduledStationAETitle=MR_MWL_1") == {chest["accession_number"]}
    assert ask(f"{step}.ScheduledStationAETitle=NOT_OURS") == set()
    assert ask(f"{step}.ScheduledProcedureStepStartDate={day}") == {
        head["accession_number"],
        chest["accession_number"],
    }
    assert ask(f"{step}.ScheduledProcedureStepStartDate={day}-{tomorrow}") == ours
    assert ask(f"{step}.ScheduledProcedureStepStartDate={tomorrow}-") == {later["accession_number"]}
    assert ask("PatientID=MWL-P2") == {chest["accession_number"]}
    assert ask("PatientName=DOE*") == {chest["accession_number"]}
    assert ask("PatientName=*jane") == {chest["accession_number"]}
    assert ask(f"AccessionNumber={head['accession_number']}") == {head["accession_number"]}

    (answer,) = [
        a
        for a in findscu(orthanc, tmp_path / "one", f"AccessionNumber={head['accession_number']}")
        if a.AccessionNumber == head["accession_number"]
    ]
    assert str(answer.PatientName) == "MÜLLER^JÖRG"  # UTF-8 through DCMTK and back
    assert (answer.PatientID, answer.PatientBirthDate, answer.PatientSex) == (
        "MWL-P1",
        "19610304",
        "M",
    )
    assert answer.StudyInstanceUID == head["studyInstanceUid"]
    assert answer.RequestedProcedureDescription == "CT head without contrast"
    assert answer.RequestedProcedurePriority == "STAT"
    item = answer.ScheduledProcedureStepSequence[0]
    assert (item.Modality, item.ScheduledStationAETitle) == ("CT", "CT_MWL_1")
    assert (item.ScheduledProcedureStepStartDate, item.ScheduledProcedureStepStartTime) == (
        day,
        "101500",
    )
    # Beyond Latin-1 too: the scanner must get the accession and the name as ordered.
    (beyond,) = findscu(orthanc, tmp_path / "two", f"AccessionNumber={later['accession_number']}")
    assert str(beyond.PatientName) == "Łukasz^Dvořák"
    audit = orthanc.get("/api/audit?action=worklist.query&user=AE CT_MWL_1").json()["entries"]
    assert any(head["id"] in entry["detail"]["orders"] for entry in audit)


def test_a_malformed_worklist_query_gets_a_failure_status(orthanc: OrthancServer) -> None:
    query = Dataset()
    query.PatientName = ""
    step = Dataset()
    step.ScheduledProcedureStepStartDate = "2026-11-24"  # not a DICOM date range
    query.ScheduledProcedureStepSequence = [step]
    ae = AE(ae_title="CT_MWL_1")
    ae.add_requested_context(ModalityWorklistInformationFind)
    association = ae.associate("127.0.0.1", orthanc.dicom_port, ae_title="HOUNSFIELD")
    assert association.is_established
    try:
        statuses = [
            status.Status
            for status, _ in association.send_c_find(query, ModalityWorklistInformationFind)
            if status
        ]
    finally:
        association.release()
    assert statuses and statuses[-1] not in (0x0000, 0xFF00, 0xFF01), statuses
    assert orthanc.get("/api/health").status_code in (200, 503)  # still serving


def study_with(dicom_file, order: dict, **attributes: str) -> Path:
    patient = order["patient"]
    values = {
        "PatientID": patient["id"],
        "PatientName": patient["name"],
        "PatientBirthDate": patient["birth_date"],
        "PatientSex": patient["sex"],
        "AccessionNumber": order["accession_number"],
    }
    values.update(attributes)
    return dicom_file("CT_small.dcm", **values)


def worklist_row(orthanc: OrthancServer, study: str) -> dict:
    return orthanc.get(f"/api/worklist/{study}").json()


def test_a_study_completes_its_order_and_takes_its_priority(
    orthanc: OrthancServer, dicom_file, tmp_path: Path
) -> None:
    order = new_order(orthanc, priority="urgent", requested_procedure="CT chest low dose")
    orthanc.store(study_with(dicom_file, order))
    done = wait_for(
        lambda: (
            (o := orthanc.get(f"/api/orders/{order['id']}").json())["status"] == "completed" and o
        ),
        20,
        "the order completed",
    )
    row = worklist_row(orthanc, done["study"])
    assert (row["priority"], row["requestedProcedure"]) == ("urgent", "CT chest low dose")
    assert order["accession_number"] not in accessions(findscu(orthanc, tmp_path))
    open_ = orthanc.get("/api/his/mismatches?status=open").json()["mismatches"]
    assert done["study"] not in {m["study"] for m in open_}


def test_a_mismatch_is_flagged_and_corrected_only_once_confirmed(
    orthanc: OrthancServer, dicom_file
) -> None:
    order = new_order(orthanc, priority="stat")
    orthanc.store(study_with(dicom_file, order, PatientName="MULLER^JORG", PatientSex="F"))
    mismatch = wait_for(
        lambda: next(
            (
                m
                for m in orthanc.get("/api/his/mismatches?status=open").json()["mismatches"]
                if m["order"] == order["id"]
            ),
            None,
        ),
        20,
        "the mismatch flagged",
    )
    original = mismatch["study"]
    assert mismatch["differences"] == {
        "PatientName": {"study": "MULLER^JORG", "his": "MÜLLER^JÖRG"},
        "PatientSex": {"study": "F", "his": "M"},
    }
    tags = orthanc.get(f"/studies/{original}").json()["PatientMainDicomTags"]
    assert tags["PatientName"] == "MULLER^JORG"  # nothing changed before confirmation

    name = f"his-tech-{order['id']}"
    created = orthanc.post(
        "/api/users", json={"username": name, "password": "Technician-2468", "role": "technician"}
    )
    assert created.status_code == 201, created.text
    technician = orthanc.client(orthanc.login(name, "Technician-2468"))
    answer = technician.post(orthanc.url(f"/api/his/mismatches/{mismatch['id']}/correct"))
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "correcting"
    done = wait_for(
        lambda: (
            (m := orthanc.get(f"/api/his/mismatches/{mismatch['id']}").json())["status"]
            != "correcting"
            and m
        ),
        30,
        "the correction applied",
    )
    assert done["status"] == "corrected", done
    corrected = done["correctedStudy"]
    tags = orthanc.get(f"/studies/{corrected}").json()["PatientMainDicomTags"]
    assert (tags["PatientName"], tags["PatientSex"]) == ("MÜLLER^JÖRG", "M")
    # The original is kept in the PACS; the reading worklist shows the corrected copy.
    assert orthanc.get(f"/studies/{original}").status_code == 200
    listed = {row["id"] for row in orthanc.get("/api/worklist?limit=500").json()["studies"]}
    assert corrected in listed and original not in listed
    assert worklist_row(orthanc, corrected)["priority"] == "stat"
    assert orthanc.get(f"/api/orders/{order['id']}").json()["study"] == corrected
    assert done["decidedBy"] == name
    audit = orthanc.get("/api/audit?action=study.correct").json()
    assert any(f"/studies/{original}" == entry["resource"] for entry in audit["entries"])
    again = technician.post(orthanc.url(f"/api/his/mismatches/{mismatch['id']}/correct"))
    assert again.status_code == 409


# -- HL7 v2 over MLLP ----------------------------------------------------------------------


def mllp_port(orthanc: OrthancServer) -> int:
    return int(orthanc.env["ORTHANC__HOUNSFIELD_HIS__MLLP__PORT"])


def orm(control: str, order_control: str, placer: str, accession: str, **fields: str) -> str:
    """An ORM^O01 as a RIS sends it (IHE Scheduled Workflow, HL7 2.3.1)."""
    when = fields.get("when", TODAY.strftime("%Y%m%d") + "1430")
    priority = fields.get("priority", "R")
    obr = ["OBR", "1", f"{placer}^RIS", "", "CTHEAD^CT head^L"] + [""] * 23
    # OBR-18 accession, OBR-21 scheduled station AE, OBR-24 modality, OBR-27 timing
    obr[18], obr[21], obr[24], obr[27] = accession, "CT_HL7_1", "CT", f"^^^{when}^^{priority}"
    return "\r".join(
        [
            f"MSH|^~\\&|RIS|HOSP|HOUNSFIELD|RAD|{TODAY:%Y%m%d}120000||ORM^O01|{control}|P|2.3.1",
            f"PID|1||{fields.get('patient', 'HL7-P1')}^^^HOSP^MR||Ångström^Eva^M||19750607|F",
            f"ORC|{order_control}|{placer}^RIS||||^^^{when}^^{priority}",
            "|".join(obr),
        ]
    )


def send_hl7(orthanc: OrthancServer, *messages: str) -> list[hl7.Message]:
    """Each message's acknowledgement, through python-hl7's MLLP client."""
    with MLLPClient("127.0.0.1", mllp_port(orthanc)) as client:
        return [
            hl7.parse(client.send_message(message).strip(b"\x0b\x1c\r")) for message in messages
        ]


def ack_code(ack: hl7.Message) -> tuple[str, str]:
    msa = ack.segment("MSA")
    return str(msa[1]), str(msa[2])


def hl7_order(orthanc: OrthancServer, accession: str) -> dict:
    (found,) = orthanc.get(f"/api/orders?accession={accession}").json()["orders"]
    return found


def test_orders_from_the_ris_over_mllp(orthanc: OrthancServer, tmp_path: Path) -> None:
    accession = next(ACCESSIONS)
    (ack,) = send_hl7(orthanc, orm("C1", "NW", f"PL-{accession}", accession, priority="S"))
    assert ack_code(ack) == ("AA", "C1")
    order = hl7_order(orthanc, accession)
    assert order["source"] == "hl7"
    assert order["patient"] == {
        "id": "HL7-P1",
        "name": "Ångström^Eva^M",
        "birth_date": "19750607",
        "sex": "F",
    }
    assert (order["modality"], order["scheduled_station_ae"], order["priority"]) == (
        "CT",
        "CT_HL7_1",
        "stat",
    )
    assert order["scheduled_time"].endswith("14:30:00")
    answers = findscu(orthanc, tmp_path, f"AccessionNumber={accession}")
    assert [str(a.PatientName) for a in answers] == ["Ångström^Eva^M"]

    # Sent again (a RIS that missed our ACK): still one order. Then cancelled.
    (again,) = send_hl7(orthanc, orm("C2", "NW", f"PL-{accession}", accession, priority="S"))
    assert ack_code(again) == ("AA", "C2")
    (cancel,) = send_hl7(orthanc, orm("C3", "CA", f"PL-{accession}", accession))
    assert ack_code(cancel) == ("AA", "C3")
    assert hl7_order(orthanc, accession)["status"] == "cancelled"
    assert findscu(orthanc, tmp_path, f"AccessionNumber={accession}") == []

    audit = orthanc.get("/api/audit?action=order.place&user=HL7 RIS@HOSP").json()
    assert any(entry["detail"].get("accession") == accession for entry in audit["entries"])


def test_bad_hl7_gets_a_nak_and_the_listener_goes_on(orthanc: OrthancServer) -> None:
    accession = next(ACCESSIONS)
    no_station = orm("B1", "NW", "PL-B1", accession).replace("CT_HL7_1", "")
    unsupported = orm("B2", "NW", "PL-B2", accession).replace("ORM^O01", "ADT^A01")
    garbage = "this is not HL7"
    # A NUL in what gets logged (the control id) once made the log call itself fail.
    nul_control = orm("\0", "NW", "PL-B4", accession).replace("ORM^O01", "ADT^A01")
    acks = send_hl7(orthanc, no_station, unsupported, garbage, nul_control)
    assert [ack_code(a) for a in acks] == [("AE", "B1"), ("AR", "B2"), ("AR", ""), ("AR", "\0")]
    assert "internal error" not in str(acks[3].segment("MSA"))
    assert orthanc.get(f"/api/orders?accession={accession}").json()["orders"] == []
    # Wrong framing on a raw socket: dropped; the next connection is served.
    with socket.create_connection(("127.0.0.1", mllp_port(orthanc)), timeout=5) as raw:
        raw.sendall(b"MSH|^~\\&|no start block\x1c\r")
    (ack,) = send_hl7(orthanc, orm("B3", "NW", f"PL-{accession}", accession))
    assert ack_code(ack) == ("AA", "B3")


def test_many_senders_at_once(orthanc: OrthancServer) -> None:
    batches = [[next(ACCESSIONS) for _ in range(3)] for _ in range(6)]

    def sender(accessions: list[str]) -> list[tuple[str, str]]:
        messages = [orm(f"M-{a}", "NW", f"PL-{a}", a, patient=f"HL7-{a}") for a in accessions]
        return [ack_code(ack) for ack in send_hl7(orthanc, *messages)]

    with ThreadPoolExecutor(len(batches)) as pool:
        results = list(pool.map(sender, batches))
    for accessions_sent, acks in zip(batches, results, strict=True):
        assert acks == [("AA", f"M-{a}") for a in accessions_sent]
        for accession in accessions_sent:
            assert hl7_order(orthanc, accession)["patient"]["id"] == f"HL7-{accession}"


def test_a_merge_is_reported_to_admins_and_stored_dicom_is_left_alone(
    orthanc: OrthancServer, dicom_file
) -> None:
    prior, survivor = f"MRG-{next(ACCESSIONS)}", f"MRG-{next(ACCESSIONS)}"
    orthanc.store(dicom_file("CT_small.dcm", PatientID=prior, PatientName="OLD^NAME"))
    merge = "\r".join(
        [
            f"MSH|^~\\&|ADT|HOSP|HOUNSFIELD|RAD|{TODAY:%Y%m%d}120000||ADT^A40|G1|P|2.5",
            f"PID|1||{survivor}^^^HOSP^MR||NEW^NAME||19700101|M",
            f"MRG|{prior}^^^HOSP^MR",
        ]
    )
    (ack,) = send_hl7(orthanc, merge)
    assert ack_code(ack) == ("AA", "G1")
    merges = orthanc.get("/api/his/merges").json()["merges"]
    (reported,) = [m for m in merges if m["priorId"] == prior]
    assert reported["patientId"] == survivor
    assert len(reported["studiesUnderPriorId"]) == 1  # still filed under the prior ID
    studies = orthanc.post("/tools/find", json={"Level": "Study", "Query": {"PatientID": prior}})
    assert len(studies.json()) == 1


# -- FHIR ------------------------------------------------------------------------------------


def test_patients_from_the_his_and_an_outage(
    orthanc: OrthancServer, hospital: FhirServer, dicom_file
) -> None:
    mrn = f"FH-{next(ACCESSIONS)}"
    hospital.add_patient(
        f"pat-{mrn}",
        mrn=mrn,
        family="Lovelace",
        given=("Ada",),
        birth_date="1815-12-10",
        gender="female",
    )
    orthanc.store(dicom_file("CT_small.dcm", PatientID=mrn, PatientName="LOVELACE^ADA"))
    found = orthanc.get("/api/patients?name=lovelace&birthdate=1815-12-10").json()["patients"]
    assert {"id": mrn, "name": "Lovelace^Ada", "birth_date": "18151210", "sex": "F"}.items() <= (
        next(p for p in found if p["id"] == mrn).items()
    )
    whole = orthanc.get(f"/api/patients/{mrn}").json()
    assert whole["name"] == "Lovelace^Ada"
    assert len(whole["studies"]) == 1 and whole["studies"][0]["status"] == "unread"
    asked = len(hospital.requests_to("Patient"))
    assert orthanc.get(f"/api/patients/{mrn}").status_code == 200
    assert len(hospital.requests_to("Patient")) == asked  # from the cache

    hospital.go_down()
    try:
        started = time.monotonic()
        down = orthanc.get("/api/patients?name=babbage")
        assert down.status_code == 502, down.text
        assert time.monotonic() - started < 2.5
        assert orthanc.get("/api/worklist").status_code == 200  # the rest goes on
    finally:
        hospital.come_up()
    hospital.delay = 4.0
    try:
        started = time.monotonic()
        slow = orthanc.get("/api/patients?name=turing")
        assert slow.status_code == 504, slow.text
        assert time.monotonic() - started < 2.5 + 1.0  # DeadlineSeconds, and some slack
        assert "error" in slow.json()
    finally:
        hospital.delay = 0.0


def test_service_requests_become_orders(orthanc: OrthancServer, hospital: FhirServer) -> None:
    accession = next(ACCESSIONS)
    hospital.add_patient(
        f"pat-{accession}", mrn=f"SR-{accession}", family="Curie", given=("Marie",)
    )
    hospital.add_service_request(
        f"sr-{accession}",
        patient=f"pat-{accession}",
        accession=accession,
        station="CT_FHIR_1",
        occurrence=f"{TODAY.isoformat()}T16:00:00",
        priority="urgent",
    )
    order = wait_for(
        lambda: orthanc.get(f"/api/orders?accession={accession}").json()["orders"],
        10,
        "the ServiceRequest polled",
    )[0]
    assert (order["source"], order["patient"]["name"], order["priority"]) == (
        "fhir",
        "Curie^Marie",
        "urgent",
    )
    hospital.update("ServiceRequest", f"sr-{accession}", status="revoked")
    wait_for(
        lambda: hl7_order(orthanc, accession)["status"] == "cancelled", 10, "the order revoked"
    )

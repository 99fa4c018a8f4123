"""HL7 v2 messages as commands, and their acknowledgements read back with python-hl7."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import hl7
import pytest

from hounsfield.his.hl7v2 import Condition, HL7Rejected, acknowledge, interpret, nak
from hounsfield.his.model import (
    CancelOrder,
    MergePatients,
    Order,
    Patient,
    PlaceOrder,
    Priority,
    Source,
    UpdatePatient,
)

US = {"application": "HOUNSFIELD", "facility": "RADIOLOGY"}


def segment(name: str, fields: dict[int, str]) -> str:
    """A segment with ``fields`` by number, the others empty."""
    values = [""] * max(fields)
    for number, value in fields.items():
        values[number - 1] = value
    return "|".join([name, *values])


def msh(kind: str, control_id: str, version: str = "2.3.1", charset: str = "") -> str:
    fields = {3: "RIS", 4: "ST_MARY^1.2.3^ISO", 5: "HOUNSFIELD", 6: "RADIOLOGY"}
    fields |= {7: "20240501101500", 9: kind, 10: control_id, 11: "P", 12: version}
    if charset:
        fields[18] = charset
    # MSH-1 is the field separator itself: MSH-2 is the first value after "MSH|".
    return "MSH|^~\\&|" + segment("MSH", fields).split("|", 3)[3]


PID = segment(
    "PID",
    {1: "1", 3: "MRN123^^^ST_MARY^MR~555-12^^^SSA", 5: "DOE^JANE^Q^JR^DR", 7: "19800214", 8: "F"},
)
ORC = segment("ORC", {1: "NW", 2: "PLC100^RIS", 3: "FIL200^PACS", 5: "SC", 9: "20240501101400"})
OBR = {
    1: "1",
    2: "PLC100^RIS",
    3: "FIL200^PACS",
    4: "CTHEAD^CT head without contrast^L",
    18: "ACC555",
    19: "RP1",
    20: "SPS1",
    21: "CT01",
    24: "CT",
    27: "^^^20240502083000^^S",
}


def message(*segments: str) -> bytes:
    return "\r".join(segments).encode()


def order(orc: str = ORC, obr: dict[int, str] | None = None, *more: str) -> bytes:
    obr_fields = OBR if obr is None else obr
    return message(
        msh("ORM^O01", "MSG0001"), PID, "PV1|1|O", orc, segment("OBR", obr_fields), *more
    )


def place(raw: bytes, default_station: str | None = None) -> PlaceOrder:
    result = interpret(raw, default_station=default_station)
    assert result.rejection is None, result.rejection.text
    assert isinstance(result.command, PlaceOrder)
    return result.command


def rejected(raw: bytes, default_station: str | None = None) -> HL7Rejected:
    result = interpret(raw, default_station=default_station)
    assert result.command is None
    assert result.rejection is not None
    return result.rejection


def test_a_new_order_with_every_field_mapped() -> None:
    result = interpret(order())
    assert (result.control_id, result.message_type, result.rejection) == (
        "MSG0001",
        "ORM^O01",
        None,
    )
    assert result.command == PlaceOrder(
        source=Source.HL7,
        source_id="PLC100",
        order=Order(
            patient=Patient(id="MRN123", name="DOE^JANE^Q^DR^JR", birth_date="19800214", sex="F"),
            accession_number="ACC555",
            modality="CT",
            requested_procedure="CT head without contrast",
            scheduled_station_ae="CT01",
            scheduled_time=datetime(2024, 5, 2, 8, 30),
            priority=Priority.STAT,
        ),
    )


def test_a_changed_order_is_placed_again() -> None:
    changed = order(ORC.replace("ORC|NW|", "ORC|XO|"), OBR | {24: "MR", 18: "ACC556"})
    command = place(changed)
    assert command.source_id == "PLC100"
    assert (command.order.modality, command.order.accession_number) == ("MR", "ACC556")


@pytest.mark.parametrize("control", ["CA", "OC", "DC"])
def test_cancellations_need_only_the_order_number(control: str) -> None:
    raw = message(msh("ORM^O01", "MSG0002"), PID, segment("ORC", {1: control, 2: "PLC100^RIS"}))
    assert interpret(raw).command == CancelOrder(source=Source.HL7, source_id="PLC100")


@pytest.mark.parametrize(
    ("orc", "obr", "expected"),
    [
        ({2: "P1^RIS", 3: "F1"}, {2: "P2", 3: "F2"}, "P1"),
        ({3: "F1"}, {2: "P2", 3: "F2"}, "P2"),
        ({3: "F1^PACS"}, {3: "F2"}, "F1"),
        ({5: "SC"}, {3: "F2^PACS"}, "F2"),
    ],
)
def test_the_order_number_placer_first_then_filler(
    orc: dict[int, str], obr: dict[int, str], expected: str
) -> None:
    fields = {k: v for k, v in OBR.items() if k not in (2, 3)} | obr
    assert place(order(segment("ORC", {1: "NW"} | orc), fields)).source_id == expected


def test_fallbacks_accession_from_obr3_procedure_code_default_station() -> None:
    fields = {k: v for k, v in OBR.items() if k not in (18, 21)} | {3: "F777^PACS", 4: "CTCHEST"}
    placed = place(order(obr=fields), default_station="CT_DEFAULT").order
    assert placed.accession_number == "F777"
    assert placed.requested_procedure == "CTCHEST"
    assert placed.scheduled_station_ae == "CT_DEFAULT"


def test_a_long_procedure_text_is_cut_to_64_characters() -> None:
    placed = place(order(obr=OBR | {4: "X^" + "A" * 80})).order
    assert placed.requested_procedure == "A" * 64


@pytest.mark.parametrize(
    ("obr", "orc", "tq1", "expected"),
    [
        ({27: "^^^202405020830"}, {}, None, datetime(2024, 5, 2, 8, 30)),
        (
            {},
            {},
            {7: "20240502083015.25+0200"},
            datetime(2024, 5, 2, 8, 30, 15, 250000, timezone(timedelta(hours=2))),
        ),
        (
            {},
            {7: "^^^20240502-0500"},
            None,
            datetime(2024, 5, 2, tzinfo=timezone(timedelta(hours=-5))),
        ),
        ({36: "20240503120000"}, {}, None, datetime(2024, 5, 3, 12)),
        ({6: "20240504"}, {}, None, datetime(2024, 5, 4)),
        ({}, {9: "20240505070000"}, None, datetime(2024, 5, 5, 7)),
    ],
)
def test_the_scheduled_time_from_the_first_field_given(
    obr: dict[int, str], orc: dict[int, str], tq1: dict[int, str] | None, expected: datetime
) -> None:
    fields = {k: v for k, v in OBR.items() if k != 27} | obr
    extra = [segment("TQ1", tq1)] if tq1 else []
    raw = order(segment("ORC", {1: "NW", 2: "PLC100"} | orc), fields, *extra)
    assert place(raw).order.scheduled_time == expected


@pytest.mark.parametrize(
    ("obr27", "orc7", "tq1", "expected"),
    [
        ("^^^20240502^^S", "", "", Priority.STAT),
        ("^^^20240502^^A", "", "", Priority.URGENT),
        ("^^^20240502^^R", "", "", Priority.ROUTINE),
        ("^^^20240502", "", "", Priority.ROUTINE),
        ("^^^20240502", "^^^^^A", "", Priority.URGENT),
        ("^^^20240502", "", "S^Stat^HL70485", Priority.STAT),
        ("^^^20240502^^P", "", "", Priority.ROUTINE),
    ],
)
def test_priorities(obr27: str, orc7: str, tq1: str, expected: Priority) -> None:
    orc = segment("ORC", {1: "NW", 2: "PLC100", 7: orc7 or "^"})
    extra = [segment("TQ1", {7: "20240502", 9: tq1})] if tq1 else []
    assert place(order(orc, OBR | {27: obr27}, *extra)).order.priority == expected


@pytest.mark.parametrize(
    ("sex", "expected"), [("M", "M"), ("F", "F"), ("O", "O"), ("A", "O"), ("U", ""), ("", "")]
)
def test_sex(sex: str, expected: str) -> None:
    pid = segment("PID", {3: "MRN1", 5: "DOE^JOHN", 8: sex})
    raw = message(msh("ADT^A08", "MSG0003"), "EVN|A08|20240501", pid)
    assert interpret(raw).command == UpdatePatient(
        Patient(id="MRN1", name="DOE^JOHN", sex=expected)
    )


@pytest.mark.parametrize(
    ("birth", "expected"),
    [("19800214", "19800214"), ("198002141230", "19800214"), ("1980", ""), ("", ""), ('""', "")],
)
def test_birth_dates(birth: str, expected: str) -> None:
    pid = segment("PID", {3: "MRN1", 5: "DOE^JOHN", 7: birth})
    command = interpret(message(msh("ADT^A08", "MSG0004"), pid)).command
    assert isinstance(command, UpdatePatient)
    assert command.patient.birth_date == expected


@pytest.mark.parametrize("trigger", ["A08", "A31"])
def test_patient_updates(trigger: str) -> None:
    pid = segment("PID", {3: "MRN9^^^ST_MARY", 5: "ROE^RICHARD^^III^MR", 7: "19501231", 8: "M"})
    result = interpret(message(msh(f"ADT^{trigger}^ADT_A01", "MSG0005", "2.5"), pid))
    assert result.message_type == f"ADT^{trigger}"
    assert result.command == UpdatePatient(
        Patient(id="MRN9", name="ROE^RICHARD^^MR^III", birth_date="19501231", sex="M")
    )


def test_a_merge_names_the_prior_identifier() -> None:
    pid = segment("PID", {3: "MRN9", 5: "ROE^RICHARD"})
    mrg = segment("MRG", {1: "TMP42^^^ST_MARY~OLD1"})
    raw = message(msh("ADT^A40^ADT_A39", "MSG0006", "2.5.1"), "EVN|A40", pid, mrg)
    assert interpret(raw).command == MergePatients(
        prior_id="TMP42", patient=Patient(id="MRN9", name="ROE^RICHARD")
    )


def test_character_sets() -> None:
    name = "MÜLLER^JOSÉ"
    pid = "PID|||MRN7||" + name
    for charset, codec in [("8859/1", "latin-1"), ("UNICODE UTF-8", "utf-8"), ("", "utf-8")]:
        raw = "\r".join([msh("ADT^A08", "MSG0007", charset=charset), pid]).encode(codec)
        assert interpret(raw).command == UpdatePatient(Patient(id="MRN7", name=name))
    # Without MSH-18, what is not UTF-8 is taken as Latin-1.
    raw = "\r".join([msh("ADT^A08", "MSG0007"), pid]).encode("latin-1")
    assert interpret(raw).command == UpdatePatient(Patient(id="MRN7", name=name))


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r\r"])
def test_segments_ending_in_lf_or_crlf(newline: str) -> None:
    raw = newline.join([msh("ADT^A08", "MSG0008"), "PID|||MRN7||DOE^J", ""]).encode()
    assert interpret(raw).command == UpdatePatient(Patient(id="MRN7", name="DOE^J"))


@pytest.mark.parametrize(
    ("raw", "location", "condition"),
    [
        (
            order(obr={k: v for k, v in OBR.items() if k not in (3, 18)} | {2: "P"}),
            "OBR-18",
            Condition.REQUIRED_FIELD_MISSING,
        ),
        (order(obr=OBR | {18: "A" * 17}), "OBR-18", Condition.DATA_TYPE),
        (order(obr=OBR | {24: "XX"}), "OBR-24", Condition.TABLE_VALUE),
        (order(obr=OBR | {24: ""}), "OBR-24", Condition.REQUIRED_FIELD_MISSING),
        (order(obr=OBR | {21: ""}), "OBR-21", Condition.REQUIRED_FIELD_MISSING),
        (order(obr=OBR | {27: "^^^2024-05-02"}), "OBR-27.4", Condition.DATA_TYPE),
        (order(obr=OBR | {27: "^^^20240231"}), "OBR-27.4", Condition.DATA_TYPE),
        (order(obr=OBR | {27: "^^^202405"}), "OBR-27.4", Condition.DATA_TYPE),
        (
            order(segment("ORC", {1: "NW", 2: "P"}), {k: v for k, v in OBR.items() if k != 27}),
            "OBR-27.4",
            Condition.REQUIRED_FIELD_MISSING,
        ),
        (order(segment("ORC", {1: ""})), "ORC-1", Condition.REQUIRED_FIELD_MISSING),
        (
            order(segment("ORC", {1: "NW"}), {4: "X", 24: "CT"}),
            "ORC-2",
            Condition.REQUIRED_FIELD_MISSING,
        ),
        (message(msh("ORM^O01", "M"), PID), "ORC-1", Condition.SEGMENT_SEQUENCE),
        (message(msh("ORM^O01", "M"), PID, ORC), "OBR-1", Condition.SEGMENT_SEQUENCE),
        (order(ORC, OBR, ORC, segment("OBR", OBR)), "ORC-1", Condition.SEGMENT_SEQUENCE),
        (message(msh("ADT^A08", "M"), "PID|||MRN1"), "PID-5", Condition.REQUIRED_FIELD_MISSING),
        (
            message(msh("ADT^A08", "M"), "PID|||MRN1||^^Q"),
            "PID-5",
            Condition.REQUIRED_FIELD_MISSING,
        ),
        (message(msh("ADT^A08", "M"), "PID|||MRN1||DOE\\S\\X"), "PID-5", Condition.DATA_TYPE),
        (message(msh("ADT^A08", "M"), "PID|||||DOE"), "PID-3", Condition.REQUIRED_FIELD_MISSING),
        (message(msh("ADT^A08", "M"), "PID|||MRN1||DOE|||X"), "PID-8", Condition.TABLE_VALUE),
        (message(msh("ADT^A08", "M"), "PID|||MRN1||DOE||19801345"), "PID-7", Condition.DATA_TYPE),
        (message(msh("ADT^A08", "M"), "PID|||MRN1||DOE||14-02-1980"), "PID-7", Condition.DATA_TYPE),
        (message(msh("ADT^A08", "M"), "EVN|A08"), "PID-1", Condition.SEGMENT_SEQUENCE),
        (message(msh("ADT^A40", "M"), "PID|||MRN1||DOE"), "MRG-1", Condition.SEGMENT_SEQUENCE),
        (
            message(msh("ADT^A40", "M"), "PID|||MRN1||DOE", "MRG|^^^X"),
            "MRG-1",
            Condition.REQUIRED_FIELD_MISSING,
        ),
        (
            message(msh("ADT^A40", "M"), "PID|||MRN1||DOE", "MRG|" + "9" * 65),
            "MRG-1",
            Condition.DATA_TYPE,
        ),
    ],
)
def test_wrong_or_missing_content_is_an_application_error(
    raw: bytes, location: str, condition: Condition
) -> None:
    rejection = rejected(raw)
    assert (rejection.code, rejection.location, rejection.condition) == ("AE", location, condition)
    assert rejection.text.startswith(location) or "segment" in rejection.text


@pytest.mark.parametrize(
    ("raw", "condition", "message_type"),
    [
        (message(msh("ADT^A01", "M"), "PID|||MRN1||DOE"), Condition.UNSUPPORTED_EVENT, "ADT^A01"),
        (
            message(msh("ORU^R01", "M"), "PID|||MRN1||DOE"),
            Condition.UNSUPPORTED_MESSAGE_TYPE,
            "ORU^R01",
        ),
        (message(msh("", "M")), Condition.UNSUPPORTED_MESSAGE_TYPE, ""),
        (order(segment("ORC", {1: "SC", 2: "P"})), Condition.TABLE_VALUE, "ORM^O01"),
        (b"hello, world", Condition.SEGMENT_SEQUENCE, ""),
        (b"", Condition.SEGMENT_SEQUENCE, ""),
        (b"\x0b\x1c\r", Condition.SEGMENT_SEQUENCE, ""),
        (b"MSH|^~\\~|RIS", Condition.SEGMENT_SEQUENCE, ""),  # two encoding characters alike
        (b"PID|||MRN1\rMSH|^~\\&|RIS", Condition.SEGMENT_SEQUENCE, ""),
        (order() + b"\r" + order(), Condition.SEGMENT_SEQUENCE, "ORM^O01"),
        (message(msh("ADT^A08", "M", charset="KS X 1001")), Condition.TABLE_VALUE, "ADT^A08"),
        (
            message(msh("ADT^A08", "M", charset="ASCII"), "PID|||1||É").replace(
                b"\xc3\x89", b"\xc9"
            ),
            Condition.DATA_TYPE,
            "ADT^A08",
        ),
    ],
)
def test_what_we_cannot_process_is_rejected(
    raw: bytes, condition: Condition, message_type: str
) -> None:
    result = interpret(raw)
    assert result.command is None
    assert result.rejection is not None
    assert (result.rejection.code, result.rejection.condition) == ("AR", condition)
    assert result.message_type == message_type


def parse_ack(ack: bytes, codec: str = "utf-8") -> hl7.Message:
    assert ack.endswith(b"\r")
    return hl7.parse(ack.decode(codec))


def test_an_acceptance_answers_the_sender() -> None:
    raw = order()
    result = interpret(raw)
    for source in (raw, result.message):
        ack = parse_ack(acknowledge(source, "AA", **US))
        assert [str(s[0]) for s in ack] == ["MSH", "MSA"]
        assert str(ack["MSH.F3"]) == "HOUNSFIELD"
        assert str(ack["MSH.F4"]) == "RADIOLOGY"
        assert str(ack.segment("MSH")(5)) == "RIS"
        assert str(ack.segment("MSH")(6)) == "ST_MARY^1.2.3^ISO"  # MSH-4 as sent
        assert str(ack.segment("MSH")(9)) == "ACK^O01"  # 2.3.1: no message structure
        assert str(ack["MSH.F10"]) not in ("", "MSG0001")
        assert str(ack["MSH.F11"]) == "P"
        assert str(ack["MSH.F12"]) == "2.3.1"
        assert str(ack["MSA.F1"]) == "AA"
        assert str(ack["MSA.F2"]) == "MSG0001"
    first, second = (parse_ack(acknowledge(raw, "AA", **US)) for _ in range(2))
    assert str(first["MSH.F10"]) != str(second["MSH.F10"])


def test_a_rejection_has_an_err_segment_in_the_message_version() -> None:
    bad_date = OBR | {27: "^^^2024-05-02"}
    for version, err in [
        ("2.5.1", "ERR||OBR^1^27^1^4|102^Data type error^HL70357|E||||OBR-27.4: "),
        ("2.3.1", "ERR|OBR^1^27^102&Data type error&HL70357"),
    ]:
        raw = message(msh("ORM^O01", "MSG0010", version), PID, ORC, segment("OBR", bad_date))
        result = interpret(raw)
        assert result.rejection is not None
        ack = parse_ack(acknowledge(raw, result.rejection, **US))
        assert str(ack["MSA.F1"]) == "AE"
        assert str(ack["MSA.F2"]) == "MSG0010"
        assert ack["MSA.F3"].startswith("OBR-27.4: 2024-05-02 is not a date")
        assert str(ack.segment("ERR")).startswith(err)
        if version == "2.5.1":
            assert str(ack.segment("MSH")(9)) == "ACK^O01^ACK"
            assert ack["ERR.F8"] == ack["MSA.F3"]


def test_texts_are_escaped() -> None:
    ack = parse_ack(acknowledge(order(), "AE", "accession A|B^C~D\\E&F in use", **US))
    assert ack["MSA.F3"] == "accession A|B^C~D\\E&F in use"


def test_garbage_is_answered_ar_without_a_control_id() -> None:
    rejection = rejected(b"\x00\x01 not HL7 at all")
    ack = parse_ack(acknowledge(b"\x00\x01 not HL7 at all", rejection, **US))
    assert str(ack["MSA.F1"]) == "AR"
    assert str(ack["MSA.F2"]) == ""
    assert str(ack.segment("MSH")(5)) == ""
    assert str(ack.segment("ERR")(3)).startswith("100^")


def test_an_unsupported_charset_is_answered_with_its_control_id() -> None:
    raw = message(msh("ADT^A08", "MSG0011", charset="ISO IR87"), "PID|||1||DOE")
    result = interpret(raw)
    assert (result.control_id, result.message, result.rejection is not None) == (
        "MSG0011",
        None,
        True,
    )
    ack = parse_ack(acknowledge(raw, "AR", "unsupported", **US))
    assert (str(ack["MSA.F1"]), str(ack["MSA.F2"])) == ("AR", "MSG0011")


def test_an_answer_in_the_messages_character_set() -> None:
    raw = "\r".join([msh("ADT^A08", "MSG0012", charset="8859/1"), "PID|||1||MÜLLER"]).encode(
        "latin-1"
    )
    ack = acknowledge(raw, "AE", "MÜLLER unknown", **US)
    parsed = parse_ack(ack, "latin-1")
    assert parsed["MSA.F3"] == "MÜLLER unknown"
    assert str(parsed.segment("MSH")(18)) == "8859/1"


def test_nak_is_an_internal_error_reject() -> None:
    ack = parse_ack(nak(order(), **US))
    assert (str(ack["MSA.F1"]), str(ack["MSA.F2"]), ack["MSA.F3"]) == (
        "AR",
        "MSG0001",
        "internal error",
    )
    assert str(ack.segment("ERR")(1)).endswith("207&Application internal error&HL70357")

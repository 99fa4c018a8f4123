"""HL7 v2 messages from the hospital (v2.3 to v2.5.1) as our commands, and their answers.

Parsing is python-hl7's; what each field means is IHE Radiology Scheduled Workflow's
(RAD-2/RAD-4 orders, RAD-1/RAD-12 patient updates, HL7 2.3.1 with the 2.5 equivalents):

``ORM^O01`` (HL7 chapter 4), one order (one ORC, one OBR) per message. ORC-1, order
control (table 0119): ``NW`` new and ``XO`` changed place the order (``PlaceOrder``);
``CA``, ``OC`` and ``DC`` (cancel, cancelled, discontinued) cancel it (``CancelOrder``).
The order is known to us by its placer order number, ORC-2 (else OBR-2), or failing both
by its filler number, ORC-3 (else OBR-3); the entity identifier (first component) only.

=========================  ==================================================================
Order                      HL7 field
=========================  ==================================================================
patient                    PID, as below
accession number           OBR-18, placer field 1 (IHE RAD-4); else OBR-3.1, the filler order
                           number, where many RIS put it
requested procedure        OBR-4 universal service ID: its text (.2), else its code (.1);
                           cut to 64 characters
modality                   OBR-24, diagnostic service section ID: a DICOM modality (CT, MR...)
scheduled station AE       OBR-21, filler field 2 (unused by IHE: ours), else the configured
                           default station
scheduled time             the first given of OBR-27.4 (quantity/timing start), TQ1-7 (2.5),
                           ORC-7.4, OBR-36 (scheduled date/time), OBR-6 (requested date/
                           time), ORC-9 (date/time of transaction: "now")
priority                   the first given of OBR-27.6, ORC-7.6, TQ1-9 (table 0485):
                           S stat, A (ASAP) urgent, anything else (R, P, C, T...) routine
=========================  ==================================================================

``ADT^A08`` (update patient information) and ``ADT^A31`` (update person information),
chapter 3: ``UpdatePatient`` with PID. ``ADT^A40`` (merge patient, patient identifier
list): ``MergePatients``, the prior identifier MRG-1 (first repetition, first component)
now being PID's patient.

PID (chapter 3): PID-3, first repetition, first component, the patient ID; PID-5, first
repetition, XPN ``family^given^middle^suffix^prefix`` as the DICOM person name
``FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX`` (prefix and suffix change places); PID-7, the date of
birth's first 8 digits (a year or month alone says no day: no date); PID-8, sex
(table 0001): M, F, O as such, A (ambiguous) as O, U and N as unknown.

Answers are original-mode acknowledgements (chapter 2; v2.5 2.9.2): ``AA`` accepted; ``AR``
rejected for what we cannot process whatever the content (not HL7, no MSH, an unsupported
message type, trigger event, order control or character set, or an internal error, which
the sender may retry); ``AE`` a supported message whose content is wrong or missing. An
``ERR`` segment (v2.5: ERR-2/3/4/8; earlier: ERR-1) names the field and the condition
(table 0357).

Character sets (MSH-18, table 0211): ASCII, ISO 8859 parts 1 to 9 and 15, UNICODE UTF-8;
without MSH-18, UTF-8, else Latin-1. Segments end with CR; LF and CR LF are taken too.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import IntEnum
from typing import Any, Literal, TypeVar

import hl7
from pydantic import BaseModel, TypeAdapter, ValidationError

from hounsfield.his.model import (
    CancelOrder,
    Command,
    Identifier,
    MergePatients,
    Order,
    Patient,
    PlaceOrder,
    Priority,
    Source,
    UpdatePatient,
)

AckCode = Literal["AA", "AE", "AR"]
_Model = TypeVar("_Model", bound=BaseModel)


class Condition(IntEnum):
    """Message error condition codes (HL7 table 0357), as the ERR segment gives them."""

    SEGMENT_SEQUENCE = 100
    REQUIRED_FIELD_MISSING = 101
    DATA_TYPE = 102
    TABLE_VALUE = 103
    UNSUPPORTED_MESSAGE_TYPE = 200
    UNSUPPORTED_EVENT = 201
    INTERNAL = 207


_CONDITION_TEXT = {
    Condition.SEGMENT_SEQUENCE: "Segment sequence error",
    Condition.REQUIRED_FIELD_MISSING: "Required field missing",
    Condition.DATA_TYPE: "Data type error",
    Condition.TABLE_VALUE: "Table value not found",
    Condition.UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    Condition.UNSUPPORTED_EVENT: "Unsupported event code",
    Condition.INTERNAL: "Application internal error",
}


class HL7Rejected(Exception):
    """Why a message is refused: ``AR`` when we cannot process it at all, ``AE`` when its
    content is wrong; ``location`` (``PID-5``, ``OBR-27.4``) and ``condition`` go in ERR."""

    def __init__(
        self,
        code: Literal["AE", "AR"],
        text: str,
        *,
        condition: Condition = Condition.DATA_TYPE,
        location: str = "",
    ) -> None:
        super().__init__(text)
        self.code: Literal["AE", "AR"] = code
        self.text = text
        self.condition = condition
        self.location = location


@dataclass(frozen=True)
class Interpretation:
    """One message read: exactly one of ``command`` and ``rejection`` is set.

    ``control_id`` (MSH-10) and ``message_type`` (MSH-9 as ``CODE^TRIGGER``) are "" where
    the message has none; ``message`` is None where it could not be parsed."""

    control_id: str
    message_type: str
    command: Command | None
    rejection: HL7Rejected | None
    message: hl7.Message | None


# DICOM PS3.3 C.7.3.1.1.1: the modalities a scanner acquires with (OT: any other).
# fmt: off
_MODALITIES = frozenset({
    "BI", "BMD", "CR", "CT", "DG", "DX", "ECG", "EPS", "ES", "GM", "HD", "IO", "IVOCT", "IVUS",
    "LS", "MG", "MR", "NM", "OAM", "OCT", "OP", "OPM", "OPT", "OPV", "OSS", "OT", "PT", "PX",
    "RF", "RG", "RTIMAGE", "SM", "TG", "US", "XA", "XC",
})
# fmt: on
_PLACE = frozenset({"NW", "XO"})
_CANCEL = frozenset({"CA", "OC", "DC"})
_SEX = {"": "", "M": "M", "F": "F", "O": "O", "A": "O", "U": "", "N": ""}
_PRIORITY = {"S": Priority.STAT, "A": Priority.URGENT}
_CHARSETS = {
    "ASCII": "ascii",
    **{f"8859/{part}": f"iso8859-{part}" for part in (*range(1, 10), 15)},
    "UNICODE UTF-8": "utf-8",
}
# HL7 DTM: YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]
_DTM = re.compile(
    r"(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?)?)?)?)?"
    r"(?:([+-])(\d{2})(\d{2}))?"
)
# MSH-1 then MSH-2, the encoding characters (component, repetition, escape, subcomponent
# and, from v2.7, truncation).
_MSH_START = re.compile(r"MSH([^\w\s])([^\w\s]{4,5}?)(?:\1|$)")
_PATIENT_FIELDS = {"id": "PID-3", "name": "PID-5", "birth_date": "PID-7", "sex": "PID-8"}
_ORDER_FIELDS = {
    "accession_number": "OBR-18",
    "modality": "OBR-24",
    "requested_procedure": "OBR-4",
    "scheduled_station_ae": "OBR-21",
}
_IDENTIFIER: TypeAdapter[str] = TypeAdapter(Identifier)


def interpret(message: bytes, *, default_station: str | None = None) -> Interpretation:
    """Read one message (without its MLLP framing) as a command, or why not.

    ``default_station`` is the scheduled station AE title of orders without OBR-21."""
    try:
        parsed = _parse(message)
    except HL7Rejected as rejection:
        header = _Header.of(_loose_text(message))
        return Interpretation(header.control_id, header.message_type, None, rejection, None)
    msh = parsed[0]
    control_id = _value(msh, 10)
    code, trigger = _value(msh, 9, 1).upper(), _value(msh, 9, 2).upper()
    message_type = f"{code}^{trigger}" if code else ""
    try:
        command = _command(parsed, code, trigger, default_station)
    except HL7Rejected as rejection:
        return Interpretation(control_id, message_type, None, rejection, parsed)
    return Interpretation(control_id, message_type, command, None, parsed)


def acknowledge(
    source: bytes | hl7.Message,
    code: AckCode | HL7Rejected,
    text: str = "",
    *,
    application: str,
    facility: str,
) -> bytes:
    """The original-mode acknowledgement of ``source`` (chapter 2; v2.5 2.9.2): MSH, MSA
    and, for a rejection, ERR; in the message's character set and delimiters.

    MSH: we (``application``, ``facility``) are MSH-3/4, the sender's MSH-3/4 are MSH-5/6;
    MSH-9 ``ACK^<trigger>`` (``^ACK``, the message structure, from v2.4); a new MSH-10;
    MSH-11, MSH-12 and MSH-18 echoed. MSA-1 the code, MSA-2 the sender's MSH-10, MSA-3 the
    text. A rejection as ``code`` gives its code and text, and an ERR segment. A message
    without a readable MSH still gets an answer, its fields empty (version 2.5.1)."""
    rejection = code if isinstance(code, HL7Rejected) else None
    if rejection is not None:
        code, text = rejection.code, rejection.text
    raw = str(source) if isinstance(source, hl7.Message) else _loose_text(source)
    header = _Header.of(raw)
    version = header.field(12) or "2.5.1"
    modern = _version(version)
    trigger = header.component(9, 2)
    if modern >= (2, 4):
        message_type = f"ACK^{trigger}^ACK"
    else:
        message_type = f"ACK^{trigger}" if trigger else "ACK"
    msh = [
        "MSH",
        header.encoding,
        header.escape(application),
        header.escape(facility),
        header.field(3),
        header.field(4),
        datetime.now().astimezone().strftime("%Y%m%d%H%M%S%z"),
        "",
        message_type,
        secrets.token_hex(10).upper(),
        header.field(11) or "P",
        version,
    ]
    if header.field(18):
        msh += [""] * 5 + [header.field(18)]
    segments = [
        header.separator.join(msh),
        header.separator.join(["MSA", code, header.field(10), header.escape(text[:80])]),
    ]
    if rejection is not None:
        segments.append(header.error_segment(rejection, modern >= (2, 5)))
    codec = _CHARSETS.get(header.charset, "utf-8")
    return ("\r".join(segments) + "\r").encode(codec, errors="replace")


def nak(message: bytes, text: str = "internal error", *, application: str, facility: str) -> bytes:
    """``AR`` for a message we failed to process for reasons of our own (an exception, a
    message too large): chapter 2 lets the sender try again later."""
    rejection = HL7Rejected("AR", text, condition=Condition.INTERNAL)
    return acknowledge(message, rejection, application=application, facility=facility)


@dataclass(frozen=True)
class _Header:
    """A message's MSH as sent, escapes and components kept (``field(n)`` is MSH-n): enough
    to answer a message that could not be parsed, and the separators to answer in."""

    fields: tuple[str, ...]

    @classmethod
    def of(cls, text: str) -> _Header:
        first = text.split("\r", 1)[0]
        if not _begins_with_msh(first):
            return cls(("MSH", "|", "^~\\&"))
        return cls(("MSH", first[3], *first[4:].split(first[3])))

    def field(self, number: int) -> str:
        return self.fields[number] if number < len(self.fields) else ""

    def component(self, number: int, component: int) -> str:
        parts = self.field(number).split(self.encoding[1])[0].split(self.encoding[0])
        return parts[component - 1] if component <= len(parts) else ""

    @property
    def separator(self) -> str:
        return self.fields[1]

    @property
    def encoding(self) -> str:
        return self.fields[2]

    @property
    def control_id(self) -> str:
        return self.field(10)

    @property
    def message_type(self) -> str:
        code = self.component(9, 1)
        return f"{code}^{self.component(9, 2)}" if code else ""

    @property
    def charset(self) -> str:
        return self.field(18).split(self.encoding[1])[0].strip().upper()

    def escape(self, text: str) -> str:
        """``text`` with the delimiters as escape sequences (chapter 2: \\F\\ \\S\\ \\R\\ \\E\\
        \\T\\), control characters as spaces."""
        component, repetition, escape, subcomponent = self.encoding[:4]
        codes = {
            self.separator: "F",
            component: "S",
            repetition: "R",
            escape: "E",
            subcomponent: "T",
        }
        return "".join(
            f"{escape}{codes[c]}{escape}" if c in codes else " " if c < " " else c for c in text
        )

    def error_segment(self, rejection: HL7Rejected, v25: bool) -> str:
        """ERR: v2.5's location (ERR-2), code (ERR-3), severity (ERR-4) and user message
        (ERR-8); before, ERR-1 ``segment^sequence^field^code&text&HL70357``."""
        component, subcomponent = self.encoding[0], self.encoding[3]
        match = re.fullmatch(r"([A-Z0-9]{3})-(\d+)(?:\.(\d+))?", rejection.location)
        segment, field, part = match.groups() if match else ("", "", None)
        label = _CONDITION_TEXT[rejection.condition]
        if not v25:
            code = subcomponent.join([str(int(rejection.condition)), label, "HL70357"])
            where = [segment, "1" if segment else "", field, code]
            return self.separator.join(["ERR", component.join(where)])
        where = [segment, "1", field, "1", part] if part else [segment, "1", field]
        code = component.join([str(int(rejection.condition)), label, "HL70357"])
        location = component.join(where) if segment else ""
        fields = ["ERR", "", location, code, "E", "", "", "", self.escape(rejection.text)]
        return self.separator.join(fields)


def _begins_with_msh(text: str) -> bool:
    """Whether ``text`` begins with an MSH whose separators python-hl7 can split by: none a
    letter, digit or space, no two the same (chapter 2, message delimiters)."""
    match = _MSH_START.match(text)
    return match is not None and len(set(match[1] + match[2])) == len(match[1] + match[2])


def _version(text: str) -> tuple[int, ...]:
    """MSH-12's version ID (``2.5.1``) as numbers; () where it is not one."""
    match = re.match(r"\d+(\.\d+)*", text)
    return tuple(int(part) for part in match.group().split(".")) if match else ()


def _segments_of(raw: bytes) -> bytes:
    """Segments separated by CR alone (LF and CR LF taken), empty ones dropped."""
    lines = raw.replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r")
    return b"\r".join(line for line in lines if line.strip()).strip()


def _text(raw: bytes) -> str:
    """The message as text, in MSH-18's character set, else UTF-8, else Latin-1."""
    raw = _segments_of(raw)
    charset = _Header.of(raw.decode("latin-1")).charset
    if not charset:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
    codec = _CHARSETS.get(charset)
    if codec is None:
        raise HL7Rejected(
            "AR",
            f"character set {charset} not supported",
            condition=Condition.TABLE_VALUE,
            location="MSH-18",
        )
    try:
        return raw.decode(codec)
    except UnicodeDecodeError:
        raise HL7Rejected("AR", f"the message is not {charset} text", location="MSH-18") from None


def _loose_text(raw: bytes) -> str:
    """The message as text whatever its bytes: enough to find its MSH."""
    try:
        return _text(raw)
    except HL7Rejected:
        return _segments_of(raw).decode("latin-1")


def _parse(raw: bytes) -> hl7.Message:
    text = _text(raw)
    if not _begins_with_msh(text):
        raise HL7Rejected(
            "AR",
            "not an HL7 v2 message: it must begin with an MSH segment",
            condition=Condition.SEGMENT_SEQUENCE,
            location="MSH-1",
        )
    if "\rMSH" in text:
        raise HL7Rejected(
            "AR",
            "one message at a time: batches are not taken",
            condition=Condition.SEGMENT_SEQUENCE,
        )
    return hl7.parse(text)


def _value(segment: hl7.Segment | None, field: int, component: int = 1, repetition: int = 1) -> str:
    """A component's text, unescaped (its first subcomponent); "" where absent, and for
    HL7's explicit null ``""``."""
    if segment is None:
        return ""
    try:
        value = segment.extract_field(
            field_num=field, repeat_num=repetition, component_num=component, subcomponent_num=1
        )
    except IndexError:
        return ""
    value = value.strip()
    return "" if value == '""' else value


def _segment(message: hl7.Message, name: str, *, required: bool) -> hl7.Segment | None:
    """The message's one ``name`` segment: more than one is a message we do not take."""
    found = [segment for segment in message if str(segment[0]) == name]
    if len(found) > 1:
        raise HL7Rejected(
            "AE",
            f"more than one {name} segment: one {name} per message is taken",
            condition=Condition.SEGMENT_SEQUENCE,
            location=f"{name}-1",
        )
    if not found and required:
        raise HL7Rejected(
            "AE", f"no {name} segment", condition=Condition.SEGMENT_SEQUENCE, location=f"{name}-1"
        )
    return found[0] if found else None


def _missing(location: str, what: str) -> HL7Rejected:
    return HL7Rejected(
        "AE", f"{location}: {what}", condition=Condition.REQUIRED_FIELD_MISSING, location=location
    )


def _command(message: hl7.Message, code: str, trigger: str, default_station: str | None) -> Command:
    if code == "ORM" and trigger == "O01":
        return _order(message, default_station)
    if code == "ADT" and trigger in ("A08", "A31"):
        return UpdatePatient(_patient(message))
    if code == "ADT" and trigger == "A40":
        mrg = _segment(message, "MRG", required=True)
        prior = _value(mrg, 1)
        if not prior:
            raise _missing("MRG-1", "no prior patient identifier")
        try:
            prior = _IDENTIFIER.validate_python(prior)
        except ValidationError as error:
            raise _invalid("MRG-1", error) from None
        return MergePatients(prior_id=prior, patient=_patient(message))
    if code in ("ORM", "ADT"):
        raise HL7Rejected(
            "AR",
            f"unsupported message type {code}^{trigger}",
            condition=Condition.UNSUPPORTED_EVENT,
            location="MSH-9",
        )
    raise HL7Rejected(
        "AR",
        f"unsupported message type {code}^{trigger}",
        condition=Condition.UNSUPPORTED_MESSAGE_TYPE,
        location="MSH-9",
    )


def _order(message: hl7.Message, default_station: str | None) -> PlaceOrder | CancelOrder:
    orc = _segment(message, "ORC", required=True)
    obr = _segment(message, "OBR", required=False)
    control = _value(orc, 1).upper()
    if not control:
        raise _missing("ORC-1", "no order control")
    if control not in _PLACE | _CANCEL:
        raise HL7Rejected(
            "AR",
            f"order control {control} not supported (NW, XO, CA, OC, DC)",
            condition=Condition.TABLE_VALUE,
            location="ORC-1",
        )
    source_id = _value(orc, 2) or _value(obr, 2) or _value(orc, 3) or _value(obr, 3)
    if not source_id:
        raise _missing("ORC-2", "no order number (ORC-2, OBR-2, ORC-3 or OBR-3)")
    if control in _CANCEL:
        return CancelOrder(source=Source.HL7, source_id=source_id)
    if obr is None:
        raise HL7Rejected(
            "AE", "no OBR segment", condition=Condition.SEGMENT_SEQUENCE, location="OBR-1"
        )
    patient = _patient(message)
    tq1 = next((segment for segment in message if str(segment[0]) == "TQ1"), None)
    accession = _value(obr, 18) or _value(obr, 3)
    if not accession:
        raise _missing("OBR-18", "no accession number (OBR-18 or OBR-3)")
    modality = _value(obr, 24).upper()
    if not modality:
        raise _missing("OBR-24", "no modality")
    if modality not in _MODALITIES:
        raise HL7Rejected(
            "AE",
            f"OBR-24: {modality} is not a DICOM modality",
            condition=Condition.TABLE_VALUE,
            location="OBR-24",
        )
    station = _value(obr, 21) or default_station
    if not station:
        raise _missing("OBR-21", "no scheduled station AE title, and no default station")
    priority = _value(obr, 27, 6) or _value(orc, 7, 6) or _value(tq1, 9)
    order = _build(
        Order,
        _ORDER_FIELDS,
        patient=patient,
        accession_number=accession,
        modality=modality,
        requested_procedure=(_value(obr, 4, 2) or _value(obr, 4, 1))[:64],
        scheduled_station_ae=station,
        scheduled_time=_scheduled_time(orc, obr, tq1),
        priority=_PRIORITY.get(priority.upper(), Priority.ROUTINE),
    )
    return PlaceOrder(source=Source.HL7, source_id=source_id, order=order)


def _scheduled_time(orc: hl7.Segment | None, obr: hl7.Segment, tq1: hl7.Segment | None) -> datetime:
    candidates = [
        ("OBR-27.4", _value(obr, 27, 4)),
        ("TQ1-7", _value(tq1, 7)),
        ("ORC-7.4", _value(orc, 7, 4)),
        ("OBR-36", _value(obr, 36)),
        ("OBR-6", _value(obr, 6)),
        ("ORC-9", _value(orc, 9)),
    ]
    for location, value in candidates:
        if value:
            return _moment(value, location)
    raise _missing("OBR-27.4", "no scheduled time (OBR-27.4, TQ1-7, ORC-7.4, OBR-36, OBR-6)")


def _moment(value: str, location: str) -> datetime:
    """An HL7 DTM to the day at least, as a datetime (aware when it has an offset)."""
    match = _DTM.fullmatch(value)
    if match is None or match[3] is None:
        raise HL7Rejected(
            "AE",
            f"{location}: {value} is not a date and time (YYYYMMDD[HHMM[SS]][+ZZZZ])",
            location=location,
        )
    year, month, day, hour, minute, second, fraction, sign, zone_h, zone_m = match.groups()
    try:
        zone = None
        if sign:
            offset = timedelta(hours=int(zone_h), minutes=int(zone_m))
            zone = timezone(-offset if sign == "-" else offset)
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
            tzinfo=zone,
        )
    except ValueError:
        raise HL7Rejected("AE", f"{location}: {value} is no such time", location=location) from None


def _patient(message: hl7.Message) -> Patient:
    pid = _segment(message, "PID", required=True)
    patient_id = _value(pid, 3)
    if not patient_id:
        raise _missing("PID-3", "no patient identifier")
    family, given, middle, suffix, prefix = (_value(pid, 5, part) for part in range(1, 6))
    if not (family or given):
        raise _missing("PID-5", "no patient name")
    if any("^" in part for part in (family, given, middle, suffix, prefix)):  # sent as \S\
        raise HL7Rejected("AE", "PID-5: a part of the name holds a ^", location="PID-5")
    return _build(
        Patient,
        _PATIENT_FIELDS,
        id=patient_id,
        name="^".join([family, given, middle, prefix, suffix]).rstrip("^"),
        birth_date=_birth_date(_value(pid, 7)),
        sex=_sex(_value(pid, 8)),
    )


def _birth_date(value: str) -> str:
    if not value:
        return ""
    match = _DTM.fullmatch(value)
    if match is None:
        raise HL7Rejected("AE", f"PID-7: {value} is not a date (YYYYMMDD)", location="PID-7")
    if match[3] is None:  # a year or a month: no DICOM date
        return ""
    try:
        return datetime(int(match[1]), int(match[2]), int(match[3])).strftime("%Y%m%d")
    except ValueError:
        raise HL7Rejected("AE", f"PID-7: {value} is no such day", location="PID-7") from None


def _sex(value: str) -> str:
    try:
        return _SEX[value.upper()]
    except KeyError:
        raise HL7Rejected(
            "AE",
            f"PID-8: sex {value} is not in HL7 table 0001 (M, F, O, U, A, N)",
            condition=Condition.TABLE_VALUE,
            location="PID-8",
        ) from None


def _build(model: type[_Model], locations: dict[str, str], **values: Any) -> _Model:
    """``model(**values)``, its validation errors as ``AE`` naming the HL7 field."""
    try:
        return model(**values)
    except ValidationError as error:
        location = locations.get(str(error.errors()[0]["loc"][0]), "")
        raise _invalid(location, error) from None


def _invalid(location: str, error: ValidationError) -> HL7Rejected:
    reason = error.errors()[0]["msg"].removeprefix("Value error, ")
    return HL7Rejected("AE", f"{location}: {reason}", location=location)

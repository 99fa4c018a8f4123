"""The DICOM Modality Worklist, answered from the order book's scheduled orders.

A scanner asks with a C-FIND of the Modality Worklist Information Model - FIND (PS3.4
Annex K, SOP class 1.2.840.10008.5.1.4.31); Orthanc hands the plugin the identifier as a
DICOM file. ``parse_query`` reads its matching keys into a ``WorklistQuery``, whose
``to_filter`` is what the order book's SQL can select exactly and whose ``matches`` has
the final word (the PS3.4 C.2.2.2 matching rules, in Python); ``item`` is the answer for
one order, with the return keys of PS3.4 K.6.1.2 that IHE Scheduled Workflow needs.
Orthanc keeps of each answer only the attributes the query asked for.

The identifier comes from the network: its structure is walked without recursion and
bounded in depth (``summarize``) before pydicom, which recurses into sequences, parses it.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from hounsfield.his.model import OrderStatus, Priority
from hounsfield.his.orders import OrderFilter, OrderRecord
from hounsfield.intake.structure import LONG_VRS, SHORT_VRS, summarize
from hounsfield.untrusted import InputRefused

MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
# Selected in SQL before ``matches`` filters by name; a department's scheduled orders for
# one query stay far below it, so the limit never cuts an answer that matters.
SEARCH_LIMIT = 1000
# RequestedProcedurePriority's enumerated values (PS3.3 C.4.11): urgent is HIGH.
PRIORITIES = {Priority.STAT: "STAT", Priority.URGENT: "HIGH", Priority.ROUTINE: "ROUTINE"}
# Our orders name no performing physician: the item says so with an empty value, and a
# query asking for one (a required matching key, PS3.4 K.6.1.2) matches against it.
PERFORMING_PHYSICIAN = ""

# The matching keys read, with their VR (PS3.6): at the top level of the identifier...
TOP_KEYS = {
    "PatientID": "LO",
    "PatientName": "PN",
    "AccessionNumber": "SH",
    "RequestedProcedureID": "SH",
    "StudyInstanceUID": "UI",
}
# ... and in the Scheduled Procedure Step Sequence's one item.
STEP_KEYS = {
    "Modality": "CS",
    "ScheduledStationAETitle": "AE",
    "ScheduledPerformingPhysicianName": "PN",
    "ScheduledProcedureStepStartDate": "DA",
    "ScheduledProcedureStepStartTime": "TM",
}
_DATE = re.compile(r"\d{8}")
# HH, HHMM, HHMMSS or HHMMSS.F to HHMMSS.FFFFFF (PS3.5 6.2 TM; 60 is a leap second).
_TIME = re.compile(r"(?:[01]\d|2[0-3])(?:[0-5]\d(?:(?:[0-5]\d|60)(?:\.\d{1,6})?)?)?")
_UID = re.compile(r"(?:0|[1-9]\d*)(?:\.(?:0|[1-9]\d*))*")
# The latest time of day, digit by digit (HHMMSSFFFFFF): what a partial time's end pads with.
_LATEST = "235959999999"


class WorklistQueryError(InputRefused):
    """A C-FIND identifier that cannot be answered; the caller replies with a failure
    status, the message saying why."""


@dataclass(frozen=True)
class WorklistQuery:
    """The matching keys of one worklist query; an empty value is universal matching.

    String keys keep the ``*`` and ``?`` wildcards as asked; the date range holds
    YYYYMMDD bounds and the time range HHMMSSFFFFFF bounds, both inclusive, ``None`` for
    an open end.
    """

    patient_id: str = ""
    patient_name: str = ""
    accession: str = ""
    requested_procedure_id: str = ""
    study_uids: tuple[str, ...] = ()
    modality: str = ""
    station_ae: str = ""
    performing_physician: str = ""
    date_from: str | None = None
    date_to: str | None = None
    time_from: str | None = None
    time_to: str | None = None

    def matches(self, record: OrderRecord) -> bool:
        """Whether the scheduled order ``record`` answers the query (PS3.4 C.2.2.2).

        Date and time are matched each on its own, not as one combined range: combined
        matching is only for associations that negotiated it (PS3.4 C.2.2.2.5), which
        Orthanc does not tell the plugin.
        """
        order, patient = record.order, record.order.patient
        when = _local(order.scheduled_time)
        return (
            record.status is OrderStatus.SCHEDULED
            and _matches(self.patient_id, patient.id)
            and _matches_name(self.patient_name, patient.name)
            and _matches(self.accession, order.accession_number)
            and _matches(self.requested_procedure_id, requested_procedure_id(record))
            and (not self.study_uids or record.study_uid in self.study_uids)
            and _matches(self.modality, order.modality)
            and _matches(self.station_ae, order.scheduled_station_ae)
            and _matches_name(self.performing_physician, PERFORMING_PHYSICIAN)
            and _within(f"{when:%Y%m%d}", self.date_from, self.date_to)
            and _within(f"{when:%H%M%S%f}", self.time_from, self.time_to)
        )

    def to_filter(self) -> OrderFilter:
        """What SQL can select without changing the answer: scheduled orders in the date
        range, and the keys given as one value without wildcards (compared exactly, as
        single value matching is case-sensitive). Names are left to ``matches``."""
        return OrderFilter(
            statuses=(OrderStatus.SCHEDULED,),
            date_from=self.date_from,
            date_to=self.date_to,
            modality=_exact(self.modality),
            station_ae=_exact(self.station_ae),
            patient_id=_exact(self.patient_id),
            accession=_exact(self.accession),
            limit=SEARCH_LIMIT,
        )


def parse_query(data: bytes, *, max_depth: int = 8) -> WorklistQuery:
    """The matching keys of ``data``, a C-FIND identifier as a DICOM file (with file meta
    information, as Orthanc writes it, or a bare data set).

    WorklistQueryError when it is not a data set, nests sequences deeper than
    ``max_depth``, or holds a matching key that is malformed.
    """
    data = _with_file_meta(data)
    summary = summarize(data, max_depth=max_depth)
    if summary.problem is not None:
        raise WorklistQueryError(
            f"malformed worklist query: {summary.problem}", limit=summary.limit
        )
    if not summary.complete:
        # The walk could not vouch for the depth of what follows: pydicom must not parse it.
        raise WorklistQueryError("the worklist query is not a data set this server can read")
    top, step = _read(data)
    date_from, date_to = _range(
        "ScheduledProcedureStepStartDate",
        step["ScheduledProcedureStepStartDate"],
        _day,
        _day,
        "a date or date range (YYYYMMDD, A-B, A-, -B)",
    )
    time_from, time_to = _range(
        "ScheduledProcedureStepStartTime",
        step["ScheduledProcedureStepStartTime"],
        _earliest_time,
        _latest_time,
        "a time or time range (HHMMSS.FFFFFF or its start, A-B, A-, -B)",
    )
    return WorklistQuery(
        patient_id=_single("PatientID", top["PatientID"]),
        patient_name=_single("PatientName", top["PatientName"]),
        accession=_single("AccessionNumber", top["AccessionNumber"]),
        requested_procedure_id=_single("RequestedProcedureID", top["RequestedProcedureID"]),
        study_uids=_uids(top["StudyInstanceUID"]),
        modality=_single("Modality", step["Modality"]),
        station_ae=_single("ScheduledStationAETitle", step["ScheduledStationAETitle"]),
        performing_physician=_single(
            "ScheduledPerformingPhysicianName", step["ScheduledPerformingPhysicianName"]
        ),
        date_from=date_from,
        date_to=date_to,
        time_from=time_from,
        time_to=time_to,
    )


def requested_procedure_id(record: OrderRecord) -> str:
    """The accession number: an order is one requested procedure with one step, and the
    accession (unique in the order book, an SH like this ID) is what the department sees
    and what comes back in the images and in MPPS."""
    return record.order.accession_number


def item(record: OrderRecord) -> bytes:
    """The worklist item for ``record``: a DICOM file, explicit VR little endian, in UTF-8
    (ISO_IR 192) since names may carry accents. The Study Instance UID is the order's
    own, which the scanner must use, so that the arriving study finds its order."""
    order, patient = record.order, record.order.patient
    when = _local(order.scheduled_time)
    step = Dataset()
    step.Modality = order.modality
    step.ScheduledStationAETitle = order.scheduled_station_ae
    step.ScheduledProcedureStepStartDate = f"{when:%Y%m%d}"
    step.ScheduledProcedureStepStartTime = f"{when:%H%M%S}"
    step.ScheduledProcedureStepDescription = order.requested_procedure
    step.ScheduledProcedureStepID = order.accession_number  # one step per procedure
    step.ScheduledPerformingPhysicianName = PERFORMING_PHYSICIAN
    step.ScheduledProcedureStepStatus = "SCHEDULED"

    dataset = Dataset()
    dataset.SpecificCharacterSet = "ISO_IR 192"
    dataset.PatientName = patient.name
    dataset.PatientID = patient.id
    dataset.PatientBirthDate = patient.birth_date
    dataset.PatientSex = patient.sex
    dataset.AccessionNumber = order.accession_number
    dataset.ReferringPhysicianName = ""
    dataset.StudyInstanceUID = record.study_uid
    dataset.RequestedProcedureDescription = order.requested_procedure
    dataset.RequestedProcedureID = requested_procedure_id(record)
    dataset.RequestedProcedurePriority = PRIORITIES[order.priority]
    dataset.RequestedProcedureCodeSequence = []
    dataset.ScheduledProcedureStepSequence = [step]

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MODALITY_WORKLIST_FIND
    # Derived from the study UID: the same order gives the same file.
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=["worklist", record.study_uid])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.file_meta = meta
    buffer = BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


# -- reading the identifier ---------------------------------------------------------------


def _with_file_meta(data: bytes) -> bytes:
    """``data`` with a transfer syntax the walk and pydicom agree on: its own, or for a
    data set without file meta information, explicit or implicit VR little endian as its
    first element shows (pydicom guesses the same way)."""
    start = 132 if data[128:132] == b"DICM" else 0
    if data[start : start + 2] == b"\x02\x00":
        return data
    explicit = data[start + 4 : start + 6] in SHORT_VRS | LONG_VRS
    uid = (ExplicitVRLittleEndian if explicit else ImplicitVRLittleEndian).encode("ascii")
    uid += b"\0" * (len(uid) % 2)
    meta = struct.pack("<HH2sH", 0x0002, 0x0010, b"UI", len(uid)) + uid
    return data[:start] + meta + data[start:]


def _read(data: bytes) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The values of the top-level and the step's matching keys. pydicom converts values
    as they are read, and a VR garbled in transit fails there in several ways."""
    try:
        dataset = dcmread(BytesIO(data), force=True)
        if len(dataset) == 0:
            raise WorklistQueryError("the worklist query holds no attributes")
        step = _step(dataset)
        return (
            {keyword: _value(dataset, keyword, vr) for keyword, vr in TOP_KEYS.items()},
            {keyword: _value(step, keyword, vr) for keyword, vr in STEP_KEYS.items()},
        )
    except WorklistQueryError:
        raise
    except (
        InvalidDicomError,
        BytesLengthException,
        EOFError,
        ValueError,
        TypeError,
        struct.error,
    ) as error:
        raise WorklistQueryError(f"malformed worklist query: {error}") from error


def _step(dataset: Dataset) -> Dataset:
    """The Scheduled Procedure Step Sequence's item: a query's sequence holds one (PS3.4
    C.2.2.2.6); absent or empty, all its keys are universal."""
    if "ScheduledProcedureStepSequence" not in dataset:
        return Dataset()
    element = dataset["ScheduledProcedureStepSequence"]
    if element.VR != "SQ":
        raise WorklistQueryError("ScheduledProcedureStepSequence is not a sequence")
    if len(element.value) > 1:
        raise WorklistQueryError("ScheduledProcedureStepSequence holds more than one item")
    return element.value[0] if element.value else Dataset()


def _value(dataset: Dataset, keyword: str, vr: str) -> list[str]:
    """The values of a matching key, an empty list when absent or empty. Leading and
    trailing spaces are padding (PS3.5 6.2), except leading ones in a person name."""
    if keyword not in dataset:
        return []
    element = dataset[keyword]
    found = element.VR
    if found != vr:
        raise WorklistQueryError(f"{keyword} has VR {found}, not {vr}")
    if element.VM == 0:
        return []
    values = element.value if element.VM > 1 else [element.value]
    return [str(value).rstrip() if vr == "PN" else str(value).strip() for value in values]


def _single(keyword: str, values: list[str]) -> str:
    """Single value or wildcard matching (PS3.4 C.2.2.2.1, C.2.2.2.4): one value only;
    lists of values are for UIDs (PS3.4 C.2.2.2.2)."""
    if len(values) > 1:
        raise WorklistQueryError(f"{keyword} holds {len(values)} values; one is allowed")
    return values[0] if values else ""


def _uids(values: list[str]) -> tuple[str, ...]:
    """List of UID matching (PS3.4 C.2.2.2.2): any of them; no wildcards in a UID."""
    for uid in values:
        if len(uid) > 64 or not _UID.fullmatch(uid):
            raise WorklistQueryError(f"StudyInstanceUID {uid!r} is not a UID")
    return tuple(values)


def _range(
    keyword: str,
    values: list[str],
    earliest: Callable[[str], str],
    latest: Callable[[str], str],
    meaning: str,
) -> tuple[str | None, str | None]:
    """Range matching (PS3.4 C.2.2.2.5): ``A``, ``A-B``, ``A-`` or ``-B``, each bound read
    as the earliest (or latest) moment it stands for."""
    value = _single(keyword, values)
    if not value:
        return None, None
    low, dash, high = value.partition("-")
    try:
        if not dash:
            return earliest(value), latest(value)
        if not low and not high:
            raise ValueError(value)
        return (earliest(low) if low else None, latest(high) if high else None)
    except ValueError as error:
        raise WorklistQueryError(f"{keyword} {value!r} is not {meaning}") from error


def _day(value: str) -> str:
    if not _DATE.fullmatch(value):
        raise ValueError(value)
    datetime.strptime(value, "%Y%m%d")  # a real day of a real month
    return value


def _time_digits(value: str) -> str:
    if not _TIME.fullmatch(value):
        raise ValueError(value)
    return value.replace(".", "")


def _earliest_time(value: str) -> str:
    """A partial time stands for its whole span: 10 is 10:00:00 to 10:59:59.999999."""
    digits = _time_digits(value)
    return digits + "0" * (len(_LATEST) - len(digits))


def _latest_time(value: str) -> str:
    digits = _time_digits(value)
    return digits + _LATEST[len(digits) :]


# -- matching -------------------------------------------------------------------------------


def _local(moment: datetime) -> datetime:
    """The department's wall clock, as the order book stores scheduled times."""
    return moment.astimezone().replace(tzinfo=None) if moment.tzinfo else moment


def _exact(value: str) -> str | None:
    return value if value and "*" not in value and "?" not in value else None


def _matches(pattern: str, value: str) -> bool:
    """Single value matching, case-sensitive (PS3.4 C.2.2.2.1), or wildcard matching:
    ``*`` any run of characters, ``?`` one character (PS3.4 C.2.2.2.4). An empty key, or
    one of ``*`` alone, is universal (PS3.4 C.2.2.2.3)."""
    if not pattern.strip("*"):
        return True
    value = value.strip()
    if "*" not in pattern and "?" not in pattern:
        return pattern == value
    regex = "".join(
        ".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern
    )
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _within(value: str, low: str | None, high: str | None) -> bool:
    """Range matching of fixed-width digits (YYYYMMDD, HHMMSSFFFFFF), bounds inclusive."""
    return (low is None or low <= value) and (high is None or value <= high)


def _matches_name(pattern: str, name: str) -> bool:
    """Person names match whatever their case and their trailing spaces and empty
    components (DOE^JANE^^ is DOE^JANE, PS3.5 6.2): PS3.4 C.2.2.2.1 lets an application
    match PN values insensitively to case, which is what people typing names expect."""
    return _matches(_fold(pattern), _fold(name))


def _fold(name: str) -> str:
    return name.rstrip(" ^").casefold()

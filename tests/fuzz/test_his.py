"""The HIS extension's input roads, fuzzed: HL7 v2 over MLLP and the Modality Worklist's
C-FIND on the fuzz suite's own server, then the readers behind them (and the FHIR client's)
without a server.

MLLP: byte streams on raw sockets made of ORM^O01 (new and cancel) and ADT^A40 messages
damaged every way (fields replaced by unicode, separators, escapes, dates and values of up to
60 kB; segments dropped, repeated, swapped or invented; other delimiters, character sets and
line ends; the bytes re-encoded, cut, overwritten, or random), framed right and wrong (no <VT>,
no <FS>, <FS> without <CR>, bytes between blocks), and input over MaxMessageBytes. Must hold:
each block MLLP delimits (a <VT>, then up to the next <FS> with no <VT> between: written here
from the framing's rules, not from the listener) gets exactly one acknowledgement, in order,
that python-hl7 parses, MSA-1 AA, AE or AR, and as ``interpret`` reads the block (a message
it makes a command of is never AR: storing it must not fail); an undamaged message gets AA
and its control ID; an AA'd order is stored with valid fields and is on the worklist; a
refused message stores nothing (its accession stays unknown, and a standing order's patient
is unchanged unless an accepted message named that patient); input over MaxMessageBytes gets
at most an AR, then the connection is closed. After each input the server is the same
process, healthy, and a valid order sent next gets AA and is stored.

Worklist: C-FIND identifiers through pynetdicom, in explicit and implicit VR: matching keys
with wildcards, unicode, very long and multiple values, dates, times and ranges valid and
not, character sets, Scheduled Procedure Step Sequences with zero to three items and
sequences nested to 12 levels, elements with the wrong VR, and values of any bytes under
any VR (out of order). Must hold: every C-FIND ends with a final status (success or a
failure), its pending answers decode, the association stays up, and on it a query for a
standing order, then for an order just placed with unusual (valid) values, finds exactly
that order. What Orthanc 1.10.1 and DCMTK 3.6.7 fail on before the plugin sees a query is
left to ``parse_query`` below: lengths that lie, and an odd length at the end (no answer
until the sender gives up), and a Scheduled Procedure Step Sequence of another VR
(std::bad_cast: no answer, and four such associations left open stop the DICOM server).

Without a server: ``interpret``, ``acknowledge`` and ``nak`` never raise and their answers
parse back; ``parse_query`` refuses with WorklistQueryError only, and what it reads matches
without raising; any valid order's worklist item reads back with its values and is found
by a query for its keys; the FHIR client, given any answer from a fake HIS, returns valid
patients and orders or raises its own errors only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import secrets
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from typing import Any
from unittest import mock

import hl7
import pynetdicom.association
import pytest
from hypothesis import HealthCheck, Phase, example, given, note, settings
from hypothesis import strategies as st
from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, Association
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import ModalityWorklistInformationFind
from pynetdicom.status import code_to_category

from hounsfield.his.fhir import FhirClient, HisNotFound, HisUnavailable
from hounsfield.his.hl7v2 import Interpretation, acknowledge, interpret, nak
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
from hounsfield.his.orders import OrderRecord
from hounsfield.his.settings import FhirSettings
from hounsfield.his.worklist import WorklistQueryError, item, parse_query
from tests.fuzz.conftest import Target
from tests.fuzz.strategies import Blob, json_bodies, json_values

# Matching keys are not valid values of their VR (wildcards, ranges, and worse): pydicom
# warns as they are set and written.
pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore:The 'warn' method is deprecated:DeprecationWarning"),
]

# No explain phase: it replays a failing server example hundreds of times.
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink)
SERVER = settings(
    max_examples=100,
    deadline=None,
    phases=PHASES,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
UNIT = settings(
    max_examples=200,
    deadline=None,
    phases=PHASES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LIMIT = 1 << 20  # MllpSettings.max_message_bytes: the fuzz server runs with the default
VT, FS, CR, LF = b"\x0b", b"\x1c", b"\r", b"\n"
RUN = secrets.token_hex(2).upper()  # this run's IDs: hypothesis replays draw new ones
SERIAL = itertools.count(1)
TOMORROW = dt.date.today() + dt.timedelta(days=1)
ANCHOR_PATIENT = "FZ-ANCHOR-PATIENT"
ANCHOR_ACCESSION = "FZ-ANCHOR"
CODES = ("AA", "AE", "AR")


# -- HL7 v2 messages, damaged -----------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """A valid message with IDs of its own, as segments of fields (``segments[i][0]`` the
    segment's name; for MSH, ``[1]`` is MSH-2 and ``[n]`` MSH-(n+1), as MSH-1 is the
    separator itself)."""

    kind: str
    control: str
    placer: str
    accession: str
    patient: str
    segments: tuple[tuple[str, ...], ...]


KINDS = ("ORM-NW", "ORM-NW", "ORM-CA", "ADT-A40")


def seed(kind: str) -> Seed:
    n = next(SERIAL)
    control, placer, accession, patient = f"C{RUN}{n}", f"PL{RUN}{n}", f"FZ{RUN}{n}", f"P{RUN}{n}"
    if kind == "ADT-A40":
        msh = ("MSH", "^~\\&", "ADT", "HOSP", "HOUNSFIELD", "RAD", "20260101120000", "")
        segments = (
            (*msh, "ADT^A40", control, "P", "2.5"),
            ("PID", "1", "", f"{patient}^^^HOSP^MR", "", f"NEW{n}^NAME", "", "19700101", "M"),
            ("MRG", f"M{RUN}{n}^^^HOSP^MR"),
        )
        return Seed(kind, control, placer, accession, patient, segments)
    timing = f"^^^{TOMORROW:%Y%m%d}1430^^R"
    obr = ["OBR", "1", f"{placer}^RIS", "", "CTHEAD^CT head^L", *[""] * 23]
    obr[18], obr[21], obr[24], obr[27] = accession, "CT_FUZZ", "CT", timing
    msh = ("MSH", "^~\\&", "RIS", "HOSP", "HOUNSFIELD", "RAD", "20260101120000", "")
    segments = (
        (*msh, "ORM^O01", control, "P", "2.3.1"),
        ("PID", "1", "", f"{patient}^^^HOSP^MR", "", f"Ångström{n}^Eva^M", "", "19750607", "F"),
        ("ORC", "NW" if kind == "ORM-NW" else "CA", f"{placer}^RIS", "", "", "", "", timing),
        tuple(obr),
    )
    return Seed(kind, control, placer, accession, patient, segments)


DELIMITERS = "|^~\\&"
# Other delimiters HL7 allows (no letter, digit or space; all different): the content is
# written with them when ``translate`` is drawn.
VALID_DELIMITERS = [("|", "^~\\&"), ("#", "@!$%"), ("!", "#$%&"), ("|", "@~/&"), ("$", "^~\\&")]
BAD_DELIMITERS = [("|", "^~\\"), ("|", ""), ("|", "^^\\&"), ("a", "bcde"), (" ", "^~\\&")]
BAD_DELIMITERS += [("|", "^~\\&|"), ("|", "^~\\&#"), ("|", "^~|&"), ("\r", "^~\\&")]
SPECIALS = [
    *DELIMITERS,
    "\r",
    "\n",
    "\r\n",
    '""',
    "\\F\\",
    "\\S\\",
    "\\X0D\\",
    "\\Zabc\\",
    "\\",
    "\x00",
    "\x0b",
    "\x1c",
    "\x1c\r",
    "\x7f",
    "\ufeff",
    "MSH|^~\\&|",
]
WORDS = [
    "",
    "CT",
    "MR",
    "ct",
    "XX",
    "OT",
    "NW",
    "XO",
    "CA",
    "OC",
    "DC",
    "S",
    "A",
    "R",
    "ORM^O01",
    "ADT^A40",
    "ADT^A08",
    "ADT^A31",
    "ACK",
    "2.3.1",
    "2.5",
    "2.7",
    "9",
    "UNICODE UTF-8",
    "8859/1",
    "8859/15",
    "8859/5",
    "ASCII",
    "ISO_IR 100",
    "UTF-16",
    "CT_FUZZ",
    ANCHOR_PATIENT,
    ANCHOR_ACCESSION,
]
moments = st.one_of(
    st.from_regex(r"\A\d{4,14}(\.\d{1,5})?([+-]\d{4})?\Z"),
    st.sampled_from(["20240230", "99999999", "00000000", "2024", "202401", "20241301120000"]),
    st.sampled_from(["20240101246000", "20240101+2599", "2024-01-01", "20240101 1200"]),
)
field_values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(SPECIALS),
    st.sampled_from(WORDS),
    moments,
    st.lists(st.sampled_from(SPECIALS) | st.text(max_size=4), max_size=8).map("".join),
    st.builds(
        lambda char, count: char * count,
        st.sampled_from(["X", "é", "^", "|", "~", "\\", "中"]),
        st.integers(65, 60_000),
    ),
)
# Where a field carries meaning (MSH fields by their HL7 number).
KNOWN_FIELDS = [
    ("MSH", 3),
    ("MSH", 9),
    ("MSH", 10),
    ("MSH", 12),
    ("MSH", 18),
    ("PID", 3),
    ("PID", 5),
    ("PID", 7),
    ("PID", 8),
    ("ORC", 1),
    ("ORC", 2),
    ("ORC", 3),
    ("ORC", 7),
    ("ORC", 9),
    ("OBR", 2),
    ("OBR", 3),
    ("OBR", 4),
    ("OBR", 6),
    ("OBR", 18),
    ("OBR", 21),
    ("OBR", 24),
    ("OBR", 27),
    ("OBR", 36),
    ("MRG", 1),
]
segment_names = st.sampled_from(["MSH", "PID", "ORC", "OBR", "MRG", "TQ1", "PV1", "ZZZ", "", "pid"])
edits = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 9), st.integers(0, 40), field_values),
    st.tuples(st.just("known"), st.sampled_from(KNOWN_FIELDS), field_values),
    st.tuples(st.just("drop"), st.integers(0, 9)),
    st.tuples(st.just("repeat"), st.integers(0, 9), st.integers(1, 3)),
    st.tuples(st.just("swap"), st.integers(0, 9), st.integers(0, 9)),
    st.tuples(
        st.just("insert"),
        st.integers(0, 9),
        st.tuples(segment_names | st.text(max_size=4), st.lists(field_values, max_size=6)),
    ),
    # Another order's accession number, and the standing order's patient: what a refused
    # message must leave as it is.
    st.tuples(st.just("collide")),
    st.tuples(st.just("anchor patient")),
    st.tuples(st.just("conflict")),  # both
)
byte_edits = st.one_of(
    st.tuples(st.just("cut"), st.integers(0, 1 << 16)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 16), st.binary(min_size=1, max_size=20)),
    st.tuples(st.just("overwrite"), st.integers(0, 1 << 16), st.binary(min_size=1, max_size=20)),
)
CODECS = ["utf-8", "utf-8", "utf-8", "latin-1", "cp1252", "utf-16-le", "ascii", "iso8859-5"]
LINE_ENDS = ["\r", "\r", "\r", "\n", "\r\n", "\r\r", "\n\r"]


@dataclass(frozen=True)
class Damage:
    """How a seed of ``kind`` is damaged: ``edits`` to its fields and segments, written
    with ``delimiters`` (the content's too when ``translate``), ``line_end`` between
    segments, encoded with ``codec``, then ``byte_edits``; or replaced by ``junk``."""

    kind: str
    edits: tuple[tuple[Any, ...], ...] = ()
    delimiters: tuple[str, str] | None = None
    translate: bool = False
    line_end: str = "\r"
    codec: str = "utf-8"
    byte_edits: tuple[tuple[Any, ...], ...] = ()
    junk: bytes | None = None

    @property
    def undamaged(self) -> bool:
        """A valid message still, which must be accepted."""
        return (
            not self.edits
            and not self.byte_edits
            and self.junk is None
            and self.codec == "utf-8"
            and (
                self.delimiters is None or (self.translate and self.delimiters in VALID_DELIMITERS)
            )
        )


junk_messages = st.one_of(
    st.binary(max_size=2000),
    st.sampled_from([b"", b"this is not HL7", b"MSH", b"MSH|", b"MSH|^~\\&", b"\r\r\r", b"\x00"]),
    st.text(max_size=200).map(str.encode),
)


@st.composite
def damages(draw: st.DrawFn) -> Damage:
    """None (in other delimiters, with other line ends), in fields and segments only, or
    anywhere; or junk instead of a message."""
    kind = draw(st.sampled_from(KINDS))
    level = draw(st.sampled_from(["none", "fields", "fields", "any", "any", "junk"]))
    line_end = draw(st.sampled_from(LINE_ENDS))
    if level == "none":
        delimiters = draw(st.none() | st.sampled_from(VALID_DELIMITERS))
        return Damage(kind, delimiters=delimiters, translate=True, line_end=line_end)
    if level == "junk":
        return Damage(kind, junk=Blob(draw(junk_messages)))
    changes = tuple(draw(st.lists(edits, min_size=1, max_size=4)))
    if level == "fields":
        return Damage(kind, edits=changes, line_end=line_end)
    delimiters = draw(
        st.none()
        | st.sampled_from(VALID_DELIMITERS)
        | st.sampled_from(BAD_DELIMITERS)
        | st.tuples(st.characters(), st.text(max_size=6))
    )
    return Damage(
        kind,
        edits=changes,
        delimiters=delimiters,
        translate=draw(st.booleans()),
        line_end=line_end,
        codec=draw(st.sampled_from(CODECS)),
        byte_edits=tuple(draw(st.lists(byte_edits, max_size=2))),
    )


def edited(segments: list[list[str]], edit: tuple[Any, ...]) -> None:
    """``segments`` with one ``edit`` made (positions taken modulo what there is)."""
    kind, rest = edit[0], edit[1:]
    if kind == "drop" and segments:
        del segments[rest[0] % len(segments)]
    elif kind == "repeat" and segments:
        at = rest[0] % len(segments)
        segments[at + 1 : at + 1] = [list(segments[at]) for _ in range(rest[1])]
    elif kind == "swap" and segments:
        i, j = rest[0] % len(segments), rest[1] % len(segments)
        segments[i], segments[j] = segments[j], segments[i]
    elif kind == "insert":
        name, values = rest[1]
        segments.insert(rest[0] % (len(segments) + 1), [name, *values])
    elif kind == "set" and segments:
        put(segments[rest[0] % len(segments)], rest[1], rest[2])
    elif kind == "conflict":
        edited(segments, ("collide",))
        edited(segments, ("anchor patient",))
    elif kind in ("known", "collide", "anchor patient"):
        if kind == "known":
            (name, number), value = rest
        elif kind == "collide":
            name, number, value = "OBR", 18, ANCHOR_ACCESSION
        else:
            name, number, value = "PID", 3, ANCHOR_PATIENT
        for segment in segments:
            if segment and segment[0] == name:
                put(segment, number - 1 if name == "MSH" else number, value)
                break


def put(segment: list[str], index: int, value: str) -> None:
    segment.extend([""] * (index + 1 - len(segment)))
    segment[index] = value


def render(message: Seed, damage: Damage) -> bytes:
    """The bytes of ``message`` damaged as ``damage`` says."""
    if damage.junk is not None:
        return bytes(damage.junk)
    segments = [list(segment) for segment in message.segments]
    for edit in damage.edits:
        edited(segments, edit)
    separator, encoding = damage.delimiters or ("|", "^~\\&")
    table: dict[int, str] = {}
    if damage.translate and len(encoding) >= 4:
        table = str.maketrans(dict(zip("^~\\&", encoding[:4], strict=True)))
    lines = []
    for segment in segments:
        fields = list(segment)
        first = 1
        if fields and fields[0] == "MSH" and len(fields) > 1:
            fields[1], first = encoding, 2
        fields[first:] = [value.translate(table) for value in fields[first:]]
        lines.append(separator.join(fields))
    data = bytearray(damage.line_end.join(lines).encode(damage.codec, errors="replace"))
    for edit in damage.byte_edits:
        at = edit[1] % (len(data) + 1)
        if edit[0] == "cut":
            del data[at:]
        elif edit[0] == "insert":
            data[at:at] = edit[2]
        else:
            data[at : at + len(edit[2])] = edit[2]
    return bytes(data)


# -- MLLP on raw sockets ------------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    """A message on the wire: ``before`` it, framed by ``start`` and ``end`` (right:
    <VT> and <FS><CR>)."""

    damage: Damage
    before: bytes = b""
    start: bytes = VT
    end: bytes = FS + CR


pieces = st.builds(
    Piece,
    damages(),
    before=st.sampled_from([b"", b"", b"", b"\r\n", b"\r"]) | st.binary(max_size=30).map(Blob),
    start=st.sampled_from([VT, VT, VT, VT, VT, b""]),
    end=st.sampled_from([FS + CR] * 6 + [FS, FS + CR + LF, b"", FS + b"garbage", CR]),
)


def blocks(stream: bytes) -> list[bytes]:
    """The messages MLLP delimits in ``stream``: from a <VT> to the next <FS>, no other
    <VT> between (bytes outside blocks, a block cut short by a <VT>, an unended block at
    the end: nothing). The listener must answer each of these, in this order."""
    found, at = [], 0
    while (start := stream.find(VT, at)) >= 0:
        end = stream.find(FS, start + 1)
        if end < 0:
            break
        restart = stream.find(VT, start + 1)
        if 0 <= restart < end:
            at = restart
            continue
        found.append(stream[start + 1 : end])
        at = end + 1
    return found


def mllp_port(target: Target) -> int:
    return int(target.server.env["ORTHANC__HOUNSFIELD_HIS__MLLP__PORT"])


def converse(port: int, stream: bytes, *, half_close: bool, timeout: float = 15) -> bytes:
    """``exchange`` on a connection of its own."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        return exchange(connection, stream, half_close=half_close, timeout=timeout)


def exchange(
    connection: socket.socket, stream: bytes, *, half_close: bool, timeout: float = 15
) -> bytes:
    """Send ``stream`` (from a thread: the listener answers while we send) and read until the
    listener closes the connection: after our end of it when ``half_close``, else on its own
    (a reset counts as closed). AssertionError when it is not closed within ``timeout``."""
    received = bytearray()

    def send() -> None:
        with contextlib.suppress(OSError):  # closed by the listener while we send
            connection.sendall(stream)
            if half_close:
                connection.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        while chunk := connection.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(
            f"the listener kept the connection open {timeout} s; got {bytes(received[:300])!r}"
        ) from None
    sender.join(timeout)
    return bytes(received)


def next_ack(connection: socket.socket) -> bytes:
    """The next acknowledgement on ``connection`` (read a byte at a time, to leave what
    follows where it is)."""
    data = b""
    while not data.endswith(FS + CR):
        chunk = connection.recv(1)
        assert chunk, f"closed before an answer: {data[:300]!r}"
        data += chunk
    (ack,) = unframe(data)
    return ack


def unframe(received: bytes, *, cut: bool = False) -> list[bytes]:
    """The acknowledgements in ``received``, each <VT> ack <FS><CR> and nothing else
    (``cut``: the last may be cut short by a reset, and is left out)."""
    acks, at = [], 0
    while at < len(received):
        end = received.find(FS + CR, at)
        if end < 0 and cut:
            break
        assert received[at : at + 1] == VT and end > at, f"not MLLP: {received[at : at + 200]!r}"
        acks.append(received[at + 1 : end])
        at = end + 2
    return acks


def read_ack(ack: bytes) -> hl7.Message:
    """An acknowledgement parsed by python-hl7; MSA-1 must be AA, AE or AR."""
    try:
        text = ack.decode("utf-8")
    except UnicodeDecodeError:
        text = ack.decode("latin-1")
    message = hl7.parse(text)
    assert str(message[0][0]) == "MSH", text[:300]
    code = str(message.segment("MSA")[1])
    assert code in CODES, text[:300]
    return message


def ack_code(message: hl7.Message) -> tuple[str, str]:
    msa = message.segment("MSA")
    return str(msa[1]), str(msa[2])


def send_valid(target: Target) -> None:
    """A valid order, sent on a connection of its own, is accepted and stored."""
    message = seed("ORM-NW")
    received = converse(
        mllp_port(target), framed(render(message, Damage("ORM-NW"))), half_close=True
    )
    (ack,) = unframe(received)
    assert ack_code(read_ack(ack)) == ("AA", message.control), ack[:300]
    (stored,) = orders_with(target, message.accession)
    assert stored["sourceId"] == message.placer and stored["status"] == "scheduled"


def framed(message: bytes) -> bytes:
    return VT + message + FS + CR


def orders_with(target: Target, accession: str) -> list[dict[str, Any]]:
    response = target.server.get("/api/orders", params={"accession": accession})
    assert response.status_code == 200, response.text
    return response.json()["orders"]


def stored_order(order: dict[str, Any]) -> Order:
    """What ``GET /api/orders`` says of an order, as the order model reads it: valid."""
    fields = {
        "patient": order["patient"],
        "accession_number": order["accession_number"],
        "modality": order["modality"],
        "requested_procedure": order["requested_procedure"],
        "scheduled_station_ae": order["scheduled_station_ae"],
        "scheduled_time": order["scheduled_time"],
        "priority": order["priority"],
    }
    return Order.model_validate(fields)


def names(command: object) -> set[str]:
    """The patient IDs a command changes."""
    if isinstance(command, PlaceOrder):
        return {command.order.patient.id}
    if isinstance(command, UpdatePatient):
        return {command.patient.id}
    if isinstance(command, MergePatients):
        return {command.patient.id, command.prior_id}
    return set()


@pytest.fixture(scope="module")
def anchor(target: Target) -> dict[str, Any]:
    """An order entered by hand that no fuzzed input may change (unless an accepted message
    names its patient), on the worklist; and the MLLP listener up."""
    body = {
        "patient": {"id": ANCHOR_PATIENT, "name": "ANCHOR^KEEP", "birth_date": "", "sex": ""},
        "accession_number": ANCHOR_ACCESSION,
        "modality": "MR",
        "requested_procedure": "MR anchor",
        "scheduled_station_ae": "MR_ANCHOR",
        "scheduled_time": f"{TOMORROW.isoformat()}T09:00:00",
        "priority": "routine",
    }
    response = target.server.post("/api/orders", json=body)
    assert response.status_code == 201, response.text
    for _ in range(100):  # the listener starts with Orthanc, in the background
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", mllp_port(target)), 1),
        ):
            break
        threading.Event().wait(0.1)
    return response.json()


def anchor_now(target: Target, anchor: dict[str, Any]) -> dict[str, Any]:
    response = target.server.get(f"/api/orders/{anchor['id']}")
    assert response.status_code == 200, response.text
    return response.json()


@SERVER
@given(session=st.lists(pieces, min_size=1, max_size=4), tail=st.binary(max_size=40))
# An order for the standing order's patient whose accession number is the standing order's.
@example(session=[Piece(Damage("ORM-NW", edits=(("conflict",),)))], tail=b"")
def test_mllp_every_block_gets_one_answer_and_the_order_book_agrees(
    target: Target, anchor: dict[str, Any], session: list[Piece], tail: bytes
) -> None:
    seeds = [seed(piece.damage.kind) for piece in session]
    messages = [
        render(message, piece.damage) for message, piece in zip(seeds, session, strict=True)
    ]
    stream = (
        b"".join(
            piece.before + piece.start + message + piece.end
            for piece, message in zip(session, messages, strict=True)
        )
        + tail
    )
    if len(stream) > LIMIT:  # input over MaxMessageBytes has a test of its own
        return
    note(f"stream: {stream[:2000]!r}{'...' if len(stream) > 2000 else ''} ({len(stream)} bytes)")
    undamaged = {
        message: seed_.control
        for message, seed_, piece in zip(messages, seeds, session, strict=True)
        if piece.damage.undamaged
    }
    before = anchor_now(target, anchor)

    expected = blocks(stream)
    acks = unframe(converse(mllp_port(target), stream, half_close=True))
    assert len(acks) == len(expected), f"{len(expected)} blocks, {len(acks)} answers"
    accepted: list[Interpretation] = []
    for block, ack in zip(expected, acks, strict=True):
        code, control = ack_code(read_ack(ack))
        reading = interpret(block)
        if reading.rejection is not None:
            assert code == reading.rejection.code, (block[:300], ack[:300])
        elif isinstance(reading.command, (PlaceOrder, CancelOrder)):
            assert code in ("AA", "AE"), (block[:300], ack[:300])  # AE: a conflict
        else:
            assert code == "AA", (block[:300], ack[:300])
        if block in undamaged:
            assert (code, control) == ("AA", undamaged[block]), (block[:300], ack[:300])
        if code == "AA" and reading.command is not None:
            accepted.append(reading)

    # What was accepted is stored, valid, and on the worklist.
    commands = [reading.command for reading in accepted]
    sources = [c.source_id for c in commands if isinstance(c, (PlaceOrder, CancelOrder))]
    ours = {message.placer for message in seeds}
    for command in commands:
        if not isinstance(command, PlaceOrder):
            continue
        orders = orders_with(target, command.order.accession_number)
        for order in orders:
            stored_order(order)
        if command.source_id in ours and sources.count(command.source_id) == 1:
            (order,) = orders
            assert (order["source"], order["sourceId"], order["status"]) == (
                "hl7",
                command.source_id,
                "scheduled",
            )
            kept = stored_order(order)
            assert kept.model_dump(exclude={"patient", "scheduled_time"}) == (
                command.order.model_dump(exclude={"patient", "scheduled_time"})
            )
            on_worklist(target, order)
    # What was refused stored nothing.
    placed = {c.order.accession_number for c in commands if isinstance(c, PlaceOrder)}
    for message in seeds:
        if message.kind == "ORM-NW" and message.accession not in placed:
            assert orders_with(target, message.accession) == [], "a refused order was stored"
    if ANCHOR_PATIENT not in set().union(*(names(command) for command in commands)):
        assert anchor_now(target, anchor) == before, "a refused message changed a stored order"

    assert target.server.process.poll() is None, target.server.log_tail()
    target.assert_unharmed()
    send_valid(target)


oversized = st.sampled_from(["framed", "unterminated", "unframed"])


@settings(SERVER, max_examples=12)
@given(kind=oversized, extra=st.integers(1, 200_000), valid_first=st.booleans())
def test_mllp_input_over_max_message_bytes_is_refused_and_closed(
    target: Target, anchor: dict[str, Any], kind: str, extra: int, valid_first: bool
) -> None:
    body = b"MSH|^~\\&|RIS|HOSP|||||ORM^O01|BIG|P|2.3.1\rNTE|" + b"X" * (LIMIT + extra)
    big = {"framed": VT + body + FS + CR, "unterminated": VT + body, "unframed": body}[kind]
    with socket.create_connection(("127.0.0.1", mllp_port(target)), timeout=15) as connection:
        if valid_first:  # answered before the oversized input comes on the same connection
            first = seed("ORM-NW")
            connection.sendall(framed(render(first, Damage("ORM-NW"))))
            assert ack_code(read_ack(next_ack(connection))) == ("AA", first.control)
        # Not closed by us: the listener must close it.
        acks = unframe(exchange(connection, big, half_close=False), cut=True)
    assert len(acks) <= 1
    for ack in acks:  # may be lost to the reset
        assert ack_code(read_ack(ack))[0] == "AR"
    assert target.server.process.poll() is None, target.server.log_tail()
    target.assert_unharmed()
    send_valid(target)


# -- the Modality Worklist over DICOM ----------------------------------------------------------

QUERY_TIMEOUT = 5


def association(target: Target, syntax: str = ExplicitVRLittleEndian) -> Association:
    entity = AE(ae_title="FUZZ_MWL")
    entity.acse_timeout = entity.dimse_timeout = entity.network_timeout = QUERY_TIMEOUT
    entity.add_requested_context(ModalityWorklistInformationFind, [syntax])
    assoc = entity.associate("127.0.0.1", target.server.dicom_port, ae_title="HOUNSFIELD")
    assert assoc.is_established, "no association"
    return assoc


def c_find(assoc: Association, identifier: bytes) -> list[tuple[Dataset, Dataset | None]]:
    """One C-FIND with ``identifier`` as its encoded bytes (pynetdicom encodes data sets
    itself: here it sends these bytes instead)."""
    with mock.patch.object(pynetdicom.association, "encode", return_value=identifier):
        responses = assoc.send_c_find(Dataset(), ModalityWorklistInformationFind)
    return list(responses)


def final_status(responses: list[tuple[Dataset, Dataset | None]]) -> int:
    """The C-FIND's final status, after well-formed pending answers."""
    assert responses, "no response"
    *pending, (last, _) = responses
    for status, answer in pending:
        assert code_to_category(status.Status) == "Pending", status
        assert isinstance(answer, Dataset), "a pending answer that does not decode"
        for element in answer.iterall():
            _ = element.value
    assert "Status" in last, "no final status: the association was aborted"
    assert last.Status == 0x0000 or code_to_category(last.Status) == "Failure", hex(last.Status)
    return last.Status


def order_query(accession: str, patient_id: str = "") -> Dataset:
    """A scanner's query for one order, asking for the usual return keys."""
    query = Dataset()
    query.SpecificCharacterSet = "ISO_IR 192"
    query.PatientName = ""
    query.PatientID = patient_id
    query.AccessionNumber = accession
    query.StudyInstanceUID = ""
    step = Dataset()
    step.Modality = ""
    step.ScheduledStationAETitle = ""
    step.ScheduledProcedureStepStartDate = ""
    step.ScheduledProcedureStepStartTime = ""
    query.ScheduledProcedureStepSequence = [step]
    return query


def find_order(assoc: Association, order: dict[str, Any], syntax: str) -> None:
    """A query for ``order``'s accession number and patient ID finds it, once, whole."""
    implicit = syntax == ImplicitVRLittleEndian
    raw = encode(order_query(order["accession_number"], order["patient"]["id"]), implicit, True)
    assert raw is not None
    responses = c_find(assoc, raw)
    assert final_status(responses) == 0x0000
    found = [
        answer
        for _, answer in responses[:-1]
        if answer is not None
        and str(answer.get("AccessionNumber", "")).strip() == order["accession_number"].strip()
    ]
    assert len(found) == 1, f"{len(found)} answers for {order['accession_number']!r}"
    assert found[0].StudyInstanceUID == order["studyInstanceUid"]
    assert found[0].ScheduledProcedureStepSequence[0].Modality == order["modality"]


def on_worklist(target: Target, order: dict[str, Any]) -> None:
    assoc = association(target)
    try:
        find_order(assoc, order, ExplicitVRLittleEndian)
    finally:
        assoc.release()


wildcards = st.sampled_from(["*", "?", "**", "DOE*", "*jane", "D?E^*", "*^*", "  ", "^^^^", "="])
ANY = st.characters()
LATIN = st.characters(codec="latin-1")  # what pydicom writes in CS, AE, DA, TM and UI


def texts(alphabet: st.SearchStrategy[str] = ANY) -> st.SearchStrategy[str]:
    """Matching key values: any text, wildcards, names of the standing order, long and
    multiple values."""
    return st.one_of(
        st.text(alphabet, max_size=24),
        wildcards,
        st.sampled_from(
            [ANCHOR_ACCESSION, ANCHOR_PATIENT, "ANCHOR^KEEP", "anchor*", "MÜLLER^JÖRG"]
        ),
        st.builds(
            lambda c, n: c * n, st.sampled_from(["A", "*", "é", "^", "?"]), st.integers(17, 5000)
        ),
        st.lists(st.text(alphabet, max_size=6), min_size=2, max_size=3).map("\\".join),
    )


TODAY = f"{dt.date.today():%Y%m%d}"
day = st.from_regex(r"\A[0-9]{8}\Z")
dates = st.one_of(
    day,
    st.builds("{}-{}".format, day, day),
    day.map(lambda d: d + "-"),
    day.map(lambda d: "-" + d),
    st.sampled_from(["", "-", "2026-11-24", "20240230", "2024", TODAY, f"{TODAY}-{TODAY}"]),
    st.text(LATIN, max_size=20),
)
clock = st.from_regex(r"\A[0-9]{1,6}(\.[0-9]{0,7})?\Z")
times = st.one_of(
    clock,
    st.builds("{}-{}".format, clock, clock),
    st.sampled_from(["", "-", "2400", "2359", "101500.123456", "10:15", "6060", "235960"]),
    st.text(LATIN, max_size=14),
)
uids = st.one_of(
    st.from_regex(r"\A[12](\.[0-9]{1,6}){1,8}\Z"),
    st.text(LATIN, max_size=20),
    st.just("1." + "2" * 70),
    st.lists(st.from_regex(r"\A1(\.[0-9]{1,3}){1,4}\Z"), min_size=2, max_size=3).map("\\".join),
)
TOP = {"PatientName": texts(), "PatientID": texts(), "AccessionNumber": texts()}
TOP |= {"RequestedProcedureID": texts(), "StudyInstanceUID": uids, "PatientBirthDate": dates}
STEP = {"Modality": texts(LATIN), "ScheduledStationAETitle": texts(LATIN)}
STEP |= {"ScheduledPerformingPhysicianName": texts(), "ScheduledProcedureStepStartDate": dates}
STEP |= {"ScheduledProcedureStepStartTime": times}
# Elements given the wrong VR, with values of that VR.
WRONG_TAGS = [0x00100010, 0x00100020, 0x00080050, 0x0020000D, 0x00400002, 0x00080060]
SEQUENCE = 0x00400100  # ScheduledProcedureStepSequence
WRONG_VRS = {
    "UL": st.integers(0, 2**32 - 1),
    "US": st.integers(0, 2**16 - 1),
    "SL": st.integers(-(2**31), 2**31 - 1),
    "FD": st.floats(allow_nan=True),
    "OB": st.binary(max_size=40),
    "UN": st.binary(max_size=40),
    "AT": st.just(0x00100010),
    "DA": st.just("20240101"),
    "LO": st.text(max_size=10),
    "UT": st.text(max_size=10),
    "SQ": st.builds(lambda: [Dataset()]),
}


def wrong_elements(tags: list[int]) -> st.SearchStrategy[tuple[int, str, Any]]:
    return st.sampled_from(sorted(WRONG_VRS)).flatmap(
        lambda vr: st.tuples(st.sampled_from(tags), st.just(vr), WRONG_VRS[vr])
    )


CHARSETS = [None, "ISO_IR 192", "ISO_IR 100", "ISO_IR 6", "ISO 2022 IR 87", "GB18030", "ÜBEL"]


def nested(depth: int) -> list[Dataset]:
    inner = Dataset()
    inner.CodeValue = "X"
    for _ in range(depth):
        outer = Dataset()
        outer.ScheduledProtocolCodeSequence = [inner]
        inner = outer
    return [inner]


@st.composite
def identifiers(draw: st.DrawFn, wrong_sequence: bool) -> Dataset:
    """A C-FIND identifier, hostile in what it says; ``wrong_sequence``: its Scheduled
    Procedure Step Sequence may have another VR (Orthanc 1.10.1 cannot take that: it throws
    std::bad_cast before any plugin, and the association is never answered)."""
    query = Dataset()
    charset = draw(st.sampled_from(CHARSETS))
    if charset is not None:
        query.SpecificCharacterSet = charset
    for keyword, values in TOP.items():
        if draw(st.booleans()):
            setattr(query, keyword, draw(st.just("") | values))
    steps = []
    for _ in range(draw(st.sampled_from([1, 1, 1, -1, 0, 2, 3]))):  # -1: no sequence
        step = Dataset()
        for keyword, values in STEP.items():
            if draw(st.booleans()):
                setattr(step, keyword, draw(st.just("") | values))
        if draw(st.integers(0, 3)) == 0:
            step.ScheduledProtocolCodeSequence = nested(draw(st.integers(0, 12)))
        steps.append(step)
    if steps or draw(st.booleans()):
        query.ScheduledProcedureStepSequence = steps
    tags = [*WRONG_TAGS, SEQUENCE] if wrong_sequence else WRONG_TAGS
    for tag, vr, value in draw(st.lists(wrong_elements(tags), max_size=2)):
        where = steps[0] if steps and draw(st.booleans()) else query
        with contextlib.suppress(TypeError, ValueError):  # what pydicom cannot hold
            where[tag] = DataElement(tag, vr, value)
    return query


# The matching keys read at the top level (twice: drawn more often), then others.
READ = [0x00100010, 0x00100020, 0x00080050, 0x00401001, 0x0020000D]
RAW_TAGS = [*READ, *READ, 0x00080005, 0x00400001, 0x00400002, 0x00400003, 0x00080060]
RAW_TAGS += [0x00400006, 0x00100030, 0x00091010]
raw_values = (
    st.binary(max_size=9)
    | st.binary(max_size=80)
    | st.sampled_from(
        [
            b"",
            b"\xff\xfe",
            b"DOE\\JANE\\",
            b"\x00" * 8,
            b"\xc3(",
            "MÜLLER".encode("latin-1"),
            b"*" * 301,
        ]
    )
)
raw_elements = st.tuples(
    st.sampled_from(RAW_TAGS),
    st.sampled_from([None, "PN", "LO", "SH", "DA", "TM", "UI", "CS", "AE", "UN", "OB", "UT"])
    | st.sampled_from(["UL", "US", "SS", "FL", "FD", "AT", "OF", "IS", "DS"]),
    raw_values,
)


LONG_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"}


def raw_element(tag: int, vr: str, value: bytes, implicit: bool) -> bytes:
    """An element as bytes, its value as given and its length true."""
    group, number = tag >> 16, tag & 0xFFFF
    if implicit:
        return struct.pack("<HHI", group, number, len(value)) + value
    if vr in LONG_VRS:
        return struct.pack("<HH2s2xI", group, number, vr.encode(), len(value)) + value
    return struct.pack("<HH2sH", group, number, vr.encode(), len(value)) + value


def written(query: Dataset, raw: list[tuple[int, bytes]], implicit: bool) -> bytes | None:
    """``query`` encoded, its elements of the ``raw`` tags replaced by the raw ones (after
    the others: out of order); None where pydicom cannot write it."""
    for tag, _ in raw:
        if tag in query:
            del query[tag]
    encoded = encode(query, implicit, True)
    if encoded is None:
        return None
    return encoded + b"".join(element for _, element in sorted(raw))


@st.composite
def identifier_bytes(draw: st.DrawFn, damaged: bool) -> tuple[str, bytes]:
    """A transfer syntax and an identifier encoded in it, some top-level values as raw bytes
    (any bytes, of any VR, with true lengths, after the other elements); ``damaged``: values
    of odd lengths too, and the bytes then cut, overwritten, or bytes put in (DCMTK waits on
    lengths that lie, and on an odd length at the end: for ``parse_query`` alone)."""
    syntax = draw(st.sampled_from([ExplicitVRLittleEndian, ImplicitVRLittleEndian]))
    implicit = syntax == ImplicitVRLittleEndian
    query = draw(identifiers(wrong_sequence=damaged))
    raw = []
    for tag, vr, value in draw(st.lists(raw_elements, max_size=3, unique_by=lambda e: e[0])):
        vr = vr or ("LO" if tag == 0x00091010 else dictionary_VR(tag))
        if not damaged and len(value) % 2:  # odd: DCMTK waits for one more byte at the end
            value += b" "
        raw.append((tag, raw_element(tag, vr, value, implicit)))
    data = written(query, raw, implicit)
    if not data:  # pydicom could not write it, or nothing (which pynetdicom does not send)
        data = raw_element(0x00100010, "PN", b"", implicit)
    data = bytearray(data)
    for edit in draw(st.lists(byte_edits, max_size=3)) if damaged else []:
        at = edit[1] % (len(data) + 1)
        if edit[0] == "cut":
            del data[at:]
        elif edit[0] == "insert":
            data[at:at] = edit[2]
        else:
            data[at : at + len(edit[2])] = edit[2]
    return syntax, Blob(bytes(data))


component = st.text(
    st.characters(codec="utf-8", exclude_characters="\\^=", min_codepoint=0x20), max_size=20
)
# A family name that begins with a letter, then up to four more components.
person_names = st.builds(
    lambda first, family, more: "^".join([first + family, *more])[:64],
    st.sampled_from("ADÅÖßé中Ж"),
    component,
    st.lists(component, max_size=4),
)
identifier_text = st.text(
    st.characters(codec="utf-8", exclude_characters="\\", min_codepoint=0x20), max_size=6
)
ae_titles = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("ACMRX_1*?"),
    st.from_regex(r"\A[ -\[\]-~]{0,15}\Z"),
)
modalities = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from("ACMRX_1"),
    st.from_regex(r"\A[A-Z0-9 _]{0,15}\Z"),
)


@st.composite
def order_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A valid order with unusual values (``POST /api/orders``'s body), its accession number
    and patient ID this run's own."""
    n = next(SERIAL)
    when = draw(st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2099, 12, 31)))
    zone = draw(st.sampled_from([None, dt.UTC, dt.timezone(dt.timedelta(hours=13, minutes=45))]))
    return {
        "patient": {
            "id": draw(identifier_text) + f"W{RUN}{n}" + draw(identifier_text),
            "name": draw(person_names),
            "birth_date": draw(st.sampled_from(["", "1961-03-04", "19800101", "20000229"])),
            "sex": draw(st.sampled_from(["M", "F", "O", ""])),
        },
        "accession_number": draw(identifier_text.map(lambda t: t[:3])) + f"W{RUN}{n}",
        "modality": draw(modalities),
        "requested_procedure": draw(identifier_text),
        "scheduled_station_ae": draw(ae_titles),
        "scheduled_time": when.replace(tzinfo=zone).isoformat(),
        "priority": draw(st.sampled_from(["routine", "urgent", "stat"])),
    }


@pytest.fixture(scope="module")
def short_worklist(target: Target, anchor: dict[str, Any]) -> dict[str, Any]:
    """The standing order alone on the worklist (what the MLLP fuzz placed is cancelled):
    answers to universal queries stay few."""
    scheduled = target.server.get("/api/orders", params={"status": "scheduled", "limit": 1000})
    for order in scheduled.json()["orders"]:
        if order["id"] != anchor["id"]:
            target.server.post(f"/api/orders/{order['id']}/cancel")
    return anchor_now(target, anchor)  # an accepted HL7 merge may have moved it


@settings(SERVER, max_examples=50)
@given(query=identifier_bytes(damaged=False), order=order_bodies())
def test_worklist_every_c_find_ends_with_a_status_and_the_worklist_still_answers(
    target: Target,
    short_worklist: dict[str, Any],
    query: tuple[str, bytes],
    order: dict[str, Any],
) -> None:
    syntax, raw = query
    placed = target.server.post("/api/orders", json=order)
    assert placed.status_code == 201, (order, placed.text)
    assoc = association(target, syntax)
    try:
        status = final_status(c_find(assoc, raw))
        note(f"status {status:#06x}")
        assert assoc.is_established, "the association did not survive"
        find_order(assoc, short_worklist, syntax)
        find_order(assoc, placed.json(), syntax)
    finally:
        if assoc.is_established:
            assoc.release()
        else:
            assoc.abort()
        target.server.post(f"/api/orders/{placed.json()['id']}/cancel")
    assert target.server.process.poll() is None, target.server.log_tail()


def test_the_server_is_whole_after_the_his_fuzz(target: Target) -> None:
    target.assert_unharmed()
    send_valid(target)


# -- without a server ---------------------------------------------------------------------------


@UNIT
@given(damage=damages())
def test_interpret_and_acknowledge_answer_anything(damage: Damage) -> None:
    raw = render(seed(damage.kind), damage)
    reading = interpret(raw, default_station=None)
    assert (reading.command is None) != (reading.rejection is None)
    code = reading.rejection or "AA"
    source = reading.message if reading.message is not None else raw
    for answer in (
        acknowledge(source, code, application="HOUNSFIELD", facility="RAD"),
        acknowledge(raw, code, "text|^~\\&\r", application="HOUNSFIELD", facility="RAD"),
        nak(raw, application="HOUNSFIELD", facility="RAD"),
    ):
        if VT not in raw and FS not in raw:  # as in an MLLP block: its answer frames too
            assert VT not in answer and FS not in answer
        read_ack(answer)
    if damage.undamaged:
        assert reading.command is not None, reading.rejection and reading.rejection.text


@UNIT
@given(data=st.binary(max_size=3000))
def test_interpret_answers_random_bytes(data: bytes) -> None:
    reading = interpret(data)
    assert (reading.command is None) != (reading.rejection is None)
    read_ack(acknowledge(data, reading.rejection or "AA", application="H", facility=""))


def record(order: Order, status: OrderStatus = OrderStatus.SCHEDULED) -> OrderRecord:
    return OrderRecord(
        id=1,
        source=Source.MANUAL,
        source_id="1",
        order=order,
        status=status,
        study_uid="1.2.826.0.1.3680043.10.1529.3.1",
        study_id=None,
        created_at="2026-03-01T08:00:00",
        updated_at="2026-03-01T08:00:00",
    )


RECORDS = [
    record(Order.model_validate(stored))
    for stored in [
        {
            "patient": {"id": ANCHOR_PATIENT, "name": "ANCHOR^KEEP"},
            "accession_number": ANCHOR_ACCESSION,
            "modality": "MR",
            "scheduled_station_ae": "MR_ANCHOR",
            "scheduled_time": "2026-03-10T09:00:00",
        },
        {
            "patient": {"id": "P*1", "name": "MÜLLER^JÖRG^^^", "sex": "M"},
            "accession_number": "A?1",
            "modality": "CT",
            "scheduled_station_ae": "CT 1",
            "scheduled_time": "2026-03-10T23:59:59.999999+14:00",
            "priority": "stat",
        },
    ]
]


@UNIT
@given(
    query=identifier_bytes(damaged=True)
    | identifier_bytes(damaged=False)
    | st.binary(max_size=600).map(lambda data: ("", data))
)
def test_parse_query_refuses_with_worklist_query_error_only(query: tuple[str, bytes]) -> None:
    try:
        asked = parse_query(query[1])
    except WorklistQueryError:
        return
    asked.to_filter()
    for kept in RECORDS:
        asked.matches(kept)


@UNIT
@given(body=order_bodies())
def test_any_valid_order_is_a_worklist_item_its_own_query_finds(body: dict[str, Any]) -> None:
    kept = record(Order.model_validate(body))
    answer = dcmread(BytesIO(item(kept)))
    order = kept.order
    assert answer.AccessionNumber.strip() == order.accession_number.strip()
    assert answer.PatientID.strip() == order.patient.id.strip()
    assert str(answer.PatientName) == order.patient.name
    assert answer.StudyInstanceUID == kept.study_uid
    assert answer.ScheduledProcedureStepSequence[0].Modality == order.modality
    asked = parse_query(
        encode(order_query(order.accession_number, order.patient.id), False, True) or b""
    )
    assert asked.matches(kept)
    assert not asked.matches(record(order, OrderStatus.CANCELLED))


# -- the FHIR client against any answer ------------------------------------------------------


class FhirFake:
    """An HTTP server answering every GET with the body set last, as FHIR JSON."""

    def __init__(self) -> None:
        self.patient = b"{}"
        self.bundle = b"{}"
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                body = fake.patient if self.path.startswith("/fhir/Patient/") else fake.bundle
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/fhir"


@pytest.fixture(scope="module")
def fhir() -> Iterator[tuple[FhirFake, FhirClient]]:
    fake = FhirFake()
    fake.thread.start()
    client = FhirClient(
        FhirSettings(
            base_url=fake.base_url,
            retries=0,
            cache_seconds=0,
            timeout_seconds=5,
            deadline_seconds=10,
        )
    )
    yield fake, client
    fake.server.shutdown()
    fake.server.server_close()


def maybe(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly ``values``, one time in eight any JSON."""
    return st.integers(0, 7).flatmap(lambda n: json_values if n == 7 else values)


V2 = "http://terminology.hl7.org/CodeSystem/v2-0203"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
fhir_text = st.one_of(
    st.sampled_from(["Doe", "Jane", "Müller", "O'Brien", "Nguyễn", "李", "", " "]),
    st.sampled_from(["^", "a^b", "\\", "=", "x" * 80, "\x00", "\u2028"]),
    st.text(max_size=20),
)
fhir_ids = st.sampled_from(["p1", "A-1.b", "x" * 64, "x" * 65, "p 1", "", "Doe"])
human_names = st.fixed_dictionaries(
    {"family": maybe(fhir_text)},
    optional={
        "use": maybe(st.sampled_from(["official", "usual", "nickname"])),
        "given": maybe(st.lists(fhir_text, max_size=3)),
        "text": maybe(fhir_text),
    },
)
patients = st.fixed_dictionaries(
    {
        "resourceType": maybe(st.just("Patient")),
        "id": maybe(fhir_ids),
        "name": maybe(st.lists(human_names, min_size=1, max_size=3) | st.just([])),
    },
    optional={
        "identifier": maybe(
            st.lists(
                st.fixed_dictionaries(
                    {"value": maybe(fhir_text)},
                    optional={"type": maybe(st.just({"coding": [{"system": V2, "code": "MR"}]}))},
                ),
                max_size=3,
            )
        ),
        "birthDate": maybe(st.sampled_from(["1970-03-04", "1970", "1970-02", "1970-02-30"])),
        "gender": maybe(st.sampled_from(["male", "female", "other", "unknown", "x"])),
    },
)
service_requests = st.fixed_dictionaries(
    {
        "resourceType": maybe(st.just("ServiceRequest")),
        "id": maybe(st.just("sr1") | fhir_ids),
        "status": maybe(st.sampled_from(["active", "revoked", "draft", "entered-in-error"])),
        "intent": maybe(st.sampled_from(["order", "proposal"])),
        "subject": maybe(st.just({"reference": "Patient/p1"}) | st.just({"reference": "x"})),
    },
    optional={
        "identifier": maybe(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "value": maybe(fhir_text),
                        "type": maybe(st.just({"coding": [{"system": V2, "code": "ACSN"}]})),
                    }
                ),
                max_size=2,
            )
        ),
        "code": maybe(
            st.fixed_dictionaries(
                {
                    "coding": st.lists(
                        st.fixed_dictionaries(
                            {"system": st.just(DCM), "code": maybe(fhir_text | st.just("CT"))}
                        ),
                        max_size=2,
                    )
                },
                optional={"text": maybe(fhir_text)},
            )
        ),
        "performer": maybe(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "identifier": st.fixed_dictionaries(
                            {"system": st.just("urn:dicom:ae"), "value": maybe(fhir_text)}
                        )
                    }
                ),
                max_size=2,
            )
        ),
        "occurrenceDateTime": maybe(
            st.sampled_from(["2026-03-10T09:00:00+01:00", "2026-03-10", "2026", "9999-99-99"])
            | fhir_text
        ),
        "priority": maybe(st.sampled_from(["routine", "urgent", "asap", "stat", "now"])),
        "meta": maybe(st.just({"lastUpdated": "2026-03-01T08:00:00Z"})),
    },
)


def dumped(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@settings(UNIT, max_examples=100)  # two HTTP requests each
@given(
    patient=patients.map(dumped) | json_bodies,
    bundle=st.lists(service_requests, max_size=3).map(
        lambda resources: dumped(
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": resource} for resource in resources],
            }
        )
    )
    | json_bodies,
)
def test_the_fhir_client_reads_any_answer_into_valid_values_or_its_errors(
    fhir: tuple[FhirFake, FhirClient], patient: bytes, bundle: bytes
) -> None:
    fake, client = fhir
    fake.patient, fake.bundle = patient, bundle
    try:
        read = client.read_patient("p1")
    except (HisUnavailable, HisNotFound):
        pass
    else:
        Patient.model_validate(read.model_dump())
    try:
        changes = client.service_requests(None)
    except HisUnavailable:
        return
    for command in changes.commands:
        assert isinstance(command, (PlaceOrder, CancelOrder))
        if isinstance(command, PlaceOrder):
            Order.model_validate(command.order.model_dump())
            assert command.order.priority in Priority

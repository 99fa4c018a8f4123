"""The MLLP listener with real clients: python-hl7's MLLPClient, and raw sockets for what
a well-behaved client would not send."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import hl7
import pytest
from hl7.client import MLLPClient

from hounsfield.his.hl7v2 import acknowledge, interpret
from hounsfield.his.mllp import MllpListener, frame
from hounsfield.his.model import Command, PlaceOrder
from hounsfield.his.settings import MllpSettings

TIMEOUT = 5.0


def order(control_id: str, accession: str = "ACC1") -> str:
    fields = {2: control_id, 4: "CT1^CT head", 18: accession, 21: "CT01", 24: "CT"}
    obr = [fields.get(number, "") for number in range(1, 27)] + ["^^^20240502"]  # OBR-27.4
    return "\r".join(
        [
            f"MSH|^~\\&|RIS|HOSP|HOUNSFIELD|RAD|20240501101500||ORM^O01|{control_id}|P|2.3.1",
            "PID|1||MRN1||DOE^JANE||19800214|F",
            f"ORC|NW|{control_id}",
            "|".join(["OBR", *obr]),
        ]
    )


def framed(control_id: str) -> bytes:
    return frame(order(control_id).encode())


class Recorder:
    """A ``handle`` as the plugin's: interpret, keep the command, acknowledge."""

    def __init__(self) -> None:
        self.commands: list[Command] = []
        self.lock = threading.Lock()

    def __call__(self, raw: bytes) -> bytes:
        result = interpret(raw)
        if result.command is None:
            assert result.rejection is not None
            return acknowledge(raw, result.rejection, application="HOUNSFIELD", facility="")
        with self.lock:
            self.commands.append(result.command)
        return acknowledge(raw, "AA", application="HOUNSFIELD", facility="")


Start = Callable[..., MllpListener]


@pytest.fixture
def start() -> Iterator[Start]:
    """Starts listeners on ports of the system's choosing; stops them after the test."""
    started: list[MllpListener] = []

    def run(handle: Callable[[bytes], bytes] | None = None, **settings: Any) -> MllpListener:
        listener = MllpListener(
            MllpSettings(host="127.0.0.1", port=0, **settings), handle or Recorder()
        )
        listener.start()
        started.append(listener)
        return listener

    yield run
    for listener in started:
        listener.stop()


def client(listener: MllpListener) -> MLLPClient:
    connection = MLLPClient("127.0.0.1", listener.port)
    connection.socket.settimeout(TIMEOUT)
    return connection


def raw_socket(listener: MllpListener) -> socket.socket:
    return socket.create_connection(("127.0.0.1", listener.port), timeout=TIMEOUT)


def answer(connection: socket.socket) -> hl7.Message:
    """The next acknowledgement on ``connection``, unframed and parsed (read a byte at a
    time, to leave the next one where it is)."""
    data = b""
    while not data.endswith(b"\x1c\r"):
        chunk = connection.recv(1)
        assert chunk, f"closed before an answer: {data!r}"
        data += chunk
    assert data.startswith(b"\x0b")
    return hl7.parse(data[1:-2].decode())


def unframe(data: bytes) -> hl7.Message:
    assert data.startswith(b"\x0b") and data.endswith(b"\x1c\r")
    return hl7.parse(data[1:-2].decode())


def drain(connection: socket.socket) -> bytes:
    """What comes on ``connection`` until the listener closes it (a timeout if it does not);
    a reset, the listener closing with bytes unread, ends it too."""
    data = b""
    try:
        while chunk := connection.recv(4096):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def test_one_message_is_accepted(start: Start) -> None:
    recorder = Recorder()
    listener = start(recorder)
    with client(listener) as connection:
        ack = unframe(connection.send_message(order("MSG1")))
    assert (str(ack["MSA.F1"]), str(ack["MSA.F2"])) == ("AA", "MSG1")
    assert str(ack.segment("MSH")(5)) == "RIS"
    assert len(recorder.commands) == 1
    assert isinstance(recorder.commands[0], PlaceOrder)
    assert recorder.commands[0].order.accession_number == "ACC1"


def test_a_rejection_travels_back(start: Start) -> None:
    listener = start()
    with client(listener) as connection:
        ack = unframe(connection.send_message(order("MSG1").replace("ORM^O01", "ADT^A01")))
    assert (str(ack["MSA.F1"]), str(ack["MSA.F2"])) == ("AR", "MSG1")


def test_ten_clients_at_once_five_messages_each(start: Start) -> None:
    recorder = Recorder()
    listener = start(recorder)

    def converse(number: int) -> list[tuple[str, str]]:
        with client(listener) as connection:
            answers = []
            for sequence in range(5):
                control_id = f"C{number}M{sequence}"
                ack = unframe(connection.send_message(order(control_id, control_id)))
                answers.append((str(ack["MSA.F1"]), str(ack["MSA.F2"])))
            return answers

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(converse, range(10)))
    for number, answers in enumerate(results):
        assert answers == [("AA", f"C{number}M{sequence}") for sequence in range(5)]
    assert len(recorder.commands) == 50
    accessions = {c.order.accession_number for c in recorder.commands if isinstance(c, PlaceOrder)}
    assert len(accessions) == 50


@pytest.mark.parametrize(
    ("sent", "answered", "logged"),
    [
        # A message without <VT>: discarded; the next one answered.
        (order("LOST").encode() + b"\x1c\r" + framed("NEXT"), ["NEXT"], "without <VT>"),
        # <FS> without <CR>: answered all the same.
        (b"\x0b" + order("NOCR").encode() + b"\x1c" + framed("NEXT"), ["NOCR", "NEXT"], "<CR>"),
        # Garbage after a message and before the next <VT>: discarded.
        (framed("ONE") + b"garbage\r\n" + framed("TWO"), ["ONE", "TWO"], "before <VT>"),
        # A message cut short by the next <VT>: discarded.
        (b"\x0b" + order("CUT").encode()[:40] + framed("WHOLE"), ["WHOLE"], "without <FS>"),
        # Line feeds between blocks are usual: nothing to say.
        (framed("ONE") + b"\r\n" + framed("TWO"), ["ONE", "TWO"], ""),
    ],
)
def test_broken_framing(
    start: Start, caplog: pytest.LogCaptureFixture, sent: bytes, answered: list[str], logged: str
) -> None:
    listener = start()
    with caplog.at_level(logging.WARNING, "hounsfield.his"), raw_socket(listener) as connection:
        connection.sendall(sent)
        for control_id in answered:
            ack = answer(connection)
            assert (str(ack["MSA.F1"]), str(ack["MSA.F2"])) == ("AA", control_id)
        connection.sendall(framed("LAST"))
        assert str(answer(connection)["MSA.F2"]) == "LAST"
    warnings = [r.getMessage() for r in caplog.records if r.name == "hounsfield.his"]
    assert [logged in w for w in warnings] == ([True] if logged else [])
    with client(listener) as connection:
        assert str(unframe(connection.send_message(order("AFTER")))["MSA.F1"]) == "AA"


def test_a_message_in_pieces(start: Start) -> None:
    listener = start()
    data = framed("SLOW")
    with raw_socket(listener) as connection:
        for offset in range(0, len(data), 7):
            connection.sendall(data[offset : offset + 7])
            time.sleep(0.001)
        assert str(answer(connection)["MSA.F2"]) == "SLOW"


def test_an_oversized_message_closes_the_connection(start: Start) -> None:
    recorder = Recorder()
    listener = start(recorder, max_message_bytes=1024)
    big = order("BIG") + "\rNTE|1||" + "X" * 2000
    for sent in (frame(big.encode()), b"Z" * 1500):  # the second without <VT> or <FS>
        with raw_socket(listener) as connection:
            connection.sendall(sent)
            reply = drain(connection)
            assert reply == b"" or str(unframe(reply)["MSA.F1"]) == "AR"
    assert recorder.commands == []
    with client(listener) as connection:
        assert str(unframe(connection.send_message(order("SMALL")))["MSA.F1"]) == "AA"


def test_an_oversized_message_is_answered_ar_when_the_answer_gets_through(start: Start) -> None:
    listener = start(max_message_bytes=1024)
    head = framed("BIG")[:-2]  # all but <FS><CR>: the rest never comes
    with raw_socket(listener) as connection:
        connection.sendall(head + b"\rNTE|1||" + b"X" * 1100)
        ack = unframe(drain(connection))
        assert (str(ack["MSA.F1"]), str(ack["MSA.F2"]), ack["MSA.F3"]) == (
            "AR",
            "BIG",
            "message too large",
        )


def test_connections_over_the_limit_are_closed(start: Start) -> None:
    listener = start(max_connections=2)
    with client(listener) as first, client(listener) as second:
        assert str(unframe(first.send_message(order("F1")))["MSA.F1"]) == "AA"
        assert str(unframe(second.send_message(order("S1")))["MSA.F1"]) == "AA"
        with raw_socket(listener) as third:
            started = time.monotonic()
            assert third.recv(4096) == b""
            assert time.monotonic() - started < 1
        assert str(unframe(first.send_message(order("F2")))["MSA.F2"]) == "F2"
        assert str(unframe(second.send_message(order("S2")))["MSA.F2"]) == "S2"
    deadline = time.monotonic() + TIMEOUT
    while True:  # the two threads end as their peers close
        try:
            with client(listener) as fourth:
                assert str(unframe(fourth.send_message(order("D1")))["MSA.F1"]) == "AA"
            break
        except (AssertionError, ConnectionError):
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_a_failing_handle_is_answered_ar_and_the_listener_lives(start: Start) -> None:
    recorder = Recorder()

    def handle(raw: bytes) -> bytes:
        if b"|BOOM|" in raw:
            raise RuntimeError("the database is gone")
        return recorder(raw)

    listener = start(handle)
    with client(listener) as connection:
        nak = unframe(connection.send_message(order("BOOM")))
        assert (str(nak["MSA.F1"]), str(nak["MSA.F2"]), nak["MSA.F3"]) == (
            "AR",
            "BOOM",
            "internal error",
        )
        assert str(unframe(connection.send_message(order("FINE")))["MSA.F1"]) == "AA"
    with client(listener) as connection:
        assert str(unframe(connection.send_message(order("AGAIN")))["MSA.F1"]) == "AA"


def test_an_idle_connection_is_closed(start: Start) -> None:
    listener = start(idle_seconds=0.3)
    with raw_socket(listener) as connection:
        started = time.monotonic()
        assert connection.recv(4096) == b""
        assert 0.2 < time.monotonic() - started < 2


def test_stop_closes_connections_promptly(start: Start) -> None:
    listener = start()
    connections = [raw_socket(listener) for _ in range(3)]
    with client(listener) as busy:
        assert str(unframe(busy.send_message(order("ONE")))["MSA.F1"]) == "AA"
        connections[0].sendall(b"\x0b" + order("HALF").encode()[:30])  # mid-message
        started = time.monotonic()
        listener.stop()
        assert time.monotonic() - started < 2
        for connection in [*connections, busy.socket]:
            assert connection.recv(4096) == b""
            connection.close()
    with pytest.raises(OSError):
        raw_socket(listener)


def test_a_port_in_use_is_told(start: Start) -> None:
    listener = start()
    taken = MllpListener(MllpSettings(host="127.0.0.1", port=listener.port), Recorder())
    with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{listener.port}"):
        taken.start()

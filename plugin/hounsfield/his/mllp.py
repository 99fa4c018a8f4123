"""The MLLP listener: HL7 v2 messages over TCP, in the plugin's process, on threads.

MLLP (the Minimal Lower Layer Protocol, HL7 v2.x Implementation Guide, Appendix C) frames
each message as ``<VT 0x0b> message <FS 0x1c><CR 0x0d>``; the sender waits for the
acknowledgement, framed the same way, before its next message on that connection.

Each connection is served on a thread of its own, up to ``MaxConnections``: past that a
new connection is closed at once. A connection silent for ``IdleSeconds`` is closed.
What does not fit the framing is discarded with a log line, and whatever whole message can
be recovered is still answered: bytes before ``<VT>``, a message without ``<VT>`` (up to
its ``<FS>``: discarded), a message cut short by the next ``<VT>`` (discarded), an
``<FS>`` without its ``<CR>`` (answered). A message over ``MaxMessageBytes`` gets an
``AR`` built from its start, then the connection is closed (the sender may be still
sending: the ``AR`` may be lost to the reset). A failing ``handle`` is logged and the
message answered ``AR`` (``hl7v2.nak``): no connection takes the listener down.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable

from hounsfield.his.hl7v2 import nak
from hounsfield.his.settings import MllpSettings

log = logging.getLogger("hounsfield.his")

VT = 0x0B  # start block
FS = 0x1C  # end block, then CR
CR = 0x0D
_POLL_SECONDS = 0.2  # how often the accepting thread looks whether it should stop
_STOP_SECONDS = 1.0  # how long stop() waits for connections busy in ``handle``
_CHUNK = 64 << 10


def frame(message: bytes) -> bytes:
    """``message`` in its MLLP block."""
    return bytes([VT]) + message + bytes([FS, CR])


class MllpListener:
    """Listens on ``settings.host``:``settings.port`` (given 0, which the configuration
    means as "no listener", the system picks a port: tests) and answers each message with
    ``handle``'s bytes: ``handle`` gets one message, without its framing, and returns its
    acknowledgement. Started once, stopped once."""

    def __init__(self, settings: MllpSettings, handle: Callable[[bytes], bytes]) -> None:
        self._settings = settings
        self._handle = handle
        self._server: socket.socket | None = None
        self._port = 0
        self._acceptor: threading.Thread | None = None
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        """The port listened on (0 before ``start``)."""
        return self._port

    def start(self) -> None:
        """Bind and listen; an OSError says why not (the port in use, a wrong host)."""
        if self._server is not None:
            raise RuntimeError("the MLLP listener was started already")
        host, port = self._settings.host, self._settings.port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            server = socket.create_server((host, port), family=family, backlog=64)
        except OSError as error:
            raise OSError(
                error.errno, f"the MLLP listener cannot listen on {host}:{port}: {error.strerror}"
            ) from error
        server.settimeout(_POLL_SECONDS)
        self._server = server
        self._port = server.getsockname()[1]
        self._acceptor = threading.Thread(
            target=self._accept, args=(server,), name=f"mllp-{self._port}", daemon=True
        )
        self._acceptor.start()
        log.info("MLLP: listening on %s:%d", host, self._port)

    def stop(self) -> None:
        """Stop listening and close every connection; waits for a connection busy in
        ``handle`` about a second at most."""
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join()
        if self._server is not None:
            self._server.close()
        with self._lock:
            connections = dict(self._connections)
        for connection in connections:
            # Wakes the thread blocked in recv(); the thread closes its socket.
            with contextlib.suppress(OSError):  # closed by its peer already
                connection.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + _STOP_SECONDS
        for thread in connections.values():
            thread.join(max(0.0, deadline - time.monotonic()))
        busy = sum(thread.is_alive() for thread in connections.values())
        if busy:
            log.warning("MLLP: stopped with %d connection(s) still handling a message", busy)

    def _accept(self, server: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                connection, peer = server.accept()
            except TimeoutError:
                continue
            except OSError as error:  # out of file descriptors, say: not the listener's end
                log.warning("MLLP: accept failed: %s", error)
                self._stopping.wait(_POLL_SECONDS)
                continue
            name = f"{peer[0]}:{peer[1]}"
            with self._lock:
                full = len(self._connections) >= self._settings.max_connections
                if not full:
                    thread = threading.Thread(
                        target=self._serve,
                        args=(connection, name),
                        name=f"mllp {name}",
                        daemon=True,
                    )
                    self._connections[connection] = thread
            if full:
                log.warning(
                    "MLLP %s: refused, %d connections open already",
                    name,
                    self._settings.max_connections,
                )
                connection.close()
            else:
                thread.start()

    def _serve(self, connection: socket.socket, peer: str) -> None:
        try:
            with connection:
                connection.settimeout(self._settings.idle_seconds)
                self._converse(connection, peer)
        except TimeoutError:
            log.info("MLLP %s: closed after %g s idle", peer, self._settings.idle_seconds)
        except OSError as error:
            if not self._stopping.is_set():
                log.info("MLLP %s: connection lost: %s", peer, error)
        except Exception:
            log.exception("MLLP %s: connection closed after an error", peer)
        finally:
            with self._lock:
                del self._connections[connection]

    def _converse(self, connection: socket.socket, peer: str) -> None:
        framer = _Framer(self._settings.max_message_bytes, peer)
        while not self._stopping.is_set():
            data = connection.recv(_CHUNK)
            if not data:
                return
            for message in framer.feed(data):
                connection.sendall(frame(self._answer(message, peer)))
            if framer.overflow is not None:
                log.warning(
                    "MLLP %s: a message over %d bytes: answered AR and closed",
                    peer,
                    self._settings.max_message_bytes,
                )
                connection.sendall(frame(self._nak(framer.overflow, "message too large")))
                return

    def _answer(self, message: bytes, peer: str) -> bytes:
        try:
            return self._handle(message)
        except Exception:
            log.exception("MLLP %s: a message could not be handled", peer)
            return self._nak(message, "internal error")

    def _nak(self, message: bytes, text: str) -> bytes:
        return nak(
            message,
            text,
            application=self._settings.application,
            facility=self._settings.facility,
        )


class _Framer:
    """The messages in a connection's bytes as they come, and what is discarded.

    ``overflow`` is set to the start of a message (or of bytes outside any block) longer
    than ``limit``: the connection is to be closed."""

    def __init__(self, limit: int, peer: str) -> None:
        self._limit = limit
        self._peer = peer
        self._buffer = bytearray()
        self.overflow: bytes | None = None

    def feed(self, data: bytes) -> list[bytes]:
        """The messages completed by ``data``."""
        buffer = self._buffer
        buffer += data
        messages = []
        while buffer:
            start, end = buffer.find(VT), buffer.find(FS)
            if start < 0 and end < 0:  # outside any block, or a message without <VT> so far
                if len(buffer) > self._limit:
                    self.overflow = bytes(buffer[: self._limit])
                break
            if start < 0 or 0 <= end < start:
                self._discard(end + 1, "a message without <VT>")
            elif start > 0:
                self._discard(start, "bytes before <VT>")
            elif (restart := buffer.find(VT, 1)) > 0 and (end < 0 or restart < end):
                self._discard(restart, "a message without <FS><CR>")
            elif (end if end > 0 else len(buffer)) - 1 > self._limit:
                self.overflow = bytes(buffer[1 : 1 + self._limit])
                break
            elif end < 0:  # the rest is to come
                break
            else:
                if end + 1 < len(buffer) and buffer[end + 1] != CR:
                    log.warning("MLLP %s: <FS> without <CR> after it", self._peer)
                messages.append(bytes(buffer[1:end]))
                del buffer[: end + 1]  # its CR, if any, is discarded before the next <VT>
        return messages

    def _discard(self, count: int, what: str) -> None:
        discarded = bytes(self._buffer[:count])
        del self._buffer[:count]
        if discarded.strip():  # CR or LF between blocks is usual and harmless
            log.warning("MLLP %s: %d bytes discarded: %s", self._peer, len(discarded), what)

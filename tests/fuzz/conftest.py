"""Orthanc servers of the fuzz suite's own, and the promises checked on them.

Whatever a sender does: the server answers every request (never a 5xx, never a dropped
connection), stays the same process, its components stay healthy, and nothing is
half-stored (the archive changes exactly as the answers say). Workers are off (0): jobs a
fuzzed request queues by chance stay queued instead of spending the CI's two cores.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.server import OrthancServer, free_port

# Components a hostile request could break; "workers" and "queue" are off by design here.
COMPONENTS = ("database", "storage", "events", "dicomweb")


@dataclass
class Target:
    """The server under fuzz."""

    server: OrthancServer
    pid: int
    token: str

    def send(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        *,
        signed_in: bool = True,
    ) -> tuple[int | None, bytes]:
        """One raw request (http.client sends path, headers and body as given); it fails
        at once on a 5xx or no answer, so Hypothesis shrinks the input that caused it.

        The status is None when the server refused the request before reading its body
        (the gate does that to large bodies it refuses): it answered and closed the
        connection while the body was still on its way, and the client saw the connection
        reset instead of the answer."""
        connection = http.client.HTTPConnection("127.0.0.1", self.server.http_port, timeout=20)
        sent = dict(headers or {})
        if signed_in:
            sent.setdefault("Authorization", f"Bearer {self.token}")
        what = f"{method} {path[:80]} ({len(body or b'')} bytes)"
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            status, payload = response.status, response.read()
        except (BrokenPipeError, ConnectionResetError) as error:
            assert self.server.process.poll() is None, f"Orthanc died on {what}"
            if not body:
                raise AssertionError(f"connection dropped on {what}") from error
            return None, b""
        except (http.client.HTTPException, ConnectionError) as error:
            status, payload = 0, repr(error).encode()
        finally:
            connection.close()
        assert self.server.process.poll() is None, f"Orthanc died on {what}"
        assert status != 0, f"no answer to {what}: {payload[:200]!r}"
        assert status < 500, f"{status} for {what}: {payload[:300]!r}"
        return status, payload

    def instance_count(self) -> int:
        return self.server.get("/statistics").json()["CountInstances"]

    def assert_unharmed(self) -> None:
        assert self.server.process.poll() is None, self.server.log_tail()
        assert self.server.process.pid == self.pid
        components = self.server.get("/api/health").json()["components"]
        broken = {name: components[name] for name in COMPONENTS if not components[name]["healthy"]}
        assert broken == {}


def _target(folder: Path, **settings: object) -> Iterator[Target]:
    server = OrthancServer(folder, hounsfield__workers=0, **settings)
    server.start()
    token = server.http.headers["Authorization"].removeprefix("Bearer ")
    assert server.post(
        "/api/users",
        json={"username": "fuzz-target", "password": "Hostile-Input-2468", "role": "referrer"},
    ).ok
    yield Target(server, server.process.pid, token)
    server.stop()


EXTENSIONS = (
    "hounsfield.recon",
    "hounsfield.reading",
    "hounsfield.ai",
    "hounsfield.his",
)  # every route we ship


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A server with our extensions: every route we serve, and the HIS's MLLP port."""
    yield from _target(
        Path(tmp_path_factory.mktemp("orthanc-fuzz")),
        hounsfield__extensions=list(EXTENSIONS),
        hounsfield_his__mllp__port=free_port(),
    )


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A server without extensions: nothing but the fuzz stores anything in it."""
    yield from _target(
        Path(tmp_path_factory.mktemp("orthanc-fuzz-archive")), hounsfield__extensions=[]
    )

"""One Orthanc of its own for the fuzz suite, and the checks every batch ends with.

The checks are what the product promises whatever a sender does: the server still
answers (health 200 from the same process), no answer was a 5xx, and nothing was
half-stored (the archive holds exactly the objects some road answered as stored).
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.server import OrthancServer


@dataclass
class Target:
    """The server under fuzz and what it has been sent and answered."""

    server: OrthancServer
    pid: int
    token: str
    statuses: list[tuple[int, str]] = field(default_factory=list)  # (status, what was sent)
    accepted: set[str] = field(default_factory=set)  # SOP Instance UIDs answered as stored

    def send(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        *,
        signed_in: bool = True,
    ) -> tuple[int, bytes]:
        """One raw request (http.client sends path, headers and body as given)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.server.http_port, timeout=60)
        sent = dict(headers or {})
        if signed_in:
            sent.setdefault("Authorization", f"Bearer {self.token}")
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            status, payload = response.status, response.read()
        except (http.client.HTTPException, ConnectionError) as error:
            status, payload = 0, repr(error).encode()  # no answer at all
        finally:
            connection.close()
        self.statuses.append((status, f"{method} {path} {len(body or b'')} bytes"))
        return status, payload

    def assert_unharmed(self) -> None:
        """The promises, checked after a batch of hostile inputs."""
        assert self.server.process.poll() is None, self.server.log_tail()
        assert self.server.process.pid == self.pid
        health = self.server.get("/api/health")
        assert health.status_code == 200, health.text
        failures = [
            (status, sent) for status, sent in self.statuses if status >= 500 or status == 0
        ]
        assert failures == [], failures[:5]
        instances = self.server.get("/instances", params={"expand": ""}).json()
        held = {instance["MainDicomTags"]["SOPInstanceUID"] for instance in instances}
        assert held == self.accepted, f"half-stored: {held ^ self.accepted}"


@pytest.fixture(scope="session")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    server = OrthancServer(
        Path(tmp_path_factory.mktemp("orthanc-fuzz")),
        hounsfield__extensions=["tests.support.extension", "hounsfield.recon"],
        hounsfield__workers=1,
    )
    server.start()
    token = server.http.headers["Authorization"].removeprefix("Bearer ")
    yield Target(server, server.process.pid, token)
    server.stop()

"""Inputs that once stopped Orthanc, or could make it hold unbounded memory, sent as an
attacker would: without an account, straight at the sockets."""

from __future__ import annotations

import base64
import socket
import time

import pytest

from tests.support.server import OrthancServer


def nested_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def still_serving(orthanc: OrthancServer) -> None:
    assert orthanc.process.poll() is None, orthanc.log_tail()
    assert orthanc.get("/api/health").status_code == 200


def test_a_deeply_nested_login_body_is_a_400_and_orthanc_keeps_serving(
    orthanc: OrthancServer,
) -> None:
    """About 200 kB of nested arrays killed Orthanc (SIGSEGV) before the bound."""
    response = orthanc.client().post(
        orthanc.url("/api/auth/login"),
        data=nested_json(100_000),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400, response.text
    assert response.json()["limit"] == "Limits.JsonDepth"
    still_serving(orthanc)


@pytest.mark.parametrize("where", ["authorization", "cookie"])
def test_a_token_of_nested_json_is_a_401_and_orthanc_keeps_serving(
    orthanc: OrthancServer, where: str
) -> None:
    """PyJWT parsed a forged token's header before its signature: 13 kB killed Orthanc."""
    segment = base64.urlsafe_b64encode(nested_json(5000)).rstrip(b"=").decode()
    token = f"{segment}.e30.c2lnbmF0dXJl"
    headers = (
        {"Authorization": f"Bearer {token}"}
        if where == "authorization"
        else {"Cookie": f"hf_access={token}"}
    )
    for path in ("/api/auth/me", "/system", "/dicom-web/studies"):
        response = orthanc.client().get(orthanc.url(path), headers=headers, timeout=10)
        assert response.status_code in (401, 403), (path, response.status_code)
    still_serving(orthanc)


def raw_request_head(orthanc: OrthancServer, head: bytes, wait: float = 5.0) -> bytes:
    """Send only a request's head (no body) and return what Orthanc answers before it."""
    with socket.create_connection(("127.0.0.1", orthanc.http_port), timeout=wait) as connection:
        connection.sendall(head)
        return connection.recv(200)


@pytest.mark.parametrize(
    "head",
    [
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 500000000\r\n\r\n",
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST /api/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 500000000\r\n\r\n",
        b"POST /instances HTTP/1.1\r\nHost: x\r\nContent-Length: 9000000000000\r\n\r\n",
    ],
    ids=["login-huge", "login-chunked", "api-anonymous-huge", "over-upload-limit"],
)
def test_a_large_body_without_an_account_is_refused_before_it_is_read(
    orthanc: OrthancServer, head: bytes
) -> None:
    started = time.monotonic()
    answer = raw_request_head(orthanc, head)
    assert answer.startswith(b"HTTP/1.1 403"), answer
    assert time.monotonic() - started < 2  # answered at once: the body was never awaited
    still_serving(orthanc)

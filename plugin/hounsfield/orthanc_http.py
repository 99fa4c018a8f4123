"""Orthanc's REST API over HTTP, for worker processes (the plugin uses the SDK instead):
the same ``OrthancApi`` interface, so a handler works in either process.

Workers authenticate with the service token the plugin hands them at start; the gate
treats it as the built-in ``hounsfield-worker`` account (technician rights, audited).
"""

from __future__ import annotations

import http.client
import json
import os
import threading
from typing import Any
from urllib.parse import urlsplit

from hounsfield.orthanc_api import OrthancError

URL_VARIABLE = "HOUNSFIELD_ORTHANC_URL"
TOKEN_VARIABLE = "HOUNSFIELD_SERVICE_TOKEN"


class OrthancHttpError(OrthancError):
    def __init__(self, method: str, path: str, status: int, body: bytes) -> None:
        super().__init__(f"{method} {path}: HTTP {status} {body[:200]!r}", status)


class OrthancHttpClient:
    """A keep-alive connection per thread to one Orthanc."""

    def __init__(self, base_url: str, token: str) -> None:
        parts = urlsplit(base_url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._headers = {"Authorization": f"Bearer {token}"}
        self._local = threading.local()

    @classmethod
    def from_environment(cls) -> OrthancHttpClient:
        return cls(os.environ[URL_VARIABLE], os.environ[TOKEN_VARIABLE])

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> bytes:
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = content_type
        for attempt in (1, 2):  # a kept-alive connection the server closed: reconnect once
            connection = self._connection(fresh=attempt == 2)
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                if attempt == 2:
                    raise
        if response.status >= 400:
            raise OrthancHttpError(method, path, response.status, payload)
        return payload

    def get_json(self, path: str) -> Any:
        return json.loads(self.request("GET", path))

    def get_bytes(self, path: str) -> bytes:
        return self.request("GET", path)

    def post_json(self, path: str, body: Any) -> Any:
        return json.loads(self.request("POST", path, json.dumps(body).encode()))

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    def store(self, dicom: bytes) -> dict[str, Any]:
        """POST /instances: store one DICOM file; Orthanc's answer (ID, ParentSeries...)."""
        return json.loads(self.request("POST", "/instances", dicom, "application/dicom"))

    def find_study(self, study_instance_uid: str) -> str | None:
        return self._lookup(study_instance_uid, "Study")

    def find_instance(self, sop_instance_uid: str) -> str | None:
        return self._lookup(sop_instance_uid, "Instance")

    def _lookup(self, uid: str, level: str) -> str | None:
        found = json.loads(self.request("POST", "/tools/lookup", uid.encode(), "text/plain"))
        return next((item["ID"] for item in found if item["Type"] == level), None)

    def _connection(self, *, fresh: bool) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None or fresh:
            if connection is not None:
                connection.close()
            connection = http.client.HTTPConnection(self._host, self._port, timeout=300)
            self._local.connection = connection
        return connection

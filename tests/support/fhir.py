"""A FHIR R4 server for tests, written from the specification rather than from our client.

It serves Patient search (``identifier`` as ``system|value`` or a value, ``name`` as the start
of any name part, case-insensitive, ``birthdate`` an exact date), Patient read, and
ServiceRequest search (``_lastUpdated=gt...``, sorted by last update), each search paged by
``_count`` with next links, answered as R4 Bundles of type searchset in
``application/fhir+json``. An unknown search parameter is a 400, as a strict server answers:
a client asking for something we did not mean fails loudly.

Faults on demand: ``delay`` before each answer, ``fail_next`` statuses, ``go_down`` (nothing
listens: connection refused), ``content_type``, ``garbage`` bodies, ``chunked`` answers
without a declared length (``trickle``: slowly), ``next_base`` (next links to another
server); ``add_resource`` stores any JSON, invalid included. Every request is logged with its
Authorization header.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
FIRST_UPDATE = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
PATIENT_PARAMETERS = {"identifier", "name", "birthdate"}
SERVICE_REQUEST_PARAMETERS = {"_lastUpdated", "_sort"}
PAGING = {"_count", "_offset"}

Json = dict[str, Any]  # JSON as parsed: its values are whatever the document holds


@dataclass(frozen=True)
class LoggedRequest:
    path: str
    query: dict[str, list[str]]
    authorization: str | None


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _outcome(code: str, text: str) -> Json:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": text}],
    }


def _typed_identifier(code: str, system: str, value: str) -> Json:
    return {
        "type": {"coding": [{"system": V2_0203, "code": code}]},
        "system": system,
        "value": value,
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, port: int, fhir: FhirServer) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.fhir = fhir


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the request log is the record."""

    def do_GET(self) -> None:
        fhir = self.server.fhir
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        fhir.log.append(LoggedRequest(url.path, query, self.headers.get("Authorization")))
        if fhir.delay:
            time.sleep(fhir.delay)
        status, body = fhir.answer(url.path, query)
        self._send(status, body)

    def _send(self, status: int, body: Json) -> None:
        fhir = self.server.fhir
        data = fhir.garbage if fhir.garbage is not None else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", f"{fhir.content_type}; charset=utf-8")
            self.send_header("Connection", "close")  # a server gone down takes nobody along
            if fhir.chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(data), 1024):
                    piece = data[start : start + 1024]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                    time.sleep(fhir.trickle)
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
            pass
        self.close_connection = True


class FhirServer:
    """Use as a context manager; ``base_url`` is where the client points."""

    def __init__(self) -> None:
        self.resources: dict[tuple[str, str], Json] = {}
        self.log: list[LoggedRequest] = []
        self.delay = 0.0
        self.page_size = 50  # the most one page holds, whatever _count asks
        self.content_type = "application/fhir+json"
        self.garbage: bytes | None = None
        self.chunked = False
        self.trickle = 0.0  # seconds between the pieces of a chunked answer
        self.next_base: str | None = None
        self._failures: deque[int] = deque()
        self._updates = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def __enter__(self) -> FhirServer:
        self.come_up()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.go_down()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"

    def come_up(self) -> None:
        """Listen (again, on the same port after ``go_down``)."""
        self._server = _Server(self.port, self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )
        self._thread.start()

    def go_down(self) -> None:
        """Stop listening: connections are refused until ``come_up``."""
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = self._thread = None

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``status`` and an OperationOutcome."""
        with self._lock:
            self._failures.extend([status] * times)

    def requests_to(self, path: str) -> list[LoggedRequest]:
        return [request for request in self.log if request.path == "/fhir/" + path]

    # -- data --------------------------------------------------------------------------------

    def add_resource(self, resource: Json) -> Json:
        """Store ``resource`` as it is (valid or not), stamped with a new last update."""
        with self._lock:
            self._updates += 1
            stamp = FIRST_UPDATE + timedelta(seconds=self._updates)
        resource["meta"] = {"versionId": str(self._updates), "lastUpdated": _instant(stamp)}
        self.resources[str(resource["resourceType"]), str(resource["id"])] = resource
        return resource

    def add_patient(
        self,
        id: str,
        *,
        mrn: str | None = None,
        family: str | None = None,
        given: tuple[str, ...] = (),
        birth_date: str | None = None,
        gender: str | None = None,
        other_names: tuple[Json, ...] = (),
        other_identifiers: tuple[Json, ...] = (),
    ) -> Json:
        """A Patient; ``mrn`` is an identifier typed MR, listed after ``other_identifiers``
        (so a client must look for the type, not take the first)."""
        resource: Json = {"resourceType": "Patient", "id": id}
        identifiers = list(other_identifiers)
        if mrn is not None:
            identifiers.append(_typed_identifier("MR", "urn:oid:1.2.36.146.595.217.0.1", mrn))
        if identifiers:
            resource["identifier"] = identifiers
        names = list(other_names)
        if family is not None or given:
            name: Json = {"use": "official", "given": list(given)}
            if family is not None:
                name["family"] = family
            names.append(name)
        if names:
            resource["name"] = names
        if birth_date is not None:
            resource["birthDate"] = birth_date
        if gender is not None:
            resource["gender"] = gender
        return self.add_resource(resource)

    def add_service_request(
        self,
        id: str,
        *,
        patient: str,
        accession: str | None,
        modality: str | None = "CT",
        modality_in: str = "orderDetail",
        station: str | None = "CT_ROOM_1",
        station_in: str = "performer",
        occurrence: str | None = "2024-05-02T09:30:00+02:00",
        in_period: bool = False,
        priority: str | None = "routine",
        status: str = "active",
        intent: str = "order",
        procedure: str | None = "CT chest without contrast",
    ) -> Json:
        """A ServiceRequest for ``patient`` (a Patient id); ``modality_in`` is where the DICOM
        modality code goes (code, category or orderDetail), ``station_in`` where the AE title
        goes (performer or locationCode)."""
        resource: Json = {
            "resourceType": "ServiceRequest",
            "id": id,
            "status": status,
            "intent": intent,
            "subject": {"reference": f"Patient/{patient}"},
            "identifier": [{"system": "urn:hospital:placer", "value": f"PLACER-{id}"}],
            "code": {
                "coding": [{"system": "http://loinc.org", "code": "24627-2", "display": "CT Chest"}]
            },
        }
        if accession is not None:
            resource["identifier"] = [
                {"system": "urn:hospital:placer", "value": f"PLACER-{id}"},
                _typed_identifier("ACSN", "urn:hospital:accession", accession),
            ]
        if procedure is not None:
            resource["code"] = {**resource["code"], "text": procedure}
        if modality is not None:
            coding = {"system": DCM, "code": modality}
            if modality_in == "code":
                resource["code"]["coding"].append(coding)
            else:
                resource[modality_in] = [{"coding": [coding]}]
        if station is not None:
            if station_in == "performer":
                resource["performer"] = [
                    {"identifier": {"system": "urn:dicom:ae", "value": station}}
                ]
            else:
                resource["locationCode"] = [
                    {"coding": [{"system": "urn:dicom:ae", "code": station}]}
                ]
        if occurrence is not None:
            if in_period:
                resource["occurrencePeriod"] = {"start": occurrence}
            else:
                resource["occurrenceDateTime"] = occurrence
        if priority is not None:
            resource["priority"] = priority
        return self.add_resource(resource)

    def update(self, resource_type: str, id: str, **changes: object) -> Json:
        """Change a stored resource's elements, as the HIS would: a new last update."""
        resource = {**self.resources[resource_type, id], **changes}
        return self.add_resource(resource)

    # -- answers -----------------------------------------------------------------------------

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Json]:
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            return failure, _outcome("transient", f"failing on demand with {failure}")
        parts = path.removeprefix("/fhir/").split("/")
        if len(parts) == 2 and parts[0] == "Patient":
            found = self.resources.get(("Patient", parts[1]))
            if found is None:
                return 404, _outcome("not-found", f"Patient/{parts[1]} is not known")
            return 200, found
        if parts == ["Patient"]:
            return self._search("Patient", query, PATIENT_PARAMETERS, self._patient_matches)
        if parts == ["ServiceRequest"]:
            return self._search(
                "ServiceRequest", query, SERVICE_REQUEST_PARAMETERS, self._request_matches
            )
        return 404, _outcome("not-supported", f"no such endpoint: {path}")

    def _search(
        self,
        resource_type: str,
        query: dict[str, list[str]],
        known: set[str],
        matches: Callable[[Json, dict[str, str]], bool],
    ) -> tuple[int, Json]:
        unknown = set(query) - known - PAGING
        if unknown:
            return 400, _outcome("not-supported", f"unknown parameters: {sorted(unknown)}")
        criteria = {key: values[0] for key, values in query.items() if key in known}
        try:
            found = [
                resource
                for (kind, _), resource in self.resources.items()
                if kind == resource_type and matches(resource, criteria)
            ]
        except ValueError as error:
            return 400, _outcome("invalid", str(error))
        found.sort(key=lambda resource: resource["meta"]["lastUpdated"])
        count = min(int(query.get("_count", [str(self.page_size)])[0]), self.page_size)
        offset = int(query.get("_offset", ["0"])[0])
        page = found[offset : offset + count]
        own = {key: values[0] for key, values in query.items() if key != "_offset"}
        base = f"{self.base_url}/{resource_type}"
        links = [{"relation": "self", "url": f"{base}?{urlencode({**own, '_offset': offset})}"}]
        if offset + count < len(found):
            next_base = f"{self.next_base}/{resource_type}" if self.next_base else base
            following = urlencode({**own, "_offset": offset + count})
            links.append({"relation": "next", "url": f"{next_base}?{following}"})
        bundle: Json = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "link": links,
            "entry": [
                {
                    "fullUrl": f"{base}/{resource['id']}",
                    "resource": resource,
                    "search": {"mode": "match"},
                }
                for resource in page
            ],
        }
        return 200, bundle

    @staticmethod
    def _patient_matches(resource: Json, criteria: dict[str, str]) -> bool:
        if "identifier" in criteria:
            system, _, value = criteria["identifier"].rpartition("|")
            identifiers = resource.get("identifier", [])
            if not any(
                item.get("value") == value and (not system or item.get("system") == system)
                for item in identifiers
            ):
                return False
        if "name" in criteria:
            wanted = criteria["name"].casefold()
            parts = [
                part
                for name in resource.get("name", [])
                for part in [name.get("family", ""), *name.get("given", []), name.get("text", "")]
            ]
            if not any(str(part).casefold().startswith(wanted) for part in parts if part):
                return False
        return "birthdate" not in criteria or resource.get("birthDate") == criteria["birthdate"]

    @staticmethod
    def _request_matches(resource: Json, criteria: dict[str, str]) -> bool:
        if criteria.get("_sort", "_lastUpdated") != "_lastUpdated":
            raise ValueError("only _sort=_lastUpdated is supported")
        if "_lastUpdated" not in criteria:
            return True
        value = criteria["_lastUpdated"]
        if not value.startswith("gt"):
            raise ValueError("only _lastUpdated=gt... is supported")
        updated = datetime.fromisoformat(resource["meta"]["lastUpdated"])
        return updated > datetime.fromisoformat(value[2:])

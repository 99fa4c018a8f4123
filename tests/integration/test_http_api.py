"""The HTTP layer as a client meets it: JSON everywhere, clear 4xx for bad requests."""

from __future__ import annotations

import pytest

from tests.support.server import OrthancServer


def assert_json_error(response, status: int, fragment: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == status
    assert fragment in body["error"]
    assert "Traceback" not in response.text
    return body


def test_unknown_route_is_a_json_404(orthanc: OrthancServer) -> None:
    assert_json_error(
        orthanc.get("/api/no/such/thing"), 404, "no such route: GET /api/no/such/thing"
    )


def test_non_numeric_job_id_is_a_404(orthanc: OrthancServer) -> None:
    assert_json_error(orthanc.get("/api/jobs/abc"), 404, "no such route")


def test_missing_job_is_a_404(orthanc: OrthancServer) -> None:
    assert_json_error(orthanc.get("/api/jobs/987654"), 404, "no job 987654")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{bad", "malformed JSON: Expecting property name enclosed in double quotes"),
        (b"", "request body is empty"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"kind": "tests.sleep"', "malformed JSON"),
    ],
)
def test_malformed_json_is_a_400(orthanc: OrthancServer, body: bytes, fragment: str) -> None:
    response = orthanc.post("/api/jobs", data=body, headers={"Content-Type": "application/json"})
    assert_json_error(response, 400, fragment)


def test_invalid_fields_are_listed(orthanc: OrthancServer) -> None:
    response = orthanc.post("/api/jobs", json={"params": [], "priority": 1000, "extra": 1})
    body = assert_json_error(response, 400, "invalid request body")
    fields = {detail["field"] for detail in body["details"]}
    assert fields == {"kind", "params", "priority", "extra"}


def test_unknown_job_kind_is_refused_with_the_known_ones(orthanc: OrthancServer) -> None:
    body = assert_json_error(
        orthanc.post("/api/jobs", json={"kind": "nope"}), 400, "unknown job kind 'nope'"
    )
    assert "tests.sleep" in body["known"]


def test_oversized_body_is_a_413(orthanc: OrthancServer) -> None:
    payload = b'{"kind": "tests.sleep", "params": {"pad": "' + b"x" * (1 << 20) + b'"}}'
    assert_json_error(orthanc.post("/api/jobs", data=payload), 413, "exceeds 1048576 bytes")


def test_wrong_method_is_a_405_naming_the_allowed_ones(orthanc: OrthancServer) -> None:
    response = orthanc.http.delete(orthanc.url("/api/jobs"), timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET,POST"


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("state=bogus", "'state' is invalid"),
        ("limit=0", "'limit' must be between"),
        ("limit=x", "'limit' is invalid"),
        ("offset=-1", "'offset' must be between 0 and"),
    ],
)
def test_bad_query_parameters_are_a_400(orthanc: OrthancServer, query: str, fragment: str) -> None:
    assert_json_error(orthanc.get(f"/api/jobs?{query}"), 400, fragment)


@pytest.mark.parametrize("listing", ["/api/jobs", "/api/worklist", "/api/audit"])
@pytest.mark.parametrize("query", ["offset=-1", "offset=99999999999999999999", "limit=0"])
def test_every_listing_checks_its_page(orthanc: OrthancServer, listing: str, query: str) -> None:
    """An offset beyond SQLite's integers once gave a 500 (found by the fuzz)."""
    assert_json_error(orthanc.get(f"{listing}?{query}"), 400, query.split("=")[0])


def test_orthanc_own_api_is_untouched(orthanc: OrthancServer) -> None:
    system = orthanc.get("/system").json()
    assert system["Version"].startswith("1.")
    assert orthanc.get("/dicom-web/studies").status_code == 200

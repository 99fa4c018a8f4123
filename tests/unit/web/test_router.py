from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from hounsfield.config import LimitsSection
from hounsfield.web import HttpError, Request, Response, Router, RouteTable
from hounsfield.web.router import compile_template

table = RouteTable()


class Study(BaseModel):
    uid: str
    slices: int


@table.get("/api/studies/{study_id}/series/{number:int}", open=True)
def get_series(request: Request) -> dict:
    return {"params": request.path_params}


@table.post("/api/studies", open=True)
def create_study(request: Request) -> Response:
    study = request.parse(Study)
    return Response.json(study.model_dump(), status=201, Location=f"/api/studies/{study.uid}")


@table.get("/api/teapot", open=True)
def teapot(request: Request) -> dict:
    raise HttpError(418, "short and stout", spout=True)


@table.get("/api/broken", open=True)
def broken(request: Request) -> dict:
    raise KeyError("secret internals")


router = Router([table])
LIMITS = LimitsSection.model_validate({"RequestBytes": 1024, "JsonDepth": 4})


def call(method: str, path: str, body: bytes = b"") -> tuple[int, dict]:
    response = router.handle(Request(method, path, body=body, limits=LIMITS))
    return response.status, json.loads(response.body) if response.body else {}


def test_path_parameters_are_converted() -> None:
    assert call("GET", "/api/studies/1.2.3/series/7") == (
        200,
        {"params": {"study_id": "1.2.3", "number": 7}},
    )


def test_int_parameters_reject_non_digits() -> None:
    status, body = call("GET", "/api/studies/x/series/seven")
    assert status == 404 and body["error"] == "no such route: GET /api/studies/x/series/seven"


def test_templates_escape_literal_parts() -> None:
    pattern, _ = compile_template("/api/a.b/{x}")
    assert pattern.match("/api/a.b/1") and not pattern.match("/api/aXb/1")
    with pytest.raises(ValueError, match="unknown path parameter type"):
        compile_template("/api/{x:float}")


def test_validated_body_and_custom_status() -> None:
    response = router.handle(Request("POST", "/api/studies", body=b'{"uid": "1.2", "slices": 3}'))
    assert response.status == 201
    assert response.headers == {"Location": "/api/studies/1.2"}
    assert json.loads(response.body) == {"uid": "1.2", "slices": 3}


def test_invalid_body_lists_the_fields() -> None:
    status, body = call("POST", "/api/studies", b'{"slices": "many"}')
    assert status == 400
    assert {d["field"] for d in body["details"]} == {"uid", "slices"}


def test_oversized_body_is_refused_before_parsing() -> None:
    status, body = call("POST", "/api/studies", b'{"uid": "' + b"9" * 1100 + b'"}')
    assert (status, body["error"]) == (413, "JSON body exceeds 1024 bytes")
    assert body["limit"] == "Limits.RequestBytes"


def test_deep_nesting_is_refused_naming_the_limit() -> None:
    status, body = call("POST", "/api/studies", b'{"uid": [[[["x"]]]]}')
    assert (status, body["error"]) == (400, "JSON nested deeper than 4 levels")
    assert body["limit"] == "Limits.JsonDepth"
    status, _ = call("POST", "/api/studies", b'{"uid": "[[[[[[", "slices": 1}')
    assert status == 201  # brackets inside a string are text


def test_wrong_method_lists_the_allowed_ones() -> None:
    response = router.handle(Request("PUT", "/api/studies"))
    assert response.status == 405 and response.allowed_methods == ("POST",)


def test_http_errors_carry_their_details() -> None:
    assert call("GET", "/api/teapot") == (
        418,
        {"error": "short and stout", "status": 418, "spout": True},
    )


def test_unexpected_errors_are_a_500_without_internals(caplog) -> None:
    status, body = call("GET", "/api/broken")
    assert status == 500
    assert body["error"] == "internal error" and len(body["incident"]) == 12
    assert "secret internals" not in json.dumps(body)
    assert body["incident"] in caplog.text and "secret internals" in caplog.text

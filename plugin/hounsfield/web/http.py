"""Requests, responses and errors, independent of Orthanc's callback signature."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any, TypeVar

import pydantic

from hounsfield.web.multipart import MultipartError, split_parts

Model = TypeVar("Model", bound=pydantic.BaseModel)


class HttpError(Exception):
    """An error the client should see: a status and a message (plus optional details)."""

    def __init__(self, status: int, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    cookies: list[str] = field(default_factory=list)  # Set-Cookie values
    allowed_methods: tuple[str, ...] = ()  # only for 405

    @classmethod
    def json(cls, payload: Any, status: int = 200, **headers: str) -> Response:
        # ASCII-only JSON: the byte length equals the text length, which Orthanc 1.10 needs
        text = json.dumps(payload, ensure_ascii=True, separators=(",", ":"))
        return cls(status, text.encode("ascii"), headers=dict(headers))

    @classmethod
    def error(cls, error: HttpError) -> Response:
        return cls.json(
            {"error": error.message, "status": error.status, **error.details}, status=error.status
        )


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    path_params: dict[str, Any] = field(default_factory=dict)
    max_body_bytes: int = 1 << 20
    max_upload_bytes: int = 1 << 32
    app: Any = None
    principal: Any = None  # the signed-in user, set by the gate
    ip: str = ""

    def cookie(self, name: str) -> str | None:
        try:
            cookies = SimpleCookie(self.headers.get("cookie", ""))
        except CookieError:
            return None
        return cookies[name].value if name in cookies else None

    def json(self) -> Any:
        """The body as JSON: 413 when too large, 400 with the parser's reason if malformed."""
        if len(self.body) > self.max_body_bytes:
            raise HttpError(413, f"request body exceeds {self.max_body_bytes} bytes")
        if not self.body.strip():
            raise HttpError(400, "request body is empty; a JSON document is expected")
        try:
            return json.loads(self.body.decode("utf-8"))  # RFC 8259: JSON on the wire is UTF-8
        except UnicodeDecodeError as error:
            raise HttpError(400, f"request body is not UTF-8 text: {error.reason}") from error
        except json.JSONDecodeError as error:
            raise HttpError(
                400, f"malformed JSON: {error.msg} at line {error.lineno} column {error.colno}"
            ) from error

    def parse(self, model: type[Model]) -> Model:
        """The JSON body validated against ``model``; 400 listing every invalid field."""
        return validated(model, self.json())

    def multipart(self) -> dict[str, list[memoryview]]:
        """The parts of a multipart/mixed body by name, in the order sent.

        Each part is named by its Content-Disposition ``name``, as in a form. Orthanc's HTTP
        server keeps multipart/form-data for itself (Orthanc Explorer's uploads), so
        clients send the same body as multipart/mixed (or multipart/related).
        """
        if len(self.body) > self.max_upload_bytes:
            raise HttpError(413, f"upload exceeds {self.max_upload_bytes} bytes")
        content_type = self.headers.get("content-type", "")
        if not content_type.startswith(("multipart/mixed", "multipart/related")):
            raise HttpError(
                415,
                "send the files as multipart/mixed (multipart/form-data is "
                "taken by Orthanc itself)",
            )
        try:
            return split_parts(self.body, content_type)
        except MultipartError as error:
            raise HttpError(400, str(error)) from error

    def query_value(self, name: str, parse: type = str, default: Any = None) -> Any:
        """A query-string parameter converted with ``parse``; 400 naming it when it does not fit."""
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            return parse(raw)
        except (TypeError, ValueError) as error:
            raise HttpError(400, f"query parameter {name!r} is invalid: {raw!r}") from error


def validated(model: type[Model], payload: Any) -> Model:
    """``payload`` (parsed JSON, or JSON text) checked against ``model``; 400 naming fields."""
    try:
        if isinstance(payload, str | bytes):
            return model.model_validate_json(payload)
        return model.model_validate(payload)
    except pydantic.ValidationError as error:
        raise HttpError(400, "invalid request body", details=_field_errors(error)) from error


def _field_errors(error: pydantic.ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(part) for part in item["loc"]) or "(body)", "message": item["msg"]}
        for item in error.errors()
    ]

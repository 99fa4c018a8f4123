"""Requests, responses and errors, independent of Orthanc's callback signature."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic

from hounsfield.audit.trail import AuditEntry
from hounsfield.config import LimitsSection
from hounsfield.untrusted import InputRefused
from hounsfield.untrusted.jsontext import parse_json
from hounsfield.web.multipart import Part, iter_parts

if TYPE_CHECKING:
    from hounsfield.auth.principal import Principal
    from hounsfield.services import CoreServices, Services

Model = TypeVar("Model", bound=pydantic.BaseModel)


class HttpError(Exception):
    """An error the client should see: a status and a message (plus optional details)."""

    def __init__(self, status: int, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details

    @classmethod
    def refused(cls, refusal: InputRefused) -> HttpError:
        """413 for a size limit, 400 otherwise; the limit's configuration key when one is hit."""
        details = {"limit": refusal.limit} if refusal.limit else {}
        return cls(413 if refusal.too_large else 400, refusal.message, **details)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    cookies: list[str] = field(default_factory=list)  # Set-Cookie values
    allowed_methods: tuple[str, ...] = ()  # only for 405
    # A multipart/related answer (status 200), sent part by part as the iterator yields
    # them; ``content_type`` is then the type of each part.
    parts: Iterable[bytes] | None = None

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


MAX_OFFSET = 2**62  # beyond SQLite's 64-bit integers a listing would fail, not answer


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    path_params: dict[str, Any] = field(default_factory=dict)
    limits: LimitsSection = field(default_factory=LimitsSection)
    principal: Principal | None = None  # the signed-in user, set by the gate
    ip: str = ""
    bound: CoreServices | None = None  # set by the application as the request comes in

    @property
    def services(self) -> Services:
        """What a route handler may use (``hounsfield.services``)."""
        return self.core

    @property
    def core(self) -> CoreServices:
        """The same, with the accounts and storing that only core routes use."""
        if self.bound is None:
            raise RuntimeError("the request was not handed over by the application")
        return self.bound

    def user(self) -> Principal:
        """The signed-in user; 401 when there is none (an open route)."""
        if self.principal is None:
            raise HttpError(401, "authentication required")
        return self.principal

    def audit(self, action: str, outcome: str, resource: str, detail: dict[str, Any]) -> None:
        """Record in the audit trail what the signed-in caller did to ``resource``, beside the
        gate's entry for the request itself (e.g. which key was revoked, which order made)."""
        user = self.user()
        entry = AuditEntry(
            action,
            outcome,
            username=user.username,
            role=user.role.value,
            ip=self.ip,
            resource=resource,
            detail=detail,
        )
        self.services.audit.append(entry)

    def cookie(self, name: str) -> str | None:
        try:
            cookies = SimpleCookie(self.headers.get("cookie", ""))
        except CookieError:
            return None
        return cookies[name].value if name in cookies else None

    def json(self) -> Any:
        """The body as JSON: 413 when too large, 400 naming the problem (or the limit)."""
        if not self.body.strip():
            raise HttpError(400, "request body is empty; a JSON document is expected")
        return self.parse_json(self.body)

    def parse_json(self, data: bytes | memoryview) -> Any:
        """JSON sent with this request (the body or a part), within the configured limits."""
        try:
            return parse_json(
                data, max_bytes=self.limits.request_bytes, max_depth=self.limits.json_depth
            )
        except InputRefused as refusal:
            raise HttpError.refused(refusal) from refusal

    def parse(self, model: type[Model]) -> Model:
        """The JSON body validated against ``model``; 400 listing every invalid field."""
        return validated(model, self.json())

    def multipart(self) -> dict[str, list[memoryview]]:
        """The parts of a multipart/mixed body by name, in the order sent.

        Each part is named by its Content-Disposition ``name``, as in a form. Orthanc's HTTP
        server keeps multipart/form-data for itself (Orthanc Explorer's uploads), so
        clients send the same body as multipart/mixed (or multipart/related).
        """
        fields: dict[str, list[memoryview]] = {}
        for part in self.parts():
            if part.name is not None:
                fields.setdefault(part.name, []).append(part.content)
        return fields

    def parts(self) -> list[Part]:
        """Every part of a multipart/mixed or multipart/related body, in order."""
        if len(self.body) > self.limits.upload_bytes:
            raise HttpError(
                413, f"upload exceeds {self.limits.upload_bytes} bytes", limit="Limits.UploadBytes"
            )
        content_type = self.headers.get("content-type", "")
        if not content_type.startswith(("multipart/mixed", "multipart/related")):
            raise HttpError(
                415,
                "send the files as multipart/mixed (multipart/form-data is "
                "taken by Orthanc itself)",
            )
        try:
            return list(
                iter_parts(
                    self.body,
                    content_type,
                    max_parts=self.limits.multipart_parts,
                    max_header_bytes=self.limits.multipart_header_bytes,
                )
            )
        except InputRefused as refusal:
            raise HttpError.refused(refusal) from refusal

    def query_value(self, name: str, parse: type = str, default: Any = None) -> Any:
        """A query-string parameter converted with ``parse``; 400 naming it when it does not fit."""
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            return parse(raw)
        except (TypeError, ValueError) as error:
            raise HttpError(400, f"query parameter {name!r} is invalid: {raw!r}") from error

    def page(self, *, default: int, maximum: int) -> tuple[int, int]:
        """(limit, offset) from the query, for a listing: 400 when either does not fit."""
        limit = self.query_value("limit", int, default)
        offset = self.query_value("offset", int, 0)
        if not 1 <= limit <= maximum:
            raise HttpError(400, f"query parameter 'limit' must be between 1 and {maximum}")
        if not 0 <= offset <= MAX_OFFSET:
            raise HttpError(400, f"query parameter 'offset' must be between 0 and {MAX_OFFSET}")
        return limit, offset


def validated(model: type[Model], payload: Any) -> Model:
    """``payload`` (parsed JSON) checked against ``model``; 400 naming each invalid field."""
    try:
        return model.model_validate(payload)
    except pydantic.ValidationError as error:
        raise HttpError(400, "invalid request body", details=_field_errors(error)) from error


def _field_errors(error: pydantic.ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(part) for part in item["loc"]) or "(body)", "message": item["msg"]}
        for item in error.errors()
    ]

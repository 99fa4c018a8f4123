"""One gate for every request: authenticate, check CSRF, look up the permission table.

Orthanc's HTTP filter asks it about every URI; our own router asks it about ``/api/``
(so those refusals can carry a JSON body). Every access to patient data, allowed or
refused, is handed to the audit recorder.

The filter runs before Orthanc reads a request's body (measured: a refused 500 MB POST was
answered in 3 ms), and Orthanc buffers whatever body it lets through. So the gate also
judges the announced body: larger than Limits.UploadBytes, or on an open door (sign-in)
larger than Limits.RequestBytes or of unknown length, it is refused before one byte of
it is read.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie

from hounsfield.audit.access import AccessRecorder
from hounsfield.audit.trail import AuditEntry
from hounsfield.auth.permissions import Match, PermissionTable, StudyRef
from hounsfield.auth.roles import Role
from hounsfield.auth.store import Session, SessionStore, UserStore
from hounsfield.auth.studies import StudyResolver
from hounsfield.auth.tokens import TokenError, TokenService
from hounsfield.config import LimitsSection
from hounsfield.web.http import HttpError

ACCESS_COOKIE = "hf_access"
SERVICE_ACCOUNT = "hounsfield-worker"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OVERRIDE_HEADERS = ("x-http-method-override", "x-http-method", "x-method-override")
SUSPICIOUS = ("..", "//", "\\", "%", "\x00", ";")


@dataclass(frozen=True)
class Principal:
    username: str
    role: Role
    session_id: str
    via_cookie: bool


@dataclass(frozen=True)
class Decision:
    allowed: bool
    status: int = 200
    reason: str = ""
    principal: Principal | None = None
    # For a refusal: whether Orthanc may read the body to let our route answer in JSON
    # (only a small body of known length).
    body_may_be_read: bool = True


# What the plugin's own worker processes act as: technician rights, audited by this name.
SERVICE_PRINCIPAL = Principal(SERVICE_ACCOUNT, Role.TECHNICIAN, "service", via_cookie=False)


class Refused(HttpError):
    """Authentication or authorization said no; an HTTP error the client may read."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)
        self.reason = reason


class Gate:
    def __init__(
        self,
        service_token: str,
        tokens: TokenService,
        sessions: SessionStore,
        users: UserStore,
        resolver: StudyResolver,
        recorder: AccessRecorder,
        limits: LimitsSection,
        rules: PermissionTable,
    ) -> None:
        self._service_token = service_token
        self.limits = limits
        self.tokens = tokens
        self.sessions = sessions
        self.users = users
        self.resolver = resolver
        self.recorder = recorder
        self.rules = rules

    def check(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        ip: str,
    ) -> Decision:
        principal: Principal | None = None
        found: Match | None = None
        try:
            _check_shape(path, headers)
            found = self.rules.match(method, _route_key(path))
            self._check_announced_body(found, headers)
            if found is not None and found.rule.access.open:
                return Decision(True)
            principal, session = self._authenticate(headers)
            cookie_write = principal.via_cookie and method not in SAFE_METHODS
            if cookie_write and (session is None or headers.get(CSRF_HEADER) != session.csrf_token):
                raise Refused(403, "CSRF token missing or invalid (send X-CSRF-Token)")
            if found is None or principal.role not in found.rule.access.roles:
                raise Refused(403, f"{principal.role.value} may not {method} {path}")
            study_uid = self._study_of(found, query)
            if principal.role is Role.REFERRER and found.rule.access.study is not None:
                allowed_keys = found.rule.access.referrer_query
                if allowed_keys is not None and not set(query) <= allowed_keys:
                    raise Refused(403, "a referrer's search may name one linked study only")
                linked = self.users.linked_studies(principal.username)
                if study_uid is None or study_uid not in linked:
                    raise Refused(403, "this study is not linked to you")
        except Refused as refusal:
            self._audit(principal, found, method, path, query, ip, "denied", refusal.reason)
            return Decision(
                False, refusal.status, refusal.reason, principal, self._small_body(headers)
            )
        self._audit(principal, found, method, path, query, ip, "allowed", "", study_uid)
        return Decision(True, principal=principal)

    def _check_announced_body(self, found: Match | None, headers: Mapping[str, str]) -> None:
        length, unknown = announced_body(headers)
        if length is not None and length > self.limits.upload_bytes:
            raise Refused(
                413, f"request body exceeds Limits.UploadBytes ({self.limits.upload_bytes} bytes)"
            )
        open_door = found is not None and found.rule.access.open
        if open_door and (unknown or (length or 0) > self.limits.request_bytes):
            raise Refused(
                413,
                "an unauthenticated request body must announce its length and stay within "
                f"Limits.RequestBytes ({self.limits.request_bytes} bytes)",
            )

    def _small_body(self, headers: Mapping[str, str]) -> bool:
        try:
            length, unknown = announced_body(headers)
        except Refused:
            return False
        return not unknown and (length or 0) <= self.limits.request_bytes

    def _authenticate(self, headers: Mapping[str, str]) -> tuple[Principal, Session | None]:
        token, via_cookie = _credentials(headers)
        if len(token) > self.limits.token_bytes:
            raise Refused(401, f"token longer than Limits.TokenBytes ({self.limits.token_bytes})")
        if not via_cookie and hmac.compare_digest(token, self._service_token):
            return SERVICE_PRINCIPAL, None
        try:
            claims = self.tokens.verify(token)
        except TokenError as error:
            raise Refused(401, error.reason) from error
        session = self.sessions.get(claims.session_id)
        if session is None or not session.active() or session.username != claims.username:
            raise Refused(401, "session revoked or expired")
        principal = Principal(claims.username, Role(claims.role), claims.session_id, via_cookie)
        return principal, session

    def _study_of(self, found: Match, query: Mapping[str, str]) -> str | None:
        study = found.rule.access.study
        if study is None or study.ref is StudyRef.ORTHANC_PATIENT:
            return None
        name = study.parameter
        value = query.get(name[1:]) if name.startswith("?") else found.params.get(name)
        return self.resolver.study_uid(study.ref, value) if value else None

    def _audit(
        self,
        principal: Principal | None,
        found: Match | None,
        method: str,
        path: str,
        query: Mapping[str, str],
        ip: str,
        outcome: str,
        reason: str,
        study_uid: str | None = None,
    ) -> None:
        rule = found.rule.access if found else None
        if outcome == "allowed" and (rule is None or not rule.patient_data):
            return
        detail = {"method": method, "path": path}
        if reason:
            detail["reason"] = reason
        if query and rule is not None and rule.audit == "patient.search":
            detail["query"] = dict(query)
        self.recorder.record(
            AuditEntry(
                action=(rule.audit if rule and rule.patient_data else "access.denied"),
                outcome=outcome,
                username=principal.username if principal else None,
                role=principal.role.value if principal else None,
                ip=ip,
                resource=path,
                study_uid=study_uid,
                detail=detail,
            ),
            session_id=principal.session_id if principal else None,
        )


def announced_body(headers: Mapping[str, str]) -> tuple[int | None, bool]:
    """(Content-Length or None, whether the body's length is unknown: chunked)."""
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    declared = headers.get("content-length")
    if declared is None:
        return None, chunked
    if not declared.strip().isdigit() or len(declared) > 20:
        raise Refused(400, "malformed Content-Length header")
    return int(declared), chunked


def _route_key(path: str) -> str:
    return path.rstrip("/") or "/"


def _check_shape(path: str, headers: Mapping[str, str]) -> None:
    if any(name in headers for name in OVERRIDE_HEADERS):
        raise Refused(400, "method override headers are not accepted")
    if not path.startswith("/") or any(token in path for token in SUSPICIOUS):
        raise Refused(400, "malformed path")


def _credentials(headers: Mapping[str, str]) -> tuple[str, bool]:
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refused(401, "use 'Authorization: Bearer <token>'")
        return token.strip(), False
    cookie_header = headers.get("cookie")
    if cookie_header:
        try:
            cookies = SimpleCookie(cookie_header)
        except CookieError as error:
            raise Refused(401, "malformed cookie header") from error
        if ACCESS_COOKIE in cookies:
            return cookies[ACCESS_COOKIE].value, True
    raise Refused(401, "authentication required")

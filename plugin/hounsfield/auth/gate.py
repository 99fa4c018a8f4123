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

from collections.abc import Mapping
from dataclasses import dataclass

from hounsfield.audit.access import AccessRecorder
from hounsfield.audit.trail import AuditEntry
from hounsfield.auth.credentials import Authenticator
from hounsfield.auth.permissions import Match, PermissionTable, StudyRef
from hounsfield.auth.principal import Principal, Refused
from hounsfield.auth.roles import Role
from hounsfield.auth.store import UserStore
from hounsfield.auth.studies import StudyResolver
from hounsfield.config import LimitsSection

CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OVERRIDE_HEADERS = ("x-http-method-override", "x-http-method", "x-method-override")
# What a session whose password an admin reset may do: change it (and sign out).
PASSWORD_CHANGE_ROUTES = frozenset({"/api/auth/password", "/api/auth/me", "/api/auth/logout"})
SUSPICIOUS = ("..", "//", "\\", "%", "\x00", ";")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    status: int = 200
    reason: str = ""
    principal: Principal | None = None
    # For a refusal: whether Orthanc may read the body to let our route answer in JSON
    # (only a small body of known length).
    body_may_be_read: bool = True


class Gate:
    def __init__(
        self,
        authenticator: Authenticator,
        users: UserStore,
        resolver: StudyResolver,
        recorder: AccessRecorder,
        limits: LimitsSection,
        rules: PermissionTable,
    ) -> None:
        self.authenticator = authenticator
        self.limits = limits
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
        *,
        secure: bool = False,
    ) -> Decision:
        """``secure``: the request came over TLS (HTTP Basic needs it, see ``credentials``)."""
        principal: Principal | None = None
        found: Match | None = None
        try:
            _check_shape(path, headers)
            found = self.rules.match(method, _route_key(path))
            self._check_announced_body(found, headers)
            if found is not None and found.rule.access.open:
                who = self._identify(headers, ip, secure) if method in SAFE_METHODS else None
                return Decision(True, principal=who)
            principal, session = self.authenticator.authenticate(headers, ip=ip, secure=secure)
            cookie_write = principal.via_cookie and method not in SAFE_METHODS
            if cookie_write and (session is None or headers.get(CSRF_HEADER) != session.csrf_token):
                raise Refused(403, "CSRF token missing or invalid (send X-CSRF-Token)")
            if principal.must_change_password and _route_key(path) not in PASSWORD_CHANGE_ROUTES:
                raise Refused(403, "an admin reset your password: choose a new one first")
            if found is None or principal.role not in found.rule.access.roles:
                raise Refused(403, f"{principal.role.value} may not {method} {path}")
            if principal.read_only and not _reads(method, found):
                raise Refused(403, f"this API key is read-only: it may not {method} {path}")
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

    def _identify(self, headers: Mapping[str, str], ip: str, secure: bool) -> Principal | None:
        """Who reads at an open door, if they say (the health report tells admins more);
        never asked of a sign-in, whose wrong Basic header would count twice."""
        try:
            return self.authenticator.authenticate(headers, ip=ip, secure=secure)[0]
        except Refused:
            return None

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
        if principal is not None and principal.key is not None:
            detail["key"] = principal.key
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


def _reads(method: str, found: Match) -> bool:
    """Whether a request only reads: a safe method, or a search sent by POST."""
    return method in SAFE_METHODS or found.rule.access.audit == "patient.search"


def _route_key(path: str) -> str:
    return path.rstrip("/") or "/"


def _check_shape(path: str, headers: Mapping[str, str]) -> None:
    if any(name in headers for name in OVERRIDE_HEADERS):
        raise Refused(400, "method override headers are not accepted")
    if not path.startswith("/") or any(token in path for token in SUSPICIOUS):
        raise Refused(400, "malformed path")

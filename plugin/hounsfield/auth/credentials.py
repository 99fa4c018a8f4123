"""Who is asking: a bearer token, our session cookie, an API key, or HTTP Basic.

Every way in ends in the same ``Principal``, so roles, the referrer check and the audit do
not care which was used. Each credential is bounded (``Limits.TokenBytes``) before it is
decoded, and only tokens this server signed reach a JSON parser (``tokens``).

HTTP Basic sends a password with every request, readable by anyone on the path when the
connection is plain HTTP. So it is taken only over a secure transport (Orthanc's own TLS,
or a trusted reverse proxy that says it terminated TLS), or where no one else can listen
(``RemoteAccessAllowed`` off: Orthanc answers this machine only), or where an admin has
said so (``Auth.BasicOverPlainHttp``, for a network they trust). A bearer token is just as
readable; but it expires in minutes, where a password lasts.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie

from hounsfield.auth.keys import KeyStore, looks_like_key
from hounsfield.auth.principal import SERVICE_PRINCIPAL, Principal, Refused
from hounsfield.auth.roles import Role
from hounsfield.auth.service import AuthService
from hounsfield.auth.store import Session, SessionStore
from hounsfield.auth.tokens import TokenError, TokenService

ACCESS_COOKIE = "hf_access"


@dataclass(frozen=True)
class Credential:
    scheme: str  # "bearer", "cookie" or "basic"
    secret: str  # the token, the key or the password
    username: str = ""  # HTTP Basic's user name


def credential_of(headers: Mapping[str, str], max_bytes: int) -> Credential | None:
    """The credential a request carries (None: none at all); Refused when malformed."""
    authorization = headers.get("authorization")
    if authorization is not None:
        if len(authorization) > max_bytes:
            raise Refused(401, f"credentials longer than Limits.TokenBytes ({max_bytes})")
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            return Credential("bearer", value)
        if scheme.lower() == "basic" and value:
            return _basic(value)
        raise Refused(401, "use 'Authorization: Bearer <token or API key>' or HTTP Basic")
    cookie_header = headers.get("cookie")
    if cookie_header:
        try:
            cookies = SimpleCookie(cookie_header)
        except CookieError as error:
            raise Refused(401, "malformed cookie header") from error
        if ACCESS_COOKIE in cookies:
            token = cookies[ACCESS_COOKIE].value
            if len(token) > max_bytes:
                raise Refused(401, f"token longer than Limits.TokenBytes ({max_bytes})")
            return Credential("cookie", token)
    return None


def _basic(encoded: str) -> Credential:
    try:
        text = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Refused(
            401, "HTTP Basic credentials are not base64 of UTF-8 'user:password'"
        ) from None
    username, colon, password = text.partition(":")
    if not colon or not password:
        raise Refused(401, "HTTP Basic credentials must read 'user:password'")
    return Credential("basic", password, username)


class Authenticator:
    """Turns a request's credential into a ``Principal``, or refuses it (401)."""

    def __init__(
        self,
        service_token: str,
        tokens: TokenService,
        sessions: SessionStore,
        keys: KeyStore,
        auth: AuthService,
        *,
        max_bytes: int,
        plain_basic: bool,
    ) -> None:
        self._service_token = service_token
        self.tokens = tokens
        self.sessions = sessions
        self.keys = keys
        self.auth = auth
        self.max_bytes = max_bytes
        self.plain_basic = plain_basic  # Basic over plain HTTP (see the module's docstring)

    def authenticate(
        self, headers: Mapping[str, str], *, ip: str, secure: bool
    ) -> tuple[Principal, Session | None]:
        """(who, their session when a token names one)."""
        credential = credential_of(headers, self.max_bytes)
        if credential is None:
            raise Refused(401, "authentication required")
        if credential.scheme == "basic":
            if not (secure or self.plain_basic):
                raise Refused(
                    401,
                    "HTTP Basic is refused over plain HTTP (the password would cross the "
                    "network readable): use HTTPS, or a bearer token",
                )
            if looks_like_key(credential.secret):
                return self.keys.authenticate(credential.secret), None
            return self.auth.basic(credential.username, credential.secret, ip=ip), None
        if credential.scheme == "bearer":
            if hmac.compare_digest(credential.secret, self._service_token):
                return SERVICE_PRINCIPAL, None
            if looks_like_key(credential.secret):
                return self.keys.authenticate(credential.secret), None
        return self._session_token(credential)

    def _session_token(self, credential: Credential) -> tuple[Principal, Session]:
        try:
            claims = self.tokens.verify(credential.secret)
        except TokenError as error:
            raise Refused(401, error.reason) from error
        session = self.sessions.get(claims.session_id)
        if session is None or not session.active() or session.username != claims.username:
            raise Refused(401, "session revoked or expired")
        via_cookie = credential.scheme == "cookie"
        principal = Principal(
            claims.username,
            Role(claims.role),
            claims.session_id,
            via_cookie,
            must_change_password=claims.must_change_password,
        )
        return principal, session

"""REST routes for signing in and out, and for one's own account."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hounsfield.auth import key_routes, keys, store, user_routes
from hounsfield.auth.credentials import ACCESS_COOKIE
from hounsfield.auth.permissions import ANY_USER
from hounsfield.auth.principal import Principal
from hounsfield.auth.roles import Role
from hounsfield.auth.service import SignedIn
from hounsfield.auth.store import User
from hounsfield.i18n import LANGUAGES
from hounsfield.web import HttpError, Request, Response, RouteTable

if TYPE_CHECKING:
    from hounsfield.registry import Registry

routes = RouteTable()

REFRESH_COOKIE = "hf_refresh"
CSRF_COOKIE = "hf_csrf"


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    otp: str | None = Field(None, min_length=6, max_length=8)


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class OwnSettings(BaseModel):
    """What users set for themselves: their pages' language (null: the browser's)."""

    model_config = ConfigDict(extra="forbid")

    language: Literal[LANGUAGES] | None  # type: ignore[valid-type]


class OneTimePassword(BaseModel):
    model_config = ConfigDict(extra="forbid")

    otp: str = Field(min_length=6, max_length=8)


def _cookie(
    request: Request, name: str, value: str, *, path: str, max_age: int, http_only: bool = True
) -> str:
    parts = [f"{name}={value}", f"Path={path}", f"Max-Age={max_age}", "SameSite=Strict"]
    if http_only:
        parts.append("HttpOnly")
    if request.services.settings.plugin.auth.secure_cookies:
        parts.append("Secure")
    return "; ".join(parts)


# Where each role lands after signing in when no feature says otherwise.
DEFAULT_LANDINGS = {Role.ADMIN: "/app/explorer.html"}
VIEWER = "/ohif/"


def _user_json(request: Request, user: User) -> dict[str, Any]:
    """The user, with where they land and the study pages the features offer them."""
    registry = request.services.registry
    return {
        **user.to_json(),
        "home": registry.landings.get(user.role) or DEFAULT_LANDINGS.get(user.role, VIEWER),
        "studyPages": [
            {
                "name": page.name,
                "title": page.title,
                "template": page.template,
                "method": page.method,
            }
            for page in registry.study_pages
            if user.role in page.roles
        ],
        "links": [
            {"name": link.name, "title": link.title, "path": link.path}
            for link in registry.links
            if user.role in link.roles
        ],
    }


def _session_response(request: Request, signed_in: SignedIn) -> Response:
    response = Response.json(
        {
            "access_token": signed_in.access_token,
            "token_type": "bearer",
            "expires_in": signed_in.expires_in,
            "csrf_token": signed_in.csrf_token,
            "user": _user_json(request, signed_in.user),
        }
    )
    session_seconds = request.services.settings.plugin.auth.session_hours * 3600
    response.cookies += [
        _cookie(
            request, ACCESS_COOKIE, signed_in.access_token, path="/", max_age=signed_in.expires_in
        ),
        _cookie(
            request,
            REFRESH_COOKIE,
            signed_in.refresh_token,
            path="/api/auth",
            max_age=session_seconds,
        ),
        _cookie(
            request,
            CSRF_COOKIE,
            signed_in.csrf_token,
            path="/",
            max_age=session_seconds,
            http_only=False,
        ),
    ]
    return response


@routes.post("/api/auth/login", open=True)
def login(request: Request) -> Response:
    body = request.parse(Login)
    signed_in = request.core.auth.login(
        body.username,
        body.password,
        body.otp,
        ip=request.ip,
        user_agent=request.headers.get("user-agent", ""),
    )
    return _session_response(request, signed_in)


@routes.post("/api/auth/refresh", open=True)  # the refresh cookie authenticates
def refresh(request: Request) -> Response:
    signed_in = request.core.auth.refresh(request.cookie(REFRESH_COOKIE), ip=request.ip)
    return _session_response(request, signed_in)


@routes.post("/api/auth/logout", roles=ANY_USER)
def logout(request: Request) -> Response:
    request.core.auth.logout(request.user(), ip=request.ip)
    response = Response.json({"signedOut": True})
    response.cookies += [
        _cookie(request, ACCESS_COOKIE, "", path="/", max_age=0),
        _cookie(request, REFRESH_COOKIE, "", path="/api/auth", max_age=0),
        _cookie(request, CSRF_COOKIE, "", path="/", max_age=0, http_only=False),
    ]
    return response


def _person(request: Request) -> Principal:
    """The caller, when a person signed in (an API key does not change its owner's
    password or second factor)."""
    principal = request.user()
    if principal.key is not None:
        raise HttpError(403, "an API key cannot change its owner's sign-in: sign in as a person")
    return principal


@routes.get("/api/auth/me", roles=ANY_USER)
def me(request: Request) -> dict[str, Any]:
    """The caller: a user (by session or HTTP Basic), or an API key with its owner."""
    principal = request.user()
    user = request.core.users.get(principal.username)
    about = _user_json(request, user) if user is not None else {"username": principal.username}
    key = {"key": principal.key, "readOnly": principal.read_only} if principal.key else {}
    return {**about, "role": principal.role.value, "session": principal.session_id, **key}


@routes.route("PUT", "/api/auth/me", roles=ANY_USER)
def change_own_settings(request: Request) -> dict[str, Any]:
    """Any signed-in user, for themselves (PUT: Orthanc 1.10 has no PATCH)."""
    body = request.parse(OwnSettings)
    request.core.users.update(request.user().username, language=body.language)
    return me(request)


@routes.post("/api/auth/password", roles=ANY_USER)
def change_password(request: Request) -> dict[str, Any]:
    body = request.parse(PasswordChange)
    request.core.auth.change_password(
        _person(request), body.current_password, body.new_password, ip=request.ip
    )
    return {"passwordChanged": True}


@routes.post("/api/auth/totp/setup", roles=ANY_USER)
def begin_totp(request: Request) -> dict[str, Any]:
    secret, uri = request.core.auth.begin_totp(_person(request))
    return {"secret": secret, "otpauth_uri": uri}


@routes.post("/api/auth/totp/confirm", roles=ANY_USER)
def confirm_totp(request: Request) -> dict[str, Any]:
    body = request.parse(OneTimePassword)
    request.core.auth.confirm_totp(_person(request), body.otp, ip=request.ip)
    return {"totpEnabled": True}


def register(registry: Registry) -> None:
    """Core: users, sessions, sign-in and user administration."""
    registry.migration(*store.MIGRATIONS, *keys.MIGRATIONS)
    registry.routes(routes)
    registry.routes(user_routes.routes)
    registry.routes(key_routes.routes)

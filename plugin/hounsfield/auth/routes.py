"""REST routes for signing in and out, and for one's own account."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hounsfield.auth.gate import ACCESS_COOKIE, Principal
from hounsfield.auth.service import SignedIn
from hounsfield.web import HttpError, Request, Response, RouteTable

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


class OneTimePassword(BaseModel):
    model_config = ConfigDict(extra="forbid")

    otp: str = Field(min_length=6, max_length=8)


def signed_in_principal(request: Request) -> Principal:
    if request.principal is None:
        raise HttpError(401, "authentication required")
    return request.principal


def _cookie(
    request: Request, name: str, value: str, *, path: str, max_age: int, http_only: bool = True
) -> str:
    parts = [f"{name}={value}", f"Path={path}", f"Max-Age={max_age}", "SameSite=Strict"]
    if http_only:
        parts.append("HttpOnly")
    if request.app.settings.plugin.auth.secure_cookies:
        parts.append("Secure")
    return "; ".join(parts)


def _session_response(request: Request, signed_in: SignedIn) -> Response:
    response = Response.json(
        {
            "access_token": signed_in.access_token,
            "token_type": "bearer",
            "expires_in": signed_in.expires_in,
            "csrf_token": signed_in.csrf_token,
            "user": signed_in.user.to_json(),
        }
    )
    session_seconds = request.app.settings.plugin.auth.session_hours * 3600
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


@routes.post("/api/auth/login")
def login(request: Request) -> Response:
    body = request.parse(Login)
    signed_in = request.app.auth.login(
        body.username,
        body.password,
        body.otp,
        ip=request.ip,
        user_agent=request.headers.get("user-agent", ""),
    )
    return _session_response(request, signed_in)


@routes.post("/api/auth/refresh")
def refresh(request: Request) -> Response:
    signed_in = request.app.auth.refresh(request.cookie(REFRESH_COOKIE), ip=request.ip)
    return _session_response(request, signed_in)


@routes.post("/api/auth/logout")
def logout(request: Request) -> Response:
    request.app.auth.logout(signed_in_principal(request), ip=request.ip)
    response = Response.json({"signedOut": True})
    response.cookies += [
        _cookie(request, ACCESS_COOKIE, "", path="/", max_age=0),
        _cookie(request, REFRESH_COOKIE, "", path="/api/auth", max_age=0),
        _cookie(request, CSRF_COOKIE, "", path="/", max_age=0, http_only=False),
    ]
    return response


@routes.get("/api/auth/me")
def me(request: Request) -> dict[str, Any]:
    principal = signed_in_principal(request)
    user = request.app.users.get(principal.username)
    return {**user.to_json(), "session": principal.session_id}


@routes.post("/api/auth/password")
def change_password(request: Request) -> dict[str, Any]:
    body = request.parse(PasswordChange)
    request.app.auth.change_password(
        signed_in_principal(request), body.current_password, body.new_password, ip=request.ip
    )
    return {"passwordChanged": True}


@routes.post("/api/auth/totp/setup")
def begin_totp(request: Request) -> dict[str, Any]:
    secret, uri = request.app.auth.begin_totp(signed_in_principal(request))
    return {"secret": secret, "otpauth_uri": uri}


@routes.post("/api/auth/totp/confirm")
def confirm_totp(request: Request) -> dict[str, Any]:
    body = request.parse(OneTimePassword)
    request.app.auth.confirm_totp(signed_in_principal(request), body.otp, ip=request.ip)
    return {"totpEnabled": True}

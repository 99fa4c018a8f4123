"""REST routes for administering users (admins only, by the permission table).

Orthanc 1.10's HTTP server knows GET, POST, PUT and DELETE only, so partial updates of a
user are ``PUT`` with just the fields to change (``PATCH`` is accepted where it arrives).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hounsfield.auth.permissions import ADMIN
from hounsfield.auth.roles import Role
from hounsfield.auth.store import USERNAME, User, UserExists
from hounsfield.web import HttpError, Request, Response, RouteTable

routes = RouteTable()


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=USERNAME.pattern)
    password: str = Field(min_length=1, max_length=256)
    role: Role
    studies: list[str] = Field(default_factory=list, max_length=10_000)


class UserChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    password: str | None = Field(None, min_length=1, max_length=256)
    disabled: bool | None = None
    unlock: bool | None = None
    totp: bool | None = Field(None, description="false turns the second factor off")
    studies: list[str] | None = Field(None, max_length=10_000)


def _user_or_404(request: Request) -> User:
    user = request.core.users.get(request.path_params["name"])
    if user is None:
        raise HttpError(404, f"no user {request.path_params['name']!r}")
    return user


def _user_json(request: Request, user: User) -> dict[str, Any]:
    payload = user.to_json()
    if user.role is Role.REFERRER:
        payload["studies"] = sorted(request.core.users.linked_studies(user.username))
    return payload


def _keep_an_admin(request: Request, user: User) -> None:
    if user.role is Role.ADMIN and request.core.users.count(role=Role.ADMIN) <= 1:
        raise HttpError(409, "this is the last active admin; make another admin first")


@routes.get("/api/users", roles=ADMIN)
def list_users(request: Request) -> dict[str, Any]:
    policy = {"minLength": request.services.settings.plugin.auth.min_password_length}
    return {
        "users": [_user_json(request, user) for user in request.core.users.list()],
        "passwordPolicy": policy,
    }


@routes.post("/api/users", roles=ADMIN)
def create_user(request: Request) -> Response:
    body = request.parse(NewUser)
    try:
        user = request.core.auth.create_user(body.username, body.password, body.role)
    except UserExists as error:
        raise HttpError(409, f"user {body.username!r} already exists") from error
    if body.studies:
        request.core.users.link_studies(user.username, body.studies)
    request.audit("user.create", "allowed", user.username, {"role": user.role.value})
    return Response.json(
        _user_json(request, user), status=201, Location=f"/api/users/{user.username}"
    )


@routes.get("/api/users/{name}", roles=ADMIN)
def get_user(request: Request) -> dict[str, Any]:
    return _user_json(request, _user_or_404(request))


@routes.route("PUT", "/api/users/{name}", roles=ADMIN)
@routes.route("PATCH", "/api/users/{name}", roles=ADMIN)
def update_user(request: Request) -> dict[str, Any]:
    user = _user_or_404(request)
    body = request.parse(UserChanges)
    changes: dict[str, Any] = {}
    if body.role is not None and body.role is not user.role:
        _keep_an_admin(request, user)
        changes["role"] = body.role
    if body.disabled is not None:
        if body.disabled:
            _keep_an_admin(request, user)
        changes["disabled"] = int(body.disabled)
    if body.totp is False:
        changes.update(totp_enabled=0, totp_secret=None)
    if body.unlock:
        request.core.users.clear_failures(user.username)
    if body.password is not None:
        request.core.auth.set_password(user.username, body.password, reset=True)
    if changes:
        request.core.users.update(user.username, **changes)
    if {"role", "disabled"} & changes.keys() or body.password is not None:
        request.core.sessions.revoke_user(user.username, "changed by an admin")
    if body.studies is not None:
        request.core.users.link_studies(user.username, body.studies)
    request.audit(
        "user.update",
        "allowed",
        user.username,
        {
            key: value
            for key, value in body.model_dump(exclude_none=True).items()
            if key != "password"
        }
        | ({"password": "reset"} if body.password else {}),
    )
    return _user_json(request, request.core.users.get(user.username))


@routes.route("DELETE", "/api/users/{name}", roles=ADMIN)
def delete_user(request: Request) -> dict[str, Any]:
    user = _user_or_404(request)
    _keep_an_admin(request, user)
    request.core.users.delete(user.username)
    request.audit("user.delete", "allowed", user.username, {})
    return {"deleted": user.username}

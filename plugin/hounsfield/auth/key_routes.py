"""REST routes for API keys: anyone signed in makes and revokes their own; admins see and
revoke all, and make service accounts' keys.

A key cannot make keys: a leaked key must not be able to mint others that outlive its
revocation. Its secret is in the answer that makes it, and nowhere else ever again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from hounsfield.auth.keys import NAME, ApiKey, KeyNameTaken
from hounsfield.auth.permissions import ANY_USER
from hounsfield.auth.principal import Principal
from hounsfield.auth.roles import Role, grantable
from hounsfield.web import HttpError, Request, Response, RouteTable

routes = RouteTable()


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME.pattern)
    role: Role | None = Field(None, description="default: the owner's role")
    read_only: bool = Field(False, alias="readOnly")
    expires_at: AwareDatetime | None = Field(None, alias="expiresAt")
    service: bool = Field(False, description="a service account's key (admins only)")


def _maker(request: Request) -> Principal:
    principal = request.user()
    if principal.key is not None:
        raise HttpError(403, "an API key cannot make API keys: sign in as a person")
    return principal


def _audit(request: Request, action: str, key: ApiKey) -> None:
    detail = {
        "id": key.id,
        "owner": key.owner,
        "role": key.role.value,
        "readOnly": key.read_only,
        "expiresAt": key.expires_at,
    }
    request.audit(action, "allowed", key.name, detail)


def _visible(request: Request, key_id: str) -> ApiKey:
    """The key, when it is the caller's own or the caller is an admin."""
    principal = request.user()
    key = request.core.keys.get(key_id)
    if key is None or (principal.role is not Role.ADMIN and key.owner != principal.username):
        raise HttpError(404, f"no API key {key_id!r}")
    return key


@routes.get("/api/keys", roles=ANY_USER)
def list_keys(request: Request) -> dict[str, Any]:
    """Admins: every key (``?owner=``: one user's); anyone else: their own."""
    principal = request.user()
    owner = request.query.get("owner") if principal.role is Role.ADMIN else principal.username
    return {"keys": [key.to_json() for key in request.core.keys.list(owner=owner)]}


@routes.post("/api/keys", roles=ANY_USER)
def create_key(request: Request) -> Response:
    principal = _maker(request)
    body = request.parse(NewKey)
    role = body.role or principal.role
    if body.service and principal.role is not Role.ADMIN:
        raise HttpError(403, "only an admin makes a service account's key")
    if role not in grantable(principal.role):
        raise HttpError(403, f"a {principal.role.value} cannot make a {role.value} key")
    if body.expires_at is not None and body.expires_at <= datetime.now(UTC):
        raise HttpError(400, "expiresAt is in the past")
    expires_at = (
        body.expires_at.astimezone(UTC).isoformat(timespec="milliseconds")
        if body.expires_at
        else None
    )
    try:
        key, secret = request.core.keys.create(
            body.name,
            owner=None if body.service else principal.username,
            created_by=principal.username,
            role=role,
            read_only=body.read_only,
            expires_at=expires_at,
        )
    except KeyNameTaken as error:
        raise HttpError(409, f"an API key named {body.name!r} exists; revoke it first") from error
    _audit(request, "key.create", key)
    return Response.json(
        {**key.to_json(), "key": secret}, status=201, Location=f"/api/keys/{key.id}"
    )


@routes.get("/api/keys/{id}", roles=ANY_USER)
def get_key(request: Request) -> dict[str, Any]:
    return _visible(request, request.path_params["id"]).to_json()


@routes.route("DELETE", "/api/keys/{id}", roles=ANY_USER)
def revoke_key(request: Request) -> dict[str, Any]:
    key = _visible(request, request.path_params["id"])
    if not request.core.keys.revoke(key.id, request.user().username):
        raise HttpError(409, f"API key {key.name!r} is already revoked")
    _audit(request, "key.revoke", key)
    return request.core.keys.get(key.id).to_json()

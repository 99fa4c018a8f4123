"""Who a request acts as, once the gate has authenticated it, and the gate's refusal."""

from __future__ import annotations

from dataclasses import dataclass

from hounsfield.auth.roles import Role
from hounsfield.web.http import HttpError

SERVICE_ACCOUNT = "hounsfield-worker"


@dataclass(frozen=True)
class Principal:
    """A signed-in user, a user by HTTP Basic, or an API key.

    ``username`` is the person accountable: the user, or a key's owner (``service:<name>``
    for a service account's key, which no person owns). ``session_id`` names where the
    rights come from (a session, ``basic:<user>``, ``key:<id>``); ``key`` the key's name.
    """

    username: str
    role: Role
    session_id: str
    via_cookie: bool
    key: str | None = None
    read_only: bool = False
    must_change_password: bool = False  # an admin reset it: the session may only change it


# What the plugin's own worker processes act as: technician rights, audited by this name.
SERVICE_PRINCIPAL = Principal(SERVICE_ACCOUNT, Role.TECHNICIAN, "service", via_cookie=False)


class Refused(HttpError):
    """Authentication or authorization said no; an HTTP error the client may read."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)
        self.reason = reason

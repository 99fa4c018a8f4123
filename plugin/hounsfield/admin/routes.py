"""The administration pages' own route: Orthanc's effective configuration, secrets masked."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hounsfield.auth.permissions import ADMIN
from hounsfield.web import Request, RouteTable

routes = RouteTable()

# A key naming a secret, in any section, by how it ends (Password, ApiKey, ClientSecret,
# Token, PrivateKey...): MinPasswordLength or AccessTokenMinutes are figures, kept.
SECRET = re.compile(
    r"(password|passwd|secret|token|apikey|privatekey|credentials?)$", re.IGNORECASE
)
MASK = "********"


def masked(value: Any, key: str = "") -> Any:
    """``value`` with every secret replaced by ``MASK``: under a secret-naming key,
    whatever it holds; and every user's password in ``RegisteredUsers``."""
    if key and SECRET.search(key):
        return MASK if value not in (None, "", [], {}) else value
    if key == "RegisteredUsers" and isinstance(value, Mapping):
        return dict.fromkeys(value, MASK)
    if isinstance(value, Mapping):
        return {name: masked(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    return value


@routes.get("/api/admin/configuration", roles=ADMIN)
def configuration(request: Request) -> dict[str, Any]:
    """What Orthanc runs with (its files and ``ORTHANC__`` variables merged)."""
    return {"configuration": masked(request.services.settings.orthanc_config)}

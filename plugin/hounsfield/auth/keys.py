"""API keys: long-lived credentials for scripts and services, stored only as digests.

A key reads ``hfk_<id>_<secret>``: the id finds its row (one indexed lookup per request,
like a session's), the secret is 256 random bits. So a plain SHA-256 of the whole key is
what is stored and compared: Argon2 guards passwords people choose, which can be guessed;
nobody guesses 256 random bits, and a fast digest keeps a key's request as cheap as a
bearer token's (bench/gate.py). The key itself is shown once, when it is made.

A key acts with its own role, never more than its owner may grant (``roles.grantable``,
checked again at every use: a demoted or disabled owner's keys stop working at once), and
read-only keys only read. A service account's key has no owner: it outlives the admin who
made it (``created_by`` says who).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from hounsfield.auth.principal import Principal, Refused
from hounsfield.auth.roles import Role, grantable
from hounsfield.clock import now_iso
from hounsfield.db import Database, Migration, Row, Schema

PREFIX = "hfk_"
KEY = re.compile(r"^hfk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
SERVICE_PREFIX = "service:"
LAST_USED_EVERY_SECONDS = 60.0  # "last used" is written at most this often per key


def _create_api_keys(schema: Schema) -> None:
    schema.create_table(
        "api_keys",
        {
            "id": str,
            "name": str,
            "owner": str,  # NULL: a service account
            "created_by": str,
            "role": str,
            "read_only": int,
            "digest": str,
            "created_at": str,
            "expires_at": str,
            "last_used_at": str,
            "revoked_at": str,
            "revoked_by": str,
        },
        pk="id",
        not_null={"name", "created_by", "role", "read_only", "digest", "created_at"},
    )
    schema.create_index("api_keys", ["owner"], name="api_keys_by_owner")


MIGRATIONS = [Migration("auth.0004.api_keys", _create_api_keys)]


def looks_like_key(secret: str) -> bool:
    return secret.startswith(PREFIX)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    owner: str | None
    created_by: str
    role: Role
    read_only: bool
    created_at: str
    expires_at: str | None
    last_used_at: str | None
    revoked_at: str | None

    @classmethod
    def from_row(cls, row: Row) -> ApiKey:
        return cls(
            row["id"],
            row["name"],
            row["owner"],
            row["created_by"],
            Role(row["role"]),
            bool(row["read_only"]),
            row["created_at"],
            row["expires_at"],
            row["last_used_at"],
            row["revoked_at"],
        )

    @property
    def service(self) -> bool:
        return self.owner is None

    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now_iso():
            return "expired"
        return "active"

    def principal(self) -> Principal:
        """Who a request with this key acts as: its owner (or the service account)."""
        username = self.owner or f"{SERVICE_PREFIX}{self.name}"
        return Principal(
            username, self.role, f"key:{self.id}", False, key=self.name, read_only=self.read_only
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "service": self.service,
            "createdBy": self.created_by,
            "role": self.role.value,
            "readOnly": self.read_only,
            "createdAt": self.created_at,
            "expiresAt": self.expires_at,
            "lastUsedAt": self.last_used_at,
            "revokedAt": self.revoked_at,
            "state": self.state(),
        }


class KeyNameTaken(Exception):
    pass


class KeyStore:
    def __init__(self, database: Database) -> None:
        self.db = database
        self._last_written: dict[str, float] = {}
        self._lock = threading.Lock()

    def create(
        self,
        name: str,
        *,
        owner: str | None,
        created_by: str,
        role: Role,
        read_only: bool,
        expires_at: str | None,
    ) -> tuple[ApiKey, str]:
        """A new key and its secret (shown once). A name is unique among unrevoked keys."""
        key_id = secrets.token_hex(8)
        secret = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        rows = self.db.execute(
            "INSERT INTO api_keys (id, name, owner, created_by, role, read_only, digest,"
            " created_at, expires_at) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?"
            " WHERE NOT EXISTS (SELECT 1 FROM api_keys WHERE name = ? AND revoked_at IS NULL)"
            " RETURNING id",
            (
                key_id,
                name,
                owner,
                created_by,
                role.value,
                int(read_only),
                _digest(secret),
                now_iso(),
                expires_at,
                name,
            ),
        )
        if not rows:
            raise KeyNameTaken(name)
        return self.get(key_id), secret

    def get(self, key_id: str) -> ApiKey | None:
        rows = self.db.query("SELECT * FROM api_keys WHERE id = ?", (key_id,))
        return ApiKey.from_row(rows[0]) if rows else None

    def list(self, *, owner: str | None = None) -> list[ApiKey]:
        """Every key (``owner``: that user's): unrevoked first, then newest first."""
        where, params = ("WHERE owner = ?", (owner,)) if owner is not None else ("", ())
        rows = self.db.query(
            f"SELECT * FROM api_keys {where} ORDER BY revoked_at IS NOT NULL, created_at DESC",
            params,
        )
        return [ApiKey.from_row(row) for row in rows]

    def revoke(self, key_id: str, by: str) -> bool:
        rows = self.db.execute(
            "UPDATE api_keys SET revoked_at = ?, revoked_by = ? WHERE id = ?"
            " AND revoked_at IS NULL RETURNING id",
            (now_iso(), by, key_id),
        )
        return bool(rows)

    def authenticate(self, secret: str) -> Principal:
        """The principal a key acts as; Refused (401) for anything not a usable key."""
        found = KEY.match(secret)
        if found is None:
            raise Refused(401, "API key is malformed")
        rows = self.db.query(
            "SELECT k.*, u.role AS owner_role, u.disabled AS owner_disabled FROM api_keys k"
            " LEFT JOIN users u ON u.username = k.owner WHERE k.id = ?",
            (found.group(1),),
        )
        if not rows or not hmac.compare_digest(rows[0]["digest"], _digest(secret)):
            raise Refused(401, "API key is not valid")
        row = rows[0]
        key = ApiKey.from_row(row)
        if key.state() != "active":
            raise Refused(401, f"API key is {key.state()}")
        if key.owner is not None:
            if row["owner_role"] is None or row["owner_disabled"]:
                raise Refused(401, "API key's owner is disabled or gone")
            if key.role not in grantable(Role(row["owner_role"])):
                raise Refused(401, "API key's role is above its owner's now")
        self._note_use(key.id)
        return key.principal()

    def _note_use(self, key_id: str) -> None:
        """``last_used_at``, written at most once a minute per key (not one write for every
        frame a script downloads)."""
        now = time.monotonic()
        with self._lock:
            last = self._last_written.get(key_id)
            if last is not None and now - last < LAST_USED_EVERY_SECONDS:
                return
            self._last_written[key_id] = now
        self.db.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now_iso(), key_id))

"""Users, their sessions and the studies linked to referrers, in SQLite."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from hounsfield.auth.roles import Role
from hounsfield.clock import iso_seconds_ago, now_iso
from hounsfield.db import Database, IntegrityError, Migration, Row, Schema

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


def _create_auth_tables(schema: Schema) -> None:
    schema.create_table(
        "users",
        {
            "username": str,
            "password_hash": str,
            "role": str,
            "disabled": int,
            "failed_logins": int,
            "locked_until": str,
            "totp_secret": str,
            "totp_enabled": int,
            "created_at": str,
            "updated_at": str,
        },
        pk="username",
        not_null={"password_hash", "role", "disabled", "failed_logins", "totp_enabled"},
        defaults={"disabled": 0, "failed_logins": 0, "totp_enabled": 0},
    )
    schema.create_table(
        "sessions",
        {
            "id": str,
            "username": str,
            "refresh_digest": str,
            "csrf_token": str,
            "ip": str,
            "user_agent": str,
            "created_at": str,
            "expires_at": str,
            "revoked_at": str,
            "revoked_reason": str,
        },
        pk="id",
        foreign_keys=[("username", "users", "username")],
        not_null={"username", "refresh_digest", "csrf_token", "created_at", "expires_at"},
    )
    schema.create_index("sessions", ["username"], name="sessions_by_user")
    schema.create_table(
        "referrer_studies",
        {"username": str, "study_instance_uid": str},
        pk=("username", "study_instance_uid"),
        foreign_keys=[("username", "users", "username")],
    )


def _add_user_language(schema: Schema) -> None:
    """Each user's language for our pages (NULL: the browser's)."""
    schema.add_column("users", "language", str)


def _create_signing_keys(schema: Schema) -> None:
    """Keys shared by every instance on the database (a token made by one is good on all)."""
    schema.create_table(
        "signing_keys",
        {"name": str, "secret": str, "created_at": str},
        pk="name",
        not_null={"secret", "created_at"},
    )


def _add_sign_in_state(schema: Schema) -> None:
    """When each user last signed in, and whether an admin's reset password must be
    changed before anything else (the administration pages show both)."""
    schema.add_column("users", "last_sign_in_at", str)
    schema.add_column("users", "must_change_password", int)


MIGRATIONS = [
    Migration("auth.0001.users_sessions", _create_auth_tables),
    Migration("auth.0002.user_language", _add_user_language),
    Migration("auth.0003.signing_keys", _create_signing_keys),
    Migration("auth.0005.sign_in_state", _add_sign_in_state),
]


def shared_signing_key(database: Database, name: str, size: int) -> bytes:
    """The key ``name``: made by the first instance that asks, read by every other."""
    database.execute(
        "INSERT INTO signing_keys (name, secret, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (name, secrets.token_hex(size), now_iso()),
    )
    rows = database.query("SELECT secret FROM signing_keys WHERE name = ?", (name,))
    return bytes.fromhex(rows[0][0])


class UserExists(Exception):
    pass


@dataclass(frozen=True)
class User:
    username: str
    role: Role
    disabled: bool
    failed_logins: int
    locked_until: str | None
    totp_enabled: bool
    created_at: str
    updated_at: str
    language: str | None = None  # for our pages; None: the browser's
    last_sign_in_at: str | None = None
    must_change_password: bool = False  # an admin reset the password

    @classmethod
    def from_row(cls, row: Row) -> User:
        return cls(
            row["username"],
            Role(row["role"]),
            bool(row["disabled"]),
            row["failed_logins"],
            row["locked_until"],
            bool(row["totp_enabled"]),
            row["created_at"],
            row["updated_at"],
            row["language"],
            row["last_sign_in_at"],
            bool(row["must_change_password"]),
        )

    def locked(self) -> bool:
        return self.locked_until is not None and self.locked_until > now_iso()

    def to_json(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "role": self.role.value,
            "disabled": self.disabled,
            "locked": self.locked(),
            "totpEnabled": self.totp_enabled,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "language": self.language,
            "lastSignInAt": self.last_sign_in_at,
            "mustChangePassword": self.must_change_password,
        }


@dataclass(frozen=True)
class Session:
    id: str
    username: str
    csrf_token: str
    expires_at: str
    revoked_at: str | None

    def active(self) -> bool:
        return self.revoked_at is None and self.expires_at > now_iso()


class UserStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    def create(self, username: str, password_hash: str, role: Role) -> User:
        now = now_iso()
        try:
            self.db.execute(
                "INSERT INTO users (username, password_hash, role, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (username, password_hash, role.value, now, now),
            )
        except IntegrityError as error:
            raise UserExists(username) from error
        return self.get(username)

    def get(self, username: str) -> User | None:
        rows = self.db.query("SELECT * FROM users WHERE username = ?", (username,))
        return User.from_row(rows[0]) if rows else None

    def credentials(self, username: str) -> tuple[User, str, str | None] | None:
        """(user, password hash, TOTP secret) in one read; None for an unknown user."""
        rows = self.db.query("SELECT * FROM users WHERE username = ?", (username,))
        if not rows:
            return None
        return User.from_row(rows[0]), rows[0]["password_hash"], rows[0]["totp_secret"]

    def secrets_of(self, username: str) -> tuple[str | None, str | None]:
        """(password hash, TOTP secret) of a user; (None, None) for an unknown one."""
        rows = self.db.query(
            "SELECT password_hash, totp_secret FROM users WHERE username = ?", (username,)
        )
        return (rows[0][0], rows[0][1]) if rows else (None, None)

    def list(self) -> list[User]:
        return [
            User.from_row(row) for row in self.db.query("SELECT * FROM users ORDER BY username")
        ]

    def count(self, *, role: Role | None = None) -> int:
        if role is None:
            return self.db.query("SELECT count(*) FROM users")[0][0]
        return self.db.query(
            "SELECT count(*) FROM users WHERE role = ? AND disabled = 0", (role.value,)
        )[0][0]

    def update(self, username: str, **changes: Any) -> User | None:
        """Set columns (role, disabled, password_hash, totp_secret, totp_enabled...)."""
        values = {
            key: (value.value if isinstance(value, Role) else value)
            for key, value in changes.items()
        }
        values["updated_at"] = now_iso()
        assignments = ", ".join(f"{column} = :{column}" for column in values)
        self.db.execute(
            f"UPDATE users SET {assignments} WHERE username = :username",
            {**values, "username": username},
        )
        return self.get(username)

    def delete(self, username: str) -> None:
        with self.db.transaction():
            self.db.execute("DELETE FROM referrer_studies WHERE username = ?", (username,))
            self.db.execute("DELETE FROM sessions WHERE username = ?", (username,))
            self.db.execute("DELETE FROM api_keys WHERE owner = ?", (username,))
            self.db.execute("DELETE FROM users WHERE username = ?", (username,))

    def record_failure(self, username: str, *, max_failures: int, lockout_seconds: int) -> User:
        """Count a failed login; at ``max_failures`` the account locks for a while."""
        locked_until = iso_seconds_ago(-lockout_seconds)
        self.db.execute(
            "UPDATE users SET failed_logins = failed_logins + 1,"
            " locked_until = CASE WHEN failed_logins + 1 >= ? THEN ? ELSE locked_until END"
            " WHERE username = ?",
            (max_failures, locked_until, username),
        )
        return self.get(username)

    def clear_failures(self, username: str) -> None:
        self.db.execute(
            "UPDATE users SET failed_logins = 0, locked_until = NULL WHERE username = ?",
            (username,),
        )

    def signed_in(self, username: str) -> None:
        """A successful sign-in: failures forgotten, the time kept."""
        self.db.execute(
            "UPDATE users SET failed_logins = 0, locked_until = NULL, last_sign_in_at = ?"
            " WHERE username = ?",
            (now_iso(), username),
        )

    def linked_studies(self, username: str) -> set[str]:
        rows = self.db.query(
            "SELECT study_instance_uid FROM referrer_studies WHERE username = ?", (username,)
        )
        return {row[0] for row in rows}

    def link_studies(self, username: str, study_uids: list[str]) -> None:
        with self.db.transaction():
            self.db.execute("DELETE FROM referrer_studies WHERE username = ?", (username,))
            self.db.executemany(
                "INSERT INTO referrer_studies (username, study_instance_uid) VALUES (?, ?)",
                [(username, uid) for uid in dict.fromkeys(study_uids)],
            )


class SessionStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    def create(
        self,
        username: str,
        *,
        refresh_digest: str,
        csrf_token: str,
        session_id: str,
        ttl_seconds: int,
        ip: str,
        user_agent: str,
    ) -> Session:
        self.db.execute(
            "INSERT INTO sessions (id, username, refresh_digest, csrf_token, ip, user_agent,"
            " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                session_id,
                username,
                refresh_digest,
                csrf_token,
                ip,
                user_agent[:200],
                now_iso(),
                iso_seconds_ago(-ttl_seconds),
            ),
        )
        return self.get(session_id)

    def get(self, session_id: str) -> Session | None:
        rows = self.db.query(
            "SELECT id, username, csrf_token, expires_at, revoked_at FROM sessions WHERE id = ?",
            (session_id,),
        )
        return Session(*rows[0]) if rows else None

    def rotate(self, session_id: str, old_digest: str, new_digest: str) -> bool:
        """Swap the refresh token; False when ``old_digest`` is not the current one."""
        rows = self.db.execute(
            "UPDATE sessions SET refresh_digest = ? WHERE id = ? AND refresh_digest = ?"
            " AND revoked_at IS NULL AND expires_at > ? RETURNING id",
            (new_digest, session_id, old_digest, now_iso()),
        )
        return bool(rows)

    def revoke(self, session_id: str, reason: str) -> None:
        self.db.execute(
            "UPDATE sessions SET revoked_at = ?, revoked_reason = ?"
            " WHERE id = ? AND revoked_at IS NULL",
            (now_iso(), reason, session_id),
        )

    def revoke_user(self, username: str, reason: str, *, keep: str | None = None) -> None:
        self.db.execute(
            "UPDATE sessions SET revoked_at = ?, revoked_reason = ?"
            " WHERE username = ? AND revoked_at IS NULL AND id IS DISTINCT FROM ?",
            (now_iso(), reason, username, keep),
        )

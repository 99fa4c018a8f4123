"""Signing in and out: passwords, second factor, lock-out, sessions and refresh tokens."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass

import pyotp

from hounsfield.audit.trail import AuditEntry, AuditTrail
from hounsfield.auth.passwords import (
    PasswordPolicyError,
    check_policy,
    hash_password,
    needs_rehash,
    verify_password,
)
from hounsfield.auth.principal import Principal, Refused
from hounsfield.auth.roles import Role
from hounsfield.auth.store import USERNAME, SessionStore, User, UserExists, UserStore
from hounsfield.auth.tokens import TokenService, digest, new_secret
from hounsfield.config import ADMIN_PASSWORD_VARIABLE, AuthSection, ConfigError

log = logging.getLogger(__name__)

ISSUER = "Hounsfield"
REMEMBER_SECONDS = 300.0  # how long a verified Basic password skips Argon2
REMEMBERED_PASSWORDS = 10_000


@dataclass(frozen=True)
class SignedIn:
    user: User
    access_token: str
    expires_in: int
    refresh_token: str
    csrf_token: str


class VerifiedPasswords:
    """HTTP Basic passwords verified lately, so that a script's thousand requests cost one
    Argon2 verification (about 20 ms each here), not a thousand.

    Held in memory only, keyed by an HMAC of user and password under a key made at start
    (never the password itself, never written anywhere), each entry bound to the password
    hash it was verified against (a changed password misses) and kept ``REMEMBER_SECONDS``.
    Reading this process's memory would also give the passwords of requests in flight: the
    cache exposes nothing that access does not.
    """

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._entries: dict[bytes, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def _name(self, username: str, password: str) -> bytes:
        message = f"{username}\0{password}".encode()
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def holds(self, username: str, password: str, password_hash: str | None) -> bool:
        if password_hash is None:
            return False
        with self._lock:
            entry = self._entries.get(self._name(username, password))
        return (
            entry is not None
            and hmac.compare_digest(entry[0], password_hash)
            and entry[1] > time.monotonic()
        )

    def remember(self, username: str, password: str, password_hash: str) -> None:
        with self._lock:
            if len(self._entries) >= REMEMBERED_PASSWORDS:
                self._entries.clear()
            self._entries[self._name(username, password)] = (
                password_hash,
                time.monotonic() + REMEMBER_SECONDS,
            )


class AuthService:
    def __init__(
        self,
        users: UserStore,
        sessions: SessionStore,
        tokens: TokenService,
        trail: AuditTrail,
        settings: AuthSection,
    ) -> None:
        self.users = users
        self.sessions = sessions
        self.tokens = tokens
        self.trail = trail
        self.settings = settings
        self._verified = VerifiedPasswords()

    def _record(
        self,
        action: str,
        outcome: str,
        username: str,
        ip: str | None = None,
        reason: str | None = None,
        via: str | None = None,
        **fields: str | None,
    ) -> None:
        detail = {"reason": reason} if reason else {}
        if via is not None:
            detail["via"] = via
        self.trail.append(
            AuditEntry(action, outcome, username=username, ip=ip, detail=detail, **fields)
        )

    def bootstrap_admin(self, password: str | None) -> None:
        """On a first start, create ``admin``; without a given password, make one and log it."""
        if self.users.count():
            return
        generated = password is None
        password = password or secrets.token_urlsafe(18)
        try:
            self.create_user("admin", password, Role.ADMIN)
        except Refused as error:
            raise ConfigError(f"{ADMIN_PASSWORD_VARIABLE} is refused: {error}") from error
        except UserExists:
            return  # another instance, starting at the same moment on the same database
        self._record("user.create", "allowed", "system", resource="admin")
        if generated:
            log.warning("first start: created user 'admin' with password %s (shown once)", password)
        else:
            log.warning("first start: created user 'admin' (password from the environment)")

    def login(
        self,
        username: str,
        password: str,
        otp: str | None,
        *,
        ip: str,
        user_agent: str,
    ) -> SignedIn:
        user = self._check_password(username, password, otp, ip=ip, via="sign-in")
        return self._open_session(user, ip=ip, user_agent=user_agent)

    def basic(self, username: str, password: str, *, ip: str) -> Principal:
        """HTTP Basic with a user's password: the sign-in's checks (lock-out, disabled,
        audit), on every request. A credential verified in the last few minutes is not
        run through Argon2 again (``VerifiedPasswords``); the user's row is still read each
        time, so a disabled, locked or demoted user, or a changed password, counts at once.
        A user with a second factor cannot: their password alone is not their sign-in."""
        user = self._check_password(username, password, None, ip=ip, via="basic")
        return Principal(user.username, user.role, f"basic:{user.username}", False)

    def _check_password(
        self, username: str, password: str, otp: str | None, *, ip: str, via: str
    ) -> User:
        username = username.strip().lower()
        found = self.users.credentials(username) if USERNAME.match(username) else None
        user, password_hash, totp_secret = found or (None, None, None)
        remembered = via == "basic" and self._verified.holds(username, password, password_hash)
        # The same work for unknown users as for known ones.
        password_ok = remembered or verify_password(password_hash, password)

        def refuse(status: int, reason: str, outcome_reason: str) -> Refused:
            self._record("auth.login", "denied", username, ip, outcome_reason, via=via)
            return Refused(status, reason)

        if user is None:
            raise refuse(401, "invalid user name or password", "unknown user")
        if user.locked():
            raise refuse(401, "account locked after repeated failures; try again later", "locked")
        if user.disabled:
            raise refuse(401, "invalid user name or password", "disabled")
        if not password_ok:
            after = self.users.record_failure(
                username,
                max_failures=self.settings.max_failed_logins,
                lockout_seconds=self.settings.lockout_minutes * 60,
            )
            raise refuse(
                401,
                "invalid user name or password",
                "locked now" if after.locked() else "wrong password",
            )
        if remembered:
            return user
        if via == "basic" and user.must_change_password:
            raise refuse(
                401,
                "an admin reset this password: sign in on the sign-in page to choose a new one",
                "password must be changed",
            )
        if user.totp_enabled:
            if via == "basic":
                raise refuse(
                    401,
                    "this account has a second factor: use an API key for HTTP Basic",
                    "second factor required",
                )
            if not otp:
                raise Refused(401, "one-time password required")
            if not pyotp.TOTP(totp_secret).verify(otp, valid_window=1):
                self.users.record_failure(
                    username,
                    max_failures=self.settings.max_failed_logins,
                    lockout_seconds=self.settings.lockout_minutes * 60,
                )
                raise refuse(401, "one-time password is wrong", "wrong one-time password")
        self.users.signed_in(username)
        if needs_rehash(password_hash):
            password_hash = hash_password(password)
            self.users.update(username, password_hash=password_hash)
        if via == "basic":
            self._verified.remember(username, password, password_hash)
        self._record("auth.login", "allowed", username, ip, role=user.role.value, via=via)
        return user

    def refresh(self, refresh_token: str | None, *, ip: str) -> SignedIn:
        """New access and refresh tokens; a refresh token used twice ends its session."""
        session_id, _, _ = (refresh_token or "").partition(".")
        session = self.sessions.get(session_id) if session_id else None
        if session is None or not session.active():
            raise Refused(401, "no valid session; sign in again")
        new_refresh = f"{session.id}.{new_secret()}"
        if not self.sessions.rotate(session.id, digest(refresh_token), digest(new_refresh)):
            self.sessions.revoke(session.id, "refresh token reused")
            self._record("auth.refresh", "denied", session.username, ip, "refresh token reused")
            raise Refused(401, "refresh token already used; session closed, sign in again")
        user = self.users.get(session.username)
        if user is None or user.disabled:
            self.sessions.revoke(session.id, "user disabled")
            raise Refused(401, "no valid session; sign in again")
        access = self._access_token(user, session.id)
        return SignedIn(user, access, self.tokens.ttl_seconds, new_refresh, session.csrf_token)

    def logout(self, principal: Principal, *, ip: str) -> None:
        self.sessions.revoke(principal.session_id, "logout")
        self._record("auth.logout", "allowed", principal.username, ip, role=principal.role.value)

    def change_password(
        self,
        principal: Principal,
        current: str,
        new: str,
        *,
        ip: str,
    ) -> None:
        password_hash, _ = self.users.secrets_of(principal.username)
        if not verify_password(password_hash, current):
            self._record(
                "user.password", "denied", principal.username, ip, "wrong current password"
            )
            raise Refused(403, "current password is wrong")
        self.set_password(principal.username, new)
        self.sessions.revoke_user(principal.username, "password changed", keep=principal.session_id)
        self._record(
            "user.password", "allowed", principal.username, ip, resource=principal.username
        )

    def create_user(self, username: str, password: str, role: Role) -> User:
        return self.users.create(username, self._acceptable_hash(username, password), role)

    def set_password(self, username: str, password: str, *, reset: bool = False) -> None:
        """A new password; ``reset`` (an admin's): its user must change it at next sign-in."""
        self.users.update(
            username,
            password_hash=self._acceptable_hash(username, password),
            must_change_password=int(reset),
        )

    def _acceptable_hash(self, username: str, password: str) -> str:
        try:
            check_policy(password, username=username, min_length=self.settings.min_password_length)
        except PasswordPolicyError as error:
            raise Refused(400, str(error)) from error
        return hash_password(password)

    def begin_totp(self, principal: Principal) -> tuple[str, str]:
        secret = pyotp.random_base32()
        self.users.update(principal.username, totp_secret=secret, totp_enabled=0)
        uri = pyotp.TOTP(secret).provisioning_uri(name=principal.username, issuer_name=ISSUER)
        return secret, uri

    def confirm_totp(self, principal: Principal, otp: str, *, ip: str) -> None:
        _, secret = self.users.secrets_of(principal.username)
        if not secret or not pyotp.TOTP(secret).verify(otp, valid_window=1):
            raise Refused(400, "one-time password does not match; second factor not enabled")
        self.users.update(principal.username, totp_enabled=1)
        self._record("user.totp", "allowed", principal.username, ip, resource=principal.username)

    def _access_token(self, user: User, session_id: str) -> str:
        return self.tokens.issue(
            user.username,
            user.role.value,
            session_id,
            must_change_password=user.must_change_password,
        )

    def _open_session(self, user: User, *, ip: str, user_agent: str) -> SignedIn:
        session_id = secrets.token_urlsafe(16)
        refresh = f"{session_id}.{new_secret()}"
        csrf = new_secret()
        self.sessions.create(
            user.username,
            refresh_digest=digest(refresh),
            csrf_token=csrf,
            session_id=session_id,
            ttl_seconds=self.settings.session_hours * 3600,
            ip=ip,
            user_agent=user_agent,
        )
        access = self._access_token(user, session_id)
        return SignedIn(user, access, self.tokens.ttl_seconds, refresh, csrf)

"""Signed access tokens (JWT, HS256 with pyjwt) and the random secrets behind sessions."""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

ALGORITHM = "HS256"
KEY_BYTES = 32
VERIFIED_CACHE_SIZE = 10_000
LEEWAY_SECONDS = 5


@dataclass(frozen=True)
class AccessClaims:
    username: str
    role: str
    session_id: str
    expires_at: int


class TokenError(Exception):
    """A token that cannot be accepted; ``reason`` is safe to show the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenService:
    def __init__(self, key: bytes, ttl_seconds: int) -> None:
        self._key = key
        self.ttl_seconds = ttl_seconds
        # A viewer sends the same token hundreds of times: checking its signature once is
        # enough (the same string always verifies the same way); expiry is still checked
        # on every use, and revocation lives in the session, checked by the gate.
        self._verified: dict[str, AccessClaims] = {}

    def issue(self, username: str, role: str, session_id: str) -> str:
        now = int(time.time())
        claims = {
            "sub": username,
            "role": role,
            "sid": session_id,
            "typ": "access",
            "iat": now,
            "exp": now + self.ttl_seconds,
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def verify(self, token: str) -> AccessClaims:
        claims = self._verified.get(token)
        if claims is not None:
            if claims.expires_at + LEEWAY_SECONDS < time.time():
                raise TokenError("token expired")
            return claims
        claims = self._decode(token)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    def _decode(self, token: str) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],  # never "none", never a key confusion
                options={"require": ["sub", "role", "sid", "typ", "iat", "exp"]},
                leeway=LEEWAY_SECONDS,
            )
        except jwt.ExpiredSignatureError as error:
            raise TokenError("token expired") from error
        except jwt.InvalidSignatureError as error:
            raise TokenError("token signature is invalid") from error
        except jwt.InvalidAlgorithmError as error:
            raise TokenError("token algorithm is not accepted") from error
        except jwt.MissingRequiredClaimError as error:
            raise TokenError(f"token lacks the {error.claim!r} claim") from error
        except jwt.InvalidTokenError as error:
            raise TokenError("token is malformed") from error
        if claims["typ"] != "access":
            raise TokenError("not an access token")
        return AccessClaims(claims["sub"], claims["role"], claims["sid"], claims["exp"])


def load_or_create_key(path: Path) -> bytes:
    """The signing key, made on first start and kept readable by its owner only."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        key = path.read_bytes()
        if len(key) < KEY_BYTES:
            raise ValueError(f"signing key {path} is shorter than {KEY_BYTES} bytes") from None
        return key
    key = secrets.token_bytes(KEY_BYTES)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(key)
    return key


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """What is stored for a secret (refresh token): enough to check it, useless if stolen."""
    return hashlib.sha256(secret.encode()).hexdigest()

"""Signed access tokens (JWT, HS256 with pyjwt) and the random secrets behind sessions.

A token is checked against the one header we issue and our own signature before any of
it is parsed: PyJWT reads a token's header JSON before it looks at the signature, and a
13 KB header of nested JSON sent by anyone killed Orthanc that way (``json`` recursing in
C on a 100 KiB stack). Only tokens this server signed ever reach a JSON parser.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt

ALGORITHM = "HS256"
KEY_BYTES = 32
VERIFIED_CACHE_SIZE = 10_000
LEEWAY_SECONDS = 5
BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


@dataclass(frozen=True)
class AccessClaims:
    username: str
    role: str
    session_id: str
    expires_at: int
    must_change_password: bool = False


class TokenError(Exception):
    """A token that cannot be accepted; ``reason`` is safe to show the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenService:
    def __init__(self, key: bytes, ttl_seconds: int) -> None:
        self._key = key
        self.ttl_seconds = ttl_seconds
        # The header segment of every token we issue (PyJWT writes it the same way each time).
        self._header = jwt.encode({}, key, algorithm=ALGORITHM).split(".", 1)[0]
        # A viewer sends the same token hundreds of times: checking its signature once is
        # enough (the same string always verifies the same way); expiry is still checked
        # on every use, and revocation lives in the session, checked by the gate.
        self._verified: dict[str, AccessClaims] = {}

    def issue(
        self, username: str, role: str, session_id: str, *, must_change_password: bool = False
    ) -> str:
        """An access token; ``must_change_password``: good for changing it, nothing else."""
        now = int(time.time())
        claims: dict[str, object] = {
            "sub": username,
            "role": role,
            "sid": session_id,
            "typ": "access",
            "iat": now,
            "exp": now + self.ttl_seconds,
            "jti": secrets.token_hex(8),
        }
        if must_change_password:
            claims["chg"] = True
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

    def _check_signature(self, token: str) -> None:
        segments = token.split(".")
        if len(segments) != 3 or not all(BASE64URL.fullmatch(part) for part in segments):
            raise TokenError("token is malformed")
        header, payload, signature = segments
        if header != self._header:
            raise TokenError("token algorithm is not accepted")
        try:
            given = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        except binascii.Error:
            raise TokenError("token is malformed") from None
        signed = f"{header}.{payload}".encode("ascii")
        expected = hmac.new(self._key, signed, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, given):
            raise TokenError("token signature is invalid")

    def _decode(self, token: str) -> AccessClaims:
        self._check_signature(token)
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
        return AccessClaims(
            claims["sub"],
            claims["role"],
            claims["sid"],
            claims["exp"],
            claims.get("chg") is True,
        )


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

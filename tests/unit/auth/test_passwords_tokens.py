from __future__ import annotations

import base64
import os
import stat
import time
from pathlib import Path

import jwt
import pytest

from hounsfield.auth.passwords import (
    PasswordPolicyError,
    check_policy,
    hash_password,
    verify_password,
)
from hounsfield.auth.tokens import TokenError, TokenService, load_or_create_key
from tests.support.stack import outcome_on_small_stack


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short-1", "at least 12"),
        ("x" * 300, "at most 256"),
        ("my-name-is-alice-99", "user name"),
        ("aaaaaaaaaaaaaaa", "4 different"),
        ("Password1234", "too common"),
    ],
)
def test_policy_refuses_with_a_reason(password: str, reason: str) -> None:
    with pytest.raises(PasswordPolicyError, match=reason):
        check_policy(password, username="alice", min_length=12)


def test_hashes_verify_and_differ() -> None:
    first, second = hash_password("Tricky-Pass-123"), hash_password("Tricky-Pass-123")
    assert first != second and first.startswith("$argon2id$")
    assert verify_password(first, "Tricky-Pass-123")
    assert not verify_password(first, "tricky-pass-123")
    assert not verify_password(None, "anything")  # unknown user: a dummy hash is checked
    assert not verify_password("garbage", "anything")


def test_tokens_round_trip_and_expire() -> None:
    service = TokenService(b"k" * 32, ttl_seconds=60)
    claims = service.verify(service.issue("alice", "radiologist", "s1"))
    assert (claims.username, claims.role, claims.session_id) == ("alice", "radiologist", "s1")
    expired = TokenService(b"k" * 32, ttl_seconds=-60)
    with pytest.raises(TokenError, match="expired"):
        service.verify(expired.issue("alice", "radiologist", "s1"))


def test_a_cached_token_still_expires() -> None:
    service = TokenService(b"k" * 32, ttl_seconds=1)
    token = service.issue("alice", "radiologist", "s1")
    service.verify(token)
    claims = service._verified[token]
    service._verified[token] = type(claims)(
        claims.username, claims.role, claims.session_id, int(time.time()) - 60
    )
    with pytest.raises(TokenError, match="expired"):
        service.verify(token)


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_other_algorithms_are_refused(algorithm: str) -> None:
    token = jwt.encode(
        {"sub": "a", "role": "admin", "sid": "s", "typ": "access", "iat": 1, "exp": 2**31},
        b"k" * 64,
        algorithm=algorithm,
    )
    with pytest.raises(TokenError, match="algorithm"):
        TokenService(b"k" * 32, 60).verify(token)


def test_the_key_is_made_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "token.key"
    key = load_or_create_key(path)
    assert len(key) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    os.chmod(path, 0o644)
    assert load_or_create_key(path) == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_forged_token_is_refused_before_any_of_it_is_parsed() -> None:
    """Nested JSON in a token's header crashed Orthanc's 100 KiB HTTP threads via PyJWT."""
    nested = base64.urlsafe_b64encode(b"[" * 5000 + b"]" * 5000).rstrip(b"=").decode()
    error = outcome_on_small_stack(lambda: TokenService(b"k" * 32, 60).verify(f"{nested}.e30.c2ln"))
    assert isinstance(error, TokenError) and "algorithm" in error.reason


def test_a_token_signed_with_another_key_is_refused() -> None:
    token = TokenService(b"j" * 32, 60).issue("alice", "admin", "s1")
    with pytest.raises(TokenError, match="signature is invalid"):
        TokenService(b"k" * 32, 60).verify(token)
    header, payload, _ = token.split(".")
    with pytest.raises(TokenError, match="malformed"):
        TokenService(b"j" * 32, 60).verify(f"{header}.{payload}.not*base64")

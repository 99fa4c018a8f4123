"""Password hashing with Argon2id (argon2-cffi) and the password policy.

Parameters follow OWASP's Argon2id recommendation (19 MiB, 2 passes, 1 lane): about
20 ms a login here, and a login flood cannot eat the server's memory.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MAX_PASSWORD_LENGTH = 256
COMMON_PASSWORDS = frozenset(
    {
        "password1234",
        "passwordpassword",
        "123456789012",
        "1234567890123",
        "qwertyuiopas",
        "qwerty123456",
        "letmein12345",
        "administrator",
        "welcome12345",
        "changeme1234",
        "iloveyou1234",
        "hounsfield12",
    }
)

_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


class PasswordPolicyError(ValueError):
    """The password is refused; the message says why, for the user to read."""


def check_policy(password: str, *, username: str, min_length: int) -> None:
    if len(password) < min_length:
        raise PasswordPolicyError(f"password must have at least {min_length} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"password must have at most {MAX_PASSWORD_LENGTH} characters")
    lowered = password.lower()
    if username and username.lower() in lowered:
        raise PasswordPolicyError("password must not contain the user name")
    if len(set(password)) < 4:
        raise PasswordPolicyError("password must use at least 4 different characters")
    if lowered in COMMON_PASSWORDS:
        raise PasswordPolicyError("password is too common")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not the user exists (an unknown user checks a dummy hash)."""
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@cache
def _dummy_hash() -> str:
    return _hasher.hash("no user has this password")

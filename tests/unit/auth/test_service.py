"""Signing in, refreshing and signing out on the real stores (SQLite), without Orthanc."""

from __future__ import annotations

import pytest

from hounsfield.audit.trail import AuditTrail
from hounsfield.auth.principal import Principal, Refused
from hounsfield.auth.roles import Role
from hounsfield.auth.service import AuthService
from hounsfield.auth.store import SessionStore, UserStore
from hounsfield.auth.tokens import TokenService
from hounsfield.config import AuthSection
from hounsfield.db import Database

PASSWORD = "Correct-Horse-42-battery"


@pytest.fixture
def auth(database: Database) -> AuthService:
    service = AuthService(
        UserStore(database),
        SessionStore(database),
        TokenService(b"k" * 32, 900),
        AuditTrail(database),
        AuthSection.model_validate({"MaxFailedLogins": 3}),
    )
    service.create_user("rad", PASSWORD, Role.RADIOLOGIST)
    return service


def sign_in(auth: AuthService, password: str = PASSWORD, username: str = "rad"):
    return auth.login(username, password, None, ip="10.0.0.1", user_agent="test")


def refused(call) -> Refused:
    with pytest.raises(Refused) as caught:
        call()
    return caught.value


def test_a_signed_in_user_gets_tokens_naming_their_role(auth) -> None:
    signed = sign_in(auth, username=" RAD ")  # user names are case- and space-insensitive
    claims = auth.tokens.verify(signed.access_token)
    assert (claims.username, claims.role) == ("rad", "radiologist")
    assert auth.sessions.get(claims.session_id).active()


def test_repeated_wrong_passwords_lock_the_account_even_for_the_right_one(auth) -> None:
    for _ in range(3):
        assert refused(lambda: sign_in(auth, "wrong-password-1")).status == 401
    assert "locked" in refused(lambda: sign_in(auth)).reason
    assert auth.users.get("rad").locked()


def test_unknown_and_disabled_users_get_the_same_answer_as_a_wrong_password(auth) -> None:
    wrong = refused(lambda: sign_in(auth, "wrong-password-1")).reason
    assert refused(lambda: sign_in(auth, username="nobody")).reason == wrong
    auth.users.update("rad", disabled=1)
    assert refused(lambda: sign_in(auth)).reason == wrong


def test_a_refresh_token_works_once_and_its_reuse_closes_the_session(auth) -> None:
    first = sign_in(auth)
    second = auth.refresh(first.refresh_token, ip="10.0.0.1")
    assert second.refresh_token != first.refresh_token
    assert "already used" in refused(lambda: auth.refresh(first.refresh_token, ip="x")).reason
    # The stolen token's reuse ended the session for its rightful holder too.
    assert refused(lambda: auth.refresh(second.refresh_token, ip="x")).status == 401


def test_signing_out_revokes_the_session(auth) -> None:
    signed = sign_in(auth)
    claims = auth.tokens.verify(signed.access_token)
    principal = Principal("rad", Role.RADIOLOGIST, claims.session_id, via_cookie=False)
    auth.logout(principal, ip="10.0.0.1")
    assert not auth.sessions.get(claims.session_id).active()


def test_an_admins_reset_lets_the_next_session_change_the_password_and_nothing_else(
    auth,
) -> None:
    assert auth.users.get("rad").last_sign_in_at is None
    auth.set_password("rad", "Reset-By-Admin-2468", reset=True)
    signed = sign_in(auth, "Reset-By-Admin-2468")
    assert auth.users.get("rad").last_sign_in_at is not None
    assert auth.tokens.verify(signed.access_token).must_change_password
    principal = Principal("rad", Role.RADIOLOGIST, signed.refresh_token.split(".")[0], False)
    auth.change_password(principal, "Reset-By-Admin-2468", "Chosen-By-Me-9753", ip="10.0.0.1")
    renewed = auth.refresh(signed.refresh_token, ip="10.0.0.1")
    assert not auth.tokens.verify(renewed.access_token).must_change_password
    assert not auth.users.get("rad").must_change_password

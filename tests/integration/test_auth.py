"""Signing in and out, tokens good and bad, users administered by an admin."""

from __future__ import annotations

import base64
import json
import sqlite3
import time

import jwt
import pyotp
import pytest
import requests

from tests.support.server import ADMIN_PASSWORD, OrthancServer

PASSWORD = "Correct-Horse-42"


@pytest.fixture(scope="module")
def users(orthanc: OrthancServer) -> dict[str, str]:
    """One user per role (beside admin), created through the API; name -> password."""
    created = {}
    for role in ("radiologist", "technician", "referrer"):
        name = f"auth-{role}"
        response = orthanc.post(
            "/api/users", json={"username": name, "password": PASSWORD, "role": role}
        )
        assert response.status_code == 201, response.text
        created[name] = PASSWORD
    return created


def login(orthanc: OrthancServer, username: str, password: str, **extra) -> requests.Response:
    return requests.post(
        orthanc.url("/api/auth/login"),
        timeout=10,
        json={"username": username, "password": password, **extra},
    )


def forge(orthanc: OrthancServer, **overrides) -> str:
    """A token signed with the server's own key (read from its database)."""
    database = orthanc.workdir / "data" / "hounsfield" / "hounsfield.db"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        key = bytes.fromhex(conn.execute("SELECT secret FROM signing_keys").fetchone()[0])
    me = orthanc.get("/api/auth/me").json()
    claims = {
        "sub": "admin",
        "role": "admin",
        "sid": me["session"],
        "typ": "access",
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
        **overrides,
    }
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="HS256")


def unsigned_token() -> str:
    """The classic forgery: ``alg: none`` and no signature."""

    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"sub": "admin", "role": "admin", "sid": "x", "typ": "access", "iat": 1, "exp": 2**31}
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def test_login_returns_a_bearer_token_and_cookies(orthanc: OrthancServer, users) -> None:
    response = login(orthanc, "auth-radiologist", PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 15 * 60
    assert body["user"]["role"] == "radiologist"
    cookies = response.headers["Set-Cookie"]
    assert "hf_refresh=" in cookies and "HttpOnly" in cookies and "SameSite=Strict" in cookies
    me = orthanc.client(body["access_token"]).get(orthanc.url("/api/auth/me"))
    assert me.json()["username"] == "auth-radiologist"


@pytest.mark.parametrize(
    ("username", "password"),
    [("auth-radiologist", "wrong-password-1"), ("nobody-here", PASSWORD), ("", PASSWORD)],
)
def test_bad_credentials_are_a_401(orthanc: OrthancServer, users, username, password) -> None:
    response = login(orthanc, username, password)
    assert response.status_code in (400, 401)
    assert "error" in response.json()


def test_repeated_failures_lock_the_account(orthanc: OrthancServer) -> None:
    orthanc.post(
        "/api/users", json={"username": "auth-locky", "password": PASSWORD, "role": "technician"}
    )
    for _ in range(5):
        assert login(orthanc, "auth-locky", "not-the-password").status_code == 401
    locked = login(orthanc, "auth-locky", PASSWORD)
    assert locked.status_code == 401 and "locked" in locked.json()["error"]
    assert orthanc.get("/api/users/auth-locky").json()["locked"] is True
    orthanc.http.put(orthanc.url("/api/users/auth-locky"), json={"unlock": True}, timeout=10)
    assert login(orthanc, "auth-locky", PASSWORD).status_code == 200


def test_refresh_rotates_and_a_reused_refresh_token_ends_the_session(
    orthanc: OrthancServer, users
) -> None:
    browser = requests.Session()
    first = browser.post(
        orthanc.url("/api/auth/login"),
        timeout=10,
        json={"username": "auth-technician", "password": PASSWORD},
    )
    stolen = browser.cookies.get("hf_refresh")
    refreshed = browser.post(orthanc.url("/api/auth/refresh"), timeout=10)
    assert refreshed.status_code == 200
    assert refreshed.json()["access_token"] != first.json()["access_token"]
    assert browser.cookies.get("hf_refresh") != stolen

    thief = requests.post(
        orthanc.url("/api/auth/refresh"), cookies={"hf_refresh": stolen}, timeout=10
    )
    assert thief.status_code == 401 and "already used" in thief.json()["error"]
    token = refreshed.json()["access_token"]
    assert orthanc.client(token).get(orthanc.url("/api/auth/me")).status_code == 401


def test_logout_revokes_the_token_at_once(orthanc: OrthancServer, users) -> None:
    token = orthanc.login("auth-radiologist", PASSWORD)
    client = orthanc.client(token)
    assert client.get(orthanc.url("/studies")).status_code == 200
    assert client.post(orthanc.url("/api/auth/logout")).status_code == 200
    assert client.get(orthanc.url("/api/auth/me")).status_code == 401
    assert client.get(orthanc.url("/studies")).status_code == 403  # Orthanc's filter: no body


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda o: "not-a-jwt", "token is malformed"),
        (lambda o: forge(o, exp=int(time.time()) - 60), "token expired"),
        (
            lambda o: jwt.encode(
                {
                    "sub": "admin",
                    "role": "admin",
                    "sid": "x",
                    "typ": "access",
                    "iat": 1,
                    "exp": 2**31,
                },
                b"k" * 32,
                algorithm="HS256",
            ),
            "token signature is invalid",
        ),
        (
            lambda o: unsigned_token(),
            "token algorithm is not accepted",
        ),
        (lambda o: forge(o, sid=None), "token lacks the 'sid' claim"),
        (lambda o: forge(o, sid="no-such-session"), "session revoked or expired"),
        (lambda o: forge(o, typ="refresh"), "not an access token"),
    ],
)
def test_bad_tokens_are_refused_with_a_reason(orthanc: OrthancServer, make_token, reason) -> None:
    client = orthanc.client(make_token(orthanc))
    response = client.get(orthanc.url("/api/jobs"))
    assert response.status_code == 401
    assert response.json() == {"error": reason, "status": 401}
    assert client.get(orthanc.url("/dicom-web/studies")).status_code == 403


def test_other_authorization_schemes_are_refused(orthanc: OrthancServer) -> None:
    for header in ("Digest username=admin", "Token abc", "Bearer", "Basic"):
        response = requests.get(
            orthanc.url("/api/jobs"), headers={"Authorization": header}, timeout=10
        )
        assert response.status_code == 401, header
        assert "Bearer" in response.json()["error"], header


def test_cookie_sessions_need_a_csrf_token_to_write(orthanc: OrthancServer) -> None:
    browser = requests.Session()
    signed_in = browser.post(
        orthanc.url("/api/auth/login"),
        timeout=10,
        json={"username": "admin", "password": ADMIN_PASSWORD},
    )
    csrf = signed_in.json()["csrf_token"]
    assert browser.get(orthanc.url("/api/jobs")).status_code == 200  # reads need no CSRF
    job = {"kind": "tests.sleep", "params": {}}
    refused = browser.post(orthanc.url("/api/jobs"), json=job, timeout=10)
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    forged = browser.post(orthanc.url("/api/jobs"), json=job, headers={"X-CSRF-Token": "x"})
    assert forged.status_code == 403
    accepted = browser.post(orthanc.url("/api/jobs"), json=job, headers={"X-CSRF-Token": csrf})
    assert accepted.status_code == 201


def test_second_factor(orthanc: OrthancServer) -> None:
    orthanc.post(
        "/api/users", json={"username": "auth-totp", "password": PASSWORD, "role": "radiologist"}
    )
    client = orthanc.client(orthanc.login("auth-totp", PASSWORD))
    setup = client.post(orthanc.url("/api/auth/totp/setup")).json()
    assert setup["otpauth_uri"].startswith("otpauth://totp/Hounsfield:auth-totp")
    totp = pyotp.TOTP(setup["secret"])
    assert (
        client.post(orthanc.url("/api/auth/totp/confirm"), json={"otp": "000000"}).status_code
        == 400
    )
    assert (
        client.post(orthanc.url("/api/auth/totp/confirm"), json={"otp": totp.now()}).status_code
        == 200
    )

    missing = login(orthanc, "auth-totp", PASSWORD)
    assert missing.status_code == 401 and missing.json()["error"] == "one-time password required"
    assert login(orthanc, "auth-totp", PASSWORD, otp="123456").status_code == 401
    assert login(orthanc, "auth-totp", PASSWORD, otp=totp.now()).status_code == 200


def test_changing_ones_password_closes_other_sessions(orthanc: OrthancServer) -> None:
    orthanc.post(
        "/api/users", json={"username": "auth-pw", "password": PASSWORD, "role": "technician"}
    )
    laptop = orthanc.client(orthanc.login("auth-pw", PASSWORD))
    phone = orthanc.client(orthanc.login("auth-pw", PASSWORD))
    weak = laptop.post(
        orthanc.url("/api/auth/password"),
        json={"current_password": PASSWORD, "new_password": "short"},
    )
    assert weak.status_code == 400 and "at least 12" in weak.json()["error"]
    wrong = laptop.post(
        orthanc.url("/api/auth/password"),
        json={"current_password": "nope-nope-nope", "new_password": "A-new-pass-77"},
    )
    assert wrong.status_code == 403
    changed = laptop.post(
        orthanc.url("/api/auth/password"),
        json={"current_password": PASSWORD, "new_password": "A-new-pass-77"},
    )
    assert changed.status_code == 200
    assert laptop.get(orthanc.url("/api/auth/me")).status_code == 200
    assert phone.get(orthanc.url("/api/auth/me")).status_code == 401
    assert login(orthanc, "auth-pw", "A-new-pass-77").status_code == 200


def test_user_administration(orthanc: OrthancServer) -> None:
    created = orthanc.post(
        "/api/users", json={"username": "auth-admin2", "password": PASSWORD, "role": "radiologist"}
    )
    assert created.status_code == 201 and created.headers["Location"] == "/api/users/auth-admin2"
    assert (
        orthanc.post(
            "/api/users",
            json={"username": "auth-admin2", "password": PASSWORD, "role": "radiologist"},
        ).status_code
        == 409
    )
    invalid = orthanc.post(
        "/api/users", json={"username": "Bad Name!", "password": PASSWORD, "role": "wizard"}
    )
    assert invalid.status_code == 400
    assert {d["field"] for d in invalid.json()["details"]} == {"username", "role"}

    token = orthanc.login("auth-admin2", PASSWORD)
    changed = orthanc.http.put(orthanc.url("/api/users/auth-admin2"), json={"role": "technician"})
    assert changed.json()["role"] == "technician"
    assert orthanc.client(token).get(orthanc.url("/api/auth/me")).status_code == 401  # re-login

    browser = requests.Session()  # a session open when the user is disabled
    opened = browser.post(
        orthanc.url("/api/auth/login"),
        timeout=10,
        json={"username": "auth-admin2", "password": PASSWORD},
    )
    open_session = orthanc.client(opened.json()["access_token"])
    assert open_session.get(orthanc.url("/studies")).status_code == 200
    disabled = orthanc.http.put(orthanc.url("/api/users/auth-admin2"), json={"disabled": True})
    assert disabled.json()["disabled"] is True
    assert login(orthanc, "auth-admin2", PASSWORD).status_code == 401
    # Ended at once, on every door (Orthanc's own answer 403: a request filter says no more)
    for door, refused in (("/api/auth/me", 401), ("/studies", 403), ("/dicom-web/studies", 403)):
        assert open_session.get(orthanc.url(door)).status_code == refused, door
    assert browser.post(orthanc.url("/api/auth/refresh"), timeout=10).status_code == 401

    assert orthanc.http.delete(orthanc.url("/api/users/auth-admin2")).status_code == 200
    assert orthanc.get("/api/users/auth-admin2").status_code == 404
    listed = [u["username"] for u in orthanc.get("/api/users").json()["users"]]
    assert "admin" in listed and "auth-admin2" not in listed


def test_the_last_admin_cannot_be_removed(make_orthanc) -> None:
    """On a server of its own: the shared one has admins that other tests make, and a
    demotion that went through there would take the tests' own admin away."""
    server = make_orthanc(hounsfield__workers=0).start()
    for change in ({"role": "radiologist"}, {"disabled": True}):
        response = server.http.put(server.url("/api/users/admin"), json=change)
        assert response.status_code == 409 and "last active admin" in response.json()["error"]
    assert server.http.delete(server.url("/api/users/admin")).status_code == 409


def test_a_generated_first_admin_password_is_logged_once(make_orthanc) -> None:
    server = make_orthanc()
    del server.env["HOUNSFIELD_ADMIN_PASSWORD"]
    server.start()
    line = next(
        line
        for line in server.log_path.read_text().splitlines()
        if "created user 'admin' with password" in line
    )
    password = line.split("with password ")[1].split(" ")[0]
    assert len(password) >= 20
    assert login(server, "admin", password).status_code == 200
    server.stop()
    server.start()
    assert server.log_path.read_text().count("created user 'admin'") == 1

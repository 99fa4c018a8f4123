"""Every way in, through the gate on real stores: HTTP Basic with a password or a key, an
API key as a bearer token; their roles, lock-out, transport rule, read-only keys, audit."""

from __future__ import annotations

import base64

import pytest

from hounsfield.audit.access import AccessRecorder
from hounsfield.audit.trail import AuditTrail
from hounsfield.auth import service as service_module
from hounsfield.auth.credentials import Authenticator, credential_of
from hounsfield.auth.gate import Gate
from hounsfield.auth.keys import KeyStore
from hounsfield.auth.permissions import ADMIN_CATCH_ALL, ORTHANC_DOORS, PermissionTable
from hounsfield.auth.principal import Refused
from hounsfield.auth.roles import Role
from hounsfield.auth.service import AuthService
from hounsfield.auth.store import SessionStore, UserStore
from hounsfield.auth.studies import StudyResolver
from hounsfield.auth.tokens import TokenService
from hounsfield.config import AuthSection, LimitsSection
from hounsfield.db import Database

PASSWORD = "Correct-Horse-42-battery"


class NoStudies:
    def get_json(self, path: str) -> dict:
        raise AssertionError(f"no study lookup expected ({path})")


class World:
    def __init__(self, database: Database, *, plain_basic: bool) -> None:
        self.users = UserStore(database)
        self.trail = AuditTrail(database)
        self.keys = KeyStore(database)
        settings = AuthSection.model_validate({"MaxFailedLogins": 3})
        tokens = TokenService(b"k" * 32, 900)
        sessions = SessionStore(database)
        self.auth = AuthService(self.users, sessions, tokens, self.trail, settings)
        authenticator = Authenticator(
            "service-token",
            tokens,
            sessions,
            self.keys,
            self.auth,
            max_bytes=LimitsSection().token_bytes,
            plain_basic=plain_basic,
        )
        self.gate = Gate(
            authenticator,
            self.users,
            StudyResolver(NoStudies()),
            AccessRecorder(self.trail),
            LimitsSection(),
            PermissionTable([*ORTHANC_DOORS, ADMIN_CATCH_ALL]),
        )
        for name, role in (("tech", Role.TECHNICIAN), ("boss", Role.ADMIN)):
            self.auth.create_user(name, PASSWORD, role)

    def check(self, method: str, path: str, headers: dict, *, secure: bool = False):
        return self.gate.check(method, path, headers, {}, "10.0.0.9", secure=secure)

    def audited(self, action: str) -> list[dict]:
        no_limit = {"since": None, "until": None, "limit": 100, "offset": 0}
        return self.trail.query(filters={"action": action}, **no_limit)[0]

    def key(self, role: Role = Role.TECHNICIAN, *, read_only: bool = False) -> str:
        owner = "tech" if role is Role.TECHNICIAN else "boss"
        return self.keys.create(
            f"key-{role}-{read_only}",
            owner=owner,
            created_by=owner,
            role=role,
            read_only=read_only,
            expires_at=None,
        )[1]


@pytest.fixture
def world(database: Database) -> World:
    return World(database, plain_basic=True)


def basic(username: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"authorization": f"Basic {encoded}"}


def test_basic_with_a_password_acts_as_the_user_and_verifies_argon2_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str] = []
    real = service_module.verify_password

    def counting(password_hash, password):
        verified.append(password)
        return real(password_hash, password)

    monkeypatch.setattr(service_module, "verify_password", counting)
    for _ in range(5):
        decision = world.check("GET", "/studies", basic("tech", PASSWORD))
        assert decision.allowed and decision.principal.username == "tech"
    assert len(verified) == 1  # remembered after the first
    assert world.check("DELETE", "/studies/x", basic("tech", PASSWORD)).status == 403
    logins = world.audited("auth.login")
    assert len(logins) == 1 and logins[0]["detail"]["via"] == "basic"
    # A changed password is not remembered: the old one is refused at once.
    world.auth.set_password("tech", "Another-Horse-43-battery")
    assert world.check("GET", "/studies", basic("tech", PASSWORD)).status == 401
    assert world.check("GET", "/studies", basic("tech", "Another-Horse-43-battery")).allowed


def test_basic_counts_toward_lock_out_and_a_disabled_user_stops_at_once(world: World) -> None:
    assert world.check("GET", "/studies", basic("tech", PASSWORD)).allowed  # remembered now
    world.users.update("tech", disabled=1)
    assert world.check("GET", "/studies", basic("tech", PASSWORD)).status == 401
    world.users.update("tech", disabled=0)
    for _ in range(3):
        assert world.check("GET", "/studies", basic("tech", "wrong-password!")).status == 401
    locked = world.check("GET", "/studies", basic("tech", PASSWORD))
    assert (locked.status, locked.reason) == (
        401,
        "account locked after repeated failures; try again later",
    )


def test_a_second_factor_user_cannot_use_basic_with_a_password_only_a_key(world: World) -> None:
    world.users.update("tech", totp_enabled=1, totp_secret="JBSWY3DPEHPK3PXP")
    refused = world.check("GET", "/studies", basic("tech", PASSWORD))
    assert refused.status == 401 and "API key" in refused.reason
    assert world.check("GET", "/studies", basic("tech", world.key())).allowed


def test_basic_over_plain_http_only_where_allowed(database: Database) -> None:
    strict = World(database, plain_basic=False)
    refused = strict.check("GET", "/studies", basic("tech", PASSWORD))
    assert refused.status == 401 and "plain HTTP" in refused.reason
    assert strict.check("GET", "/studies", basic("tech", PASSWORD), secure=True).allowed
    key = strict.key()
    assert strict.check("GET", "/studies", basic("any", key)).status == 401
    assert strict.check("GET", "/studies", {"authorization": f"Bearer {key}"}).allowed


def test_a_key_as_bearer_or_basic_password_is_audited_under_its_name(world: World) -> None:
    key = world.key()
    for headers in ({"authorization": f"Bearer {key}"}, basic("whoever", key)):
        decision = world.check("GET", "/studies", headers)
        assert decision.allowed and decision.principal.key == f"key-{Role.TECHNICIAN}-False"
    searches = world.audited("patient.search")
    assert searches and searches[0]["username"] == "tech"
    assert searches[0]["detail"]["key"] == f"key-{Role.TECHNICIAN}-False"


def test_a_read_only_key_reads_and_searches_but_never_writes(world: World) -> None:
    headers = {"authorization": f"Bearer {world.key(Role.ADMIN, read_only=True)}"}
    assert world.check("GET", "/studies", headers).allowed
    assert world.check("POST", "/tools/find", headers).allowed
    refused = world.check("DELETE", "/studies/x", headers)
    assert refused.status == 403 and "read-only" in refused.reason


def test_the_metrics_role_sees_figures_and_no_patient_data(world: World) -> None:
    headers = {"authorization": f"Bearer {world.key(Role.METRICS)}"}
    assert world.check("GET", "/tools/metrics-prometheus", headers).allowed
    for path in ("/studies", "/patients", "/dicom-web/series", "/system", "/app/explorer.html"):
        assert world.check("GET", path, headers).status == 403, path
    staff = {"authorization": f"Bearer {world.key()}"}
    assert world.check("GET", "/tools/metrics-prometheus", staff).status == 403


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Basic !!!", "not base64"),
        ("Basic " + base64.b64encode(b"no-colon").decode(), "'user:password'"),
        ("Basic " + base64.b64encode(b"user:").decode(), "'user:password'"),
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), "not base64"),
        ("Basic " + "A" * 5000, "Limits.TokenBytes"),
        ("Negotiate abc", "HTTP Basic"),
    ],
)
def test_malformed_credentials_are_refused_with_a_reason(header: str, reason: str) -> None:
    with pytest.raises(Refused) as caught:
        credential_of({"authorization": header}, LimitsSection().token_bytes)
    assert caught.value.status == 401 and reason in caught.value.reason

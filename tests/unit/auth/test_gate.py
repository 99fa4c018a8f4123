"""The gate on its own, on a real database: who passes, who is refused and why, what is
audited. Orthanc's part (resolving an Orthanc id to its study) is a small fake."""

from __future__ import annotations

import pytest

from hounsfield.audit.access import AccessRecorder
from hounsfield.audit.trail import AuditTrail
from hounsfield.auth.credentials import ACCESS_COOKIE, Authenticator
from hounsfield.auth.gate import Gate
from hounsfield.auth.keys import KeyStore
from hounsfield.auth.permissions import ADMIN_CATCH_ALL, ORTHANC_DOORS, PermissionTable
from hounsfield.auth.roles import Role
from hounsfield.auth.service import AuthService
from hounsfield.auth.store import SessionStore, UserStore
from hounsfield.auth.studies import StudyResolver
from hounsfield.auth.tokens import TokenService
from hounsfield.config import AuthSection, LimitsSection
from hounsfield.db import Database

PASSWORD = "Correct-Horse-42-battery"
SERVICE_TOKEN = "service-token-for-workers"
LINKED_UID, OTHER_UID = "1.2.826.0.1.1", "1.2.826.0.1.2"


class StudiesById:
    """The part of ``OrthancApi`` the study resolver reads."""

    def get_json(self, path: str) -> dict:
        uid = {"/studies/linked": LINKED_UID, "/studies/other": OTHER_UID}[path]
        return {"MainDicomTags": {"StudyInstanceUID": uid}}


@pytest.fixture
def world(database: Database):
    users, sessions, trail = UserStore(database), SessionStore(database), AuditTrail(database)
    tokens = TokenService(b"k" * 32, 900)
    auth = AuthService(users, sessions, tokens, trail, AuthSection())
    authenticator = Authenticator(
        SERVICE_TOKEN,
        tokens,
        sessions,
        KeyStore(database),
        auth,
        max_bytes=LimitsSection().token_bytes,
        plain_basic=False,
    )
    gate = Gate(
        authenticator,
        users,
        StudyResolver(StudiesById()),
        AccessRecorder(trail),
        LimitsSection(),
        PermissionTable([*ORTHANC_DOORS, ADMIN_CATCH_ALL]),
    )
    for name, role in (("rad", Role.RADIOLOGIST), ("ref", Role.REFERRER), ("boss", Role.ADMIN)):
        auth.create_user(name, PASSWORD, role)
    users.link_studies("ref", [LINKED_UID])
    return gate, auth, trail


def bearer(auth: AuthService, username: str) -> dict[str, str]:
    signed = auth.login(username, PASSWORD, None, ip="10.0.0.1", user_agent="test")
    return {"authorization": f"Bearer {signed.access_token}"}


def check(gate: Gate, method: str, path: str, headers: dict, query: dict | None = None):
    return gate.check(method, path, headers, query or {}, "10.0.0.1")


def test_staff_read_studies_and_only_admins_delete(world) -> None:
    gate, auth, _ = world
    rad, boss = bearer(auth, "rad"), bearer(auth, "boss")
    assert check(gate, "GET", "/studies/linked", rad).allowed
    refused = check(gate, "DELETE", "/studies/linked", rad)
    assert (refused.allowed, refused.status) == (False, 403)
    assert check(gate, "DELETE", "/studies/linked", boss).allowed


def test_a_revoked_session_is_refused_at_once(world) -> None:
    gate, auth, _ = world
    headers = bearer(auth, "rad")
    principal = check(gate, "GET", "/system", headers).principal
    auth.logout(principal, ip="10.0.0.1")
    refused = check(gate, "GET", "/system", headers)
    assert (refused.allowed, refused.status) == (False, 401)


def test_a_referrer_reads_linked_studies_only(world) -> None:
    gate, auth, _ = world
    headers = bearer(auth, "ref")
    assert check(gate, "GET", "/studies/linked", headers).allowed
    assert check(gate, "GET", f"/dicom-web/studies/{LINKED_UID}/metadata", headers).allowed
    for path in ("/studies/other", f"/dicom-web/studies/{OTHER_UID}/metadata", "/studies"):
        assert check(gate, "GET", path, headers).status == 403, path


def test_a_cookie_may_write_only_with_its_csrf_token(world) -> None:
    gate, auth, _ = world
    signed = auth.login("boss", PASSWORD, None, ip="10.0.0.1", user_agent="test")
    cookie = {"cookie": f"{ACCESS_COOKIE}={signed.access_token}"}
    assert check(gate, "DELETE", "/studies/linked", cookie).status == 403
    with_token = {**cookie, "x-csrf-token": signed.csrf_token}
    assert check(gate, "DELETE", "/studies/linked", with_token).allowed


def test_requests_without_credentials_or_with_odd_shapes_are_refused(world) -> None:
    gate, auth, _ = world
    assert check(gate, "GET", "/system", {}).status == 401
    assert check(gate, "GET", "/system", {"authorization": "Basic eDp5"}).status == 401
    assert check(gate, "GET", "/studies/../system", bearer(auth, "rad")).status == 400
    override = {**bearer(auth, "boss"), "x-http-method-override": "DELETE"}
    assert check(gate, "GET", "/studies/linked", override).status == 400


def test_the_workers_token_acts_as_a_technician(world) -> None:
    gate, _, _ = world
    decision = check(gate, "GET", "/system", {"authorization": f"Bearer {SERVICE_TOKEN}"})
    assert decision.allowed and decision.principal.role is Role.TECHNICIAN


def test_reads_of_patient_data_and_refusals_are_audited(world) -> None:
    gate, auth, trail = world
    check(gate, "GET", "/studies/linked", bearer(auth, "rad"))
    check(gate, "GET", "/studies/other", bearer(auth, "ref"))
    written, _ = trail.query(filters={}, since=None, until=None, limit=100, offset=0)
    entries = {(entry["action"], entry["outcome"], entry["username"]) for entry in written}
    assert ("study.view", "allowed", "rad") in entries
    assert ("study.view", "denied", "ref") in entries

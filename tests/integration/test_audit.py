"""The audit trail records logins and patient-data access, once per viewing, tamper-evident."""

from __future__ import annotations

import sqlite3

import pydicom
import pytest

from tests.support.server import OrthancServer

PASSWORD = "Audit-Pass-1357"


def entries(orthanc: OrthancServer, **filters) -> list[dict]:
    response = orthanc.get("/api/audit", params={"limit": 1000, **filters})
    assert response.status_code == 200, response.text
    return response.json()["entries"]


@pytest.fixture(scope="module")
def reader(orthanc: OrthancServer, dicom_file) -> dict:
    path = dicom_file("CT_small.dcm")
    orthanc.store(path)
    orthanc.post(
        "/api/users", json={"username": "audit-reader", "password": PASSWORD, "role": "radiologist"}
    )
    uid = pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID
    return {"uid": uid}


def test_logins_and_failures_are_recorded(orthanc: OrthancServer, reader) -> None:
    orthanc.login("audit-reader", PASSWORD)
    orthanc.http.post(
        orthanc.url("/api/auth/login"),
        json={"username": "audit-reader", "password": "wrong-wrong-wrong"},
    )
    logins = entries(orthanc, user="audit-reader", action="auth.login")
    outcomes = [entry["outcome"] for entry in logins]
    assert "allowed" in outcomes and "denied" in outcomes
    denied = next(entry for entry in logins if entry["outcome"] == "denied")
    assert denied["detail"]["reason"] == "wrong password"
    assert denied["ip"] == "127.0.0.1"


def test_a_viewer_burst_is_one_study_view_per_session(orthanc: OrthancServer, reader) -> None:
    uid = reader["uid"]
    for _ in range(2):  # two sessions of the same user
        client = orthanc.client(orthanc.login("audit-reader", PASSWORD))
        for _ in range(15):
            assert client.get(orthanc.url(f"/dicom-web/studies/{uid}/metadata")).ok
            assert client.get(orthanc.url(f"/dicom-web/studies/{uid}/series")).ok
    views = entries(orthanc, user="audit-reader", action="study.view", study=uid)
    assert len(views) == 2
    assert all(view["outcome"] == "allowed" and view["role"] == "radiologist" for view in views)


def test_native_ids_resolve_to_the_study_viewed(orthanc: OrthancServer, reader) -> None:
    client = orthanc.client(orthanc.login("audit-reader", PASSWORD))
    (found,) = orthanc.post("/tools/lookup", data=reader["uid"]).json()
    study_id = found["ID"]
    series_id = orthanc.get(f"/studies/{study_id}").json()["Series"][0]
    before = len(entries(orthanc, user="audit-reader", action="study.view"))
    assert client.get(orthanc.url(f"/series/{series_id}")).ok
    assert client.get(orthanc.url(f"/studies/{study_id}")).ok
    views = entries(orthanc, user="audit-reader", action="study.view")
    assert len(views) == before + 1
    assert views[0]["studyInstanceUid"] == reader["uid"]


def test_searches_and_refusals_are_recorded(orthanc: OrthancServer, reader) -> None:
    client = orthanc.client(orthanc.login("audit-reader", PASSWORD))
    assert client.get(orthanc.url("/dicom-web/studies?PatientName=CompressedSamples*")).ok
    searches = entries(orthanc, user="audit-reader", action="patient.search")
    assert searches[0]["detail"]["query"] == {"PatientName": "CompressedSamples*"}
    assert client.delete(orthanc.url("/studies/whatever")).status_code == 403
    refused = entries(orthanc, user="audit-reader", outcome="denied")
    assert any(entry["resource"] == "/studies/whatever" for entry in refused)


def test_audit_is_for_admins_and_pages(orthanc: OrthancServer, reader) -> None:
    client = orthanc.client(orthanc.login("audit-reader", PASSWORD))
    assert client.get(orthanc.url("/api/audit")).status_code == 403
    page = orthanc.get("/api/audit", params={"limit": 2, "offset": 1}).json()
    assert len(page["entries"]) == 2 and page["total"] > 3
    assert page["entries"][0]["id"] > page["entries"][1]["id"]
    assert orthanc.get("/api/audit", params={"limit": 0}).status_code == 400


def test_the_chain_verifies_and_exposes_tampering(make_orthanc) -> None:
    orthanc = make_orthanc().start()
    orthanc.get("/studies")
    orthanc.post(
        "/api/users", json={"username": "audit-x", "password": PASSWORD, "role": "technician"}
    )
    verified = orthanc.get("/api/audit/verify").json()
    assert verified["valid"] is True and verified["entries"] >= 3

    database = sqlite3.connect(orthanc.workdir / "data" / "hounsfield" / "hounsfield.db")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        database.execute("UPDATE audit_log SET username = 'nobody' WHERE id = 2")
    target = database.execute(
        "SELECT id FROM audit_log WHERE action = 'user.create' ORDER BY id DESC LIMIT 1"
    ).fetchone()[0]
    database.executescript("DROP TRIGGER audit_log_no_update;")
    database.execute("UPDATE audit_log SET username = 'nobody' WHERE id = ?", (target,))
    database.commit()
    database.close()

    tampered = orthanc.get("/api/audit/verify").json()
    assert tampered == {"valid": False, "entries": target - 1, "brokenAt": target}


def test_behind_a_trusted_proxy_the_client_address_is_recorded(
    orthanc: OrthancServer, make_orthanc
) -> None:
    """The shared server trusts no proxy: a client's X-Forwarded-For is not believed there.
    One that trusts the local proxy records the address that proxy appended."""
    forwarded = {"X-Forwarded-For": "1.2.3.4, 198.51.100.23"}
    behind = make_orthanc(hounsfield__trusted_proxies=["127.0.0.1"]).start()
    for server in (orthanc, behind):
        server.http.post(
            server.url("/api/auth/login"),
            json={"username": "proxied", "password": "wrong-wrong-wrong"},
            headers=forwarded,
        )
    assert {entry["ip"] for entry in entries(orthanc, user="proxied")} == {"127.0.0.1"}
    assert {entry["ip"] for entry in entries(behind, user="proxied")} == {"198.51.100.23"}

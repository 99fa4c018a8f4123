"""The README's example extension, exactly as printed there, in a real Orthanc: the guide
cannot rot without this test going red."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
import requests

from tests.support.server import OrthancServer, wait_for

README = Path(__file__).resolve().parents[2] / "README.md"
PASSWORD = "Extending-Pass-2468"
_databases = itertools.count()


def example_source() -> str:
    text = README.read_text()
    found = re.search(r"<!-- example-extension -->\n```python\n(.*?)```", text, re.S)
    assert found, "the README's example extension is marked <!-- example-extension -->"
    return found.group(1)


def test_the_example_is_short() -> None:
    assert len(example_source().strip().splitlines()) < 60


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, make_orthanc, tmp_path: Path) -> OrthancServer:
    """Our tables in SQLite, or in PostgreSQL (the example is written for both)."""
    database: dict[str, object] = {}
    if request.param == "postgresql":
        cluster = request.getfixturevalue("postgres_cluster")
        url = cluster.create_database(f"extending_{next(_databases)}")
        database = {"hounsfield__database__backend": "postgresql", "hounsfield__database__url": url}
    package = tmp_path / "examples"
    (package / "pages").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "counts.py").write_text(example_source())
    (package / "pages" / "counts.html").write_text("<!doctype html><title>Counts</title>")
    (package / "pages" / "counts.js").write_text("console.log('counts');")
    orthanc = make_orthanc(
        hounsfield__workers=1, hounsfield__extensions=["examples.counts"], **database
    )
    orthanc.env["PYTHONPATH"] += f":{tmp_path}"
    return orthanc.start()


def test_the_example_extension_works_in_orthanc(
    server: OrthancServer, dicom_file: Callable[..., Path]
) -> None:
    path = dicom_file("CT_small.dcm")
    server.store(path)
    uid = pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID
    study = server.post("/tools/lookup", data=uid).json()[0]["ID"]

    counted = wait_for(
        lambda: (answer := server.get(f"/api/counts/{study}")).ok and answer.json(),
        60,
        "the study to be counted",
    )
    assert counted["instances"] == 1 and counted["study"] == study and counted["stableAt"]

    # Its permission, as declared: staff and linked referrers; nobody without an account.
    assert requests.get(server.url(f"/api/counts/{study}"), timeout=10).status_code == 401
    for role, linked, expected in (
        ("radiologist", [], 200),
        ("referrer", [uid], 200),
        ("referrer", [], 403),
    ):
        name = f"counts-{role}-{len(linked)}"
        body = {"username": name, "password": PASSWORD, "role": role, "studies": linked}
        assert server.post("/api/users", json=body).status_code == 201
        client = server.client(server.login(name, PASSWORD))
        assert client.get(server.url(f"/api/counts/{study}")).status_code == expected, name
    views = server.get("/api/audit", params={"action": "study.view", "study": uid}).json()
    assert any(entry["resource"] == f"/api/counts/{study}" for entry in views["entries"])

    # Its page, for staff, and the sign-in page for a browser without a session.
    assert "<title>Counts</title>" in server.get("/counts").text
    assert server.get("/counts/counts.js").headers["Content-Type"] == "text/javascript"
    assert requests.get(server.url("/counts"), timeout=10).status_code == 401
    # Its job kind, in the worker; its migration, applied.
    assert server.get("/api/jobs", params={"kind": "counts.count"}).json()["total"] == 1
    assert server.get("/api/health").json()["components"]["database"]["healthy"]

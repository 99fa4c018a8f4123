"""Scripts reach the server with API keys and passwords, through real clients.

The clients are the ones a user installs from the registry (requirements-dev.txt):
pyorthanc and orthanc-api-client (HTTP Basic, a key as the password), dicomweb-client
(the key as a bearer header), curl, and requests scraping Orthanc's Prometheus figures
as Prometheus's ``basic_auth`` would. Each acts with its key's role: a technician's key
lists, uploads, downloads and stores by STOW-RS but deletes nothing; a read-only key
stores nothing; a referrer's key reads its linked study only; a metrics service key
scrapes and reads the health report's details, and no patient data. A revoked key, and
a disabled user's key, are refused on the next request.

The truth comes from outside the server: the DICOM files this module writes (their UIDs,
and pydicom's reading of their pixels), Orthanc's documented identifiers (the SHA-1 of
the UIDs, ``orthanc_id``), the ZIP archives read back with zipfile and pydicom, and the
Prometheus text exposition format's grammar.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from orthanc_api_client import OrthancApiClient
from orthanc_api_client.exceptions import NotAuthorized
from pydicom.dataset import Dataset
from pyorthanc import Orthanc

from tests.support.server import ADMIN_PASSWORD, OrthancServer

PASSWORD = "Scripts-Pass-1357"
KEY = re.compile(r"^hfk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$")
ANY_NAME = "script"  # HTTP Basic's user name beside a key: the key alone decides


def orthanc_id(*uids: str) -> str:
    """Orthanc's identifier of a resource: the SHA-1 of its UIDs from the PatientID down,
    joined by '|', written as five dash-separated groups of 8 hex digits."""
    digest = hashlib.sha1("|".join(uids).encode()).hexdigest()
    return "-".join(digest[i : i + 8] for i in range(0, 40, 8))


@dataclass(frozen=True)
class Sample:
    """A DICOM file this module wrote, and pydicom's reading of it."""

    path: Path
    dataset: Dataset

    @property
    def study_uid(self) -> str:
        return self.dataset.StudyInstanceUID

    @property
    def series_uid(self) -> str:
        return self.dataset.SeriesInstanceUID

    @property
    def sop_uid(self) -> str:
        return self.dataset.SOPInstanceUID

    @property
    def study_id(self) -> str:
        return orthanc_id(self.dataset.PatientID, self.study_uid)

    @property
    def instance_id(self) -> str:
        return orthanc_id(self.dataset.PatientID, self.study_uid, self.series_uid, self.sop_uid)


@dataclass(frozen=True)
class World:
    linked: Sample  # stored by a modality, linked to the referrer
    other: Sample  # stored by a modality, linked to nobody
    uploads: dict[str, Sample]  # one file per client that uploads, not stored beforehand
    keys: dict[str, dict[str, Any]]  # what it is for -> POST /api/keys's answer (with "key")
    tokens: dict[str, str]  # user name -> a session's access token


def make_key(orthanc: OrthancServer, token: str | None, **body: Any) -> dict[str, Any]:
    """A new key, made by the user signed in with ``token`` (None: the admin)."""
    session = orthanc.client(token) if token else orthanc.http
    response = session.post(orthanc.url("/api/keys"), json=body, timeout=10)
    assert response.status_code == 201, response.text
    made = response.json()
    assert KEY.match(made["key"]), made["key"]
    return made


def hire(orthanc: OrthancServer, name: str, role: str) -> str:
    """A new user; returns a session's access token."""
    response = orthanc.post(
        "/api/users", json={"username": name, "password": PASSWORD, "role": role}
    )
    assert response.status_code == 201, response.text
    return orthanc.login(name, PASSWORD)


@pytest.fixture(scope="module")
def world(orthanc: OrthancServer, dicom_file: Callable[..., Path]) -> Iterator[World]:
    """Two studies stored by storescu, the files the clients upload, the users and keys."""

    def sample(name: str) -> Sample:
        path = dicom_file(name)
        return Sample(path, pydicom.dcmread(path))

    linked, other = sample("CT_small.dcm"), sample("MR_small.dcm")
    orthanc.store(linked.path, other.path)
    uploads = {
        client: sample("CT_small.dcm")
        for client in ("pyorthanc", "orthanc-api-client", "stow", "read-only-stow")
    }
    tokens = {
        "scripts-technician": hire(orthanc, "scripts-technician", "technician"),
        "scripts-referrer": hire(orthanc, "scripts-referrer", "referrer"),
    }
    linking = orthanc.http.put(
        orthanc.url("/api/users/scripts-referrer"), json={"studies": [linked.study_uid]}, timeout=10
    )
    assert linking.status_code == 200, linking.text
    technician, referrer = tokens["scripts-technician"], tokens["scripts-referrer"]
    keys = {
        "technician": make_key(orthanc, technician, name="scripts-technician"),
        "read-only": make_key(orthanc, technician, name="scripts-read-only", readOnly=True),
        "referrer": make_key(orthanc, referrer, name="scripts-referrer"),
        "metrics": make_key(orthanc, None, name="scripts-prometheus", role="metrics", service=True),
    }
    yield World(linked, other, uploads, keys, tokens)
    for made in (linked, other, *uploads.values()):
        orthanc.http.delete(orthanc.url(f"/studies/{made.study_id}"), timeout=30)


def instances_in_zip(archive: bytes) -> set[str]:
    """The SOP Instance UIDs of the DICOM files in a ZIP archive, as pydicom reads them."""
    with zipfile.ZipFile(io.BytesIO(archive)) as folder:
        return {
            pydicom.dcmread(io.BytesIO(folder.read(name))).SOPInstanceUID
            for name in folder.namelist()
            if not name.endswith("/")
        }


def dicomweb(orthanc: OrthancServer, key: str) -> DICOMwebClient:
    """dicomweb-client as its documentation shows it: a session carrying the header."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"
    return DICOMwebClient(url=orthanc.url("/dicom-web"), session=session)


def curl(orthanc: OrthancServer, path: str, user: str, password: str) -> tuple[int, str]:
    """(status, body) of ``curl -u user:password``."""
    done = subprocess.run(
        ["curl", "-sS", "-u", f"{user}:{password}", "-w", "\n%{http_code}", orthanc.url(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def status_of(error: pytest.ExceptionInfo[requests.HTTPError]) -> int:
    return error.value.response.status_code


# Prometheus's text exposition format, version 0.0.4.
METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(
    rf"^(?P<name>{METRIC_NAME})(?:\{{(?:{LABEL}(?:,{LABEL})*,?)?\}})?"
    r" (?P<value>\S+)(?: -?\d+)?$"
)
TYPE = re.compile(rf"^# TYPE ({METRIC_NAME}) (counter|gauge|histogram|summary|untyped)$")
HELP = re.compile(rf"^# HELP {METRIC_NAME} .*$")


def parse_exposition(text: str) -> dict[str, float]:
    """Every sample's value by metric name; fails on any line the format does not allow."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if not line.strip() or TYPE.match(line) or HELP.match(line):
            continue
        if line.startswith("#"):
            assert not line.startswith(("# TYPE", "# HELP")), f"malformed: {line!r}"
            continue
        found = SAMPLE.match(line)
        assert found, f"not Prometheus text exposition: {line!r}"
        samples[found["name"]] = float(found["value"])  # float() takes NaN, +Inf, -Inf
    return samples


def test_pyorthanc_with_a_technician_key(orthanc: OrthancServer, world: World) -> None:
    upload = world.uploads["pyorthanc"]
    client = Orthanc(orthanc.base_url, username=ANY_NAME, password=world.keys["technician"]["key"])

    stored = client.post_instances(upload.path.read_bytes())
    assert (stored["ID"], stored["ParentStudy"]) == (upload.instance_id, upload.study_id)
    assert {upload.study_id, world.linked.study_id, world.other.study_id} <= set(
        client.get_studies()
    )
    assert instances_in_zip(client.get_studies_id_archive(upload.study_id)) == {upload.sop_uid}

    with pytest.raises(httpx.HTTPError, match="HTTP code: 403"):
        client.delete_studies_id(upload.study_id)
    assert orthanc.get(f"/studies/{upload.study_id}").status_code == 200


def test_orthanc_api_client_with_a_technician_key(
    orthanc: OrthancServer, world: World, tmp_path: Path
) -> None:
    upload = world.uploads["orthanc-api-client"]
    client = OrthancApiClient(orthanc.base_url, user=ANY_NAME, pwd=world.keys["technician"]["key"])

    assert client.upload_file(upload.path) == [upload.instance_id]
    assert {upload.study_id, world.linked.study_id} <= set(client.studies.get_all_ids())
    archive = tmp_path / "study.zip"
    client.studies.download_archive(upload.study_id, str(archive))
    assert instances_in_zip(archive.read_bytes()) == {upload.sop_uid}

    with pytest.raises(NotAuthorized) as refused:
        client.studies.delete(upload.study_id)
    assert refused.value.http_status_code == 403
    assert orthanc.get(f"/studies/{upload.study_id}").status_code == 200


def test_dicomweb_client_with_a_technician_key_as_bearer(
    orthanc: OrthancServer, world: World
) -> None:
    upload = world.uploads["stow"]
    client = dicomweb(orthanc, world.keys["technician"]["key"])

    answer = client.store_instances([upload.dataset])
    assert [item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence] == [
        upload.sop_uid
    ]
    assert not answer.get("FailedSOPSequence")
    assert orthanc.get(f"/instances/{upload.instance_id}").status_code == 200

    found = client.search_for_studies(search_filters={"StudyInstanceUID": upload.study_uid})
    assert [study["0020000D"]["Value"] for study in found] == [[upload.study_uid]]
    listed = client.search_for_studies()  # a page of the server's studies (another test's too)
    assert listed and all(study["0020000D"]["Value"] for study in listed)

    metadata = client.retrieve_study_metadata(upload.study_uid)
    assert [item["00080018"]["Value"] for item in metadata] == [[upload.sop_uid]]

    # The media type named: the client's default (multipart/related; type="*/*") is one
    # Orthanc's DICOMweb plugin answers 400 ("Transfer syntax "" is incompatible").
    frames = client.retrieve_instance_frames(
        upload.study_uid,
        upload.series_uid,
        upload.sop_uid,
        frame_numbers=[1],
        media_types=("application/octet-stream",),
    )
    assert frames == [upload.dataset.PixelData]


def test_a_read_only_key_reads_but_cannot_stow(orthanc: OrthancServer, world: World) -> None:
    upload = world.uploads["read-only-stow"]
    client = dicomweb(orthanc, world.keys["read-only"]["key"])

    found = client.search_for_studies(search_filters={"StudyInstanceUID": world.linked.study_uid})
    assert [study["0020000D"]["Value"] for study in found] == [[world.linked.study_uid]]
    with pytest.raises(requests.HTTPError) as refused:
        client.store_instances([upload.dataset])
    assert status_of(refused) == 403
    assert orthanc.post("/tools/lookup", data=upload.sop_uid).json() == []


def test_curl_with_a_users_password_or_a_key(orthanc: OrthancServer, world: World) -> None:
    for user, password in (
        ("scripts-technician", PASSWORD),
        (ANY_NAME, world.keys["technician"]["key"]),
    ):
        status, body = curl(orthanc, "/studies", user, password)
        assert status == 200, (user, body)
        assert {world.linked.study_id, world.other.study_id} <= set(json.loads(body))
        status, body = curl(orthanc, "/api/auth/me", user, password)
        assert status == 200, (user, body)
        assert json.loads(body)["username"] == "scripts-technician"


def test_curl_with_a_wrong_password_is_refused_and_counts_toward_lock_out(
    orthanc: OrthancServer,
) -> None:
    hire(orthanc, "scripts-guesser", "radiologist")
    assert curl(orthanc, "/studies", "scripts-guesser", PASSWORD)[0] == 200
    for _ in range(5):  # MaxFailedLogins
        status, body = curl(orthanc, "/api/auth/me", "scripts-guesser", "Not-The-Pass-2468")
        assert status == 401
        assert json.loads(body)["error"] == "invalid user name or password"
    status, body = curl(orthanc, "/api/auth/me", "scripts-guesser", PASSWORD)
    assert status == 401 and "locked" in json.loads(body)["error"]
    assert curl(orthanc, "/studies", "scripts-guesser", PASSWORD)[0] == 403  # Orthanc's door


def test_a_metrics_service_key_scrapes_prometheus_and_nothing_else(
    orthanc: OrthancServer, world: World
) -> None:
    made = world.keys["metrics"]
    assert (made["service"], made["owner"], made["role"]) == (True, None, "metrics")
    scraper = ("prometheus", made["key"])  # what prometheus.yml's basic_auth sends

    response = requests.get(orthanc.url("/tools/metrics-prometheus"), auth=scraper, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = parse_exposition(response.text)
    assert any(name.startswith("orthanc_") for name in samples), sorted(samples)
    assert samples["orthanc_count_studies"] >= 2  # this module's two stored by storescu

    for path in ("/studies", "/dicom-web/studies", f"/studies/{world.linked.study_id}"):
        refused = requests.get(orthanc.url(path), auth=scraper, timeout=10)
        assert refused.status_code == 403, path


def test_a_referrer_key_through_pyorthanc(orthanc: OrthancServer, world: World) -> None:
    client = Orthanc(orthanc.base_url, username=ANY_NAME, password=world.keys["referrer"]["key"])

    study = client.get_studies_id(world.linked.study_id)
    assert study["MainDicomTags"]["StudyInstanceUID"] == world.linked.study_uid
    assert instances_in_zip(client.get_studies_id_archive(world.linked.study_id)) == {
        world.linked.sop_uid
    }
    with pytest.raises(httpx.HTTPError, match="HTTP code: 403"):
        client.get_studies_id(world.other.study_id)
    with pytest.raises(httpx.HTTPError, match="HTTP code: 403"):
        client.get_studies()


def test_a_referrer_key_through_orthanc_api_client(orthanc: OrthancServer, world: World) -> None:
    client = OrthancApiClient(orthanc.base_url, user=ANY_NAME, pwd=world.keys["referrer"]["key"])

    assert client.studies.get(world.linked.study_id).dicom_id == world.linked.study_uid
    assert client.studies.get_instances_ids(world.linked.study_id) == [world.linked.instance_id]
    for forbidden in (
        lambda: client.studies.get_json(world.other.study_id),
        client.studies.get_all_ids,
    ):
        with pytest.raises(NotAuthorized) as refused:
            forbidden()
        assert refused.value.http_status_code == 403


def test_a_referrer_key_through_dicomweb_client(orthanc: OrthancServer, world: World) -> None:
    client = dicomweb(orthanc, world.keys["referrer"]["key"])

    metadata = client.retrieve_study_metadata(world.linked.study_uid)
    assert [item["00080018"]["Value"] for item in metadata] == [[world.linked.sop_uid]]
    found = client.search_for_studies(search_filters={"StudyInstanceUID": world.linked.study_uid})
    assert [study["0020000D"]["Value"] for study in found] == [[world.linked.study_uid]]
    for forbidden in (
        lambda: client.retrieve_study_metadata(world.other.study_uid),
        lambda: client.search_for_studies(
            search_filters={"StudyInstanceUID": world.other.study_uid}
        ),
        client.search_for_studies,
    ):
        with pytest.raises(requests.HTTPError) as refused:
            forbidden()
        assert status_of(refused) == 403


def test_a_referrer_key_through_curl(orthanc: OrthancServer, world: World) -> None:
    key = world.keys["referrer"]["key"]
    status, body = curl(orthanc, f"/studies/{world.linked.study_id}", ANY_NAME, key)
    assert status == 200
    assert json.loads(body)["MainDicomTags"]["StudyInstanceUID"] == world.linked.study_uid
    assert curl(orthanc, f"/studies/{world.other.study_id}", ANY_NAME, key)[0] == 403
    assert curl(orthanc, "/studies", ANY_NAME, key)[0] == 403


def test_a_revoked_key_is_refused_at_once(orthanc: OrthancServer, world: World) -> None:
    owner = orthanc.client(world.tokens["scripts-technician"])
    made = make_key(orthanc, world.tokens["scripts-technician"], name="scripts-revoked")
    script = orthanc.client(made["key"])
    assert script.get(orthanc.url("/studies"), timeout=10).status_code == 200

    revoked = owner.delete(orthanc.url(f"/api/keys/{made['id']}"), timeout=10)
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    refused = script.get(orthanc.url("/api/auth/me"), timeout=10)
    assert refused.status_code == 401
    assert refused.json() == {"error": "API key is revoked", "status": 401}
    assert script.get(orthanc.url("/studies"), timeout=10).status_code == 403  # Orthanc's door


def test_a_disabled_users_keys_are_refused(orthanc: OrthancServer, world: World) -> None:
    made = make_key(orthanc, hire(orthanc, "scripts-leaver", "technician"), name="scripts-leaver")
    assert curl(orthanc, "/studies", ANY_NAME, made["key"])[0] == 200

    disabled = orthanc.http.put(
        orthanc.url("/api/users/scripts-leaver"), json={"disabled": True}, timeout=10
    )
    assert disabled.status_code == 200, disabled.text
    status, body = curl(orthanc, "/api/auth/me", ANY_NAME, made["key"])
    assert status == 401
    assert json.loads(body)["error"] == "API key's owner is disabled or gone"
    assert curl(orthanc, "/studies", ANY_NAME, made["key"])[0] == 403


def is_summary(report: dict[str, Any]) -> bool:
    """Only the overall status and each component's health: no paths, bytes or PIDs."""
    return set(report) == {"status", "components"} and all(
        set(part) == {"healthy"} for part in report["components"].values()
    )


def test_the_health_reports_details_only_to_operations(
    orthanc: OrthancServer, world: World
) -> None:
    anonymous = requests.get(orthanc.url("/api/health"), timeout=10).json()
    assert is_summary(anonymous)
    assert {"storage", "workers"} <= set(anonymous["components"])

    scraper = ("prometheus", world.keys["metrics"]["key"])
    detailed = requests.get(orthanc.url("/api/health"), auth=scraper, timeout=10).json()
    assert set(detailed["components"]) == set(anonymous["components"])
    assert detailed["components"]["storage"]["freeBytes"] > 0
    assert detailed["components"]["workers"]["workers"]

    technician = ("scripts-technician", PASSWORD)
    assert is_summary(requests.get(orthanc.url("/api/health"), auth=technician, timeout=10).json())


def test_with_remote_access_basic_needs_https_said_by_a_trusted_proxy(tmp_path: Path) -> None:
    """Open to the network, a password sent in clear is refused; through our proxy, which
    says it took the request over HTTPS, it is taken; a bearer token is taken either way."""
    server = OrthancServer(
        tmp_path / "remote",
        remote_access_allowed=True,
        hounsfield__workers=0,
        hounsfield__trusted_proxies=["127.0.0.1"],
    ).start()
    try:
        me = server.url("/api/auth/me")
        admin = ("admin", ADMIN_PASSWORD)
        plain = requests.get(me, auth=admin, timeout=10)
        assert plain.status_code == 401 and "plain HTTP" in plain.json()["error"]
        proxied = requests.get(me, auth=admin, headers={"X-Forwarded-Proto": "https"}, timeout=10)
        assert proxied.status_code == 200 and proxied.json()["username"] == "admin"
        token = {"Authorization": f"Bearer {server.login('admin', ADMIN_PASSWORD)}"}
        assert requests.get(me, headers=token, timeout=10).status_code == 200
    finally:
        server.stop()

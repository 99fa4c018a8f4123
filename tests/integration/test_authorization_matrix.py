"""Every role (and no token) against every route family, tricks included.

The expected table below is written from the product's rules, independently of the
permission table in the code: admin everything; radiologist and technician read all
images (technician also stores and submits jobs); a referrer reads only the studies
linked to them and can list nothing; nobody without a token gets past the open doors.
A request counts as allowed when the gate lets it through (whatever Orthanc answers
then: 200, 400, 404...). A refusal is exact, so that an answer Orthanc gives a request the
gate should have stopped (its own 400, say) cannot pass for one: our routes answer 401
without an account and 403 with one (400 where the gate refuses the request's shape, before
any account); Orthanc's doors answer 403 with no body, all that Orthanc 1.10 lets a request
filter say.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass

import pydicom
import pytest

from tests.support.server import ADMIN_PASSWORD, OrthancServer

PASSWORD = "Matrix-Pass-2468"
ROLES = ("anonymous", "admin", "radiologist", "technician", "referrer", "metrics")
STAFF = {"admin", "radiologist", "technician"}
EVERYONE = set(ROLES)
SIGNED_IN = EVERYONE - {"anonymous"}
PEOPLE = STAFF | {"referrer"}  # who reads images: a referrer for a linked study only
OPERATIONS = {"admin", "metrics"}  # who sees the servers' figures (a monitoring scraper)
READING = {"admin", "radiologist"}  # who claims, writes and signs reports
ACQUISITION = {"admin", "technician"}  # who enters orders and acquisitions
REFUSED = {401, 403}
OUR_ROUTES = ("/api/", "/ohif", "/recon", "/reading", "/ai/", "/acquisition", "/admin")


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # {linked_study}, {other_study}... are filled in from the stored studies
    allowed: frozenset[str]
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    malformed: bool = False  # refused by the gate for its shape, whoever asks

    def refusal(self, role: str) -> int:
        """The status a role outside ``allowed`` must get."""
        if not self.ours:
            return 403
        if self.malformed:
            return 400
        return 401 if role == "anonymous" else 403

    @property
    def ours(self) -> bool:
        """Answered by our routes rather than by Orthanc (after Orthanc resolves the path)."""
        return self.path.startswith(OUR_ROUTES) and ".." not in self.path


def case(method: str, path: str, allowed: set[str], **kwargs) -> Case:
    return Case(method, path, frozenset(allowed), **kwargs)


CASES = [
    # Open doors and our own API
    case("GET", "/api/health", EVERYONE),
    case("GET", "/api/metrics", OPERATIONS),  # Prometheus's labelled figures
    case("GET", "/api/auth/me", SIGNED_IN),
    case("PUT", "/api/auth/me", SIGNED_IN, body='{"language": "en"}'),  # one's own settings
    case("GET", "/i18n?browser=fr", EVERYONE),  # the pages' words: the sign-in page's too
    case("GET", "/favicon.ico", EVERYONE),  # every browser tab asks for it
    # API keys: anyone signed in, for themselves (the routes check whose key it is)
    case("GET", "/api/keys", SIGNED_IN),
    case("POST", "/api/keys", SIGNED_IN, body="{}"),
    case("DELETE", "/api/keys/no-such-key", SIGNED_IN),
    case("GET", "/api/users", {"admin"}),
    case("GET", "/api/users/", {"admin"}),
    case("GET", "/api/audit", {"admin"}),
    case("GET", "/api/audit/verify", {"admin"}),
    case("GET", "/api/audit/export.csv?user=nobody", {"admin"}),
    case("GET", "/api/jobs", STAFF),
    case("POST", "/api/jobs", ACQUISITION, body='{"kind": "tests.sleep"}'),
    case("POST", "/api/jobs/999999/cancel", ACQUISITION),
    case("POST", "/api/jobs/999999/retry", ACQUISITION),
    case("GET", "/api/jobs/kinds", STAFF),
    case(
        "POST",
        "/api/acquisitions/simulate",
        {"admin", "technician"},
        body='{"projections": 16, "detector_columns": 16, "detector_rows": 16}',
    ),
    case("POST", "/api/reconstructions", {"admin", "technician"}, body='{"series": "none"}'),
    case("GET", "/api/reconstructions/999999", STAFF),
    case("GET", "/api/projections", STAFF),
    # Reading: the worklist for staff, reports written by radiologists and admins, signed
    # reports read by a linked referrer (404 here: nothing is signed yet, but let through)
    case("GET", "/api/worklist", STAFF),
    case("GET", "/api/worklist/{linked_study}", STAFF),
    case("PUT", "/api/studies/{other_study}/priority", STAFF, body='{"priority": "urgent"}'),
    case("POST", "/api/studies/{other_study}/claim", READING),
    case("DELETE", "/api/studies/{other_study}/claim", READING),
    case("PUT", "/api/studies/{other_study}/assignment", {"admin"}, body='{"user": "nobody"}'),
    case("PUT", "/api/studies/{other_study}/report", READING, body='{"version": 0}'),
    case("POST", "/api/studies/{other_study}/report/sign", READING, body='{"version": 1}'),
    case("POST", "/api/studies/{other_study}/report/amend", READING, body='{"version": 1}'),
    case("GET", "/api/studies/{other_study}/report/templates", READING),
    case("GET", "/api/studies/{linked_study}/report", PEOPLE),
    case("GET", "/api/studies/{linked_study}/report/history", PEOPLE),
    case("GET", "/api/studies/{linked_study}/report/pdf", PEOPLE),
    case("GET", "/api/studies/{other_study}/report", STAFF),
    case("GET", "/api/studies/{other_study}/report/pdf", STAFF),
    case("GET", "/api/reports/orphaned", {"admin"}),
    case("GET", "/reading", STAFF),
    # AI: analyses and findings for staff (a referrer, linked or not, sees signed reports
    # only), reviews by radiologists and admins
    case("POST", "/api/studies/{other_study}/analyze", STAFF, body='{"analyzers": []}'),
    case("GET", "/api/studies/{linked_study}/findings", STAFF),
    case("GET", "/api/findings/999999", STAFF),
    case("POST", "/api/findings/999999/review", READING, body='{"decision": "confirmed"}'),
    case("GET", "/api/ai/analyzers", STAFF),
    case("GET", "/ai/findings.js", STAFF),
    # HIS: patients, orders and mismatches for staff, entered and acted on by the
    # acquisition roles; merges reported to admins
    case("GET", "/api/patients?name=doe", STAFF),
    case("GET", "/api/patients/P1", STAFF),
    case("GET", "/api/orders", STAFF),
    case("POST", "/api/orders", ACQUISITION, body="{}"),
    case("GET", "/api/orders/999999", STAFF),
    case("POST", "/api/orders/999999/cancel", ACQUISITION),
    case("GET", "/api/his/mismatches", STAFF),
    case("GET", "/api/his/mismatches/999999", STAFF),
    case("POST", "/api/his/mismatches/999999/correct", ACQUISITION),
    case("POST", "/api/his/mismatches/999999/dismiss", ACQUISITION),
    case("GET", "/api/his/merges", {"admin"}),
    case("POST", "/api/his/merges/999999/acknowledge", {"admin"}),
    case("GET", "/acquisition", ACQUISITION),
    # Administration: admins; the health page for the metrics role too
    case("GET", "/admin", {"admin"}),
    case("GET", "/admin/audit.html", {"admin"}),
    case("GET", "/admin/jobs.js", {"admin"}),
    case("GET", "/admin/health", OPERATIONS),
    case("GET", "/admin/health/health.js", OPERATIONS),
    case("GET", "/api/admin/configuration", {"admin"}),
    case("GET", "/api/series/{linked_series}/planes/axial", STAFF),
    case("GET", "/api/series/{linked_series}/structures", STAFF),  # 404: not RTSTRUCT
    # Orthanc's REST API: lists and searches
    case("GET", "/system", STAFF),
    case("GET", "/patients", STAFF),
    case("GET", "/studies", STAFF),
    case("GET", "/series", STAFF),
    case("GET", "/instances", STAFF),
    case("POST", "/tools/find", STAFF, body='{"Level": "Study", "Query": {}}'),
    case("POST", "/tools/lookup", STAFF, body="1.2.3"),
    # Orthanc's REST API: one study's resources
    case("GET", "/studies/{linked_study}", PEOPLE),
    case("GET", "/studies/{other_study}", STAFF),
    case("GET", "/series/{linked_series}", PEOPLE),
    case("GET", "/series/{other_series}", STAFF),
    case("GET", "/instances/{linked_instance}/file", PEOPLE),
    case("GET", "/instances/{linked_instance}/preview", PEOPLE),
    case("GET", "/instances/{other_instance}/tags", STAFF),
    case("GET", "/patients/{linked_patient}", STAFF),
    case("GET", "/studies/unknown-id", STAFF),
    # DICOMweb and WADO-URI
    case("GET", "/dicom-web/studies", STAFF),
    case("GET", "/dicom-web/studies?StudyInstanceUID={linked_uid}", PEOPLE),
    case("GET", "/dicom-web/studies?StudyInstanceUID={other_uid}", STAFF),
    case("GET", "/dicom-web/studies?StudyInstanceUID={linked_uid},{other_uid}", STAFF),
    case("GET", "/dicom-web/studies?0020000D={linked_uid}", STAFF),
    case("GET", "/dicom-web/series", STAFF),
    case("GET", "/dicom-web/instances", STAFF),
    case("GET", "/dicom-web/studies/{linked_uid}/metadata", PEOPLE),
    case("GET", "/dicom-web/studies/{linked_uid}/series", PEOPLE),
    case("GET", "/dicom-web/studies/{other_uid}/metadata", STAFF),
    case("GET", "/dicom-web/studies/{linked_uid}", PEOPLE),  # WADO-RS: the study's files
    case("GET", "/dicom-web/studies/{other_uid}", STAFF),
    case("POST", "/dicom-web/studies", {"admin", "technician"}, body="--x--"),  # STOW-RS
    case("POST", "/dicom-web/studies/{linked_uid}", {"admin", "technician"}, body="--x--"),
    case(
        "GET",
        "/wado?requestType=WADO&studyUID={linked_uid}&seriesUID={linked_series_uid}"
        "&objectUID={linked_sop_uid}&contentType=application/dicom",
        PEOPLE,
    ),
    case("GET", "/wado?requestType=WADO&studyUID={other_uid}&seriesUID=1&objectUID=2", STAFF),
    # ...and naming a linked study beside another study's object gets nothing
    case(
        "GET",
        "/wado?requestType=WADO&studyUID={linked_uid}&seriesUID={other_series_uid}"
        "&objectUID={other_sop_uid}&contentType=application/dicom",
        STAFF,
    ),
    # Storing, deleting, administration
    case("POST", "/instances", {"admin", "technician"}, body="@dicom"),
    case("DELETE", "/studies/no-such-study", {"admin"}),
    case("GET", "/app/explorer.html", {"admin"}),
    # The viewer's files: any signed-in user (what it then shows is checked per request)
    case("GET", "/ohif/viewer?StudyInstanceUIDs={linked_uid}", PEOPLE),
    case("GET", "/ohif/app-config.js", PEOPLE),
    case("POST", "/ohif/app-config.js", {"admin"}),
    case("GET", "/recon", STAFF),
    case("GET", "/recon/recon.js", STAFF),
    case("GET", "/tools/metrics-prometheus", OPERATIONS),
    case("GET", "/jobs", {"admin"}),
    case("GET", "/modalities", {"admin"}),
    case("POST", "/modalities/nowhere/echo", {"admin"}, body="{}"),
    # Tricks: the path Orthanc routes is the one the gate judges
    case("GET", "/system/", STAFF),
    case("GET", "//system", STAFF),
    case("GET", "/api/../system", STAFF),
    case("GET", "/studies/%2e%2e/patients", STAFF),
    case("GET", "/dicom-web/studies/{other_uid}/../../studies", STAFF),
    case("GET", "/SYSTEM", {"admin"}),
    case("GET", "/Studies", {"admin"}),
    case(  # Orthanc turns this into DELETE /studies/...: the gate refuses the override
        "POST",
        "/studies/{other_study}",
        set(),
        headers=(("X-HTTP-Method-Override", "DELETE"),),
        malformed=True,
    ),
    case(
        "GET",
        "/api/jobs",
        set(),
        headers=(("X-HTTP-Method-Override", "DELETE"),),
        malformed=True,
    ),
]


@pytest.fixture(scope="module")
def world(orthanc: OrthancServer, dicom_file) -> dict:
    """Two studies; the referrer is linked to the first only."""
    linked_path, other_path = dicom_file("CT_small.dcm"), dicom_file("MR_small.dcm")
    orthanc.store(linked_path, other_path)
    ids: dict[str, str] = {}
    for prefix, path in (("linked", linked_path), ("other", other_path)):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        found = orthanc.post("/tools/lookup", data=ds.SOPInstanceUID).json()
        instance = next(item["ID"] for item in found if item["Type"] == "Instance")
        info = orthanc.get(f"/instances/{instance}").json()
        series = orthanc.get(f"/series/{info['ParentSeries']}").json()
        study = orthanc.get(f"/studies/{series['ParentStudy']}").json()
        ids |= {
            f"{prefix}_instance": instance,
            f"{prefix}_series": series["ID"],
            f"{prefix}_study": study["ID"],
            f"{prefix}_patient": study["ParentPatient"],
            f"{prefix}_uid": ds.StudyInstanceUID,
            f"{prefix}_series_uid": ds.SeriesInstanceUID,
            f"{prefix}_sop_uid": ds.SOPInstanceUID,
        }
    tokens = {"admin": orthanc.login("admin", ADMIN_PASSWORD)}
    for role in ("radiologist", "technician", "referrer", "metrics"):
        body = {"username": f"matrix-{role}", "password": PASSWORD, "role": role}
        if role == "referrer":
            body["studies"] = [ids["linked_uid"]]
        assert orthanc.post("/api/users", json=body).status_code == 201
        tokens[role] = orthanc.login(f"matrix-{role}", PASSWORD)
    return {"ids": ids, "tokens": tokens, "dicom": linked_path.read_bytes()}


def send(orthanc: OrthancServer, world: dict, role: str, item: Case) -> int:
    """One raw request (http.client keeps the path exactly as written)."""
    connection = http.client.HTTPConnection("127.0.0.1", orthanc.http_port, timeout=20)
    headers = dict(item.headers)
    if role != "anonymous":
        headers["Authorization"] = f"Bearer {world['tokens'][role]}"
    body: bytes | None = None
    if item.body == "@dicom":
        body = world["dicom"]
    elif item.body is not None:
        body = item.body.encode()
    try:
        connection.request(
            item.method, item.path.format(**world["ids"]), body=body, headers=headers
        )
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    if item.path.startswith("/api/") and item.ours and role not in item.allowed:
        assert "error" in json.loads(payload), payload  # our refusals always explain
    return response.status


@pytest.mark.parametrize("item", CASES, ids=lambda c: f"{c.method} {c.path}"[:70])
def test_matrix(orthanc: OrthancServer, world: dict, item: Case) -> None:
    outcomes = {role: send(orthanc, world, role, item) for role in ROLES}
    expected = {role: item.refusal(role) for role in ROLES if role not in item.allowed}
    refused = {role: status for role, status in outcomes.items() if role not in item.allowed}
    assert refused == expected, f"statuses: {outcomes}"
    let_through = {role: outcomes[role] for role in item.allowed}
    assert not REFUSED & set(let_through.values()), f"statuses: {outcomes}"


def test_the_referrer_reads_its_study_and_nothing_else(orthanc: OrthancServer, world) -> None:
    referrer = orthanc.client(world["tokens"]["referrer"])
    uid = world["ids"]["linked_uid"]
    metadata = referrer.get(orthanc.url(f"/dicom-web/studies/{uid}/metadata"))
    assert metadata.status_code == 200
    assert {item["0020000D"]["Value"][0] for item in metadata.json()} == {uid}
    assert referrer.get(orthanc.url("/dicom-web/studies")).status_code == 403
    other_series = world["ids"]["other_series_uid"]
    mixed = referrer.get(orthanc.url(f"/dicom-web/studies/{uid}/series/{other_series}/metadata"))
    assert mixed.status_code != 200, "another study's series must not be reachable this way"


@pytest.mark.parametrize(
    "query",
    [
        "StudyInstanceUID={linked_uid}",
        "StudyInstanceUID={linked_uid}&StudyInstanceUID={other_uid}",
        "StudyInstanceUID={other_uid}&StudyInstanceUID={linked_uid}",
        "StudyInstanceUID={linked_uid}&studyinstanceuid={other_uid}",
        "StudyInstanceUID={linked_uid}&0020000D={other_uid}",
    ],
)
def test_a_referrer_search_finds_the_linked_study_only(
    orthanc: OrthancServer, world, query: str
) -> None:
    """However the search is phrased, a referrer's answer holds no other study."""
    referrer = orthanc.client(world["tokens"]["referrer"])
    answer = referrer.get(orthanc.url("/dicom-web/studies?" + query.format(**world["ids"])))
    if query == "StudyInstanceUID={linked_uid}":  # what a viewer sends: answered
        assert answer.status_code == 200
    if answer.status_code in REFUSED:
        return
    found = {study["0020000D"]["Value"][0] for study in answer.json()}
    assert found <= {world["ids"]["linked_uid"]}
    assert found or query != "StudyInstanceUID={linked_uid}"

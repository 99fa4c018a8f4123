"""OHIF served by Orthanc at /ohif/: behind sign-in, and a reconstructed CT opens in it."""

from __future__ import annotations

import http.client
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
import requests
from playwright.sync_api import Page

from hounsfield.web.viewer import VIEWER_DIRECTORY
from tests.support.recon import SMALL_ACQUISITION, reconstruction_of
from tests.support.server import ADMIN_PASSWORD, OrthancServer, wait_for

pytestmark = pytest.mark.skipif(
    not (VIEWER_DIRECTORY / "index.html").is_file(),
    reason="OHIF is not installed: `make test` installs it into ohif/dist",
)

USER_PASSWORD = "Viewer-Pass-1357"  # the users these tests create

# Counts the canvas pixels brighter than the background: the image is really drawn (0 while
# OHIF has not made its canvas yet: the thumbnails' text shows before it).
LIT_PIXELS = """canvas => {
  if (!canvas) return 0;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let lit = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i] > 30) lit++;
  return lit;
}"""

# What OHIF shows: the display sets in its viewports, every display set of the study, and
# the hanging protocol that placed them (OHIF 3.13 puts its services on window).
SHOWN_DISPLAY_SETS = """() => {
  const {viewportGridService, displaySetService, hangingProtocolService} = window.services;
  const describe = ds => ({Modality: ds.Modality, SeriesNumber: Number(ds.SeriesNumber),
    SeriesDescription: ds.SeriesDescription, SOPClassHandlerId: ds.SOPClassHandlerId});
  const viewports = [...viewportGridService.getState().viewports.values()].flatMap(
    vp => (vp.displaySetInstanceUIDs || []).map(
      uid => describe(displaySetService.getDisplaySetByUID(uid))));
  const all = displaySetService.getActiveDisplaySets().map(
    ds => [ds.Modality, Number(ds.SeriesNumber)]);
  return {viewports, all, protocol: hangingProtocolService.getActiveProtocol()?.protocol?.id};
}"""


def test_the_viewer_is_an_app_behind_sign_in(orthanc: OrthancServer) -> None:
    deep_link = "/ohif/viewer?StudyInstanceUIDs=1.2.3"
    anonymous = requests.get(orthanc.url(deep_link), timeout=10)
    assert anonymous.status_code == 401
    assert "url=/login?next=%2Fohif%2Fviewer%3FStudyInstanceUIDs%3D1.2.3" in anonymous.text

    page = orthanc.get(deep_link)  # any route of the app: its index.html
    assert page.status_code == 200 and 'window.PUBLIC_URL="/ohif/"' in page.text
    assert orthanc.get("/ohif").text == page.text
    config = orthanc.get("/ohif/app-config.js")
    assert "routerBasename: '/ohif'" in config.text
    assert config.headers["Cache-Control"] == "no-cache"
    bundle = re.search(r'src="/ohif/(app\.bundle\.[0-9a-f]+\.js)"', page.text).group(1)
    served = orthanc.get(f"/ohif/{bundle}")
    assert served.headers["Content-Type"] == "text/javascript"
    assert "immutable" in served.headers["Cache-Control"]
    missing = orthanc.get("/ohif/no-such-bundle.js")
    assert (
        missing.status_code == 404 and missing.json()["error"] == "no such file: no-such-bundle.js"
    )


REPOSITORY = VIEWER_DIRECTORY.parents[1]


@pytest.mark.parametrize(
    "path",
    [
        "/ohif/../install.py",
        "/ohif/../../orthanc.json",
        "/ohif/%2e%2e/%2e%2e/orthanc.json",
        "/ohif/..%2f..%2forthanc.json",
        "/ohif/.%2E/install.py",
        "/ohif/..\\install.py",
        "/ohif//etc/passwd",
    ],
)
def test_no_path_leaves_the_viewer_folder(orthanc: OrthancServer, path: str) -> None:
    """Sent byte for byte (requests would resolve the dots before sending), by an admin: files
    one and two folders above the viewer's exist, and none of them comes back."""
    connection = http.client.HTTPConnection("127.0.0.1", orthanc.http_port, timeout=10)
    try:
        connection.request("GET", path, headers=orthanc.http.headers)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    app = (VIEWER_DIRECTORY / "index.html").read_bytes()[:100]  # what any app route gets
    assert response.status in (400, 403, 404) or body.startswith(app), body
    targets = (REPOSITORY / "ohif" / "install.py", REPOSITORY / "orthanc.json")
    assert not any(target.read_bytes()[:200] in body for target in targets)
    assert b"root:" not in body


@pytest.fixture(scope="module")
def reconstructed(orthanc: OrthancServer) -> dict:
    """A simulated acquisition and its automatic reconstruction: (study UID, slices)."""
    simulated = orthanc.wait_job(
        orthanc.post("/api/acquisitions/simulate", json=SMALL_ACQUISITION).json()["id"], timeout=120
    )["result"]
    reconstruction = reconstruction_of(orthanc, simulated["series"])
    assert reconstruction["state"] == "succeeded", reconstruction
    return {"uid": simulated["studyInstanceUid"], "slices": reconstruction["result"]["slices"]}


def open_by_link(orthanc: OrthancServer, page: Page, study_uid: str, user: str, password: str):
    page.goto(orthanc.url(f"/ohif/viewer?StudyInstanceUIDs={study_uid}"))
    page.wait_for_url("**/login?next=**")  # sent to sign in, then brought back
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#submit")
    page.wait_for_url("**/ohif/viewer?StudyInstanceUIDs=**")


def test_a_reconstructed_ct_series_opens_in_ohif(
    orthanc: OrthancServer, page: Page, screenshots: Path, reconstructed: dict
) -> None:
    """The study holds the projections (XA, 90 frames, series 100) and the reconstruction
    (CT, series 200): our hanging protocol shows the CT, at its middle slice."""
    study_uid, slices = reconstructed["uid"], reconstructed["slices"]
    open_by_link(orthanc, page, study_uid, "admin", ADMIN_PASSWORD)

    middle = (slices - 1) // 2 + (slices - 1) % 2 + 1  # OHIF's 'middle' preset, 1-based
    page.get_by_text(f"({middle}/{slices})").wait_for(timeout=60_000)
    shown = page.evaluate(SHOWN_DISPLAY_SETS)
    assert shown["protocol"] == "hounsfield.reconstructionFirst"
    assert [(s["Modality"], s["SeriesNumber"]) for s in shown["viewports"]] == [("CT", 200)]
    assert ["XA", 100] in shown["all"]  # the projections are there, and not shown
    viewport = page.locator("[data-cy=viewport-pane]").first
    assert "CBCT FDK hann 1" in viewport.inner_text()  # the overlay names the series
    page.wait_for_function(
        f"() => ({LIT_PIXELS})(document.querySelector('canvas.cornerstone-canvas')) > 10000"
    )
    page.screenshot(path=str(screenshots / "ohif-reconstructed-ct.png"))
    page.locator("canvas.cornerstone-canvas").hover()
    for number in range(middle - 1, 0, -1):  # one wheel step per slice, as a reader scrolls
        page.mouse.wheel(0, -100)
        page.get_by_text(f"({number}/{slices})").wait_for(timeout=10_000)

    # Our name in OHIF's header, and the page's title
    assert page.locator("[data-cy=hounsfield-logo]").inner_text() == "Hounsfield"
    assert page.get_by_label("OHIF logo").count() == 0
    assert page.title() == "Hounsfield"
    header = {"x": 0, "y": 0, "width": 1280, "height": 48}
    page.screenshot(path=str(screenshots / "ohif-header.png"), clip=header)

    page.goto(orthanc.url("/ohif/"))  # the study list, with the study's description
    page.get_by_text("CBCT phantom (simulated)").first.wait_for(timeout=30_000)
    page.screenshot(path=str(screenshots / "ohif-study-list.png"))

    views = orthanc.get(
        "/api/audit", params={"action": "study.view", "study": study_uid, "user": "admin"}
    ).json()["entries"]
    assert views, "opening the study in the viewer is audited"


def test_a_referrer_opens_a_linked_study_and_no_other(
    orthanc: OrthancServer,
    page: Page,
    screenshots: Path,
    reconstructed: dict,
    dicom_file: Callable[..., Path],
) -> None:
    """Every request the viewer makes passes the gate for a referrer, for a linked study;
    another study's link, in the same signed-in viewer, gets nothing of that study."""
    other = dicom_file("CT_small.dcm", PatientName="Not^Linked")
    orthanc.store(other)
    other_uid = pydicom.dcmread(other, stop_before_pixels=True).StudyInstanceUID
    user = {"username": "viewer-referrer", "password": USER_PASSWORD, "role": "referrer"}
    assert orthanc.post("/api/users", json={**user, "studies": [reconstructed["uid"]]}).ok
    open_by_link(orthanc, page, reconstructed["uid"], user["username"], USER_PASSWORD)
    page.get_by_text("CBCT FDK hann 1").first.wait_for(timeout=60_000)
    page.wait_for_function(
        f"() => ({LIT_PIXELS})(document.querySelector('canvas.cornerstone-canvas')) > 10000"
    )
    page.screenshot(path=str(screenshots / "ohif-referrer.png"))

    answers: dict[str, int] = {}  # what the viewer asked of the other study, and got
    page.on(
        "response",
        lambda r: (
            "/dicom-web/" in r.url and other_uid in r.url and answers.update({r.url: r.status})
        ),
    )
    page.goto(orthanc.url(f"/ohif/viewer?StudyInstanceUIDs={other_uid}"))
    page.get_by_text("requested studies are not available").wait_for(timeout=30_000)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(screenshots / "ohif-referrer-other-study.png"))
    assert answers and set(answers.values()) == {403}, answers
    assert page.get_by_text("Not^Linked").count() == 0
    assert page.get_by_text("Not, Linked").count() == 0

    session = orthanc.client(orthanc.login(user["username"], USER_PASSWORD))
    assert session.get(orthanc.url("/dicom-web/studies")).status_code == 403  # lists nothing


def test_a_radiologist_lands_on_the_worklist_and_reaches_the_study_list(
    orthanc: OrthancServer, page: Page, reconstructed: dict
) -> None:
    """Orthanc Explorer is for admins; a radiologist signing in lands on the reading
    worklist, whose Viewer link opens the viewer's own study list."""
    user = {"username": "viewer-radiologist", "password": USER_PASSWORD, "role": "radiologist"}
    assert orthanc.post("/api/users", json=user).ok
    page.goto(orthanc.url("/login"))
    page.fill("#username", user["username"])
    page.fill("#password", user["password"])
    page.click("#submit")
    page.wait_for_url("**/reading")
    page.get_by_text("CBCT phantom (simulated)").first.wait_for(timeout=30_000)
    with page.context.expect_page() as opened:
        page.click('a[href="/ohif/"]')
    opened.value.get_by_text("CBCT phantom (simulated)").first.wait_for(timeout=30_000)


def test_the_viewer_keeps_its_session_and_leaves_when_it_ends(
    orthanc: OrthancServer, page: Page, reconstructed: dict
) -> None:
    """Access tokens live minutes: the page refreshes before expiry, and signs in again after
    the session is closed elsewhere."""
    open_by_link(orthanc, page, reconstructed["uid"], "admin", ADMIN_PASSWORD)
    before = {c["name"]: c["value"] for c in page.context.cookies()}["hf_access"]
    almost_expired = "localStorage.setItem('hf_access_expires', String(Date.now() + 1000))"
    with page.expect_response("**/api/auth/refresh", timeout=20_000) as refreshed:
        page.evaluate(almost_expired)
    assert refreshed.value.status == 200
    after = {c["name"]: c["value"] for c in page.context.cookies()}["hf_access"]
    assert after != before
    assert page.evaluate("fetch('/dicom-web/studies?limit=1').then(r => r.status)") == 200

    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    closed = requests.post(
        orthanc.url("/api/auth/logout"),
        cookies=cookies,
        headers={"X-CSRF-Token": cookies["hf_csrf"]},
        timeout=10,
    )
    assert closed.status_code in (200, 204)
    page.evaluate(almost_expired)
    page.wait_for_url("**/login?next=%2Fohif%2Fviewer**", timeout=20_000)


ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"


@pytest.fixture(scope="module")
def reading(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """A server with the reading extension, which files a signed report as a PDF."""
    server = OrthancServer(
        tmp_path_factory.mktemp("viewer-reading"),
        stable_age=1,
        hounsfield__workers=1,
        hounsfield__extensions=["hounsfield.reading"],
    ).start()
    yield server
    server.stop()


def signed_study(orthanc: OrthancServer, path: Path, radiologist: str) -> str:
    """Store ``path``, then claim, write and sign its report as ``radiologist`` (as in
    test_reading); returns the StudyInstanceUID once the report's PDF is in the study."""
    orthanc.store(path)
    uid = pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID
    study = next(i["ID"] for i in orthanc.post("/tools/lookup", data=uid).json())
    reader = orthanc.client(orthanc.login(radiologist, USER_PASSWORD))

    def call(method: str, path: str, **kwargs: object) -> requests.Response:
        return reader.request(method, orthanc.url(path), timeout=20, **kwargs)

    wait_for(lambda: orthanc.get(f"/api/worklist/{study}").ok, 30, "the worklist row")
    assert call("POST", f"/api/studies/{study}/claim").ok
    report = {
        "template": "generic",
        "language": "en",
        "sections": {"findings": "No nodule.", "impression": "Normal chest CT."},
        "version": 0,
    }
    assert call("PUT", f"/api/studies/{study}/report", json=report).ok
    assert call("POST", f"/api/studies/{study}/report/sign", json={"version": 1}).ok

    def filed() -> bool:
        classes = orthanc.get(f"/studies/{study}/instances", params={"expand": 1}).json()
        return any(
            orthanc.get(f"/instances/{i['ID']}/metadata/SopClassUid").text == ENCAPSULATED_PDF
            for i in classes
        )

    wait_for(filed, 60, "the report's Encapsulated PDF in the study")
    return uid


def test_ohif_shows_the_pdf_of_a_signed_report(
    reading: OrthancServer, page: Page, screenshots: Path, dicom_file: Callable[..., Path]
) -> None:
    """OHIF's dicom-pdf extension shows the report filed into the study (DICOMweb 1.7's
    Full metadata names the EncapsulatedDocument's bulk data, which OHIF fetches)."""
    radiologist = {"username": "viewer-reader", "password": USER_PASSWORD, "role": "radiologist"}
    assert reading.post("/api/users", json=radiologist).ok
    uid = signed_study(reading, dicom_file("CT_small.dcm"), radiologist["username"])

    open_by_link(reading, page, uid, radiologist["username"], USER_PASSWORD)
    report = page.get_by_text("Report (PDF)").first
    report.wait_for(timeout=60_000)
    report.dblclick()
    document = page.locator("object[type='application/pdf']")
    document.wait_for(timeout=30_000)
    shown = page.evaluate(SHOWN_DISPLAY_SETS)["viewports"]
    assert [(s["Modality"], s["SOPClassHandlerId"]) for s in shown] == [
        ("DOC", "@ohif/extension-dicom-pdf.sopClassHandlerModule.dicom-pdf")
    ]
    head = page.evaluate(
        """async object => {
          const bytes = new Uint8Array(await (await fetch(object.data)).arrayBuffer());
          return [String.fromCharCode(...bytes.slice(0, 5)), bytes.length];
        }""",
        document.element_handle(),
    )
    assert head[0] == "%PDF-" and head[1] > 1000, head
    page.wait_for_timeout(2000)  # Chromium's PDF viewer draws the page after the element
    page.screenshot(path=str(screenshots / "ohif-report-pdf.png"))

"""The sign-in page and Orthanc Explorer behind it, in a real headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pydicom
import requests
from playwright.sync_api import Page, expect

from tests.support.server import ADMIN_PASSWORD, OrthancServer


def test_the_page_and_its_assets_are_open_and_nothing_else(orthanc: OrthancServer) -> None:
    anonymous = requests.Session()
    page = anonymous.get(orthanc.url("/login"), timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert anonymous.get(orthanc.url("/login/login.js"), timeout=10).status_code == 200
    assert anonymous.get(orthanc.url("/login/orthanc.json"), timeout=10).status_code == 404
    assert anonymous.get(orthanc.url("/app/explorer.html"), timeout=10).status_code == 403


def test_signing_in_opens_orthanc_explorer(
    orthanc: OrthancServer, page: Page, dicom_file, screenshots: Path
) -> None:
    path = dicom_file("CT_small.dcm", PatientID="LOGIN-PAGE", PatientName="Login^Page")
    orthanc.store(path)
    study_uid = pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID
    page.goto(orthanc.url("/login?next=/app/explorer.html"))
    page.fill("#username", "admin")
    page.fill("#password", "not-the-password")
    page.click("#submit")
    expect(page.locator("#message")).to_have_text("Invalid user name or password.")
    page.screenshot(path=str(screenshots / "login-refused.png"))

    page.fill("#password", ADMIN_PASSWORD)
    page.click("#submit")
    page.wait_for_url("**/app/explorer.html**")
    expect(page.locator("#hounsfield-sign-out")).to_be_visible()
    page.get_by_role("link", name="All patients").click()
    expect(page.locator("#all-patients").get_by_text("Login^Page")).to_be_visible()
    page.screenshot(path=str(screenshots / "explorer.png"))

    expect(page.locator("#hounsfield-open-viewer")).to_be_hidden()  # not a study's page
    page.locator("#all-patients").get_by_text("Login^Page").click()
    page.locator("#list-studies a").first.click()  # the patient's study
    expect(page.locator("#study")).to_be_visible()
    expect(page.locator("#hounsfield-open-viewer")).to_be_visible()
    page.screenshot(path=str(screenshots / "explorer-study.png"))
    with page.context.expect_page() as opened:
        page.click("#hounsfield-open-viewer")
    viewer = opened.value
    viewer.wait_for_load_state()
    assert viewer.url == orthanc.url(f"/ohif/viewer?StudyInstanceUIDs={study_uid}")
    viewer.close()
    page.goto(orthanc.url("/app/explorer.html"))

    page.click("#hounsfield-sign-out")
    page.wait_for_url("**/login?next=**")
    assert (
        requests.get(
            orthanc.url("/app/explorer.html"),
            timeout=10,
            cookies={c["name"]: c["value"] for c in page.context.cookies()},
        ).status_code
        == 403
    )


def test_next_never_leaves_the_server(orthanc: OrthancServer, page: Page) -> None:
    page.goto(orthanc.url("/login?next=//example.org/phish"))
    page.fill("#username", "admin")
    page.fill("#password", ADMIN_PASSWORD)
    page.click("#submit")
    page.wait_for_url(orthanc.url("/app/explorer.html"))

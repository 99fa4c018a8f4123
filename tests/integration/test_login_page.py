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
    expect(page.locator("#hounsfield-link-administration")).to_be_visible()  # on every page
    page.get_by_role("link", name="All patients").click()
    expect(page.locator("#all-patients").get_by_text("Login^Page")).to_be_visible()
    page.screenshot(path=str(screenshots / "explorer.png"))

    expect(page.locator("#hounsfield-open-viewer")).to_be_hidden()  # not a study's page
    page.locator("#all-patients").get_by_text("Login^Page").click()
    page.locator("#list-studies a").first.click()  # the patient's study
    expect(page.locator("#study")).to_be_visible()
    expect(page.locator("#hounsfield-open-viewer")).to_be_visible()
    page.screenshot(path=str(screenshots / "explorer-study.png"))
    # A feature's action on the study: it is sent, and its answer said.
    said: list[str] = []
    page.once("dialog", lambda dialog: (said.append(dialog.message), dialog.accept()))
    page.click("#hounsfield-open-analyze")
    page.wait_for_function("() => !document.querySelector('#hounsfield-open-analyze').disabled")
    assert said and said[0].startswith("Analyze: "), said
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


def test_a_password_an_admin_reset_is_changed_at_the_next_sign_in(
    orthanc: OrthancServer, page: Page, screenshots: Path
) -> None:
    name, first, reset, chosen = (
        "login-reset",
        "First-Pass-1357",
        "Reset-Pass-2468",
        "Mine-Now-9753",
    )
    user = {"username": name, "password": first, "role": "radiologist"}
    assert orthanc.post("/api/users", json=user).status_code == 201
    changed = orthanc.http.put(
        orthanc.url(f"/api/users/{name}"), json={"password": reset}, timeout=10
    )
    assert changed.status_code == 200
    assert orthanc.get(f"/api/users/{name}").json()["mustChangePassword"] is True
    basic = requests.get(orthanc.url("/api/auth/me"), auth=(name, reset), timeout=10)
    assert basic.status_code == 401 and "choose a new one" in basic.json()["error"]
    restricted = orthanc.client(orthanc.login(name, reset))
    assert restricted.get(orthanc.url("/api/jobs"), timeout=10).status_code == 403
    assert restricted.get(orthanc.url("/studies"), timeout=10).status_code == 403
    assert restricted.get(orthanc.url("/api/auth/me"), timeout=10).status_code == 200

    page.goto(orthanc.url("/login"))
    page.fill("#username", name)
    page.fill("#password", reset)
    page.click("#submit")
    expect(page.locator("#change-form")).to_be_visible()
    page.fill("#new-password", chosen)
    page.fill("#repeat-password", chosen + "x")
    page.click("#change-submit")
    expect(page.locator("#change-message")).to_have_text("The two passwords differ.")
    page.screenshot(path=str(screenshots / "login-change-password.png"))
    page.fill("#repeat-password", chosen)
    page.click("#change-submit")
    page.wait_for_url(lambda url: "/login" not in url)
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    me = requests.get(orthanc.url("/api/jobs"), cookies=cookies, timeout=10)
    assert me.status_code == 200  # the page's session is a full one now
    after = requests.get(orthanc.url("/api/auth/me"), auth=(name, chosen), timeout=10).json()
    assert after["mustChangePassword"] is False and after["lastSignInAt"]
    assert requests.get(orthanc.url("/studies"), auth=(name, reset), timeout=10).status_code == 403

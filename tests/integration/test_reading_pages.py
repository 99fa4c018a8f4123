"""The radiologists' pages in Chromium, against a real Orthanc with the reading extension.

Signed in, a radiologist lands on the worklist: the stored study is there, filters narrow
the list, a claim shows who holds the study (a second radiologist sees it taken, without
reloading), Enter opens the reading page. There, typing saves the report; a save from
another session is a conflict the page says and never overwrites; signing adds the
history entry and its PDF. Report text and patient names full of markup are shown as
written and never run. A user whose language is French gets the pages in French.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.reading import PASSWORD, Department, reading_server, stored_study, untranslated
from tests.support.server import ADMIN_PASSWORD, OrthancServer, wait_for

HOSTILE = '<img src=x onerror="window.__ran = true">'
# "=" separates a person name's component groups in DICOM: markup without one
HOSTILE_NAME = "Markup^<b>Bold</b><script>"
REFRESH_SECONDS = 4  # worklist.js polls this often


@pytest.fixture(scope="module")
def department(tmp_path_factory: pytest.TempPathFactory, dicom_file) -> Iterator[Department]:
    orthanc = reading_server(tmp_path_factory.mktemp("reading-pages"), "hounsfield.reading")
    yield Department(orthanc, dicom_file)
    orthanc.stop()


@pytest.fixture
def people(browser: Browser) -> Iterator[list[BrowserContext]]:
    """Browser contexts (one per person: cookies of their own), closed after the test."""
    contexts: list[BrowserContext] = []
    yield contexts
    for context in contexts:
        context.close()


def store(department: Department, dicom_file, **attributes: str) -> str:
    """A CT study stored, once it is in the worklist: its Orthanc id."""
    path = dicom_file("CT_small.dcm", **attributes)
    department.orthanc.store(path)
    study, _ = stored_study(department.orthanc, path)
    wait_for(lambda: department.row(study), 30, "the study's worklist row")
    return study


def signed_in(
    browser: Browser, people: list[BrowserContext], orthanc: OrthancServer, username: str
) -> Page:
    """``username`` signed in through the sign-in page, in a browser of their own, on the
    page the sign-in page chose; page errors fail the test."""
    context = browser.new_context(viewport={"width": 1366, "height": 860}, locale="en-GB")
    people.append(context)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(orthanc.url("/login"))
    page.fill("#username", username)
    page.fill("#password", ADMIN_PASSWORD if username == "admin" else PASSWORD)
    page.click("#submit")
    page.wait_for_load_state()
    page.errors = errors  # type: ignore[attr-defined]  # checked by no_page_errors
    return page


def no_page_errors(page: Page) -> None:
    assert page.errors == []  # type: ignore[attr-defined]


def row(page: Page, study: str):
    return page.locator(f'#worklist tbody tr[data-id="{study}"]')


def test_a_radiologist_works_the_worklist(
    department: Department, browser: Browser, people: list, dicom_file, screenshots: Path
) -> None:
    orthanc = department.orthanc
    department.hire("dr-wl-ana", "radiologist")
    department.hire("dr-wl-ben", "radiologist")
    chest = store(
        department,
        dicom_file,
        PatientName="Worklist^Alice",
        PatientID="WL-001",
        AccessionNumber="ACC-WL-1",
    )
    other = store(department, dicom_file, PatientName="Zeta^Bob", PatientID="WL-002")
    department.call("admin", "PUT", f"/api/studies/{other}/priority", json={"priority": "stat"})

    ana = signed_in(browser, people, orthanc, "dr-wl-ana")
    ana.wait_for_url("**/reading")  # a radiologist lands on the worklist
    expect(row(ana, chest)).to_contain_text("Worklist, Alice")
    expect(row(ana, chest)).to_contain_text("WL-001")
    expect(row(ana, chest)).to_contain_text("ACC-WL-1")
    expect(row(ana, chest).locator(".badge.status-unread")).to_have_text("Unread")
    expect(row(ana, other).locator(".badge.priority-stat")).to_have_text("STAT")

    # Filters narrow the list, and the address keeps them
    ana.fill("input[name=patientName]", "worklist*")
    expect(ana.locator("#worklist tbody tr")).to_have_count(1)
    expect(row(ana, chest)).to_be_visible()
    assert "patientName=worklist*" in ana.url.replace("%2A", "*")
    ana.select_option("select[name=modality]", "MR")
    expect(ana.locator("#empty")).to_be_visible()
    ana.select_option("select[name=modality]", "CT")
    expect(ana.locator("#worklist tbody tr")).to_have_count(1)
    ana.click("#filters button[type=reset]")
    expect(row(ana, other)).to_be_visible()

    # Sorting by a column header: ascending, then descending
    ana.click("th[data-sort=patientName] button")
    expect(ana.locator("th[data-sort=patientName]")).to_have_attribute("aria-sort", "ascending")
    ana.click("th[data-sort=patientName] button")
    expect(ana.locator("th[data-sort=patientName]")).to_have_attribute("aria-sort", "descending")
    assert "sort=-patientName" in ana.url

    # A claim shows who holds the study
    row(ana, chest).locator("button[data-action=claim]").click()
    expect(row(ana, chest).locator(".badge.assigned.mine")).to_have_text("dr-wl-ana")
    expect(row(ana, chest).locator(".badge.status-in_progress")).to_be_visible()
    expect(row(ana, chest).locator("button[data-action=release]")).to_be_focused()
    ana.screenshot(path=str(screenshots / "worklist.png"), full_page=True)

    # ...and a second radiologist sees it taken, and is told who holds it
    ben = signed_in(browser, people, orthanc, "dr-wl-ben")
    ben.wait_for_url("**/reading")
    expect(row(ben, chest).locator(".badge.assigned")).to_have_text("dr-wl-ana")
    row(ben, chest).locator("button[data-action=claim]").click()
    expect(ben.locator("#message")).to_have_text("Held by dr-wl-ana")
    ben.screenshot(path=str(screenshots / "worklist-taken.png"), full_page=True)

    # The list follows without a reload, keeping the focus where it was
    row(ben, other).focus()
    row(ana, chest).locator("button[data-action=release]").click()
    expect(row(ben, chest).locator(".badge.assigned")).to_have_count(
        0, timeout=(REFRESH_SECONDS + 5) * 1000
    )
    expect(row(ben, other)).to_be_focused()

    # Enter on a row opens its reading page
    row(ana, chest).focus()
    ana.keyboard.press("Enter")
    ana.wait_for_url(f"**/reading/study.html?id={chest}")
    expect(ana.locator("#patient-name")).to_have_text("Worklist, Alice")
    no_page_errors(ana)
    no_page_errors(ben)


def test_a_report_is_saved_as_typed_kept_from_conflicts_and_signed(
    department: Department, browser: Browser, people: list, dicom_file, screenshots: Path
) -> None:
    orthanc = department.orthanc
    department.hire("dr-rp-cy", "radiologist")
    study = store(department, dicom_file, PatientName=HOSTILE_NAME, PatientID="RP-001")
    cy = signed_in(browser, people, orthanc, "dr-rp-cy")
    cy.wait_for_url("**/reading")
    row(cy, study).locator("button[data-action=claim]").click()
    expect(row(cy, study).locator(".badge.assigned")).to_have_text("dr-rp-cy")
    row(cy, study).focus()
    cy.keyboard.press("Enter")
    cy.wait_for_url("**/reading/study.html?id=*")
    expect(cy.locator("#patient-name")).to_have_text("Markup, <b>Bold</b><script>")
    expect(cy.locator("#template")).to_have_value("generic")  # suggested, and pre-filled
    expect(cy.locator("textarea[name=technique]")).to_have_value(re.compile("120 kV"))

    # Typing saves, a moment after the last key
    findings = cy.locator("textarea[name=findings]")
    typed = f"A 6 mm nodule in the right upper lobe. {HOSTILE} <script>window.__ran = 1</script>"
    findings.fill(typed)
    expect(cy.locator("#save-state")).to_have_text(re.compile("^Saved at"))
    saved = department.call("dr-rp-cy", "GET", f"/api/studies/{study}/report").json()
    assert saved["sections"]["findings"] == typed and saved["status"] == "draft"

    # Another session of the same radiologist saves first: the page says so, keeps its text
    elsewhere = department.sign_in("dr-rp-cy")
    theirs = {**saved, "sections": {**saved["sections"], "impression": "Saved elsewhere."}}
    answer = elsewhere.put(
        orthanc.url(f"/api/studies/{study}/report"),
        json={key: theirs[key] for key in ("template", "language", "sections", "version")},
        timeout=20,
    )
    assert answer.status_code == 200, answer.text
    version = answer.json()["version"]
    findings.fill(typed + " Grows.")
    expect(cy.locator("#conflict-text")).to_have_text(
        f"Conflict: someone else saved version {version}. Your text was not saved."
    )
    expect(cy.locator("#save-state")).to_have_text("Not saved: conflict")
    expect(findings).to_have_value(typed + " Grows.")
    expect(findings).not_to_be_editable()
    cy.screenshot(path=str(screenshots / "reading-conflict.png"), full_page=True)
    current = department.call("dr-rp-cy", "GET", f"/api/studies/{study}/report").json()
    assert current["version"] == version and current["sections"]["findings"] == typed
    cy.click("#reload-report")
    expect(cy.locator("textarea[name=impression]")).to_have_value("Saved elsewhere.")
    expect(cy.locator("#conflict")).to_be_hidden()

    # Signed: the history has it, and its PDF once stored into the study
    cy.locator("textarea[name=impression]").fill("Small pulmonary nodule.")
    expect(cy.locator("#save-state")).to_have_text(re.compile("^Saved at"))
    cy.click("#sign")
    entry = cy.locator("#versions li").first
    expect(entry).to_contain_text("Version 1")
    expect(entry).to_contain_text("Signed by dr-rp-cy")
    expect(entry.locator(".badge.status-final")).to_have_text("Final")
    pdf = entry.locator("a[data-version='1']")
    expect(pdf).to_have_attribute(
        "href", f"/api/studies/{study}/report/pdf?version=1", timeout=60_000
    )
    document = cy.request.get(orthanc.url(pdf.get_attribute("href")))
    assert document.ok and document.headers["content-type"] == "application/pdf"
    assert document.body().startswith(b"%PDF")
    expect(cy.locator("textarea[name=findings]")).not_to_be_editable()
    expect(cy.locator("#sign")).to_be_hidden()

    # Markup in a name or a report is text: shown as written, never run
    expect(findings).to_have_value(typed)
    assert cy.evaluate("window.__ran") is None
    assert cy.locator("main img, main b, main script").count() == 0
    cy.screenshot(path=str(screenshots / "reading-signed.png"), full_page=True)

    # Amended, with the reason it needs
    cy.click("#amend")
    cy.locator("textarea[name=recommendations]").fill("CT in 12 months.")
    cy.click("#sign-amendment")
    expect(cy.locator("#message")).to_have_text("Give the reason for the amendment.")
    cy.fill("#reason", "Follow-up advice added")
    cy.click("#sign-amendment")
    expect(cy.locator("#versions li")).to_have_count(2)
    expect(cy.locator("#versions li").nth(1)).to_contain_text("Reason: Follow-up advice added")
    assert cy.evaluate("window.__ran") is None
    cy.screenshot(path=str(screenshots / "reading-amended.png"), full_page=True)
    no_page_errors(cy)


def test_a_french_radiologist_reads_in_french(
    department: Department, browser: Browser, people: list, dicom_file, screenshots: Path
) -> None:
    orthanc = department.orthanc
    department.hire("dr-fr-dom", "radiologist")
    assert (
        department.call("dr-fr-dom", "PUT", "/api/auth/me", json={"language": "xx"}).status_code
        == 400
    )
    chosen = department.call("dr-fr-dom", "PUT", "/api/auth/me", json={"language": "fr"})
    assert chosen.status_code == 200 and chosen.json()["language"] == "fr"
    assert department.call("dr-fr-dom", "GET", "/api/auth/me").json()["language"] == "fr"
    study = store(department, dicom_file, PatientName="Lefèvre^Héloïse", PatientID="FR-001")
    department.call("admin", "PUT", f"/api/studies/{study}/priority", json={"priority": "urgent"})

    dom = signed_in(browser, people, orthanc, "dr-fr-dom")  # an English browser
    dom.wait_for_url("**/reading")
    expect(dom.locator("h1")).to_have_text("Liste de travail")
    assert dom.locator("html").get_attribute("lang") == "fr"
    expect(row(dom, study).locator(".badge.priority-urgent")).to_have_text("Urgente")
    expect(row(dom, study).locator("button[data-action=claim]")).to_have_text("Prendre")
    row(dom, study).locator("button[data-action=claim]").click()
    expect(row(dom, study).locator(".badge.status-in_progress")).to_have_text("En cours")
    dom.screenshot(path=str(screenshots / "worklist-fr.png"), full_page=True)
    assert untranslated(dom) == set()

    row(dom, study).click()
    dom.wait_for_url("**/reading/study.html?id=*")
    expect(dom.locator("label.section span").first).to_have_text("Renseignements cliniques")
    expect(dom.locator("#open-viewer")).to_have_text("Ouvrir dans la visionneuse")
    expect(dom.locator("#report-language")).to_have_value("fr")  # a new report: the reader's
    dom.locator("textarea[name=findings]").fill("Pas d'anomalie.")
    expect(dom.locator("#save-state")).to_have_text(re.compile("^Enregistré à"))
    dom.screenshot(path=str(screenshots / "reading-fr.png"), full_page=True)
    assert untranslated(dom) == set()

    # Back to English from the page's own menu
    dom.select_option("#language", "en")
    expect(dom.locator("#report-title")).to_have_text("Report")
    assert department.call("dr-fr-dom", "GET", "/api/auth/me").json()["language"] == "en"
    no_page_errors(dom)


def test_the_sign_in_page_speaks_the_browsers_language(
    department: Department, browser: Browser, screenshots: Path
) -> None:
    context = browser.new_context(locale="de-DE")
    try:
        page = context.new_page()
        page.goto(department.orthanc.url("/login"))
        expect(page.locator("#submit")).to_have_text("Anmelden")
        expect(page.locator("label[for=password]")).to_have_text("Passwort")
        page.fill("#username", "nobody-here")
        page.fill("#password", "not-a-password")
        page.click("#submit")
        expect(page.locator("#message")).to_have_text("Benutzername oder Passwort ist falsch.")
        page.screenshot(path=str(screenshots / "login-de.png"))
    finally:
        context.close()


def test_orthanc_explorer_opens_the_reading_page(
    department: Department, browser: Browser, people: list, dicom_file, screenshots: Path
) -> None:
    study = store(department, dicom_file, PatientName="Explorer^Eve")
    admin = signed_in(browser, people, department.orthanc, "admin")
    admin.wait_for_url("**/app/explorer.html")
    admin.evaluate(f"window.location.hash = '#study?uuid={study}'")  # Explorer's own link
    expect(admin.locator("#study")).to_be_visible()
    expect(admin.locator("#hounsfield-open-viewer")).to_be_visible()
    expect(admin.locator("#hounsfield-open-reading")).to_be_visible()
    moving = ".ui-mobile-viewport-transitioning, .ui-page.in, .ui-page.out"  # jQuery Mobile's
    admin.wait_for_function(f"() => !document.querySelector('{moving}')")  # for the screenshot
    admin.screenshot(path=str(screenshots / "explorer-study-reading.png"))
    admin.click("#hounsfield-open-reading")
    admin.wait_for_url(f"**/reading/study.html?id={study}")
    expect(admin.locator("#patient-name")).to_have_text("Explorer, Eve")
    expect(admin.locator("#claim")).to_be_visible()  # admins read and write too

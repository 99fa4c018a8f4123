"""The audit trail's administration page in Chromium, as an admin.

On the shared server: the sign-ins of a user made here (allowed and refused) filtered by
user and outcome, paged through, an entry's details opened, the same entries exported as CSV
(and the export recorded), a patient found by name and their studies' entries shown, and the
chain verified. On a private server (the shared one's chain is verified by other tests): an
entry edited in the database behind the application's back, the page naming it and showing
it; the same page in French with every word translated.
"""

from __future__ import annotations

import csv
import re
import sqlite3
import time
from datetime import date, timedelta
from pathlib import Path

import pydicom
import requests
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.browser import no_page_errors
from tests.support.browser import signed_in as browser_signed_in
from tests.support.reading import untranslated
from tests.support.server import ADMIN_PASSWORD, OrthancServer

REPOSITORY = Path(__file__).resolve().parents[2]
CATALOGUES = (
    REPOSITORY / "plugin" / "hounsfield" / "admin" / "catalogue" / "common",
    REPOSITORY / "plugin" / "hounsfield" / "admin" / "catalogue" / "audit",
)
PASSWORD = "Audit-Page-Pass-2468"
PAGE = "/admin/audit.html"
SIGN_INS, REFUSALS = 3, 12  # more refusals than the page of 10 the test asks for


def signed_in(
    browser: Browser, contexts: list[BrowserContext], orthanc: OrthancServer, locale: str = "en-GB"
) -> Page:
    """The admin on the audit page, signed in through the sign-in page it sent them to."""
    return browser_signed_in(
        browser,
        contexts,
        orthanc,
        PAGE,
        "admin",
        ADMIN_PASSWORD,
        locale=locale,
        viewport=(1440, 1000),
        accept_downloads=True,
        account="header .account",
    )


def audit(orthanc: OrthancServer, **filters: object) -> dict:
    answer = orthanc.get("/api/audit", params={"limit": 1000, **filters})
    assert answer.status_code == 200, answer.text
    return answer.json()


def counts(first: int, last: int, total: int) -> str:
    """What the page says it shows (English)."""
    return f"Entries {first}\N{EN DASH}{last} of {total}"


def shown_ids(page: Page) -> list[int]:
    return [
        int(value)
        for value in page.locator("#rows tr.entry").evaluate_all(
            "rows => rows.map((row) => row.dataset.entry)"
        )
    ]


def test_an_admin_filters_pages_opens_exports_and_verifies(
    orthanc: OrthancServer,
    browser: Browser,
    contexts: list,
    dicom_file,
    screenshots: Path,
) -> None:
    # The truth: sign-ins of a user of this test's own, allowed and refused
    person = f"audit-page-{int(time.time() * 1000) % 10**9}"
    body = {"username": person, "password": PASSWORD, "role": "technician"}
    assert orthanc.post("/api/users", json=body).status_code == 201
    for _ in range(SIGN_INS):
        orthanc.login(person, PASSWORD)
    for _ in range(REFUSALS):
        wrong = {"username": person, "password": "not-the-password-1"}
        assert (
            requests.post(orthanc.url("/api/auth/login"), json=wrong, timeout=10).status_code == 401
        )
    refused = audit(orthanc, user=person, outcome="denied")
    assert refused["total"] == REFUSALS
    refused_ids = [entry["id"] for entry in refused["entries"]]

    page = signed_in(browser, contexts, orthanc)
    expect(page).to_have_title("Audit trail · Hounsfield")
    expect(page.locator("header nav a[aria-current=page]")).to_have_text("Audit trail")
    expect(page.locator("#counts")).to_contain_text("Entries 1\N{EN DASH}")

    # Filtered by user (as typed: user names are stored lower-case) and outcome, ten a page
    page.select_option("#page-size", "10")
    page.fill("#filter-user", person.upper())
    page.select_option("#filter-outcome", "denied")
    page.click("#search")
    expect(page.locator("#counts")).to_have_text(counts(1, 10, REFUSALS))
    expect(page.locator("#page-of")).to_have_text("Page 1 of 2")
    assert shown_ids(page) == refused_ids[:10]
    expect(page.locator("#rows tr.entry td.outcome .badge.bad")).to_have_count(10)
    expect(page.locator("#rows tr.entry td.outcome")).to_have_text(["Denied"] * 10)
    expect(page.locator("#rows tr.entry td.who .user")).to_have_text([person] * 10)
    expect(page.locator("#rows tr.entry").first).to_contain_text("Sign-in")
    expect(page.locator("#previous")).to_be_disabled()
    assert f"user={person}" in page.url and "outcome=denied" in page.url

    # The next page (from the keyboard): the rest, without the whole trail loaded
    page.locator("#next").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#counts")).to_have_text(counts(11, REFUSALS, REFUSALS))
    expect(page.locator("#page-of")).to_have_text("Page 2 of 2")
    assert shown_ids(page) == refused_ids[10:]
    expect(page.locator("#next")).to_be_disabled()
    expect(page.locator("#previous")).to_be_focused()  # the focus stays in the pager
    page.click("#previous")
    expect(page.locator("#counts")).to_have_text(counts(1, 10, REFUSALS))

    # An entry's details, from the keyboard
    first = refused["entries"][0]
    toggle = page.locator(f"#entry-{first['id']} button.toggle")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    details = page.locator(f"#detail-{first['id']}")
    expect(details).to_be_visible()
    expect(details.locator("pre.json")).to_contain_text('"reason": "')
    expect(details.locator("dd.hash")).to_have_text(first["hash"])
    expect(details).to_contain_text(first["at"])
    expect(details).to_contain_text("Sign-in (auth.login)")

    # Allowed ones instead; a time range after them finds none
    page.select_option("#filter-outcome", "allowed")
    page.click("#search")
    expect(page.locator("#counts")).to_have_text(counts(1, SIGN_INS, SIGN_INS))
    expect(page.locator("#rows tr.entry td.outcome .badge.good")).to_have_text(["Allowed"] * 3)
    expect(page.locator(".pager").first).to_be_hidden()
    page.fill("#filter-since", (date.today() + timedelta(days=2)).isoformat() + "T00:00")
    page.click("#search")
    expect(page.locator("#no-entries")).to_be_visible()
    expect(page.locator("#export")).to_be_disabled()
    page.fill("#filter-since", "")

    # The refusals exported: the CSV holds them, and the export is itself in the trail
    page.select_option("#filter-outcome", "denied")
    page.click("#search")
    expect(page.locator("#counts")).to_have_text(counts(1, 10, REFUSALS))
    exports_before = audit(orthanc, action="audit.export")["total"]
    with page.expect_download() as download_info:
        page.click("#export")
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    with open(download.path(), newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert [int(row["id"]) for row in rows] == refused_ids
    assert {(row["username"], row["outcome"]) for row in rows} == {(person, "denied")}
    expect(page.locator("#message.ok")).to_contain_text("Exported: ")
    exports = audit(orthanc, action="audit.export")
    assert exports["total"] == exports_before + 1
    export = exports["entries"][0]
    assert export["username"] == "admin" and export["outcome"] == "allowed"
    assert export["detail"]["query"]["user"] == person
    assert export["detail"]["rows"] == REFUSALS

    # A patient by name: the entries about their studies (two of them)
    patient = f"AUDITPAGE^P{int(time.time()) % 10**6}"
    uids = []
    for _ in range(2):
        path = dicom_file("CT_small.dcm", PatientName=patient, PatientID=f"AP-{patient[-7:]}")
        orthanc.store(path)
        uid = pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID
        assert orthanc.get(f"/dicom-web/studies/{uid}/metadata").ok  # a study.view of the admin
        uids.append(uid)
    about = audit(orthanc, study=",".join(uids))
    assert about["total"] >= 2
    page.click("#clear")
    page.select_option("#filter-subject-by", "name")
    page.fill("#filter-subject", patient.split("^")[1].lower())
    page.click("#search")
    expect(page.locator("#subject-note")).to_contain_text("Studies found for this patient: 2")
    expect(page.locator("#counts")).to_have_text(counts(1, min(10, about["total"]), about["total"]))
    expect(page.locator("#rows tr.entry", has_text="Study viewed")).to_have_count(2)
    page.fill("#filter-subject", "nobody-by-this-name-xq")
    page.click("#search")
    expect(page.locator("#subject-note")).to_contain_text("No stored study matches")
    expect(page.locator("#no-entries")).to_have_text("No entry matches these filters.")

    # The chain verified
    page.click("#clear")
    page.click("#verify")
    expect(page.locator("#verdict")).to_contain_text("The chain holds: ")
    verified = orthanc.get("/api/audit/verify").json()
    assert verified["valid"] is True
    expect(page.locator("#verdict")).to_have_text(
        f"Intact The chain holds: {verified['entries']:,} entries"
    )
    expect(page.locator("#verdict-detail code")).to_have_text(verified["head"])

    # The view an admin gets: a denied sign-in's details open
    page.fill("#filter-user", person)
    page.select_option("#filter-outcome", "denied")
    page.click("#search")
    expect(page.locator("#counts")).to_have_text(counts(1, 10, REFUSALS))
    page.locator("#rows button.toggle").nth(1).click()
    page.screenshot(path=screenshots / "admin-audit-en.png", full_page=True)
    no_page_errors(page)


def test_the_page_names_the_entry_changed_behind_the_applications_back(
    tmp_path: Path, browser: Browser, contexts: list, screenshots: Path
) -> None:
    server = OrthancServer(tmp_path / "x", hounsfield__extensions=["hounsfield.admin"])
    try:
        server.start()
        body = {"username": "audit-victim", "password": PASSWORD, "role": "technician"}
        assert server.post("/api/users", json=body).status_code == 201
        (created,) = audit(server, action="user.create", user="admin")["entries"]
        target = created["id"]

        database = sqlite3.connect(server.workdir / "data" / "hounsfield" / "hounsfield.db")
        try:
            triggers = database.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'"
            ).fetchall()
            assert triggers
            for (name,) in triggers:
                database.execute(f"DROP TRIGGER {name}")
            database.execute(
                "UPDATE audit_log SET detail = ? WHERE id = ?", ('{"role": "admin"}', target)
            )
            database.commit()
        finally:
            database.close()

        page = signed_in(browser, contexts, server)
        page.click("#verify")
        expect(page.locator("#verdict")).to_have_text(f"Broken The chain breaks at entry #{target}")
        expect(page.locator("#verification")).to_have_class(re.compile(r"\bbreaks\b"))
        page.click("#show-broken")
        row = page.locator(f"#entry-{target}")
        expect(row).to_have_class(re.compile(r"\bhighlight\b"))
        expect(row).to_contain_text("Chain breaks here")
        expect(row.locator("button.toggle")).to_be_focused()
        expect(page.locator(f"#detail-{target} pre.json")).to_contain_text('"role": "admin"')
        page.screenshot(path=screenshots / "admin-audit-broken-en.png", full_page=True)
        no_page_errors(page)

        french = signed_in(browser, contexts, server, locale="fr-FR")
        expect(french).to_have_title("Journal d'audit · Hounsfield")
        french.click("#verify")
        expect(french.locator("#verdict")).to_contain_text(
            f"La chaîne est rompue à l'entrée n° {target}"
        )
        french.click("#show-broken")
        expect(french.locator(f"#detail-{target}")).to_be_visible()
        french.screenshot(path=screenshots / "admin-audit-broken-fr.png", full_page=True)
        assert untranslated(french, *CATALOGUES) == set()
        no_page_errors(french)
    finally:
        server.stop()

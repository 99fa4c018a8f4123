"""The users page (/admin) in Chromium, against the shared Orthanc.

An admin creates a referring physician on the page (the password policy's hints change as a
weak password is typed), links a study found by patient name, and the physician, signed in
elsewhere, reads that study and no other; their own API key is listed and revoked. A
radiologist signed in elsewhere is disabled (their next page load asks them to sign in),
enabled again (and refused the administration page), and their password reset: they must
change it at next sign-in. The last active admin is not demoted nor disabled: the page says
why. A user is deleted once the confirmation is accepted. The page in French has every word
translated.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from hounsfield.admin import CATALOGUES
from tests.support.browser import no_page_errors, signed_in
from tests.support.reading import PASSWORD, stored_study, untranslated
from tests.support.server import ADMIN_PASSWORD, OrthancServer

RUN = str(int(time.time() * 1000) % 10**7)  # the shared server keeps earlier tests' users
REFERRER = f"adm-users-{RUN}-ref"
RADIOLOGIST = f"adm-users-{RUN}-rad"
THROWAWAY = f"adm-users-{RUN}-tmp"
FRENCH = f"adm-users-{RUN}-fr"
STRONG = "Rolling-Hills-4412"
USERS_WORDS = (CATALOGUES / "common", CATALOGUES / "users")


@pytest.fixture(scope="module")
def studies(orthanc: OrthancServer, dicom_file: Callable[..., Path]) -> dict[str, tuple[str, str]]:
    """Two small studies of two patients: (Orthanc's id, StudyInstanceUID) each."""
    made = {
        name: dicom_file(
            "CT_small.dcm",
            PatientName=f"Admusers^{name.title()}{RUN}",
            PatientID=f"ADM-{name.upper()}-{RUN}",
            AccessionNumber=f"AU{name[0].upper()}{RUN}",
            StudyDescription=f"CT {name}",
        )
        for name in ("alpha", "beta")
    }
    orthanc.store(*made.values())
    return {name: stored_study(orthanc, path) for name, path in made.items()}


def user(orthanc: OrthancServer, name: str) -> dict:
    answer = orthanc.get(f"/api/users/{name}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def choose(page: Page, name: str) -> None:
    page.click(f"#user-rows button.pick:text-is('{name}')")
    expect(page.locator("#detail-title")).to_have_text(name)
    expect(page.locator("#detail-title")).to_be_focused()


def rule(page: Page, form: str, name: str):
    return page.locator(f"#{form}-policy li[data-rule={name}]")


def test_an_admin_manages_users_on_the_page(
    orthanc: OrthancServer,
    studies: dict[str, tuple[str, str]],
    browser: Browser,
    contexts: list[BrowserContext],
    screenshots: Path,
) -> None:
    for name, role in ((RADIOLOGIST, "radiologist"), (THROWAWAY, "technician")):
        body = {"username": name, "password": PASSWORD, "role": role}
        assert orthanc.post("/api/users", json=body).status_code == 201
    radiologist = signed_in(browser, contexts, orthanc, "/reading", RADIOLOGIST, PASSWORD)
    page = signed_in(browser, contexts, orthanc, "/admin", "admin", ADMIN_PASSWORD, dialogs=True)
    expect(page.locator("header nav a[aria-current=page]")).to_have_text("Users")
    expect(page).to_have_title("Users · Hounsfield")
    admin_row = page.locator("#user-rows tr[data-user=admin]")
    expect(admin_row).to_contain_text("(you)")
    expect(admin_row.locator(".badge")).to_have_text(["Active", "Off"])

    # A referring physician, made on the page: the policy's hints follow the typing
    form = page.locator("#create-form")
    form.locator("[name=username]").fill(REFERRER)
    form.locator("[name=role]").select_option("referrer")
    expect(page.locator("#referrer-note")).to_be_visible()
    password = form.locator("[name=password]")
    expect(rule(page, "create", "length")).to_have_class("pending")
    password.press_sequentially("aaa")
    expect(rule(page, "create", "length")).to_have_class("unmet")
    expect(rule(page, "create", "distinct")).to_have_class("unmet")
    expect(rule(page, "create", "name")).to_have_class("met")
    expect(rule(page, "create", "length")).to_contain_text("At least 12 characters")
    password.press_sequentially("bc" + REFERRER)
    expect(rule(page, "create", "length")).to_have_class("met")
    expect(rule(page, "create", "distinct")).to_have_class("met")
    expect(rule(page, "create", "name")).to_have_class("unmet")
    page.click("#create")
    expect(page.locator("#create-error")).to_have_text(
        "The password does not follow the policy yet."
    )
    expect(password).to_be_focused()
    password.fill(STRONG)
    expect(page.locator("#create-policy li.unmet")).to_have_count(0)
    page.click("#create")
    expect(page.locator("#message")).to_have_text(f"User {REFERRER} created.")
    expect(page.locator("#detail-title")).to_have_text(REFERRER)
    assert user(orthanc, REFERRER)["role"] == "referrer"
    expect(page.locator("#studies-block")).to_be_visible()
    expect(page.locator("#no-linked")).to_be_visible()
    expect(page.locator("#no-keys")).to_be_visible()

    # Its study, found by the patient's name (never a UID typed)
    search = page.locator("#study-search")
    search.locator("[name=term]").fill(f"alpha{RUN}")
    search.locator("button[type=submit]").click()
    expect(page.locator("#search-status")).to_have_text("Studies found: 1.")
    found = page.locator("#found li")
    expect(found).to_contain_text(f"Admusers, Alpha{RUN}")
    expect(found).to_contain_text(f"ADM-ALPHA-{RUN}")
    found.get_by_role("button", name="Link").click()
    expect(page.locator("#message")).to_have_text(f"Study linked to {REFERRER}.")
    expect(page.locator("#linked li")).to_have_count(1)
    expect(page.locator("#linked li")).to_contain_text(f"Admusers, Alpha{RUN}")
    expect(found.locator(".badge")).to_have_text("Linked")
    assert user(orthanc, REFERRER)["studies"] == [studies["alpha"][1]]
    referrer_row = page.locator(f"#user-rows tr[data-user='{REFERRER}']")
    expect(referrer_row).to_contain_text("Linked studies: 1")

    # The physician reads that study, and no other
    referrer = signed_in(browser, contexts, orthanc, "/api/auth/me", REFERRER, STRONG)
    opened = referrer.context.request.get(orthanc.url(f"/studies/{studies['alpha'][0]}"))
    assert opened.status == 200, opened.text()
    refused = referrer.context.request.get(orthanc.url(f"/studies/{studies['beta'][0]}"))
    assert refused.status == 403

    # Their API key, listed and revoked (after a confirmation)
    maker = orthanc.client(orthanc.login(REFERRER, STRONG))
    made = maker.post(orthanc.url("/api/keys"), json={"name": f"adm-users-{RUN}"}, timeout=10)
    assert made.status_code == 201, made.text
    page.reload()
    expect(page.locator("#detail-title")).to_have_text(REFERRER)  # chosen: in the address
    key_row = page.locator(f"#keys tr[data-key='{made.json()['id']}']")
    expect(key_row.locator(".badge")).to_have_text("Active")
    expect(key_row).to_contain_text("Referring physician")
    expect(key_row).to_contain_text("never used")
    key_row.get_by_role("button", name=f"Revoke the key adm-users-{RUN}").click()
    expect(page.locator("#message")).to_have_text(f"API key adm-users-{RUN} revoked.")
    expect(key_row.locator(".badge.bad")).to_have_text("Revoked")
    assert page.dialogs[-1].startswith(f"Revoke the API key adm-users-{RUN}?")  # type: ignore[attr-defined]
    page.screenshot(path=str(screenshots / "admin-users.png"), full_page=True)

    # A radiologist signed in elsewhere, disabled: their next page asks them to sign in
    choose(page, RADIOLOGIST)
    expect(page.locator("#studies-block")).to_be_hidden()
    page.click("#disable")
    expect(page.locator("#message")).to_have_text(f"{RADIOLOGIST} is disabled and signed out.")
    assert page.dialogs[-1].startswith(f"Disable {RADIOLOGIST}?")  # type: ignore[attr-defined]
    expect(page.locator("#detail-badges .badge.bad")).to_have_text("Disabled")
    expect(page.locator(f"#user-rows tr[data-user='{RADIOLOGIST}'] .badge.bad")).to_have_text(
        "Disabled"
    )
    radiologist.reload()
    radiologist.wait_for_url("**/login?next=**")
    page.click("#enable")
    expect(page.locator("#detail-badges .badge.good").first).to_have_text("Active")
    assert not user(orthanc, RADIOLOGIST)["disabled"]

    # Enabled again, they sign in; the administration page is not theirs
    radiologist.fill("#username", RADIOLOGIST)
    radiologist.fill("#password", PASSWORD)
    radiologist.click("#submit")
    radiologist.wait_for_url("**/reading")
    assert user(orthanc, RADIOLOGIST)["lastSignInAt"]
    refusal = radiologist.goto(orthanc.url("/admin"))
    assert refusal is not None and refusal.status == 403

    # Their password reset: they must change it at next sign-in
    reset = page.locator("#reset-form [name=password]")
    reset.fill("short")
    page.click("#reset-button")
    expect(page.locator("#reset-error")).to_have_text(
        "The password does not follow the policy yet."
    )
    expect(rule(page, "reset", "length")).to_have_class("unmet")
    reset.fill("Temporary-Words-77")
    page.click("#reset-button")
    expect(page.locator("#message")).to_have_text(
        f"Password of {RADIOLOGIST} reset: they must change it at their next sign-in."
    )
    expect(page.locator("#detail-badges .badge.info")).to_have_text(
        "Must change password at next sign-in"
    )
    expect(page.locator(f"#user-rows tr[data-user='{RADIOLOGIST}'] .badge.info")).to_be_visible()
    expect(page.locator("#detail")).to_contain_text("Last sign-in")
    assert user(orthanc, RADIOLOGIST)["mustChangePassword"] is True

    # Deleted, once the confirmation is accepted
    choose(page, THROWAWAY)
    page.click("#delete")
    expect(page.locator("#message")).to_have_text(f"User {THROWAWAY} deleted.")
    expect(page.locator(f"#user-rows tr[data-user='{THROWAWAY}']")).to_have_count(0)
    expect(page.locator("#no-choice")).to_be_visible()
    assert orthanc.get(f"/api/users/{THROWAWAY}").status_code == 404

    # The last active admin stays one: the page says why
    admins = [
        someone
        for someone in orthanc.get("/api/users").json()["users"]
        if someone["role"] == "admin" and not someone["disabled"]
    ]
    if len(admins) == 1:  # other tests may have made admins: then "admin" is not the last
        choose(page, "admin")
        expect(page.locator("#last-admin")).to_be_visible()
        expect(page.locator("#myself")).to_be_visible()
        page.select_option("#role-menu", "radiologist")
        page.click("#change-role")
        last_admin = (
            "This is the last active administrator: make another user an administrator first."
        )
        expect(page.locator("#message")).to_have_text(last_admin)
        expect(page.locator("#message")).not_to_have_class("ok")
        page.click("#disable")
        expect(page.locator("#message")).to_have_text(last_admin)
        assert user(orthanc, "admin")["role"] == "admin"
        assert not user(orthanc, "admin")["disabled"]
        page.screenshot(path=str(screenshots / "admin-users-last-admin.png"), full_page=True)
    no_page_errors(page)


def test_the_users_page_in_french(
    orthanc: OrthancServer,
    studies: dict[str, tuple[str, str]],
    browser: Browser,
    contexts: list[BrowserContext],
    screenshots: Path,
) -> None:
    if orthanc.get("/api/auth/me").json().get("language") not in (None, "fr"):
        pytest.skip("the admin chose a language of their own: the browser's is not asked")
    # A referring physician with a linked study and a revoked key
    body = {"username": FRENCH, "password": STRONG, "role": "referrer"}
    assert orthanc.post("/api/users", json={**body, "studies": [studies["beta"][1]]}).ok
    maker = orthanc.client(orthanc.login(FRENCH, STRONG))
    key = maker.post(orthanc.url("/api/keys"), json={"name": "scanner-script"}, timeout=10)
    assert maker.delete(orthanc.url(f"/api/keys/{key.json()['id']}"), timeout=10).ok
    french = f"/admin?user={FRENCH}"
    page = signed_in(browser, contexts, orthanc, french, "admin", ADMIN_PASSWORD, locale="fr-FR")
    expect(page.locator("header nav a[aria-current=page]")).to_have_text("Utilisateurs")
    expect(page).to_have_title("Utilisateurs · Hounsfield")
    expect(page.locator("#detail-title")).to_have_text(FRENCH)
    expect(page.locator("#studies-block h3")).to_have_text("Examens liés")
    expect(page.locator("#linked li")).to_have_count(1)
    expect(page.locator("#keys .badge.bad")).to_have_text("Révoquée")
    page.locator("#create-form [name=username]").fill("nouveau")
    page.locator("#create-form [name=password]").press_sequentially("nouveau")
    expect(rule(page, "create", "name")).to_have_class("unmet")
    expect(rule(page, "create", "length")).to_contain_text("Au moins 12 caractères")
    page.screenshot(path=str(screenshots / "admin-users-fr.png"), full_page=True)
    assert untranslated(page, *USERS_WORDS) == set()
    no_page_errors(page)

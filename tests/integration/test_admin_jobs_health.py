"""The jobs page (/admin/jobs.html) and the health page (/admin/health) in Chromium.

An admin sees a failed job's error and attempts and retries it (a new job appears); a
running job's progress, cancelled from the keyboard; the list filtered by kind and state
(kept in the address) and refreshed by itself: a job submitted behind the page's back
appears, an open "Details" stays open and the focus stays where it was. The health page
shows every component of GET /api/health with the same figures (the worker processes, the
queue's depth and oldest job, free disk), and the effective configuration as a tree a
filter narrows, its secrets masked (a private server holding a FHIR password). The metrics
role opens the health page without the configuration, and is refused the other pages; a
radiologist is refused both. Both pages in French have every word translated.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from hounsfield.admin import CATALOGUES
from tests.support.browser import no_page_errors
from tests.support.browser import signed_in as browser_signed_in
from tests.support.reading import PASSWORD, untranslated
from tests.support.server import ADMIN_PASSWORD, OrthancServer, wait_for

RUN = str(int(time.time() * 1000) % 10**7)  # the shared server keeps earlier tests' users
ADMIN = f"adm-jobs-{RUN}-admin"
METRICS = f"adm-jobs-{RUN}-metrics"
RADIOLOGIST = f"adm-jobs-{RUN}-rad"
WORDS = (CATALOGUES / "common", CATALOGUES / "jobs", CATALOGUES / "health")
SECRET = "s3cret-value-adm-jobs"
REFRESHED_MS = 12_000  # the pages refresh every 2 s (jobs) and 5 s (health)


@pytest.fixture(scope="module")
def people(orthanc: OrthancServer) -> dict[str, str]:
    """An admin of this file's own (its language is the browser's), a metrics account and a
    radiologist: username -> role."""
    made = {ADMIN: "admin", METRICS: "metrics", RADIOLOGIST: "radiologist"}
    for username, role in made.items():
        body = {"username": username, "password": PASSWORD, "role": role}
        answer = orthanc.post("/api/users", json=body)
        assert answer.status_code == 201, answer.text
    return made


def signed_in(
    browser: Browser,
    contexts: list[BrowserContext],
    orthanc: OrthancServer,
    path: str,
    username: str = ADMIN,
    password: str = PASSWORD,
    locale: str = "en-GB",
) -> Page:
    """``username`` (this file's admin by default) signed in on ``path``, named in the header."""
    return browser_signed_in(
        browser,
        contexts,
        orthanc,
        path,
        username,
        password,
        locale=locale,
        account="header .account",
    )


def row(page: Page, job_id: int):
    return page.locator(f"#rows tr[data-job='{job_id}']")


def figure(page: Page, component: str, name: str):
    return page.locator(f"section[data-component='{component}'] dd[data-figure='{name}']")


def test_an_admin_follows_cancels_retries_and_filters_jobs(
    orthanc: OrthancServer,
    people: dict[str, str],
    browser: Browser,
    contexts: list,
    screenshots: Path,
) -> None:
    broken = f"adm-jobs-broken-{RUN}"
    failed = orthanc.wait_job(orthanc.submit("tests.fail", message=broken)["id"])
    assert failed["state"] == "failed" and broken in failed["error"]
    page = signed_in(browser, contexts, orthanc, "/admin/jobs.html")
    expect(page.locator("header nav a[aria-current=page]")).to_have_text("Jobs")
    assert page.title() == "Jobs — Administration"

    # A failed job: its error, its attempts; the details say it whole
    failure = row(page, failed["id"])
    expect(failure.locator("td.state .badge")).to_have_text("Failed")
    expect(failure.locator("td.state .badge")).to_have_class("badge bad")
    expect(failure.locator("td.outcome p.error")).to_contain_text(broken)
    expect(failure.locator("td.attempts")).to_have_text(
        f"{failed['attempts']} of {failed['maxAttempts']}"
    )
    expect(failure.locator("td.kind")).to_have_text("tests.fail")
    failure.locator("details summary").click()
    expect(failure.locator("details dl.facts dd pre").first).to_have_text(failed["error"])

    # Retried: the server's new job appears in the list, and fails in its turn
    failure.get_by_role("button", name=f"Retry job {failed['id']}").click()
    said = page.locator("#message")
    expect(said).to_have_class("ok")
    expect(said).to_have_text(re.compile(rf"^Job {failed['id']} submitted again as job \d+\.$"))
    retried = int(said.inner_text().rsplit(" ", 1)[1].rstrip("."))
    assert orthanc.job(retried)["params"] == {"message": broken}
    expect(row(page, retried)).to_be_visible()
    expect(row(page, retried).locator("td.state .badge")).to_have_text(
        "Failed", timeout=REFRESHED_MS
    )

    # A running job: its progress as a bar and in words; cancelled from the keyboard
    sleeping = orthanc.submit("tests.sleep", seconds=40)["id"]
    running = row(page, sleeping)
    expect(running.locator("td.state .badge")).to_have_text("Running", timeout=REFRESHED_MS)
    page.wait_for_function(
        f"document.querySelector(\"tr[data-job='{sleeping}'] progress\")?.value > 0",
        timeout=REFRESHED_MS,
    )
    expect(running.locator("td.progress .percent")).to_have_text(re.compile(r"^\d+%$"))
    shown = int(running.locator("progress").get_attribute("value"))
    assert 0 < shown < 100
    page.screenshot(path=str(screenshots / "admin-jobs.png"), full_page=True)
    running.get_by_role("button", name=f"Cancel job {sleeping}").focus()
    page.keyboard.press("Enter")
    expect(said).to_have_text(f"Job {sleeping}: cancellation requested.")
    expect(running).to_be_focused()  # the button went away: the row holds the focus
    expect(running.locator("td.state .badge").first).to_have_text("Cancelled", timeout=REFRESHED_MS)
    assert orthanc.job(sleeping)["state"] == "cancelled"
    expect(running.get_by_role("button", name=f"Retry job {sleeping}")).to_be_visible()

    # Filtered by kind, then state: the address keeps both
    page.select_option("#kind", "tests.fail")
    expect(page).to_have_url(re.compile(r"\?kind=tests\.fail$"))
    page.wait_for_function(
        "[...document.querySelectorAll('#rows td.kind')].every(c => c.textContent === 'tests.fail')"
    )
    page.select_option("#state", "failed")
    expect(page).to_have_url(re.compile(r"\?kind=tests\.fail&state=failed$"))
    total = orthanc.get("/api/jobs?kind=tests.fail&state=failed").json()["total"]
    expect(page.locator("#summary")).to_have_text(f"Jobs, newest first: {total}")
    page.wait_for_function(
        "[...document.querySelectorAll('#rows td.state .badge')].every("
        "b => b.dataset.state === 'failed')"
    )
    expect(row(page, sleeping)).to_have_count(0)
    expect(row(page, retried)).to_be_visible()

    # Refreshed by itself: a job failed behind the page's back appears on top; the open
    # details stay open, the focus where it was
    row(page, retried).locator("details summary").click()
    page.focus("#state")
    behind = orthanc.wait_job(orthanc.submit("tests.fail", message=f"{broken}-behind")["id"])
    expect(page.locator("#rows tr").first).to_have_attribute(
        "data-job", str(behind["id"]), timeout=REFRESHED_MS
    )
    expect(row(page, behind["id"]).locator("td.outcome p.error")).to_contain_text("-behind")
    expect(row(page, retried).locator("details")).to_have_attribute("open", "")
    expect(page.locator("#state")).to_be_focused()
    expect(page.locator("#summary")).to_have_text(f"Jobs, newest first: {total + 1}")

    # A reload keeps the filters
    page.reload()
    expect(page.locator("#kind")).to_have_value("tests.fail")
    expect(page.locator("#state")).to_have_value("failed")
    no_page_errors(page)


def test_the_health_page_shows_every_component_and_the_configuration(
    orthanc: OrthancServer,
    people: dict[str, str],
    browser: Browser,
    contexts: list,
    screenshots: Path,
) -> None:
    # Two workers busy, one job waiting: a queue with a depth and an oldest job
    workers = orthanc.health()["components"]["workers"]["configured"]
    sleepers = [orthanc.submit("tests.sleep", seconds=10)["id"] for _ in range(workers + 1)]
    try:
        page = signed_in(browser, contexts, orthanc, "/admin/health")
        report = orthanc.health()
        components = report["components"]
        expect(page.locator("#status")).to_have_text(
            "All components healthy" if report["status"] == "ok" else re.compile("^Needs")
        )
        cards = page.locator("#components section.component")
        expect(cards).to_have_count(len(components))
        assert cards.evaluate_all("all => all.map(s => s.dataset.component)") == list(components)
        for name, component in components.items():
            expect(page.locator(f"section[data-component='{name}'] h2 .badge")).to_have_text(
                "Healthy" if component["healthy"] else "Unhealthy"
            )

        # The same figures as the API's
        workers_now = components["workers"]
        expect(figure(page, "workers", "configured")).to_have_text(str(workers_now["configured"]))
        expect(figure(page, "workers", "alive").locator(".alive")).to_have_text(
            str(workers_now["alive"])
        )
        pids = page.locator("section[data-component='workers'] .more td .pid")
        expect(pids).to_have_text([str(w["pid"]) for w in workers_now["workers"] if w["pid"]])
        orthanc_now = components["orthanc"]
        expect(figure(page, "orthanc", "node")).to_have_text(orthanc_now["node"])
        expect(figure(page, "orthanc", "starts")).to_have_text(str(orthanc_now["starts"]))
        expect(figure(page, "database", "backend")).to_have_text("SQLite")
        expect(figure(page, "database", "migrations")).to_have_text(
            str(components["database"]["migrations"])
        )
        storage = components["storage"]
        expect(figure(page, "storage", "path")).to_have_text(storage["path"])
        free = figure(page, "storage", "free").locator(".bytes")
        expect(free).to_have_text(re.compile(r"^\d[\d,]*(\.\d)? (KiB|MiB|GiB|TiB)$"))
        assert abs(int(free.get_attribute("data-bytes")) - storage["freeBytes"]) < 200e6
        minimum = figure(page, "storage", "minimum").locator(".bytes")
        assert int(minimum.get_attribute("data-bytes")) == storage["minimumFreeBytes"]
        # MinimumFreeSpaceMB counts MiB: the page says it the same way
        expect(minimum).to_have_text(f"{storage['minimumFreeBytes'] // 2**20} MiB")
        expect(figure(page, "events", "pending")).to_have_text(str(components["events"]["pending"]))

        # The queue: its depth and oldest job as the API says them at the same moment
        def agreed() -> bool:
            queue = orthanc.health()["components"]["queue"]
            depth = figure(page, "queue", "depth").inner_text()
            return queue["depth"] >= 1 and depth == str(queue["depth"])

        wait_for(agreed, REFRESHED_MS / 1000, "the page's queue depth to be the API's")
        expect(figure(page, "queue", "oldest")).to_have_text(re.compile(r"\d+ sec"))
        failed_link = figure(page, "queue", "jobs").locator("a[data-state=failed]")
        expect(failed_link).to_have_attribute("href", "/admin/jobs.html?state=failed")
        page.screenshot(path=str(screenshots / "admin-health.png"), full_page=True)

        # The configuration: a tree, narrowed by a filter
        tree = page.locator("#config-tree")
        expect(tree.locator("li[data-path='StableAge'] .value")).to_have_text(
            str(orthanc.get("/api/admin/configuration").json()["configuration"]["StableAge"])
        )
        expect(tree.locator("li[data-path='DicomWeb.Root']")).to_be_hidden()  # folded
        page.fill("#config-filter", "dicom-web")
        expect(tree.locator("li[data-path='DicomWeb.Root'] .value")).to_have_text('"/dicom-web/"')
        expect(tree.locator("li[data-path='DicomWeb.Root']")).to_be_visible()
        expect(tree.locator("li[data-path='StableAge']")).to_be_hidden()
        expect(page.locator("#config-count")).to_have_text("Matching: 1")
        page.fill("#config-filter", "no-such-setting-anywhere")
        expect(page.locator("#config-none")).to_be_visible()
        page.fill("#config-filter", "")
        expect(tree.locator("li[data-path='StableAge']")).to_be_visible()
        expect(tree.locator("li[data-path='DicomWeb.Root']")).to_be_hidden()
        page.click("#expand")
        expect(tree.locator("li[data-path='Hounsfield.Auth.Enabled']")).to_be_visible()

        # Live: the page follows the queue as it drains, leaving the open tree alone
        for job_id in sleepers:
            assert orthanc.post(f"/api/jobs/{job_id}/cancel").status_code == 200
        expect(figure(page, "queue", "depth")).to_have_text("0", timeout=REFRESHED_MS)
        expect(figure(page, "queue", "oldest")).to_have_text("No job waiting")
        expect(tree.locator("li[data-path='Hounsfield.Auth.Enabled']")).to_be_visible()
        no_page_errors(page)
    finally:
        for job_id in sleepers:
            orthanc.post(f"/api/jobs/{job_id}/cancel")  # 409 once finished: fine


def test_the_configuration_shows_secrets_masked(
    make_orthanc, browser: Browser, contexts: list, screenshots: Path
) -> None:
    private = make_orthanc(
        hounsfield__workers=1,
        hounsfield__extensions=["hounsfield.admin"],
        hounsfield_his__fhir__password=SECRET,
    ).start()
    assert SECRET not in private.get("/api/admin/configuration").text
    page = signed_in(browser, contexts, private, "/admin/health", "admin", ADMIN_PASSWORD)
    page.fill("#config-filter", "password")
    secret = page.locator("#config-tree li[data-path='HounsfieldHIS.Fhir.Password']")
    expect(secret.locator(".value.masked")).to_have_text("********")
    expect(secret.locator(".badge")).to_have_text("masked")
    # An empty password is nothing to hide: shown as it is
    expect(page.locator("li[data-path='PostgreSQL.Password'] .value")).to_have_text('""')
    assert SECRET not in page.content()
    page.screenshot(path=str(screenshots / "admin-health-masked.png"), full_page=True)
    no_page_errors(page)


def test_the_metrics_role_sees_health_only(
    orthanc: OrthancServer, people: dict[str, str], browser: Browser, contexts: list
) -> None:
    page = signed_in(browser, contexts, orthanc, "/admin/health", METRICS)
    components = orthanc.health()["components"]
    expect(page.locator("#components section.component")).to_have_count(len(components))
    expect(figure(page, "workers", "configured")).to_have_text(
        str(components["workers"]["configured"])
    )
    expect(page.locator("#configuration")).to_have_count(0)
    expect(figure(page, "queue", "jobs").locator("a")).to_have_count(0)  # not their page
    expect(figure(page, "queue", "jobs").locator("span[data-state=failed]")).to_be_visible()
    expect(page.locator("header nav a")).to_have_text(["Health"])
    no_page_errors(page)

    metrics = orthanc.client(orthanc.login(METRICS, PASSWORD))
    for path in ("/admin/jobs.html", "/admin", "/admin/jobs.js", "/api/admin/configuration"):
        assert metrics.get(orthanc.url(path), timeout=10).status_code == 403, path
    assert metrics.get(orthanc.url("/admin/health/health.js"), timeout=10).status_code == 200

    radiologist = orthanc.client(orthanc.login(RADIOLOGIST, PASSWORD))
    for path in ("/admin/health", "/admin/health/health.js", "/admin/jobs.html", "/admin"):
        assert radiologist.get(orthanc.url(path), timeout=10).status_code == 403, path
    refused = signed_in_refused(browser, contexts, orthanc, "/admin/health", RADIOLOGIST)
    assert refused.status == 403


def signed_in_refused(
    browser: Browser, contexts: list, orthanc: OrthancServer, path: str, username: str
):
    """The answer to a browser signed in as ``username`` that opens ``path``."""
    context = browser.new_context(locale="en-GB")
    contexts.append(context)
    page = context.new_page()
    page.goto(orthanc.url("/login"))
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.wait_for_url(lambda url: "/login" not in url)
    return page.goto(orthanc.url(path))


def test_both_pages_in_french(
    orthanc: OrthancServer,
    people: dict[str, str],
    browser: Browser,
    contexts: list,
    screenshots: Path,
) -> None:
    page = signed_in(browser, contexts, orthanc, "/admin/jobs.html", locale="fr-FR")
    expect(page.locator("header nav a[aria-current=page]")).to_have_text("Tâches")
    expect(page.locator("#rows tr").first).to_be_visible()
    page.locator("#rows tr").first.locator("details summary").click()
    page.screenshot(path=str(screenshots / "admin-jobs-fr.png"), full_page=True)
    assert untranslated(page, *WORDS) == set()
    page.goto(orthanc.url("/admin/health"))
    healthy = orthanc.health()["status"] == "ok"
    expect(page.locator("#status")).to_have_text(
        "Tous les composants sont sains" if healthy else re.compile("^À surveiller")
    )
    expect(page.locator("#config-tree li").first).to_be_visible()
    page.screenshot(path=str(screenshots / "admin-health-fr.png"), full_page=True)
    # The configuration's keys are Orthanc's own names ("Database"): never translated
    page.locator("#config-tree").evaluate("tree => tree.replaceChildren()")
    assert untranslated(page, *WORDS) == set()
    no_page_errors(page)

"""The AI findings on the radiologists' pages, in Chromium, against a real Orthanc with the
reading and AI extensions.

Two synthetic CT studies are analysed as they become stable: an abdomen with a metal
sphere, a head with a hyperdense (bleed-like) sphere. The worklist shows each study's AI
summary, and flags the head (a critical finding nobody has reviewed) in words as well as
with an icon. On the reading page the findings panel lists the findings most severe first,
with their size; a radiologist confirms the metal finding (the API keeps the review),
inserts it into the report (saved as if typed), corrects the head's finding, and runs
the analyses again from the page. "Show" opens the viewer at the finding's slice. A French
radiologist gets the panel in French.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.ai import Head, Phantom, Sphere, ct_slices, store_series
from tests.support.reading import PASSWORD, Department, reading_server, untranslated
from tests.support.server import wait_for

METAL = Sphere(centre=(20, 40, 56), radius_mm=6.0, hu=3000)
BLEED = Sphere(centre=(20, 40, 52), radius_mm=10.0, hu=70)
SHOTS = Path("/tmp/ai_pages")


@pytest.fixture(scope="module")
def department(tmp_path_factory: pytest.TempPathFactory, dicom_file) -> Iterator[Department]:
    orthanc = reading_server(
        tmp_path_factory.mktemp("ai-pages"), "hounsfield.reading", "hounsfield.ai"
    )
    department = Department(orthanc, dicom_file)
    department.hire("dr-ai-ana", "radiologist")
    department.hire("dr-ai-fred", "radiologist")
    french = department.call("dr-ai-fred", "PUT", "/api/auth/me", json={"language": "fr"})
    assert french.status_code == 200, french.text
    department.hire("tech-ai-tim", "technician")
    yield department
    orthanc.stop()


def findings(department: Department, study: str) -> dict:
    return department.call("dr-ai-ana", "GET", f"/api/studies/{study}/findings").json()


def analysed(department: Department, study: str, analyses: int) -> dict:
    """The study's findings once ``analyses`` analyses are stored and its row says so."""

    def done() -> dict | None:
        failed = department.orthanc.get("/api/jobs?state=failed&kind=ai.analyze").json()["jobs"]
        assert failed == [], [job["error"] for job in failed]  # no use waiting
        answer = findings(department, study)
        row = department.row(study)
        ready = len(answer["analyses"]) >= analyses and row and row["aiSummary"]
        return answer if ready else None

    return wait_for(done, 180, f"{analyses} analyses of study {study}", interval=0.5)


@pytest.fixture(scope="module")
def studies(department: Department) -> dict[str, str]:
    """Both studies stored at once (analysed side by side), once analysed: their ids."""
    abdomen = Phantom(spheres=(METAL,))
    head = Head(spheres=(BLEED,))
    stored = {
        "abdomen": store_series(
            department.orthanc,
            ct_slices(
                abdomen.voxels(),
                abdomen.spacing,
                patient_id="AIP-001",
                patient_name="Metal^Marta",
                description="CT abdomen",
            ),
        ),
        "head": store_series(
            department.orthanc,
            ct_slices(
                head.voxels(),
                head.spacing,
                patient_id="AIP-002",
                patient_name="Head^Hugo",
                description="CT head",
                body_part="HEAD",
            ),
        ),
    }
    analysed(department, stored["abdomen"], 2)  # metal, quality
    analysed(department, stored["head"], 3)  # intracranial, metal, quality
    return stored


@pytest.fixture
def people(browser: Browser) -> Iterator[list[BrowserContext]]:
    contexts: list[BrowserContext] = []
    yield contexts
    for context in contexts:
        context.close()


def signed_in(browser: Browser, people: list, department: Department, username: str) -> Page:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-GB")
    people.append(context)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(department.orthanc.url("/login"))
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.wait_for_url("**/reading")
    page.errors = errors  # type: ignore[attr-defined]
    return page


def row(page: Page, study: str):
    return page.locator(f'#worklist tbody tr[data-id="{study}"]')


def item(page: Page, finding: dict):
    return page.locator(f'#ai-list li[data-finding="{finding["id"]}"]')


def of(answer: dict, analyzer: str, severity: str | None = None) -> dict:
    return next(
        f
        for f in answer["findings"]
        if f["analyzer"] == analyzer and (severity is None or f["severity"] == severity)
    )


def millimetres(value: float) -> str:
    """As the page writes a size in English (one decimal at most)."""
    return f"{round(value, 1):g} mm"


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def test_a_french_radiologist_sees_the_flag_and_the_findings_in_french(
    department: Department, studies: dict[str, str], browser: Browser, people: list
) -> None:
    fred = signed_in(browser, people, department, "dr-ai-fred")
    head, abdomen = studies["head"], studies["abdomen"]
    flag = row(fred, head).locator(".flag")
    expect(flag).to_be_visible()
    expect(flag.locator(".visually-hidden")).to_have_text("Résultat critique de l'IA à vérifier")
    expect(row(fred, head).locator(".priority-stat")).to_be_visible()  # raised to stat
    expect(row(fred, head).locator(".ai-summary")).to_contain_text("to review")  # the server's
    expect(row(fred, abdomen).locator(".ai-summary")).to_contain_text("IA")
    expect(row(fred, abdomen).locator(".flag")).to_have_count(0)
    shot(fred, "worklist-fr.png")

    fred.goto(department.orthanc.url(f"/reading/study.html?id={head}"))
    critical = item(fred, of(findings(department, head), "intracranial", "critical"))
    expect(critical).to_have_class(re.compile(r"\bflagged\b"))
    expect(critical.locator(".badge.flag")).to_have_text("⚑ À vérifier")
    expect(critical.locator(".badge.severity")).to_have_text("Critique")
    expect(critical.locator(".review-state")).to_have_text("Pas encore vérifié")
    expect(fred.locator("#ai-list li").first).to_have_attribute(
        "data-finding", critical.get_attribute("data-finding") or ""
    )  # most severe first
    expect(fred.locator("#ai-summary")).to_contain_text("à vérifier : 1")
    expect(fred.locator("#ai-measurements")).to_contain_text("Volume hyperdense")
    expect(fred.locator("#ai-analyze")).to_have_text("Analyser")
    expect(critical.locator("button[data-action=confirmed]")).to_have_text("Confirmer")
    shot(fred, "reading-head-fr.png")
    assert untranslated(fred) == set()
    assert fred.errors == []  # type: ignore[attr-defined]


def test_a_radiologist_reviews_the_findings_and_reports_them(
    department: Department, studies: dict[str, str], browser: Browser, people: list
) -> None:
    abdomen, head = studies["abdomen"], studies["head"]
    answer = findings(department, abdomen)
    metal = of(answer, "metal")
    ana = signed_in(browser, people, department, "dr-ai-ana")
    expect(row(ana, abdomen).locator(".ai-summary")).to_contain_text(answer["summary"])
    expect(row(ana, head).locator(".flag")).to_have_attribute(
        "title", "Critical AI finding awaiting review"
    )
    shot(ana, "worklist-en.png")

    # The abdomen: the metal finding, its size, where it is
    row(ana, abdomen).click()
    ana.wait_for_url(f"**/reading/study.html?id={abdomen}")
    found = item(ana, metal)
    expect(found.locator(".badge.severity")).to_have_text("Minor")
    expect(found.locator(".description")).to_have_text(metal["description"])
    expect(found.locator(".details")).to_contain_text(millimetres(metal["size_mm"]))
    expect(found.locator(".details")).to_contain_text(re.compile(r"series 2, image \d+"))
    expect(found.locator(".review-state")).to_have_text("Not reviewed yet")
    expect(ana.locator("#ai-measurements")).to_contain_text("Metal objects")

    # "Show": the viewer at the finding's series and slice
    with ana.context.expect_page() as opened:
        found.locator("button[data-action=show]").click()
    viewer = opened.value
    query = parse_qs(urlsplit(viewer.url).query)
    viewer.close()
    series = department.orthanc.get(f"/series/{metal['location']['series']}").json()
    assert query["initialSOPInstanceUID"] == [metal["location"]["instance"]]
    assert query["initialSeriesInstanceUID"] == [series["MainDicomTags"]["SeriesInstanceUID"]]
    assert query["StudyInstanceUIDs"] == [department.row(abdomen)["studyInstanceUid"]]

    # Confirmed: the page says so, and the API keeps it
    found.locator("button[data-action=confirmed]").click()
    expect(found.locator(".review-state")).to_contain_text("Confirmed by dr-ai-ana")
    expect(ana.locator("#ai-progress")).to_have_text("Finding confirmed.")
    kept = department.call("dr-ai-ana", "GET", f"/api/findings/{metal['id']}").json()
    assert kept["review"]["decision"] == "confirmed" and kept["review"]["by"] == "dr-ai-ana"
    assert [h["decision"] for h in kept["history"]] == ["confirmed"]

    # Inserted into the report once the study is claimed (the report read-only before)
    insert = found.locator("button[data-action=insert]")
    expect(insert).to_be_disabled()
    ana.click("#claim")
    expect(insert).to_be_enabled()
    insert.click()
    report = ana.locator("textarea[name=findings]")
    expect(report).to_have_value(re.compile(r"Metal or high-density .*, series 2, image \d+\.$"))
    expect(ana.locator("#save-state")).to_have_text(re.compile("^Saved at"))
    saved = department.call("dr-ai-ana", "GET", f"/api/studies/{abdomen}/report").json()
    assert saved["sections"]["findings"] == report.input_value()
    assert saved["sections"]["findings"].startswith(metal["description"])
    shot(ana, "reading-abdomen-en.png")

    # Analysed again from the page: the jobs followed to the end, the review kept
    ana.click("#ai-analyze")
    expect(ana.locator("#ai-progress")).to_have_text(
        re.compile(r"^Analyses finished: \d+\.$"), timeout=60_000
    )
    expect(found.locator(".review-state")).to_contain_text("Confirmed by dr-ai-ana")

    # The head: the critical finding corrected, and the flag lowered
    ana.goto(department.orthanc.url(f"/reading/study.html?id={head}"))
    region = of(findings(department, head), "intracranial", "critical")
    critical = item(ana, region)
    expect(critical.locator(".badge.flag")).to_have_text("⚑ Needs review")
    shot(ana, "reading-head-en.png")
    critical.locator("button[data-action=modify]").click()
    form = critical.locator("form.correction")
    form.locator("button[data-action=save]").click()
    expect(ana.locator("#ai-message")).to_contain_text("Nothing was changed")
    form.locator("select[name=severity]").select_option("moderate")
    form.locator("input[name=size_mm]").fill("18")
    form.locator("textarea[name=notes]").fill("Calcification more likely.")
    shot(ana, "reading-head-modify-en.png")
    form.locator("button[data-action=save]").click()
    expect(critical.locator(".review-state")).to_contain_text("Corrected by dr-ai-ana")
    expect(critical.locator(".review-state")).to_contain_text("Calcification more likely.")
    expect(critical.locator(".badge.severity")).to_have_text("Moderate")
    expect(critical.locator(".details")).to_contain_text("18 mm")
    expect(critical.locator(".badge.flag")).to_have_count(0)
    kept = department.call("dr-ai-ana", "GET", f"/api/findings/{region['id']}").json()
    assert kept["review"]["changes"] == {"severity": "moderate", "size_mm": 18}
    assert department.row(head)["flagged"] is False
    shot(ana, "reading-head-reviewed-en.png")
    assert ana.errors == []  # type: ignore[attr-defined]


def test_a_technician_may_analyse_but_not_review(
    department: Department, studies: dict[str, str], browser: Browser, people: list
) -> None:
    tim = signed_in(browser, people, department, "tech-ai-tim")
    tim.goto(department.orthanc.url(f"/reading/study.html?id={studies['abdomen']}"))
    expect(tim.locator("#ai-list li").first).to_be_visible()
    expect(tim.locator("#ai-analyze")).to_be_visible()
    expect(tim.locator("#ai-list button[data-action=confirmed]")).to_have_count(0)
    expect(tim.locator("#ai-list button[data-action=insert]")).to_have_count(0)
    assert tim.errors == []  # type: ignore[attr-defined]

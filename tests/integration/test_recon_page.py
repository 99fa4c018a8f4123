"""The technicians' reconstruction page in Chromium: runs of a series, a new run, its QC."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.support.angiography import angiography_run
from tests.support.recon import reconstruction_of
from tests.support.server import OrthancServer, wait_for

PASSWORD = "Recon-Page-2468"
SMALL = {"projections": 60, "detector_columns": 48, "detector_rows": 32, "pixel_spacing_mm": 1.0}


def test_a_technician_tunes_a_reconstruction_and_compares_runs(
    orthanc: OrthancServer, page: Page, screenshots: Path
) -> None:
    simulated = orthanc.wait_job(
        orthanc.post("/api/acquisitions/simulate", json=SMALL).json()["id"], timeout=120
    )["result"]
    automatic = reconstruction_of(orthanc, simulated["series"])
    user = {"username": "recon-technician", "password": PASSWORD, "role": "technician"}
    assert orthanc.post("/api/users", json=user).ok

    page.goto(orthanc.url(f"/recon?series={simulated['series']}"))
    page.wait_for_url("**/login?next=**")
    page.fill("#username", user["username"])
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.wait_for_url(f"**/recon?series={simulated['series']}")
    expect(page.locator("#series")).to_have_value(simulated["series"])
    automatic_row = page.locator("#runs tbody tr", has_text=f"{automatic['id']}")
    expect(automatic_row).to_contain_text("succeeded")

    page.fill("input[name=iterations]", "0")  # the form's limits are the API's
    page.click("#run")
    expect(page.locator("input[name=iterations]:invalid")).to_have_count(1)
    expect(page.locator("#runs tbody tr")).to_have_count(1)

    page.fill("input[name=iterations]", "")
    page.fill("input[name=hann_cut]", "0.5")
    page.click("#run")
    tuned = page.locator("#runs tbody tr", has_text="FDK hann 0.5 preview")
    expect(tuned).to_contain_text("succeeded", timeout=60_000)
    expect(page.locator("#runs tbody tr")).to_have_count(2)
    expect(tuned.locator("a", has_text="open")).to_have_attribute(
        "href", f"/ohif/viewer?StudyInstanceUIDs={simulated['studyInstanceUid']}"
    )
    page.screenshot(path=str(screenshots / "recon-page.png"))


def test_a_series_that_cannot_be_reconstructed_says_why(
    orthanc: OrthancServer, page: Page, screenshots: Path, tmp_path: Path
) -> None:
    run = angiography_run("recon-page-8-bit", bits=8)
    run.save_as(tmp_path / "run.dcm", enforce_file_format=True)
    orthanc.store(tmp_path / "run.dcm")
    found = orthanc.post("/tools/lookup", data=run.SeriesInstanceUID).json()
    series = next(item["ID"] for item in found if item["Type"] == "Series")
    wait_for(
        lambda: orthanc.get("/api/reconstructions", params={"series": series}).json()["series"],
        30,
        "the series to be judged",
    )
    page.goto(orthanc.url("/login"))
    page.fill("#username", "recon-technician")
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.wait_for_url(lambda url: "/login" not in url)  # a technician's landing page
    page.goto(orthanc.url(f"/recon?series={series}"))
    expect(page.locator("#series-info")).to_have_text(
        "Cannot be reconstructed: projections must be 16-bit, found 8 bits."
    )
    expect(page.locator("#run")).to_be_disabled()
    expect(page.locator("#series option", has_text="cannot be reconstructed")).to_have_count(1)
    page.screenshot(path=str(screenshots / "recon-page-not-reconstructable.png"))
    # Orthanc Explorer's "Reconstruct" on a study: its projection series, or why there is none
    study = orthanc.get(f"/series/{series}").json()["ParentStudy"]
    page.goto(orthanc.url(f"/recon?study={study}"))
    expect(page.locator("#series")).to_have_value(series)
    page.goto(orthanc.url("/recon?study=no-such-study"))
    expect(page.locator("#series-info")).to_have_text(
        "This study has no projection series to reconstruct."
    )

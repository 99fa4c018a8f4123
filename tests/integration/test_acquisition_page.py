"""The technicians' acquisition desk in Chromium, against the shared Orthanc (with the HIS
extension, asking the session's FHIR server).

A technician signed in enters an order through the form (the server's refusals shown field by
field, a taken accession number too; the patient found in the HIS once it answers), acquires it with
the simulator and watches it stored, then reconstructed; the reconstruction's central planes
(not a blank image), QC figures and viewer link follow. The order is completed and its study
is in the reading worklist with the order's priority. Projections uploaded by hand go up
with their upload's progress; a study whose patient the HIS names otherwise is corrected from
the page. The same desk in French has every word translated.
"""

from __future__ import annotations

import io
import itertools
import re
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, expect

from hounsfield.his import CATALOGUE
from tests.support.browser import no_page_errors
from tests.support.browser import signed_in as browser_signed_in
from tests.support.fhir import FhirServer
from tests.support.reading import PASSWORD, untranslated
from tests.support.server import OrthancServer, wait_for

REPOSITORY = Path(__file__).resolve().parents[2]

TECHNICIAN = "acquisition-technician"
SMALL = {"projections": "40", "detector_columns": "48", "detector_rows": "32"}
STATION = "CBCT_DESK_1"
# Accession numbers of this run: the shared server keeps the orders of earlier tests.
ACCESSIONS = (f"AQ{int(time.time()) % 10**8}{n}" for n in itertools.count())
RECONSTRUCTED_S = 90  # simulated, stored, complete (StableAge), reconstructed


@pytest.fixture(scope="module")
def technician(orthanc: OrthancServer) -> str:
    body = {"username": TECHNICIAN, "password": PASSWORD, "role": "technician"}
    assert orthanc.post("/api/users", json=body).status_code == 201
    return TECHNICIAN


def signed_in(
    browser: Browser,
    contexts: list[BrowserContext],
    orthanc: OrthancServer,
    path: str,
    username: str = TECHNICIAN,
) -> Page:
    """``username`` (a technician's password), signed in on ``path`` in an English browser."""
    return browser_signed_in(
        browser, contexts, orthanc, path, username, PASSWORD, account="#account"
    )


def field_error(page: Page, name: str):
    return page.locator(f"label:has([name='{name}']) .field-error")


def place_order(orthanc: OrthancServer, patient_id: str, name: str, **fields: str) -> dict:
    body = {
        "patient": {"id": patient_id, "name": name, "birth_date": "1970-01-02", "sex": "M"},
        "accession_number": next(ACCESSIONS),
        "modality": "CT",
        "scheduled_station_ae": STATION,
        "scheduled_time": time.strftime("%Y-%m-%dT%H:%M:00"),
        **fields,
    }
    answer = orthanc.post("/api/orders", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_a_technician_orders_acquires_and_checks_the_reconstruction(
    orthanc: OrthancServer,
    hospital: FhirServer,
    monkeypatch: pytest.MonkeyPatch,
    technician: str,
    browser: Browser,
    contexts: list,
    screenshots: Path,
) -> None:
    page = signed_in(browser, contexts, orthanc, "/acquisition")
    expect(page.locator("h1")).to_have_text("Acquisition desk")
    expect(page.locator("#day")).to_have_value(time.strftime("%Y-%m-%d"))

    # The patient, from the HIS: once it answers
    accession = next(ACCESSIONS)
    patient_id = f"P-{accession}"
    hospital.add_patient(
        f"fhir-{accession}",
        mrn=patient_id,
        family="Lindqvist",
        given=("Maja",),
        birth_date="1984-07-12",
        gender="female",
    )
    monkeypatch.setattr(hospital, "delay", 2.0)  # past the HIS's timeout
    page.fill("#lookup-term", "Lindqvist")
    page.click("#lookup button[type=submit]")
    expect(page.locator("#lookup-status")).to_have_text(
        "The HIS did not answer in time. Try again, or enter the patient's details by hand.",
        timeout=10_000,
    )
    expect(page.locator("#lookup-status")).to_have_class("hint problem")
    monkeypatch.setattr(hospital, "delay", 0.0)
    page.click("#lookup button[type=submit]")
    expect(page.locator("#lookup-status")).to_have_text(
        "Patients found: 1. Choose one to fill in the order."
    )
    page.click(f"#lookup-results button:has-text('{patient_id}')")
    expect(page.locator("[name='patient.id']")).to_have_value(patient_id)
    expect(page.locator("[name='patient.name']")).to_have_value("Lindqvist")
    expect(page.locator("[name=given_name]")).to_have_value("Maja")
    expect(page.locator("[name='patient.birth_date']")).to_have_value("1984-07-12")
    expect(page.locator("[name='patient.sex']")).to_have_value("F")
    expect(page.locator("[name=accession_number]")).to_be_focused()

    # The server's refusals, field by field
    page.fill("[name='patient.name']", "")
    page.click("#place")
    expect(page.locator("#order-error")).to_have_text(
        "The order was not placed: correct the fields marked below."
    )
    expect(field_error(page, "accession_number")).to_have_text(
        "Enter the accession number (1 to 16 characters, no backslash)."
    )
    for name in ("patient.name", "scheduled_station_ae"):
        expect(field_error(page, name)).to_have_count(1)
    expect(field_error(page, "patient.id")).to_have_count(0)
    expect(page.locator("[name='patient.name']")).to_have_attribute("aria-invalid", "true")

    page.fill("[name='patient.name']", "Lindqvist")
    page.fill("[name=accession_number]", accession)
    page.fill("[name=requested_procedure]", "CBCT sinuses")
    page.fill("[name=scheduled_station_ae]", STATION)
    page.select_option("[name=priority]", "urgent")
    page.click("#place")
    expect(page.locator("#order-status")).to_have_text(
        f"Order {accession} placed for Lindqvist, Maja."
    )
    expect(page.locator(".field-error")).to_have_count(0)
    order = orthanc.get("/api/orders", params={"accession": accession}).json()["orders"][0]
    assert order["patient"] == {
        "id": patient_id,
        "name": "Lindqvist^Maja",
        "birth_date": "19840712",
        "sex": "F",
    }
    mine = page.locator(f"#orders [data-order='{order['id']}']")
    expect(mine).to_have_attribute("aria-pressed", "true")  # chosen once placed
    station = page.locator(".station", has=page.locator(f"[data-order='{order['id']}']"))
    expect(station.locator("h3")).to_have_text(STATION)
    expect(mine.locator(".badge.priority-urgent")).to_have_text("Urgent")
    expect(mine.locator(".badge.order-scheduled")).to_have_text("Scheduled")
    expect(page.locator("#chosen-name")).to_have_text("Lindqvist, Maja")

    # An accession number already taken
    page.fill("[name='patient.id']", "P-OTHER")
    page.fill("[name='patient.name']", "Other")
    page.fill("[name=accession_number]", accession)
    page.fill("[name=scheduled_station_ae]", STATION)
    page.click("#place")
    expect(field_error(page, "accession_number")).to_have_text(
        "This accession number already belongs to another order."
    )
    page.click("#order-form button[type=submit]")  # nothing else changed: still refused
    expect(field_error(page, "accession_number")).to_have_count(1)

    # The simulator acquires for the order: stored, then reconstructed
    for name, value in SMALL.items():
        page.fill(f"#simulate-form [name={name}]", value)
    page.click("#simulate")
    expect(page.locator("#acquire")).to_be_hidden()
    expect(page.locator("#step-archive .step-text")).to_have_text("succeeded", timeout=60_000)
    expect(page.locator("#bar-archive")).to_have_js_property("value", 100)
    expect(page.locator("#step-reconstruction .step-text")).to_have_text(
        "succeeded", timeout=RECONSTRUCTED_S * 1000
    )
    expect(page.locator("#bar-reconstruction")).to_have_js_property("value", 100)

    # A first look: three planes, not blank, in each window; the QC figures; the viewer
    expect(page.locator("#qc")).to_be_visible()
    loaded = "() => [...document.querySelectorAll('.planes img')].every((i) => i.naturalWidth > 0)"
    page.wait_for_function(loaded)
    axial = page.locator("#plane-axial").get_attribute("src")
    assert axial.endswith("/planes/axial?window=soft")
    png = page.request.get(orthanc.url(axial))
    assert png.ok and png.headers["content-type"] == "image/png"
    pixels = np.asarray(Image.open(io.BytesIO(png.body())), dtype=float)
    assert pixels.std() > 10, pixels.std()  # the phantom, not a uniform field
    expect(page.locator("#plane-axial")).to_have_attribute(
        "alt", "Central slice of the reconstruction, Axial"
    )
    expect(page.locator("#figures dt")).to_have_count(8)
    expect(page.locator("#figures div", has_text="Noise HU").locator("dd")).not_to_be_empty()
    expect(page.locator("#figures div", has_text="Method").locator("dd")).to_have_text("FDK")
    page.select_option("#window", "bone")
    expect(page.locator("#plane-sagittal")).to_have_attribute("src", re.compile("window=bone$"))
    page.wait_for_function(loaded)
    expect(page.locator("#plane-problem")).to_be_hidden()
    page.select_option("#window", "soft")
    viewer = f"/ohif/viewer?StudyInstanceUIDs={order['studyInstanceUid']}"
    expect(page.locator("#open-ohif")).to_have_attribute("href", viewer)
    expect(page.locator("#tune")).to_have_attribute("href", re.compile(r"^/recon\?series=\w"))

    # The order is completed, its study in the reading worklist with the order's priority
    expect(mine.locator(".badge.order-completed")).to_have_text("Completed", timeout=15_000)
    expect(page.locator("#chosen-badges .order-completed")).to_be_visible()
    studies = orthanc.get("/api/worklist", params={"accession": accession}).json()["studies"]
    assert [(s["priority"], s["requestedProcedure"]) for s in studies] == [
        ("urgent", "CBCT sinuses")
    ]
    page.screenshot(path=str(screenshots / "acquisition.png"), full_page=True)

    with page.expect_popup() as opened:
        page.click("#open-ohif")
    ohif = opened.value
    ohif.wait_for_load_state("domcontentloaded")
    assert ohif.url == orthanc.url(viewer)
    ohif.close()
    no_page_errors(page)

    # A colleague who reads French opens the same order from its address
    body = {"username": "acquisition-technicienne", "password": PASSWORD, "role": "technician"}
    assert orthanc.post("/api/users", json=body).status_code == 201
    colleague = orthanc.client(orthanc.login(body["username"], PASSWORD))
    chosen = colleague.put(orthanc.url("/api/auth/me"), json={"language": "fr"}, timeout=10)
    assert chosen.status_code == 200, chosen.text
    french = signed_in(
        browser, contexts, orthanc, f"/acquisition?order={order['id']}", body["username"]
    )
    expect(french.locator("h1")).to_have_text("Poste d'acquisition")
    expect(french.locator("#chosen-badges .order-completed")).to_have_text("Réalisée")
    expect(french.locator("#step-reconstruction .step-text")).to_have_text("terminée")
    french.wait_for_function(loaded)
    expect(french.locator("#open-ohif")).to_have_text("Ouvrir dans OHIF")
    french.screenshot(path=str(screenshots / "acquisition-fr.png"), full_page=True)
    assert untranslated(french, CATALOGUE) == set()
    no_page_errors(french)


def test_projections_uploaded_by_hand_go_up_with_a_progress_bar(
    orthanc: OrthancServer,
    technician: str,
    browser: Browser,
    contexts: list,
    screenshots: Path,
    tmp_path: Path,
) -> None:
    order = place_order(orthanc, "P-UPLOAD-1", "Upload^Ulla", priority="stat")
    counts = np.random.default_rng(7).integers(20000, 50000, (24, 32, 32), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "projections.tif", counts)
    page = signed_in(browser, contexts, orthanc, f"/acquisition?order={order['id']}")
    expect(page.locator("#chosen-name")).to_have_text("Upload, Ulla")
    expect(page.locator(f"#orders [data-order='{order['id']}']")).to_have_attribute(
        "aria-pressed", "true"
    )
    page.set_input_files("#upload-form [name=projections]", tmp_path / "projections.tif")
    page.click("#upload-form button[type=submit]")  # the geometry is missing: the form says so
    expect(page.locator("#upload-form [name=source_to_isocenter_mm]:invalid")).to_have_count(1)
    for name, value in {
        "source_to_isocenter_mm": "500",
        "source_to_detector_mm": "800",
        "arc_degrees": "360",
        "pixel_spacing_mm": "1",
        "i0": "50000",
    }.items():
        page.fill(f"#upload-form [name={name}]", value)
    page.click("#upload-form button[type=submit]")
    expect(page.locator("#step-upload .step-text")).to_have_text("Received and checked.")
    expect(page.locator("#bar-upload")).to_have_js_property("value", 100)
    expect(page.locator("#step-archive .step-text")).to_have_text("succeeded", timeout=30_000)
    stored = wait_for(
        lambda: orthanc.get(f"/api/orders/{order['id']}").json()["study"], 20, "the order's study"
    )
    tags = orthanc.get(f"/studies/{stored}").json()
    assert tags["MainDicomTags"]["StudyInstanceUID"] == order["studyInstanceUid"]
    assert tags["MainDicomTags"]["AccessionNumber"] == order["accession_number"]
    page.screenshot(path=str(screenshots / "acquisition-upload.png"), full_page=True)
    no_page_errors(page)


def test_a_study_the_his_names_otherwise_is_corrected_from_the_page(
    orthanc: OrthancServer,
    technician: str,
    browser: Browser,
    contexts: list,
    screenshots: Path,
    dicom_file,
) -> None:
    order = place_order(orthanc, "P-MISMATCH-1", "Berg^Anna")
    orthanc.store(
        dicom_file(
            "CT_small.dcm",
            PatientID="P-MISMATCH-1",
            PatientName="Berg^Annika",
            PatientBirthDate="19700102",
            PatientSex="M",
            AccessionNumber=order["accession_number"],
        )
    )
    page = signed_in(browser, contexts, orthanc, "/acquisition")
    flagged = page.locator(".mismatch", has_text="P-MISMATCH-1")
    expect(flagged).to_be_visible(timeout=20_000)
    expect(flagged.locator("tr", has_text="Name")).to_contain_text("Berg, Annika")
    expect(flagged.locator("tr", has_text="Name")).to_contain_text("Berg, Anna")
    expect(flagged.locator("th").nth(1)).to_have_text("The study says")
    page.screenshot(path=str(screenshots / "acquisition-mismatch.png"), full_page=True)
    flagged.locator("button[data-action=correct]").click()
    expect(page.locator("#mismatch-status")).to_have_text(
        "Study corrected with the HIS's details; the original is kept.", timeout=30_000
    )
    expect(flagged).to_have_count(0)
    corrected = orthanc.get(f"/api/orders/{order['id']}").json()["study"]
    assert orthanc.get(f"/studies/{corrected}").json()["PatientMainDicomTags"]["PatientName"] == (
        "Berg^Anna"
    )
    no_page_errors(page)


def test_an_order_is_cancelled_from_the_page(
    orthanc: OrthancServer, technician: str, browser: Browser, contexts: list
) -> None:
    order = place_order(orthanc, "P-CANCEL-1", "Cancel^Carl")
    page = signed_in(browser, contexts, orthanc, f"/acquisition?order={order['id']}")
    expect(page.locator("#acquire")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#cancel-order")
    expect(page.locator("#chosen-badges .order-cancelled")).to_have_text("Cancelled")
    expect(page.locator("#cancelled-note")).to_be_visible()
    expect(page.locator("#acquire")).to_be_hidden()
    expect(page.locator("#cancel-order")).to_be_hidden()
    expect(page.locator(f"#orders [data-order='{order['id']}'].cancelled")).to_be_visible()
    assert orthanc.get(f"/api/orders/{order['id']}").json()["status"] == "cancelled"
    no_page_errors(page)

"""Routing rules (lua/) against real destinations: a plain second Orthanc (reached over DICOM
as "archive" and over HTTP as the peer "research") and dcmtk's storescp ("pacs2", and
"pacs3", which is down when its series becomes stable).

One server runs the shipped rules (lua/rules.lua: our reconstructed CT series and signed
reports to "archive") and a few more written here, loaded between the shipped rules and the
engine, as an administrator's own file would be.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.support.browser import signed_in
from tests.support.reading import REPORT, Department
from tests.support.server import ADMIN_PASSWORD, REPOSITORY, OrthancServer, free_port, wait_for

NO_PYTHON_PLUGIN = ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"]
MORE_RULES = """
table.insert(RoutingRules, {
  Name = "Chest CT from the scanners to PACS 2 and research",
  Match = { Modality = "CT", CallingAet = "SCANNER?", BodyPartExamined = { "CHEST", "THORAX" } },
  SendTo = { "pacs2", "research" },
})
table.insert(RoutingRules, {
  Name = "Late series to PACS 3",
  Match = { SeriesDescription = "late*" },
  SendTo = { "pacs3" },
})
table.insert(RoutingRules, {
  Name = "Mammography to a destination nobody declared",
  Match = { Modality = "MG" },
  SendTo = { "nowhere" },
})
"""


class StoreScp:
    """dcmtk's storescp on ``port``, writing what it receives into ``folder``."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["storescp", "-aet", "PACS", "-od", str(self.folder), str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(10)

    def received(self) -> set[str]:
        """SOP Instance UIDs of the files received."""
        return {
            pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
            for path in self.folder.iterdir()
        }


class Site:
    def __init__(self, root: Path) -> None:
        self.archive = OrthancServer(root / "archive", plugins=NO_PYTHON_PLUGIN)
        self.pacs2 = StoreScp(root / "pacs2", free_port())
        self.pacs3 = StoreScp(root / "pacs3", free_port())
        rules = root / "more_rules.lua"
        rules.write_text(MORE_RULES)
        self.router = OrthancServer(
            root / "router",
            stable_age=1,
            hounsfield__extensions=["hounsfield.reading", "hounsfield.admin", "hounsfield.routing"],
            lua_scripts=[
                str(REPOSITORY / "lua" / "rules.lua"),
                str(rules),
                str(REPOSITORY / "lua" / "routing.lua"),
            ],
            dicom_modalities={
                "archive": ["ARCHIVE", "127.0.0.1", self.archive.dicom_port],
                "pacs2": ["PACS", "127.0.0.1", self.pacs2.port],
                "pacs3": ["PACS", "127.0.0.1", self.pacs3.port],
            },
            orthanc_peers={"research": [self.archive.base_url]},
            dicom_scu_timeout=2,
            hounsfield_routing={
                "RetryAttempts": 5,
                "RetryFirstDelaySeconds": 0.5,
                "RetryMaxDelaySeconds": 1,
                "PollSeconds": 0.2,
            },
        )

    def archived(self) -> set[str]:
        """SOP Instance UIDs the archive Orthanc holds."""
        return {
            self.archive.get(f"/instances/{i}").json()["MainDicomTags"]["SOPInstanceUID"]
            for i in self.archive.get("/instances").json()
        }


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    site = Site(tmp_path_factory.mktemp("routing"))
    site.archive.start(ready_path="/system")
    site.pacs2.start()
    site.router.start()
    yield site
    site.router.stop()
    site.archive.stop()
    site.pacs2.stop()
    site.pacs3.stop()


def send(router: OrthancServer, calling_aet: str, *paths: Path) -> None:
    """storescu from a modality calling itself ``calling_aet``."""
    port = str(router.dicom_port)
    subprocess.run(
        [
            "storescu",
            "-aet",
            calling_aet,
            "-aec",
            "HOUNSFIELD",
            "127.0.0.1",
            port,
            *map(str, paths),
        ],
        check=True,
        capture_output=True,
        timeout=60,
        env={**os.environ, "TCP_NODELAY": "1"},
    )


def uid(path: Path) -> str:
    return pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID


def routing(router: OrthancServer) -> dict:
    return router.health()["components"]["routing"]


def store_jobs(router: OrthancServer) -> list[dict]:
    """Orthanc's store jobs (the sends), as its /jobs shows them now."""
    jobs = router.get("/jobs?expand").json()
    return [job for job in jobs if job["Type"] in ("DicomModalityStore", "OrthancPeerStore")]


def settled(router: OrthancServer) -> bool:
    """Nothing left to send: no store job pending or running, none waiting for a retry."""
    component = routing(router)
    return component["sending"] == 0 and not component["retrying"]


def test_stable_series_go_where_the_rules_say(site: Site, dicom_file: Callable[..., Path]) -> None:
    study = {"StudyInstanceUID": pydicom.uid.generate_uid()}
    chest = dicom_file("CT_small.dcm", BodyPartExamined="CHEST", **study)
    head = dicom_file("CT_small.dcm", BodyPartExamined="HEAD", **study)
    other_sender = dicom_file("CT_small.dcm", BodyPartExamined="CHEST")
    mammography = dicom_file("CT_small.dcm", Modality="MG", **study)
    send(site.router, "SCANNER1", chest, head, mammography)
    send(site.router, "WORKSTATION", other_sender)

    wait_for(lambda: uid(chest) in site.pacs2.received(), 30, "the chest series on PACS 2")
    wait_for(lambda: uid(chest) in site.archived(), 30, "the chest series at research")
    # Orthanc's own jobs, not our health's view (its poll may predate the last job).
    sent = wait_for(
        lambda: (
            (jobs := store_jobs(site.router))
            and all(job["State"] in ("Success", "Failure") for job in jobs)
            and jobs
        ),
        30,
        "every send to finish",
    )
    unmatched = {uid(head), uid(other_sender), uid(mammography)}
    assert not unmatched & site.pacs2.received()
    assert not unmatched & site.archived()
    assert {job["State"] for job in sent} == {"Success"}
    assert "neither a DICOM modality nor an Orthanc peer" in site.router.log_path.read_text()


def test_a_destination_down_receives_the_series_once_it_is_back(
    site: Site,
    dicom_file: Callable[..., Path],
    browser: Browser,
    contexts: list[BrowserContext],
    screenshots: Path,
) -> None:
    late = dicom_file("CT_small.dcm", SeriesDescription="Late arrival")
    send(site.router, "SCANNER9", late)

    def failing() -> dict | None:
        retrying = [r for r in routing(site.router)["retrying"] if r["failures"] >= 2]
        return retrying[0] if retrying else None

    retrying = wait_for(failing, 40, "the send to PACS 3 to fail and be retried")
    assert retrying["destination"] == "PACS" and retrying["error"]
    job = site.router.get(f"/jobs/{retrying['job']}").json()
    assert job["Type"] == "DicomModalityStore"
    # The health page says it, in French: destination, failures and the job
    page = signed_in(
        browser, contexts, site.router, "/admin/health", "admin", ADMIN_PASSWORD, locale="fr-FR"
    )
    card = page.locator("[data-component=routing]")
    expect(card.locator("table")).to_contain_text(retrying["job"])
    expect(card).to_contain_text("Routage vers d'autres serveurs")
    expect(card).to_contain_text("Envois en échec")
    expect(card.locator("table")).to_contain_text("PACS")
    page.screenshot(path=str(screenshots / "admin-health-routing-fr.png"), full_page=True)

    site.pacs3.start()
    wait_for(lambda: uid(late) in site.pacs3.received(), 30, "the late series on PACS 3")
    wait_for(lambda: settled(site.router), 30, "the retried send to finish")
    assert site.router.get(f"/jobs/{retrying['job']}").json()["State"] == "Success"
    assert site.router.health()["components"]["routing"]["healthy"]


def test_the_shipped_rules_send_signed_reports_and_reconstructions_to_the_archive(
    site: Site, dicom_file: Callable[..., Path]
) -> None:
    """lua/rules.lua as shipped: a series we made (Manufacturer "Hounsfield", CT) and a
    report once signed go to "archive"; the acquired images of the study do not."""
    acquired = dicom_file("CT_small.dcm", Manufacturer="Scanner Inc")
    study_uid = pydicom.dcmread(acquired).StudyInstanceUID
    ours = dicom_file("CT_small.dcm", StudyInstanceUID=study_uid, Manufacturer="Hounsfield")
    send(site.router, "CBCT", acquired, ours)
    study = site.router.post("/tools/lookup", data=study_uid).json()[0]["ID"]

    department = Department(site.router, dicom_file)
    department.hire("dr-route", "radiologist")
    wait_for(lambda: department.row(study), 30, "the study's worklist row")
    assert department.call("dr-route", "POST", f"/api/studies/{study}/claim").ok
    saved = department.call("dr-route", "PUT", f"/api/studies/{study}/report", json=REPORT)
    assert saved.status_code == 200, saved.text
    signed = department.call(
        "dr-route", "POST", f"/api/studies/{study}/report/sign", json={"version": 1}
    )
    assert signed.status_code == 200, signed.text

    def report_archived() -> bool:
        modalities = {
            site.archive.get(f"/series/{s}").json()["MainDicomTags"]["Modality"]
            for s in site.archive.get("/series").json()
        }
        return {"SR", "DOC"} <= modalities

    wait_for(report_archived, 60, "the signed report's SR and PDF in the archive")
    wait_for(lambda: uid(ours) in site.archived(), 30, "our CT series in the archive")
    assert uid(acquired) not in site.archived()


def test_lua_stays_out_of_reach_over_http(site: Site) -> None:
    """ExecuteLuaEnabled stays off: even an admin cannot run a script through REST."""
    script = 'print("routing rules replaced")'
    answer = site.router.post("/tools/execute-script", data=script)
    assert answer.status_code == 403, answer.text
    assert "routing rules replaced" not in site.router.log_path.read_text()

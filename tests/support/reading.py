"""A reading department for tests: a server, its people signed in, studies stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pydicom
import requests
from playwright.sync_api import Page

from tests.support.server import ADMIN_PASSWORD, OrthancServer

PASSWORD = "reading-password-1"
PAGES = Path(__file__).resolve().parents[2] / "html"
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
# A short report, ready to be saved as a study's first version.
REPORT = {
    "template": "generic",
    "language": "en",
    "sections": {"findings": "Stable.", "impression": "No change."},
    "version": 0,
}


class Department:
    """A server and one signed-in client per person (``hire`` makes the person)."""

    def __init__(self, orthanc: OrthancServer, dicom_file: Callable[..., Path]) -> None:
        self.orthanc = orthanc
        self.dicom_file = dicom_file
        self.people: dict[str, requests.Session] = {
            "admin": orthanc.client(orthanc.login("admin", ADMIN_PASSWORD))
        }

    def hire(self, username: str, role: str, **extra: object) -> requests.Session:
        body = {"username": username, "password": PASSWORD, "role": role, **extra}
        assert self.orthanc.post("/api/users", json=body).status_code == 201
        return self.sign_in(username)

    def sign_in(self, username: str) -> requests.Session:
        self.people[username] = self.orthanc.client(self.orthanc.login(username, PASSWORD))
        return self.people[username]

    def call(self, who: str, method: str, path: str, **kwargs: object) -> requests.Response:
        return self.people[who].request(method, self.orthanc.url(path), timeout=20, **kwargs)

    def row(self, study_id: str) -> dict | None:
        answer = self.call("admin", "GET", f"/api/worklist/{study_id}")
        return answer.json() if answer.status_code == 200 else None


def reading_server(workdir: Path, *extensions: str, **settings: object) -> OrthancServer:
    """A started server with quick stability and one worker (on ``workdir``: the same
    storage and database each time one is made there)."""
    return OrthancServer(
        workdir,
        stable_age=1,
        hounsfield__workers=1,
        hounsfield__extensions=list(extensions),
        **settings,
    ).start()


def stored_study(orthanc: OrthancServer, path: Path) -> tuple[str, str]:
    """(Orthanc's study id, StudyInstanceUID) of the study ``path`` was stored into."""
    uid = pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID
    found = orthanc.post("/tools/lookup", data=uid).json()
    return next(item["ID"] for item in found if item["Type"] == "Study"), uid


def untranslated(page: Page, *catalogues: Path) -> set[str]:
    """English words on the page (text, titles, placeholders, labels, alternative texts)
    that the French catalogue says otherwise: left untranslated on a French page. The
    core's words, and those of the extensions' ``catalogues`` given."""
    english: dict[str, str] = {}
    french: dict[str, str] = {}
    for folder in (PAGES / "i18n", *catalogues):
        english.update(json.loads((folder / "en.json").read_text(encoding="utf-8")))
        french.update(json.loads((folder / "fr.json").read_text(encoding="utf-8")))
    shown = page.evaluate(
        """() => [...document.querySelectorAll("body *")].flatMap((element) =>
            [element.childNodes.length === 1 ? element.textContent : "",
             element.getAttribute("title") || "", element.getAttribute("placeholder") || "",
             element.getAttribute("aria-label") || "", element.getAttribute("alt") || ""]
        ).map((text) => text.trim()).filter(Boolean)"""
    )
    return {
        text
        for text in shown
        if any(text == english[key] != french[key] for key in english if "{" not in english[key])
    }

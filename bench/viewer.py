"""Time from a click on the worklist to the first image OHIF draws, for a 300-slice 512 x 512 CT.

A radiologist's path: the study's row on the worklist page (``/reading``) opens its reading
page, whose "Open in viewer" opens OHIF in a second window. Timed from the row's click (the
viewer's button clicked as soon as it is there) and, to separate what is OHIF's, from the
viewer window's own navigation.

One Orthanc holds the series (sent with storescu). Each round starts it afresh, so the cold
open finds a fresh server (Orthanc's storage cache empty; the OS page cache stays warm, which
a bench cannot empty without disturbing the machine) and a fresh browser context (empty HTTP
cache); the warm open is the same study opened again in that context.

"Drawn" is measured in the page: a timer polls the centre of the cornerstone canvas every
20 ms and records ``performance.now()`` (milliseconds since navigation started) once most
of it is brighter than the background, i.e. the slice's soft tissue is on screen. The
requests made before that are recorded with their timings, to show where the time goes.

The series' WADO-RS metadata, which dominated before the plugin kept it ready
(``hounsfield/dicomweb/series_metadata.py``), is then timed from each of its sources, on the
same data.

Run: .venv/bin/python bench/viewer.py [--rounds 5] [--slices 300] [--requests 20]
Goal (issue): warm <= 2 s.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from common import NO_PYTHON_PLUGIN, percentiles, print_table
from playwright.sync_api import Browser, Page, Request, sync_playwright
from pydicom.uid import generate_uid

from hounsfield.dicom_objects import new_instance, set_unsigned_pixels
from tests.integration.conftest import CHROMIUM, CHROMIUM_FLAGS
from tests.support.server import ADMIN_PASSWORD, OrthancServer

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"

# The series' WADO-RS metadata, from each of the three that can answer it.
METADATA_SOURCES: dict[str, tuple[dict[str, Any], str]] = {  # settings, ready path
    "kept by the plugin (series stable)": ({}, "/api/health"),
    "computed by the plugin, nothing kept (ViewerCacheMB 0)": (
        {"hounsfield__viewer_cache_mb": 0},
        "/api/health",
    ),
    "Orthanc's DICOMweb plugin alone (no Python plugin, SeriesMetadata Full)": (
        {"plugins": NO_PYTHON_PLUGIN},
        "/system",
    ),
}

# Installed in every page of the bench's contexts: records when the first image is drawn.
FIRST_IMAGE_PROBE = """(() => {
  const probe = setInterval(() => {
    const canvas = document.querySelector('canvas.cornerstone-canvas');
    if (!canvas || canvas.width < 64 || canvas.height < 64) return;
    const x = (canvas.width - 64) >> 1, y = (canvas.height - 64) >> 1;
    const data = canvas.getContext('2d').getImageData(x, y, 64, 64).data;
    let lit = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i] > 30) lit++;
    if (lit > 2048) {
      window.hounsfieldFirstImageMs = performance.now();
      clearInterval(probe);
    }
  }, 20);
})();"""


def make_ct_volume(folder: Path, slices: int, size: int) -> list[Path]:
    """A body-like phantom: a water ellipse (40 HU) with a bone ring, in air, 1 mm slices."""
    folder.mkdir(parents=True, exist_ok=True)
    study = {
        "PatientName": "Bench^Viewer",
        "PatientID": "BENCH-VIEWER",
        "StudyInstanceUID": generate_uid(),
        "StudyDate": "20240101",
        "StudyDescription": "Viewer bench",
    }
    series, frame_of_reference = generate_uid(), generate_uid()
    y, x = np.mgrid[0:size, 0:size]
    radius = ((x - size / 2) / (0.42 * size)) ** 2 + ((y - size / 2) / (0.33 * size)) ** 2
    hounsfield = np.where(radius < 1, 40, -1000)
    hounsfield = np.where((radius > 0.85) & (radius < 1), 900, hounsfield)
    rng = np.random.default_rng(1)
    paths = []
    for index in range(slices):
        ds = new_instance(CT_IMAGE_STORAGE, generate_uid(), study)
        ds.Modality = "CT"
        ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = series, 1, index + 1
        ds.SeriesDescription = f"{slices} slices {size}x{size}"
        ds.FrameOfReferenceUID = frame_of_reference
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [-size / 2, -size / 2, -float(index)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [1, 1], 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.WindowCenter, ds.WindowWidth = 40, 400
        noisy = hounsfield + rng.normal(0, 10, hounsfield.shape)
        set_unsigned_pixels(ds, np.clip(noisy + 1024, 0, 4095))
        path = folder / f"{index:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@dataclass
class Open:
    """One timed open: when the first image was drawn, and the requests before it."""

    drawn_ms: float  # since the viewer window's navigation
    from_click_ms: float  # since the click on the worklist row
    requests: list[tuple[str, float, float]] = field(default_factory=list)  # path, start, took

    def slowest(self, count: int = 3) -> str:
        ranked = sorted(self.requests, key=lambda item: -item[2])[:count]
        return "; ".join(f"{path} {start:.0f}+{took:.0f}" for path, start, took in ranked)

    def milestones(self) -> str:
        """Where the time goes: the app's start, the series metadata, the first frame."""
        dicomweb = [r for r in self.requests if r[0].startswith("/dicom-web/")]
        metadata = [r for r in dicomweb if r[0].endswith("/metadata...")]
        frames = [r for r in dicomweb if r[0].endswith("/instances...")]
        points = {
            "first QIDO": min((r[1] for r in dicomweb), default=float("nan")),
            "metadata answered": max((r[1] + r[2] for r in metadata), default=float("nan")),
            "first frame asked": min((r[1] for r in frames), default=float("nan")),
            "drawn": self.drawn_ms,
        }
        return ", ".join(f"{name} {value:.0f}" for name, value in points.items())


def sign_in(page: Page, server: OrthancServer) -> None:
    """The sign-in page, as a user would (an admin lands in Orthanc Explorer, not OHIF)."""
    page.goto(server.url("/login"))
    page.fill("#username", "admin")
    page.fill("#password", ADMIN_PASSWORD)
    page.click("#submit")
    page.wait_for_url(lambda url: "/login" not in url)


def short(url: str, study: str) -> str:
    """The request's path, with the study's and series' UIDs and what follows named."""
    path = "/" + url.split("://", 1)[1].split("/", 1)[1].split("?")[0]
    path = path.replace(study, "{study}")
    if path.startswith("/dicom-web/") and "/series/" in path:
        head, tail = path.split("/series/", 1)
        rest = tail.split("/", 1)[1] if "/" in tail else ""
        path = f"{head}/series/{{series}}" + (f"/{rest.split('/', 1)[0]}..." if rest else "")
    return path


def timed_open(page: Page, server: OrthancServer, study: str, study_id: str) -> Open:
    """From the click on the study's worklist row to the first image in the viewer window."""
    finished: list[Request] = []
    page.goto(server.url("/reading"))
    row = page.locator(f'tr[data-id="{study_id}"]')
    row.wait_for()
    clicked = page.evaluate("performance.timeOrigin + performance.now()")
    row.click()
    button = page.locator("#open-viewer:enabled")
    button.wait_for()
    with page.context.expect_page() as opened:
        button.click()
    viewer = opened.value
    viewer.on("requestfinished", lambda request: finished.append(request))
    try:
        viewer.wait_for_function("() => window.hounsfieldFirstImageMs", timeout=120_000)
        drawn, origin = viewer.evaluate("[window.hounsfieldFirstImageMs, performance.timeOrigin]")
    finally:
        viewer.close()  # the next click opens a new window, not this one again
    result = Open(drawn, from_click_ms=origin + drawn - clicked)
    for request in finished:
        timing = request.timing
        start = timing["startTime"] - origin
        if start <= drawn:
            result.requests.append((short(request.url, study), start, timing["responseEnd"]))
    return result


def summary(samples: list[float]) -> str:
    runs = ", ".join(f"{value / 1000:.2f}" for value in samples)
    return f"{statistics.median(samples) / 1000:.2f} s  ({runs})"


def median_open(runs: list[Open]) -> Open:
    return sorted(runs, key=lambda run: run.drawn_ms)[len(runs) // 2]


WITH_READING = {"hounsfield__extensions": ["hounsfield.reading"]}  # the worklist page


def time_viewer(browser: Browser, root: Path, study: str, rounds: int) -> dict[str, list[Open]]:
    """Cold and warm opens, each round on a freshly started server and browser context."""
    opens: dict[str, list[Open]] = {"cold": [], "warm": []}
    for _ in range(rounds):
        server = OrthancServer(root / "orthanc", **WITH_READING).start()
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        try:
            context.add_init_script(FIRST_IMAGE_PROBE)
            page = context.new_page()
            sign_in(page, server)
            study_id = server.post("/tools/lookup", data=study).json()[0]["ID"]
            opens["cold"].append(timed_open(page, server, study, study_id))
            opens["warm"].append(timed_open(page, server, study, study_id))
        finally:
            context.close()
            server.stop()
    return opens


def time_metadata(root: Path, study: str, series: str, count: int) -> list[tuple[str, str]]:
    """The series' WADO-RS metadata from each source, after one untimed request."""
    rows = []
    for name, (settings, ready_path) in METADATA_SOURCES.items():
        server = OrthancServer(root / "orthanc", **settings).start(ready_path=ready_path)
        try:
            url = f"/dicom-web/studies/{study}/series/{series}/metadata"
            server.get(url).raise_for_status()
            samples = []
            for _ in range(count):
                begin = time.perf_counter()
                server.get(url).raise_for_status()
                samples.append((time.perf_counter() - begin) * 1000)
        finally:
            server.stop()
        p50, p95 = percentiles(samples)
        rows.append((f"series metadata, {name}: p50 / p95", f"{p50:.0f} / {p95:.0f} ms"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        root = Path(tmp)
        files = make_ct_volume(root / "dicom", args.slices, args.size)
        first = pydicom.dcmread(files[0], stop_before_pixels=True)
        loader = OrthancServer(root / "orthanc", **WITH_READING).start()
        try:
            loader.store(*files)
        finally:
            loader.stop()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            opens = time_viewer(browser, root, first.StudyInstanceUID, args.rounds)
        finally:
            browser.close()
        metadata = time_metadata(
            root, first.StudyInstanceUID, first.SeriesInstanceUID, args.requests
        )

    label = f"{args.slices} x {args.size}x{args.size} CT"
    rows = []
    for kind, runs in opens.items():
        rows.append(
            (
                f"{label}: worklist click -> first image, {kind}, median (runs)",
                summary([o.from_click_ms for o in runs]),
            )
        )
        rows.append(
            (f"  of which in the viewer window, {kind}", summary([o.drawn_ms for o in runs]))
        )
    for kind, runs in opens.items():
        rows.append((f"{kind}, median run: milestones (ms)", median_open(runs).milestones()))
        rows.append(
            (f"{kind}, median run: slowest requests (start+took ms)", median_open(runs).slowest())
        )
    print_table(rows + metadata)


if __name__ == "__main__":
    main()

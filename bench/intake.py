"""What honest store answers cost: the store roads and the DICOMweb study routes with the
plugin as shipped (objects judged, STOW-RS and the study search answered by the plugin)
and with Orthanc alone (Orthanc's REST upload, the DICOMweb plugin's STOW-RS and QIDO-RS),
side by side in interleaved rounds; and the per-object check and the thread hand-off alone.

Run: .venv/bin/python bench/intake.py [--instances 200] [--studies 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import pydicom
import requests
from common import REPOSITORY, make_ct_series, percentiles, print_table
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from hounsfield.callstack import FullStackThreads
from hounsfield.intake.admission import judge
from tests.support.angiography import angiography_run
from tests.support.server import OrthancServer

ORTHANC_ALONE = ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"]


def check_costs() -> list[tuple[str, str]]:
    """The incoming-object check alone, per object, median of 2,000 calls."""
    objects = {
        "CT slice (CT_small, 258 elements)": Path(get_testdata_file("CT_small.dcm")).read_bytes(),
        "RT plan (rtplan, nested sequences)": Path(get_testdata_file("rtplan.dcm")).read_bytes(),
    }
    angio = angiography_run("bench", bits=8, frames=60)
    path = Path(tempfile.mkdtemp()) / "xa.dcm"
    angio.save_as(path, enforce_file_format=True)
    objects["XA run, 60 frames of 64x48"] = path.read_bytes()
    rows = []
    for name, data in objects.items():
        samples = []
        for _ in range(2000):
            start = time.perf_counter_ns()
            judge(data, max_depth=32)
            samples.append(time.perf_counter_ns() - start)
        rows.append((f"check of one object: {name}", f"{statistics.median(samples) / 1000:.0f} us"))
    threads = FullStackThreads(4)
    hops = []
    for _ in range(5000):
        start = time.perf_counter_ns()
        threads.call(int, 1)
        hops.append(time.perf_counter_ns() - start)
    p50, p95 = percentiles(hops)
    rows.append(
        ("hand-off to a full-stack thread, p50 / p95", f"{p50 / 1000:.0f} / {p95 / 1000:.0f} us")
    )
    return rows


def stow_body(files: list[Path]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + path.read_bytes()
        for path in files
    ]
    body = b"\r\n".join(parts) + f"\r\n--{boundary}--\r\n".encode()
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


def studies(folder: Path, count: int) -> list[Path]:
    """One slice in each of ``count`` studies, for the study search."""
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        ds = copy.deepcopy(template)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.PatientName, ds.PatientID = f"Bench^Patient{number:04d}", f"B{number:04d}"
        ds.StudyDescription = f"Bench study {number}"
        paths.append(folder / f"{number:05d}.dcm")
        ds.save_as(paths[-1])
    return paths


def measure(
    server: OrthancServer,
    session: requests.Session,
    root: Path,
    round_: int,
    instances: int,
    search_files: list[Path],
) -> dict[str, float]:
    figures = {}
    rest = make_ct_series(root / f"rest-{round_}", instances)
    start = time.perf_counter()
    for path in rest:
        session.post(
            server.url("/instances"), data=path.read_bytes(), timeout=30
        ).raise_for_status()
    figures["REST upload (POST /instances, one object a request)"] = instances / (
        time.perf_counter() - start
    )
    body, content_type = stow_body(make_ct_series(root / f"stow-{round_}", instances))
    start = time.perf_counter()
    session.post(
        server.url("/dicom-web/studies"),
        data=body,
        headers={"Content-Type": content_type},
        timeout=300,
    ).raise_for_status()
    figures[f"STOW-RS ({instances} objects in one request)"] = instances / (
        time.perf_counter() - start
    )
    slices = make_ct_series(root / f"scu-{round_}", instances)
    start = time.perf_counter()
    server.store(*slices)
    figures["C-STORE (storescu, one association)"] = instances / (time.perf_counter() - start)
    for path in search_files:
        session.post(server.url("/instances"), data=path.read_bytes(), timeout=30)
    searches = []
    for _ in range(20):
        start = time.perf_counter()
        session.get(server.url("/dicom-web/studies"), params={"limit": 101}, timeout=60)
        searches.append(time.perf_counter() - start)
    figures["QIDO-RS study search, 101 results (ms, p50)"] = statistics.median(searches) * 1000
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--studies", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = check_costs()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        search_files = studies(root / "search", args.studies)
        variants = {
            "plugin": ({"hounsfield__extensions": ["hounsfield.recon"]}, "/api/health"),
            "Orthanc alone": ({"plugins": ORTHANC_ALONE}, "/system"),
        }
        results: dict[str, list[dict[str, float]]] = {label: [] for label in variants}
        for round_ in range(args.rounds):  # interleaved: disk and cache drift hit both
            for label, (settings, ready) in variants.items():
                server = OrthancServer(root / f"{label}-{round_}".replace(" ", "-"), **settings)
                server.start(ready_path=ready)
                try:
                    session = requests.Session()
                    session.headers.update(server.http.headers)
                    results[label].append(
                        measure(
                            server,
                            session,
                            root / f"{label}-{round_}-files".replace(" ", "-"),
                            round_,
                            args.instances,
                            search_files,
                        )
                    )
                finally:
                    server.stop()
        for figure in results["plugin"][0]:
            plugin = statistics.median(run[figure] for run in results["plugin"])
            alone = statistics.median(run[figure] for run in results["Orthanc alone"])
            unit = "" if "ms" in figure else " objects/s"
            rows.append(
                (
                    f"{figure}: plugin / Orthanc alone",
                    f"{plugin:.0f} / {alone:.0f}{unit} ({plugin / alone:.2f})",
                )
            )
    print(f"# {REPOSITORY.name}: medians of {args.rounds} interleaved rounds")
    print_table(rows)


if __name__ == "__main__":
    main()

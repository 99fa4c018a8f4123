"""The reading worklist's queries, and its catch-up with Orthanc at start.

1. ``--stored`` studies (one CT or MR image each, varied names, dates and modalities) are
   really stored in Orthanc; the worklist is emptied while Orthanc is down, and the time
   from start until the catch-up has listed them all is measured, with Orthanc's own
   ``/studies?since=0&limit=1`` latency sampled meanwhile (the catch-up must not block it).
2. The same three typical questions, on the same stored studies, asked of our worklist and
   of Orthanc's ``/tools/find`` (both through the gate, as an admin): the default list,
   a patient-name wildcard, and modality + date range (+ status, which only we know).
3. The worklist table is filled to ``--rows`` studies (synthetic rows written straight to
   its table) and the three questions are asked again.

Run: .venv/bin/python bench/worklist.py [--stored 2000] [--rows 100000] [--queries 200]
Goal (issue): p95 <= 50 ms at 100,000 studies, and faster than /tools/find.
"""

from __future__ import annotations

import argparse
import copy
import random
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pydicom
import requests
from common import percentiles, print_table
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from hounsfield.reading.worklist import fold
from tests.support.server import OrthancServer, wait_for

FAMILY = ["Müller", "Dupont", "García", "Nowak", "Иванов", "Smith", "Rossi", "Lefèvre", "Kovač"]
GIVEN = ["Zoë", "Jean", "Ana", "Piotr", "Мария", "John", "Giulia", "Anaïs", "Luka"]
STATUSES = ["unread", "unread", "unread", "in_progress", "draft", "final", "amended"]


def stored_studies(folder: Path, count: int, rng: random.Random) -> list[Path]:
    """One image per study, CT or MR, with a name, a date and an accession of its own."""
    templates = {
        name: pydicom.dcmread(get_testdata_file(f"{name}_small.dcm")) for name in ("CT", "MR")
    }
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        ds = copy.deepcopy(templates[rng.choice(["CT", "CT", "MR"])])
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientName = f"{rng.choice(FAMILY)}^{rng.choice(GIVEN)}"
        ds.PatientID = f"P{number:06d}"
        ds.AccessionNumber = f"A{number:06d}"
        ds.StudyDate = f"2026{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        path = folder / f"{number:06d}.dcm"
        ds.save_as(path)
        paths.append(path)
    return paths


def fill(database: Path, rows: int, rng: random.Random) -> None:
    """Synthetic worklist rows up to ``rows`` in all, written straight to the table."""
    with sqlite3.connect(database, timeout=30) as conn:
        have = conn.execute("SELECT count(*) FROM reading_worklist").fetchone()[0]
        batch = []
        for number in range(have, rows):
            name = f"{rng.choice(FAMILY)}^{rng.choice(GIVEN)}"
            batch.append(
                (
                    f"synthetic-{number:08d}",
                    f"2.25.{number}",
                    name,
                    fold(name),
                    f"S{number:07d}",
                    f"SA{number:07d}",
                    rng.choice([" CT ", " MR ", " CR ", " CT SR ", " DX "]),
                    "SYNTHETIC",
                    f"2026{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}",
                    1,
                    rng.randint(1, 600),
                    rng.choice([0, 0, 0, 0, 1, 2]),
                    rng.choice(STATUSES),
                    f"2026-11-{rng.randint(1, 24):02d}T{rng.randint(0, 23):02d}:00:00.000+00:00",
                )
            )
        conn.executemany(
            "INSERT INTO reading_worklist (study_id, study_uid, patient_name, patient_key,"
            " patient_id, accession, modalities, description, study_date, series_count,"
            " instance_count, priority, status, arrived_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            batch,
        )


def timed(call: Callable[[], requests.Response], count: int) -> tuple[float, float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        answer = call()
        samples.append(time.perf_counter() - start)
        answer.raise_for_status()
    return percentiles(samples)


QUESTIONS = {  # our query string, and the closest /tools/find body
    "default list (first 50)": (
        "limit=50",
        {"Level": "Study", "Query": {}, "Limit": 50, "Expand": True},
    ),
    "patient name *mul*": (
        "patientName=*mul*&limit=50",
        {"Level": "Study", "Query": {"PatientName": "*mul*"}, "Expand": True},
    ),
    "modality + date range (+ status)": (
        "modality=CT&from=20260301&to=20260630&status=unread&limit=50",
        {
            "Level": "Study",
            "Query": {"ModalitiesInStudy": "CT", "StudyDate": "20260301-20260630"},
            "Expand": True,
        },
    ),
}


def ask(server: OrthancServer, queries: int, with_find: bool) -> list[tuple[str, str]]:
    rows = []
    for label, (query, find) in QUESTIONS.items():
        ours = timed(lambda q=query: server.get(f"/api/worklist?{q}"), queries)
        figure = f"p50 {ours[0] * 1000:.1f} ms, p95 {ours[1] * 1000:.1f} ms"
        if with_find:
            theirs = timed(lambda f=find: server.post("/tools/find", json=f), queries)
            figure += f" | /tools/find p50 {theirs[0] * 1000:.1f} ms, p95 {theirs[1] * 1000:.1f} ms"
        rows.append((f"  {label}", figure))
    return rows


def catch_up(server: OrthancServer, expected: int) -> tuple[float, tuple[float, float]]:
    """Seconds until the worklist lists ``expected`` studies after start, and Orthanc's
    ``/studies?since=0&limit=1`` latency (p50, p95) sampled meanwhile."""
    samples: list[float] = []
    done = threading.Event()

    def sample() -> None:
        session = requests.Session()
        session.headers.update(server.http.headers)
        while not done.is_set():
            start = time.perf_counter()
            session.get(server.url("/studies?since=0&limit=1"), timeout=30).raise_for_status()
            samples.append(time.perf_counter() - start)
            time.sleep(0.01)

    start = time.perf_counter()
    server.start()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    wait_for(
        lambda: server.get("/api/worklist?limit=1").json()["total"] >= expected,
        600,
        "the catch-up",
        0.05,
    )
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    return elapsed, percentiles(samples or [0.0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stored", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(20261124)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = stored_studies(root / "dicom", args.stored, rng)
        settings = {"hounsfield__extensions": ["hounsfield.reading"], "hounsfield__workers": 1}
        server = OrthancServer(root / "orthanc", **settings).start()
        database = server.workdir / "data" / "hounsfield" / "hounsfield.db"
        rows: list[tuple[str, str]] = []
        try:
            start = time.perf_counter()
            server.store(*files)
            rows.append(
                (f"stored {args.stored} studies (storescu)", f"{time.perf_counter() - start:.1f} s")
            )
            wait_for(
                lambda: server.get("/api/worklist?limit=1").json()["total"] >= args.stored,
                300,
                "the worklist rows of the stored studies",
                0.2,
            )
            server.stop()
            with sqlite3.connect(database) as conn:
                conn.execute("DELETE FROM reading_worklist")
            server = OrthancServer(root / "orthanc", **settings)
            seconds, (p50, p95) = catch_up(server, args.stored)
            rows.append((f"catch-up at start, {args.stored} studies", f"{seconds:.1f} s"))
            rows.append(
                (
                    "  Orthanc /studies?since=0&limit=1 meanwhile",
                    f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms",
                )
            )
            idle = timed(lambda: server.get("/studies?since=0&limit=1"), args.queries)
            rows.append(
                (
                    "  the same, idle",
                    f"p50 {idle[0] * 1000:.1f} ms, p95 {idle[1] * 1000:.1f} ms",
                )
            )
            rows.append((f"{args.stored} studies: worklist | Orthanc /tools/find", ""))
            rows.extend(ask(server, args.queries, with_find=True))
            fill(database, args.rows, rng)
            rows.append((f"{args.rows} studies in the worklist table", ""))
            rows.extend(ask(server, args.queries, with_find=False))
        finally:
            server.stop()
    print_table(rows)


if __name__ == "__main__":
    main()

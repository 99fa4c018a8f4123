"""AI second reader figures: stable study -> findings stored, per analyzer, and queue throughput.

Issue: time from a stable study to its findings stored for a 512x512x300 CT, per built-in
analyzer, and queue throughput when several studies arrive at once. Goal: <= 15 s per
analyzer on a 2-core machine.

1. Per analyzer, on a phantom made for it (``tests.unit.ai.phantoms``, 512x512x300 by
   default): ``lung`` on a chest (0.7 mm pixels, 0.8 mm slices, ribs, 4 % emphysema),
   ``intracranial`` on a head (0.45 mm pixels, 0.5 mm slices, a 70 HU bleed), ``metal``
   and ``quality`` on an abdomen (a 150 mm water cylinder, 0.7 mm pixels, 1 mm slices,
   a 5 mm steel sphere). Each run stores a new study with REST ``POST /instances``, whose
   series description matches one rule, so that it gets exactly that one analyzer and the
   worker reads the series (its cache of the last series never hits). One server, one
   worker, StableAge 1 s, warmed up first (one small study through every analyzer, in the
   worker and here), runs interleaved across analyzers. Per analyzer, median (range):
   - stable -> findings stored: the automatic job's createdAt (queued by the stable-study
     hook) to its finishedAt; its queue wait (createdAt -> startedAt: the DICOMweb
     metadata job of the same stable study runs first) and the worker's part (startedAt
     -> finishedAt: reading the series, analysing, writing SR/SEG, recording);
   - the worker's part split by its progress messages ("reading the series", "analysing",
     "storing the results", polled every ``--poll`` s: each boundary is that coarse);
   - the same steps in this process on the same stored series: ``load_series`` (through
     Orthanc's REST API, as a worker reads), ``analyze``, ``result_objects``, encoding,
     storing the SR and SEG (new UIDs, so that Orthanc really stores them);
   - for context: the upload of the slices, and last slice stored -> job created.
2. Throughput: ``--studies`` abdomen studies (``--throughput-slices`` slices each) sent at
   once (a storescu association each, as modalities send), then queued together by the
   default rules (metal and quality per series: ``POST /api/studies/{id}/analyze``), into
   a server with 1 worker and one with 2 (both up, rounds interleaved): the first job's
   createdAt to the last job's finishedAt, and analyses per minute. The DICOMweb metadata
   jobs of the same studies, queued when they become stable, share the queue.
3. Each analyzer's median against the goal.

Concurrent stores through the plugin's ``POST /instances`` deadlock Orthanc 1.10.1 with
orthanc-python 4.0 (a thread in Orthanc's received-instance callback waits for the GIL,
which another thread's ``RestApiPost("/instances")`` holds while it waits for that
callback's lock): so this bench uploads with one connection (``--store-threads``), and
in part 2 sends by C-STORE and queues the analyses once every study is in (no upload
while a worker stores its SR and SEG).

Run: .venv/bin/python bench/ai.py [--runs 3] [--size 512] [--slices 300] [--studies 4]
     [--throughput-slices 120] [--throughput-runs 3] [--poll 0.1] [--workdir DIR]
Quick try: .venv/bin/python bench/ai.py --runs 1 --size 256 --slices 80 --studies 2
     --throughput-slices 40 --throughput-runs 1
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import requests
from common import print_table

from hounsfield.ai.catalogue import build_analyzer
from hounsfield.ai.dicom import result_objects
from hounsfield.ai.settings import AiSettings
from hounsfield.dicom_objects import encode
from hounsfield.orthanc_http import OrthancHttpClient
from hounsfield.volume import load_series
from tests.support.ai import ct_slices
from tests.support.server import OrthancServer, wait_for
from tests.unit.ai.phantoms import Blob, chest_phantom, head_phantom, sphere, water_cylinder

GOAL_SECONDS = 15.0
ANALYZERS = ("lung", "intracranial", "metal", "quality")
WARM_UP = "bench-warm-up"
FINISHED = ("succeeded", "failed", "cancelled")
# Each analyzer's own series description: the rules give each study one analyzer only.
RULES = [
    *({"Analyzers": [name], "Descriptions": [f"*bench-{name}*"]} for name in ANALYZERS),
    {"Analyzers": list(ANALYZERS), "Descriptions": [f"*{WARM_UP}*"]},
]
PHASES = (  # the worker's progress messages (hounsfield.ai.tasks), in order
    ("read", "reading the series"),
    ("analyse", "analysing"),
    ("store", "storing the results"),
)
IN_PROCESS = ("load_series", "analyze", "result_objects", "encode", "store SR+SEG")


@dataclass(frozen=True)
class Phantom:
    """HU voxels (slice, row, column), their spacing (mm), and how the series is tagged."""

    voxels: np.ndarray
    spacing: tuple[float, float, float]
    body_part: str


def _spacing(size: int, slices: int, fov_mm: float, height_mm: float) -> tuple[float, ...]:
    """Spacing that keeps a phantom's field of view and height at any size (quick tries)."""
    return (height_mm / slices, fov_mm / size, fov_mm / size)


def chest(size: int, slices: int) -> Phantom:
    spacing = _spacing(size, slices, 0.7 * 512, 0.8 * 300)
    made = chest_phantom((slices, size, size), spacing, emphysema=0.04, ribs=True, seed=5)
    return Phantom(made.volume.voxels, spacing, "CHEST")


def head(size: int, slices: int) -> Phantom:
    spacing = _spacing(size, slices, 0.45 * 512, 0.5 * 300)
    bleed = Blob(centre=(0.0, 30.0, -40.0), radius=10.0, hu=70.0)
    made = head_phantom((slices, size, size), spacing, blobs=(bleed,))
    return Phantom(made.volume.voxels, spacing, "HEAD")


def abdomen(size: int, slices: int, slice_mm: float | None = None) -> Phantom:
    """A water cylinder with a steel sphere; 1 mm slices, or the height of 300 of them."""
    spacing = _spacing(size, slices, 0.7 * 512, slice_mm * slices if slice_mm else 300.0)
    voxels = water_cylinder((slices, size, size), spacing, radius=150.0)
    voxels[sphere(voxels.shape, spacing, (0.0, 40.0, 60.0), 5.0)] = 3000.0
    return Phantom(voxels, spacing, "ABDOMEN")


def new_series(phantom: Phantom, description: str) -> list[bytes]:
    """The phantom as the files of a new study and series (UIDs derive from the patient)."""
    patient = f"BENCH-{uuid.uuid4().hex[:12]}"
    return list(
        ct_slices(
            phantom.voxels,
            phantom.spacing,
            patient_id=patient,
            description=description,
            body_part=phantom.body_part,
        )
    )


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def instant(iso: str) -> float:
    """A job's timestamp (ISO 8601, UTC) as seconds since the epoch, like ``time.time()``."""
    return datetime.fromisoformat(iso).timestamp()


def median_range(values: Sequence[float], unit: str = "s", digits: int = 1) -> str:
    if not values:
        return "n/a"
    low, high = min(values), max(values)
    return f"{statistics.median(values):.{digits}f} {unit} ({low:.{digits}f}-{high:.{digits}f})"


def start_server(root: Path, name: str, workers: int, **settings: Any) -> OrthancServer:
    return OrthancServer(
        root / name,
        stable_age=1,
        hounsfield__workers=workers,
        hounsfield__extensions=["hounsfield.reading", "hounsfield.ai"],
        hounsfield__auth__access_token_minutes=600,  # a long run keeps its token
        **settings,
    ).start()


def stop(server: OrthancServer) -> None:
    """Stop a server; kill it if it does not stop (a deadlocked one ignores SIGTERM)."""
    try:
        server.stop()
    except subprocess.TimeoutExpired:
        log(f"server on port {server.http_port} did not stop: killed")
        server.process.kill()
        server.process.wait(30)


def store(server: OrthancServer, files: Sequence[bytes], threads: int) -> tuple[str, float, float]:
    """POST the files with ``threads`` connections: (Orthanc's series id, seconds taken,
    when the last one was stored, as ``time.time()``)."""
    local = threading.local()

    def post(data: bytes) -> dict[str, Any]:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers.update(server.http.headers)
        answer = local.session.post(
            server.url("/instances"),
            data=data,
            headers={"Content-Type": "application/dicom"},
            timeout=120,
        )
        answer.raise_for_status()
        return answer.json()

    start = time.perf_counter()
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            answers = list(pool.map(post, files))
    else:
        answers = [post(data) for data in files]
    return answers[0]["ParentSeries"], time.perf_counter() - start, time.time()


def automatic_jobs(server: OrthancServer, series: set[str], count: int) -> list[dict[str, Any]]:
    """The ``count`` automatic jobs of these series, once the stable-study hook queued them."""

    def queued() -> list[dict[str, Any]] | None:
        listed = server.get("/api/jobs?kind=ai.analyze&limit=200").json()["jobs"]
        jobs = [job for job in listed if job["params"]["series"] in series]
        return jobs if len(jobs) >= count else None

    return wait_for(queued, 300, f"{count} jobs of series {sorted(series)}", 0.1)


def follow(server: OrthancServer, job_id: int, poll: float) -> tuple[dict[str, Any], dict]:
    """The job once finished, and when (``time.time()``) each progress message was first seen."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        job = server.job(job_id)
        message = job.get("message") or ""
        for phase, prefix in PHASES:
            if message.startswith(prefix):
                seen.setdefault(phase, time.time())
        if job["state"] in FINISHED:
            return job, seen
        time.sleep(poll)
    raise AssertionError(f"job {job_id} did not finish in 900 s")


def settle(server: OrthancServer) -> None:
    """Wait until what the last change queued is done: the study that changed last is
    stable, and its jobs (the DICOMweb metadata of new series) have run."""
    time.sleep(server.stable_age + 1.5)

    def idle() -> bool:
        jobs = server.health()["components"]["queue"]["jobs"]
        return jobs["queued"] == 0 and jobs["running"] == 0

    wait_for(idle, 300, "an idle job queue", 0.2)


def succeeded(job: dict[str, Any]) -> dict[str, Any]:
    if job["state"] != "succeeded":
        raise AssertionError(f"job {job['id']} {job['state']}: {job.get('error')}")
    return job


def in_process(
    client: OrthancHttpClient, series: str, name: str, settings: AiSettings
) -> dict[str, float]:
    """The job's steps, timed one by one in this process on the stored series."""
    times: dict[str, float] = {}

    def timed(step: str, call: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        value = call()
        times[step] = time.perf_counter() - start
        return value

    loaded = timed("load_series", lambda: load_series(client, series, max_voxels=10**9))
    analyzer = build_analyzer(settings, name)
    analysis = timed("analyze", lambda: analyzer.analyze(loaded.volume))
    objects = timed(
        "result_objects",
        lambda: result_objects(
            loaded.volume, loaded.sources, analysis, uid_seed=f"bench:{uuid.uuid4()}"
        ),
    )
    encoded = timed(
        "encode", lambda: [encode(ds) for ds in (objects.sr, objects.seg) if ds is not None]
    )
    timed("store SR+SEG", lambda: [client.store(data) for data in encoded])
    times["SEG MB"] = len(encoded[-1]) / 1e6 if objects.seg is not None else 0.0
    return times


def per_analyzer(root: Path, args: argparse.Namespace) -> tuple[list, dict[str, list[float]]]:
    log(f"phantoms {args.size}x{args.size}x{args.slices}")
    phantoms = {"lung": chest(args.size, args.slices), "intracranial": head(args.size, args.slices)}
    phantoms["metal"] = phantoms["quality"] = abdomen(args.size, args.slices)
    server = start_server(root, "latency", 1, hounsfield_ai__rules=RULES)
    token = server.http.headers["Authorization"].removeprefix("Bearer ")
    client = OrthancHttpClient(server.base_url, token)
    settings = AiSettings()
    figures: dict[str, dict[str, list[float]]] = {name: {} for name in ANALYZERS}

    def note(name: str, figure: str, value: float | None) -> None:
        if value is not None:
            figures[name].setdefault(figure, []).append(value)

    try:
        log("warm-up: a small study through every analyzer, in the worker and here")
        small = abdomen(96, 40)
        warm_series, _, _ = store(server, new_series(small, WARM_UP), args.store_threads)
        for job in automatic_jobs(server, {warm_series}, len(ANALYZERS)):
            server.wait_job(job["id"], timeout=300)
        for name in ANALYZERS:
            try:
                in_process(client, warm_series, name, settings)
            except Exception as error:  # the lung on an abdomen may refuse: warm all the same
                log(f"warm-up {name} here: {error}")

        for run in range(args.runs):
            for name in ANALYZERS:
                files = new_series(phantoms[name], f"bench-{name} run {run + 1}")
                settle(server)
                series, seconds, stored_at = store(server, files, args.store_threads)
                [job] = automatic_jobs(server, {series}, 1)
                job, seen = follow(server, job["id"], args.poll)
                succeeded(job)
                created, started = instant(job["createdAt"]), instant(job["startedAt"])
                finished = instant(job["finishedAt"])
                note(name, "ingest", seconds)
                note(name, "stored->created", created - stored_at)
                note(name, "total", finished - created)
                note(name, "queue", started - created)
                note(name, "worker", finished - started)
                # A phase shorter than the polling interval may go unseen: it then ends
                # where the next one seen begins.
                storing = seen.get("store", finished)
                analysing = seen.get("analyse", storing)
                note(name, "read", analysing - started)
                note(name, "analyse", storing - analysing)
                note(name, "store", finished - storing)
                settle(server)  # the SR and SEG just stored are new series: metadata jobs
                steps = in_process(client, series, name, settings)
                for step, value in steps.items():
                    note(name, step, value)
                log(
                    f"run {run + 1} {name}: stable->stored {finished - created:.1f} s, worker"
                    f" {finished - started:.1f} s; here "
                    + ", ".join(f"{step} {value:.2f}" for step, value in steps.items())
                )
    finally:
        stop(server)

    rows = []
    files = f"{args.slices} slices of {args.size}x{args.size}"
    for name in ANALYZERS:
        got = figures[name]
        rows += [
            (f"{name}: stable -> findings stored", median_range(got["total"])),
            (f"{name}:   queue wait (created -> started)", median_range(got["queue"], digits=2)),
            (f"{name}:   worker (started -> finished)", median_range(got["worker"])),
        ]
        for phase, what in (
            ("read", "reading the series"),
            ("analyse", "analysing"),
            ("store", "SR/SEG stored, findings recorded"),
        ):
            if phase in got:
                label = f"{name}:     {what} (progress, +-{args.poll:g} s)"
                rows.append((label, median_range(got[phase])))
        for step in IN_PROCESS:
            rows.append((f"{name}:   here: {step}", median_range(got[step], digits=2)))
        rows.append((f"{name}:   here: SEG size", median_range(got["SEG MB"], "MB")))
        rate = [args.slices / value for value in got["ingest"]]
        ingest = f"{median_range(got['ingest'])}, {statistics.median(rate):.0f} instances/s"
        rows.append((f"{name}:   upload of {files} (REST, {args.store_threads} conn.)", ingest))
        stable = median_range(got["stored->created"])
        rows.append((f"{name}:   last slice stored -> job created", stable))
    return rows, {name: figures[name]["total"] for name in ANALYZERS} | {
        f"{name} worker": figures[name]["worker"] for name in ANALYZERS
    }


def analyze_now(server: OrthancServer, study: str) -> list[int]:
    """Queue the analyzers the rules choose for the study's series now; the jobs' ids."""
    answer = server.post(f"/api/studies/{study}/analyze", json={})
    assert answer.status_code == 202, answer.text
    return [job["id"] for job in answer.json()["jobs"]]


def study_id(server: OrthancServer, files: Sequence[bytes]) -> str:
    uid = pydicom.dcmread(io.BytesIO(files[0]), stop_before_pixels=True).StudyInstanceUID
    found = server.post("/tools/lookup", data=uid).json()
    return next(item["ID"] for item in found if item["Type"] == "Study")


def throughput_round(
    server: OrthancServer, phantom: Phantom, studies: int, folder: Path, poll: float
) -> dict[str, float]:
    """``studies`` new studies sent at once (a storescu association each, as modalities
    send), then queued together by the rules; the queue's figures."""
    series = [new_series(phantom, "CT abdomen") for _ in range(studies)]
    settle(server)  # the last round's SR and SEG series had their metadata jobs
    paths = []
    for number, files in enumerate(series):
        (folder / str(number)).mkdir(parents=True)
        paths.append([folder / str(number) / f"{k:04d}.dcm" for k in range(len(files))])
        for path, data in zip(paths[-1], files, strict=True):
            path.write_bytes(data)
    start = time.perf_counter()
    with ThreadPoolExecutor(studies) as pool:
        list(pool.map(lambda files: server.store(*files), paths))
    ingest = time.perf_counter() - start
    shutil.rmtree(folder)
    job_ids = [job for files in series for job in analyze_now(server, study_id(server, files))]
    jobs = [succeeded(follow(server, job, max(poll, 0.5))[0]) for job in job_ids]
    first = min(instant(job["createdAt"]) for job in jobs)
    last = max(instant(job["finishedAt"]) for job in jobs)
    workers = [instant(job["finishedAt"]) - instant(job["startedAt"]) for job in jobs]
    return {
        "span": last - first,
        "rate": len(jobs) / (last - first) * 60,
        "jobs": len(jobs),
        "ingest": ingest,
        "worker": statistics.median(workers),
    }


def throughput(root: Path, args: argparse.Namespace) -> list[tuple[str, str]]:
    log(f"throughput: {args.studies} studies of {args.size}x{args.size}x{args.throughput_slices}")
    phantom = abdomen(args.size, args.throughput_slices, slice_mm=1.0)
    servers = {}
    try:
        for workers in (1, 2):
            server = start_server(
                root, f"throughput-{workers}", workers, hounsfield_ai__automatic=False
            )
            servers[workers] = server
            files = new_series(abdomen(96, 40), "CT abdomen")
            store(server, files, 1)
            for job in analyze_now(server, study_id(server, files)):
                server.wait_job(job, timeout=300)
        results: dict[int, list[dict[str, float]]] = {1: [], 2: []}
        for run in range(args.throughput_runs):
            for workers, server in servers.items():
                folder = root / f"throughput-files-{workers}-{run}"
                result = throughput_round(server, phantom, args.studies, folder, args.poll)
                results[workers].append(result)
                log(
                    f"throughput run {run + 1}, {workers} worker(s): {result['jobs']:.0f} jobs"
                    f" in {result['span']:.1f} s ({result['rate']:.1f}/min)"
                )
    finally:
        for server in servers.values():
            stop(server)
    rows = []
    what = f"{args.studies} studies x {args.throughput_slices} slices"
    for workers, rounds in results.items():
        jobs = rounds[0]["jobs"]
        label = f"{what}, {workers} worker(s)"
        rows += [
            (
                f"{label}: first created -> last finished ({jobs:.0f} jobs)",
                median_range([r["span"] for r in rounds]),
            ),
            (f"{label}: analyses per minute", median_range([r["rate"] for r in rounds], "/min")),
            (f"{label}: worker time per job", median_range([r["worker"] for r in rounds])),
            (
                f"{label}: ingest, all at once (C-STORE)",
                median_range([r["ingest"] for r in rounds]),
            ),
        ]
    return rows


def goal_rows(totals: dict[str, list[float]]) -> list[tuple[str, str]]:
    rows = [("analyzer", "stable -> stored    worker part    goal    verdict")]
    for name in ANALYZERS:
        total = statistics.median(totals[name])
        worker = statistics.median(totals[f"{name} worker"])
        verdict = "meets" if total <= GOAL_SECONDS else "misses"
        rows.append(
            (
                name,
                f"{total:13.1f} s {worker:12.1f} s {GOAL_SECONDS:6.0f} s    {verdict}"
                f" ({total / GOAL_SECONDS:.0%} of it)",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="new studies per analyzer")
    parser.add_argument("--size", type=int, default=512, help="rows and columns")
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--studies", type=int, default=4, help="arriving at once")
    parser.add_argument("--throughput-slices", type=int, default=120)
    parser.add_argument("--throughput-runs", type=int, default=3)
    parser.add_argument(
        "--store-threads", type=int, default=1, help="upload connections (> 1: see above)"
    )
    parser.add_argument("--poll", type=float, default=0.1, help="job polling interval (s)")
    parser.add_argument("--workdir", type=Path, help="keep the servers' folders (logs) there")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        latency_rows, totals = per_analyzer(root, args)
        throughput_rows = throughput(root, args)

    print(f"== per analyzer: {args.size}x{args.size}x{args.slices}, median (range) of {args.runs}")
    print_table(latency_rows)
    print(f"\n== throughput: medians (range) of {args.throughput_runs} rounds")
    print_table(throughput_rows)
    print(f"\n== goal: <= {GOAL_SECONDS:.0f} s from stable study to findings stored (medians)")
    print_table(goal_rows(totals))


if __name__ == "__main__":
    main()

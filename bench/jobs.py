"""Job queue and ingest figures, side by side in one run.

1. Round-trip latency of a no-op job with a warm worker (submit -> succeeded), p50/p95.
2. Throughput: N no-op jobs drained by 1 and by 2 workers.
3. DICOM ingest (storescu, one association) into Orthanc with the plugin as shipped (the
   reconstruction extension: its stable-study hook and its check of each incoming object)
   vs. the same Orthanc without the Python plugin, twice per server: right after it answers
   (the plugin's workers are still starting) and, into a second study, once the server has
   been idle for ``--settle`` seconds (what a modality sees on a server that has been up a while).

Run: .venv/bin/python bench/jobs.py [--latency-jobs 200] [--throughput-jobs 500] [--instances 300]
     [--ingest-rounds 3] [--settle 15]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import NO_PYTHON_PLUGIN, make_ct_series, percentiles, print_table

from tests.support.server import OrthancServer, wait_for


def latency(server: OrthancServer, count: int) -> tuple[float, float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        job = server.submit("tests.sleep", seconds=0)
        wait_for(lambda j=job: server.job(j["id"])["state"] == "succeeded", 30, "job", 0.002)
        samples.append(time.perf_counter() - start)
    return percentiles(samples)


def throughput(server: OrthancServer, count: int) -> float:
    start = time.perf_counter()
    jobs = [server.submit("tests.sleep", seconds=0) for _ in range(count)]
    wait_for(
        lambda: (
            server.job(jobs[-1]["id"])["state"] == "succeeded"
            and server.health()["components"]["queue"]["jobs"]["queued"] == 0
            and server.health()["components"]["queue"]["jobs"]["running"] == 0
        ),
        600,
        "the queue to drain",
        0.05,
    )
    return count / (time.perf_counter() - start)


def ingest(server: OrthancServer, files: list[Path]) -> float:
    start = time.perf_counter()
    server.store(*files)
    return len(files) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency-jobs", type=int, default=200)
    parser.add_argument("--throughput-jobs", type=int, default=500)
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument("--ingest-rounds", type=int, default=3)
    parser.add_argument("--settle", type=float, default=15.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = []
        for workers in (1, 2):
            server = OrthancServer(root / f"jobs-{workers}", hounsfield__workers=workers).start()
            try:
                if workers == 1:
                    p50, p95 = latency(server, args.latency_jobs)
                    rows.append(("job round trip, warm worker, p50", f"{p50 * 1000:.1f} ms"))
                    rows.append(("job round trip, warm worker, p95", f"{p95 * 1000:.1f} ms"))
                rate = throughput(server, args.throughput_jobs)
                rows.append((f"no-op jobs drained by {workers} worker(s)", f"{rate:.0f} jobs/s"))
            finally:
                server.stop()

        cold = make_ct_series(root / "dicom-cold", args.instances)
        settled = make_ct_series(root / "dicom-settled", args.instances)
        variants = (
            ("with plugin", {"hounsfield__extensions": ["hounsfield.recon"]}, "/api/health"),
            ("without plugin", {"plugins": NO_PYTHON_PLUGIN}, "/system"),
        )
        phases = ("right after start", f"after {args.settle:.0f} s idle")
        rates: dict[tuple[str, str], list[float]] = {
            (phase, label): [] for phase in phases for label, _, _ in variants
        }
        for round_number in range(args.ingest_rounds):  # interleaved: disk and cache drift
            for label, settings, ready_path in variants:
                name = f"ingest-{label.replace(' ', '-')}-{round_number}"
                server = OrthancServer(root / name, **settings)
                server.start(ready_path=ready_path)
                try:
                    rates[phases[0], label].append(ingest(server, cold))
                    time.sleep(args.settle)
                    rates[phases[1], label].append(ingest(server, settled))
                finally:
                    server.stop()
        for phase in phases:
            medians = {}
            for label, _, _ in variants:
                values = rates[phase, label]
                medians[label] = statistics.median(values)
                spread = ", ".join(f"{value:.0f}" for value in values)
                figure = f"{medians[label]:.0f} instances/s ({spread})"
                rows.append((f"C-STORE ingest {phase}, {label}", figure))
            ratio = medians["with plugin"] / medians["without plugin"]
            rows.append((f"ingest ratio {phase} (medians)", f"{ratio:.2f}"))

    print_table(rows)


if __name__ == "__main__":
    main()

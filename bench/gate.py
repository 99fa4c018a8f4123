"""What the authentication gate costs: the same requests through it and without it.

Two Orthancs from the same configuration and data, one with the gate (a radiologist,
every request checked and audited) and one with ``Auth.Enabled`` false. Through the gate
the radiologist comes four ways: a bearer token from a sign-in, an API key as the bearer,
HTTP Basic with the password, HTTP Basic with the key as the password. Each request goes
every way in turn, so drift on the machine hits all alike.

Run: .venv/bin/python bench/gate.py [--requests 500] [--slices 50]
Goals (issues): p50 latency ratio gated/open <= 1.10 for DICOMweb metadata and frames,
for each way in (Basic must not run Argon2 on every request).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import pydicom
import requests
from common import make_ct_series, percentiles, print_table

from tests.support.server import OrthancServer

PASSWORD = "Radiology-Bench-77"


def timed(session: requests.Session, url: str) -> float:
    start = time.perf_counter()
    response = session.get(url, timeout=30)
    elapsed = time.perf_counter() - start
    response.raise_for_status()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--slices", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = make_ct_series(root / "dicom", args.slices)
        first = pydicom.dcmread(files[0], stop_before_pixels=True)
        study, series = first.StudyInstanceUID, first.SeriesInstanceUID
        sops = [pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID for path in files]

        gated = OrthancServer(root / "gated").start()
        open_ = OrthancServer(root / "open", hounsfield__auth__enabled=False).start()
        try:
            for server in (gated, open_):
                server.store(*files)
            gated.post(
                "/api/users",
                json={"username": "bench-reader", "password": PASSWORD, "role": "radiologist"},
            )
            token = gated.login("bench-reader", PASSWORD)
            reader = requests.Session()
            reader.headers["Authorization"] = f"Bearer {token}"
            key = reader.post(gated.url("/api/keys"), json={"name": "bench"}, timeout=10)
            secret = key.json()["key"]
            ways = {
                "bearer token": {"Authorization": f"Bearer {token}"},
                "API key": {"Authorization": f"Bearer {secret}"},
                "Basic, password": ("bench-reader", PASSWORD),
                "Basic, API key": ("bench-reader", secret),
            }
            clients = {"open": (open_, requests.Session())}
            for label, credential in ways.items():
                session = requests.Session()
                if isinstance(credential, tuple):
                    session.auth = credential
                else:
                    session.headers.update(credential)
                clients[label] = (gated, session)

            kinds = {
                "DICOMweb study metadata": lambda: f"/dicom-web/studies/{study}/metadata",
                "DICOMweb frame": lambda: (
                    f"/dicom-web/studies/{study}/series/{series}"
                    f"/instances/{random.choice(sops)}/frames/1"
                ),
                "Orthanc /system": lambda: "/system",
            }
            rows = []
            for name, path_of in kinds.items():
                samples: dict[str, list[float]] = {label: [] for label in clients}
                for _ in range(10):  # warm-up, not counted
                    for server, session in clients.values():
                        timed(session, server.url(path_of()))
                for _ in range(args.requests):
                    path = path_of()
                    for label, (server, session) in clients.items():
                        samples[label].append(timed(session, server.url(path)))
                o50, o95 = percentiles(samples["open"])
                rows.append((f"{name}: open, p50 / p95", f"{o50 * 1000:.2f} / {o95 * 1000:.2f} ms"))
                for label in ways:
                    g50, g95 = percentiles(samples[label])
                    rows.append(
                        (
                            f"{name}: {label}, p50 / p95 (p50 ratio to open)",
                            f"{g50 * 1000:.2f} / {g95 * 1000:.2f} ms ({g50 / o50:.3f})",
                        )
                    )
            views = gated.get(
                "/api/audit", params={"action": "study.view", "user": "bench-reader"}
            ).json()["total"]
            rows.append(("audit 'study.view' entries written for the reader", str(views)))
        finally:
            gated.stop()
            open_.stop()
    print_table(rows)


if __name__ == "__main__":
    main()

"""TIFF acquisition upload: what the client waits for, and what Orthanc's other requests feel.

Case: 360 projections of 512x512, 16-bit, one multi-page TIFF (~190 MB).
1. POST /api/acquisitions: the request checks the TIFF headers and the geometry, spools the
   upload and answers 202; a worker decodes it and archives the DICOM projection object.
2. For comparison, the same projections as the DICOM object, stored with POST /instances
   (Orthanc's own REST upload, no plugin work but the incoming-object check).
3. Meanwhile a client polls GET /system every 20 ms: its latency while idle, during each
   request, and while the worker archives, shows whether Orthanc's callbacks are held up.

Run: .venv/bin/python bench/upload.py [--projections 360] [--detector 512]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import tifffile
from common import percentiles, print_table

from hounsfield.dicom_objects import encode
from hounsfield.recon.geometry import CircularGeometry
from hounsfield.recon.projections import build_projection_dataset
from tests.support.recon import upload_acquisition
from tests.support.server import ADMIN_PASSWORD, OrthancServer

POLL_SECONDS = 0.02


class Poller(threading.Thread):
    """GET /system in a loop, each latency recorded with its start time."""

    def __init__(self, server: OrthancServer) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.token = server.login("admin", ADMIN_PASSWORD)
        self.samples: list[tuple[float, float]] = []
        self.running = True

    def run(self) -> None:
        session = self.server.client(self.token)
        while self.running:
            start = time.perf_counter()
            session.get(self.server.url("/system"), timeout=60)
            self.samples.append((start, time.perf_counter() - start))
            time.sleep(POLL_SECONDS)

    def between(self, start: float, end: float) -> str:
        latencies = [latency * 1000 for at, latency in self.samples if start <= at < end]
        if not latencies:
            return "no sample"
        p50, p95 = percentiles(latencies)
        return f"p50 {p50:.1f} / p95 {p95:.1f} / max {max(latencies):.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--projections", type=int, default=360)
    parser.add_argument("--detector", type=int, default=512)
    args = parser.parse_args()

    shape = (args.projections, args.detector, args.detector)
    counts = np.random.default_rng(1).integers(20000, 50000, shape, dtype=np.uint16)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, counts, photometric="minisblack")
    tiff = buffer.getvalue()
    geometry = {
        "source_to_isocenter_mm": 1000,
        "source_to_detector_mm": 1536,
        "arc_degrees": 360,
        "pixel_spacing_mm": [0.4, 0.4],
        "i0": 50000,
        "patient_id": "BENCH-UPLOAD",
    }
    angles = tuple(360.0 * k / args.projections for k in range(args.projections))
    dicom = encode(
        build_projection_dataset(
            counts,
            CircularGeometry(1000.0, 1536.0, angles, (0.4, 0.4), (args.detector,) * 2),
            50000.0,
            {"PatientID": "BENCH-DICOM"},
            series_description="bench",
            uid_seed="bench-upload",
        )
    )
    rows = [("TIFF upload size", f"{len(tiff) / 1e6:.0f} MB")]
    with tempfile.TemporaryDirectory() as tmp:
        server = OrthancServer(
            Path(tmp) / "orthanc",
            hounsfield__extensions=["hounsfield.recon"],
            hounsfield__workers=1,
            hounsfield_recon__automatic=False,
        ).start()
        poller = Poller(server)
        try:
            time.sleep(20)  # the worker's warm-up (loading RTK) is over
            poller.start()
            idle_start = time.perf_counter()
            time.sleep(3)

            upload_start = time.perf_counter()
            response = upload_acquisition(server, [tiff], geometry, timeout=300)
            answered = time.perf_counter()
            assert response.status_code == 202, response.text
            job = server.wait_job(response.json()["id"], timeout=600)
            archived = time.perf_counter()
            assert job["state"] == "succeeded", job
            time.sleep(1)

            rest_start = time.perf_counter()
            stored = server.post(
                "/instances", data=dicom, headers={"Content-Type": "application/dicom"}, timeout=300
            )
            rest_done = time.perf_counter()
            assert stored.json()["Status"] == "Success", stored.text
            time.sleep(1)
        finally:
            poller.running = False
            server.stop()

    rows += [
        ("POST /api/acquisitions answered (checks + spool)", f"{answered - upload_start:.2f} s"),
        ("  archived by the worker (decode + store)", f"{archived - answered:.2f} s"),
        ("POST /instances of the same projections as DICOM", f"{rest_done - rest_start:.2f} s"),
        ("GET /system, idle", poller.between(idle_start, upload_start)),
        ("GET /system, during the upload request", poller.between(upload_start, answered)),
        ("GET /system, while the worker archives", poller.between(answered, archived)),
        ("GET /system, during POST /instances", poller.between(rest_start, rest_done)),
    ]
    print_table(rows)


if __name__ == "__main__":
    main()

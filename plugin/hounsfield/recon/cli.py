"""Command line: simulate a CBCT acquisition on a running server and follow it through.

    .venv/bin/python -m hounsfield.recon.cli --url http://localhost:8042 --user admin \\
        --projections 180 --noise

The password comes from HOUNSFIELD_PASSWORD or a prompt. It signs in, asks for a
simulated Shepp-Logan acquisition, waits for it to be stored and automatically
reconstructed, and prints the resulting series and its quality figures.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any

POLL_SECONDS = 0.5


class Client:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.token: str | None = None

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            self.url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {self.token}"} if self.token else {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = json.loads(error.read() or b"{}").get("error", error.reason)
            sys.exit(f"{method} {path}: {error.code} {detail}")

    def wait(self, path: str, ready, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = ready(self.call("GET", path))
            if found:
                return found
            time.sleep(POLL_SECONDS)
        sys.exit(f"gave up waiting on {path} after {timeout:.0f} s")


def finished(job: dict[str, Any]) -> dict[str, Any] | None:
    if job["state"] in ("failed", "cancelled"):
        sys.exit(f"job {job['id']} {job['state']}: {job.get('error')}")
    return job if job["state"] == "succeeded" else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://localhost:8042")
    parser.add_argument("--user", default="admin")
    parser.add_argument("--projections", type=int, default=180)
    parser.add_argument("--detector", type=int, default=128, help="columns (rows: 3/4 of it)")
    parser.add_argument("--arc", type=float, default=360.0, help="degrees (< 360: short scan)")
    parser.add_argument("--noise", action="store_true")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)

    client = Client(args.url)
    password = os.environ.get("HOUNSFIELD_PASSWORD") or getpass.getpass(f"{args.user}'s password: ")
    client.token = client.call(
        "POST", "/api/auth/login", {"username": args.user, "password": password}
    )["access_token"]
    request = {
        "projections": args.projections,
        "detector_columns": args.detector,
        "detector_rows": args.detector * 3 // 4,
        "arc_degrees": args.arc,
        "noise": args.noise,
    }
    job = client.call("POST", "/api/acquisitions/simulate", request)
    print(f"simulation queued: job {job['id']}")
    simulated = client.wait(f"/api/jobs/{job['id']}", finished, args.timeout)["result"]
    print(f"projections stored: study {simulated['study']}, series {simulated['series']}")

    def automatic(listing: dict[str, Any]) -> dict[str, Any] | None:
        return next(
            (j for j in listing["jobs"] if j["params"]["series"] == simulated["series"]), None
        )

    queued = client.wait("/api/jobs?kind=recon.reconstruct&limit=100", automatic, args.timeout)
    print(f"reconstruction queued when the study became stable: job {queued['id']}")
    done = client.wait(f"/api/reconstructions/{queued['id']}", finished, args.timeout)["result"]
    print(
        f"CT series {done['series']}: {done['slices']} slices, "
        f"{done['reconstructionSeconds']} s on the {done['device'].upper()}, "
        f"QC {json.dumps(done['qc'])}"
    )
    print(f"open it: {args.url}{done['viewer']}")


if __name__ == "__main__":
    main()

"""CBCT reconstruction figures: our end-to-end path against bare RTK, in one run.

Case (issue): 360 projections of 512x512 to a 256^3 volume (SID 1000 mm, SDD 1536 mm).
1. Simulate the projections once (RTK's Shepp-Logan), store them with storescu.
2. Bare RTK FDK on the very same line integrals, each in a fresh process:
   RTK's default settings (TBB threader) and the tuned ones (Platform threader).
3. End to end: POST /api/reconstructions -> CT series stored in Orthanc (a warm worker:
   fetch the DICOM projections, FDK, HU, 256 slices encoded and stored).
4. Preview latency (half resolution, at most 128^3) with the same warm worker, by FDK and
   by the iterative methods (SART, CG, ADMM-TV) with their default iterations.

Run: .venv/bin/python bench/recon.py [--projections 360] [--detector 512] [--voxels 256]
Goals (issue): end to end no slower than default bare RTK and <= 1.25x tuned bare RTK;
preview <= 3 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import REPOSITORY, print_table

from hounsfield.recon.geometry import CircularGeometry
from hounsfield.recon.kinds import RECONSTRUCT
from hounsfield.recon.params import WATER_ATTENUATION_PER_MM
from hounsfield.recon.projections import build_projection_dataset
from tests.support.server import OrthancServer, wait_for

BARE = r"""
import json, resource, sys, time
import numpy as np
import itk
from itk import RTK as rtk
if sys.argv[2] == "tuned":
    itk.MultiThreaderBase.SetGlobalDefaultThreader(itk.MultiThreaderBaseEnums.Threader_Platform)
spec = json.loads(sys.argv[3])
I = itk.Image[itk.F, 3]
geometry = rtk.ThreeDCircularProjectionGeometry.New()
for angle in spec["angles"]:
    geometry.AddProjection(spec["sid"], spec["sdd"], angle, 0.0, 0.0)
projections = itk.image_from_array(np.load(sys.argv[1]))
n, rows, cols = spec["shape"]
projections.SetSpacing([spec["du"], spec["du"], 1.0])
projections.SetOrigin([-(cols - 1) * spec["du"] / 2, -(rows - 1) * spec["du"] / 2, 0.0])
volume = rtk.ConstantImageSource[I].New()
volume.SetOrigin(spec["origin"]); volume.SetSpacing(spec["spacing"]); volume.SetSize(spec["size"])
start = time.perf_counter()
weighted = rtk.DisplacedDetectorImageFilter[I].New()
weighted.SetInput(projections); weighted.SetGeometry(geometry)
fdk = rtk.FDKConeBeamReconstructionFilter[I].New()
fdk.SetInput(0, volume.GetOutput()); fdk.SetInput(1, weighted.GetOutput())
fdk.SetGeometry(geometry); fdk.GetRampFilter().SetHannCutFrequency(1.0)
fdk.Update()
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--projections", type=int, default=360)
    parser.add_argument("--detector", type=int, default=512)
    parser.add_argument("--voxels", type=int, default=256)
    args = parser.parse_args()

    from hounsfield.recon import engine  # loads RTK here too, for the simulation

    du = 0.4 * 512 / args.detector
    angles = tuple(float(a) for a in np.linspace(0, 360, args.projections, endpoint=False))
    geometry = CircularGeometry(1000.0, 1536.0, angles, (du, du), (args.detector,) * 2)
    grid = geometry.default_volume(args.voxels)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        line = engine.shepp_logan_projections(geometry, 0.8 * geometry.field_of_view_radius())
        counts = np.clip(np.rint(50000 * np.exp(-WATER_ATTENUATION_PER_MM * line)), 1, 65535)
        counts = counts.astype(np.uint16)
        dataset = build_projection_dataset(
            counts,
            geometry,
            50000.0,
            {"PatientID": "BENCH"},
            series_description="bench",
            uid_seed="bench",
        )
        rows.append(
            (
                "simulation (loading RTK, Shepp-Logan projections)",
                f"{time.perf_counter() - started:.1f} s",
            )
        )
        np.save(root / "line.npy", np.log(50000.0 / counts.astype(np.float32)))
        spec = {
            "angles": list(angles),
            "sid": 1000.0,
            "sdd": 1536.0,
            "du": du,
            "shape": list(counts.shape),
            "origin": list(grid.origin),
            "spacing": list(grid.spacing),
            "size": list(grid.size),
        }
        bare = {}
        for variant in ("default", "tuned"):
            output = subprocess.run(
                [sys.executable, "-c", BARE, str(root / "line.npy"), variant, json.dumps(spec)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            bare[variant] = json.loads(output.strip().splitlines()[-1])

        server = OrthancServer(
            root / "orthanc", hounsfield__extensions=["hounsfield.recon"], hounsfield__workers=1
        ).start()
        try:
            dicom = root / "projections.dcm"
            dataset.save_as(dicom, enforce_file_format=True)
            server.store(dicom)
            stored_at = time.perf_counter()
            series = next(
                item["ID"]
                for item in server.post("/tools/lookup", data=dataset.SeriesInstanceUID).json()
                if item["Type"] == "Series"
            )
            auto = wait_for(
                lambda: next(
                    (
                        j
                        for j in server.get("/api/jobs", params={"kind": RECONSTRUCT}).json()[
                            "jobs"
                        ]
                    ),
                    None,
                ),
                120,
                "the automatic job",
            )
            rows.append(
                (
                    "stored -> automatic job queued (StableAge 2 s)",
                    f"{time.perf_counter() - stored_at:.1f} s",
                )
            )
            auto = server.wait_job(auto["id"], timeout=1800)  # also warms the worker
            auto_size = "x".join(map(str, auto["result"]["grid"]["size"]))
            rows.append(
                (
                    f"automatic FDK at the detector's resolution ({auto_size}), in worker",
                    f"{auto['result']['reconstructionSeconds']:.1f} s",
                )
            )

            def timed_request(body: dict) -> tuple[float, dict]:
                start = time.perf_counter()
                job = server.post("/api/reconstructions", json={"series": series, **body}).json()
                done = server.wait_job(job["id"], timeout=1800)
                assert done["state"] == "succeeded", done
                return time.perf_counter() - start, done

            end_to_end, done = timed_request({"voxels": args.voxels})
            preview, preview_job = timed_request({"preview": True})
            previews = {
                method: timed_request({"preview": True, "method": method})
                for method in ("sart", "cg", "tv")
            }
            worker_pid = int(done["worker"].rsplit("/", 1)[1])
            worker_peak = peak_rss_mb(worker_pid)
        finally:
            server.stop()

    updates = float(np.prod(grid.size)) * args.projections
    worker_fdk = done["result"]["reconstructionSeconds"]
    preview_size = preview_job["result"]["grid"]["size"]
    tuned, default = bare["tuned"]["seconds"], bare["default"]["seconds"]
    size = "x".join(map(str, grid.size))
    rows += [
        (f"bare RTK FDK, default settings ({size})", f"{default:.1f} s"),
        (f"bare RTK FDK, tuned (Platform threader) ({size})", f"{tuned:.1f} s"),
        ("end to end: request -> CT series stored", f"{end_to_end:.1f} s"),
        ("  of which FDK in the worker", f"{done['result']['reconstructionSeconds']:.1f} s"),
        ("end to end / default bare RTK", f"{end_to_end / default:.2f}"),
        ("end to end / tuned bare RTK", f"{end_to_end / tuned:.2f}"),
        (
            "voxel updates per second (tuned bare / in worker)",
            f"{updates / tuned / 1e9:.2f} / {updates / worker_fdk / 1e9:.2f} G",
        ),
        (
            "peak RSS: bare default / bare tuned / worker",
            f"{bare['default']['peak_rss_mb']:.0f} / {bare['tuned']['peak_rss_mb']:.0f} / "
            f"{worker_peak:.0f} MB",
        ),
        (
            f"preview ({'x'.join(map(str, preview_size))}) latency, warm worker",
            f"{preview:.2f} s",
        ),
        *(
            (
                f"  same preview, {method} (default iterations)",
                f"{seconds:.1f} s (QC noise {job['result']['qc']['noiseHu']} HU)",
            )
            for method, (seconds, job) in previews.items()
        ),
        ("  FDK preview QC noise", f"{preview_job['result']['qc']['noiseHu']} HU"),
    ]
    print_table(rows)
    print(f"# {args.projections} projections of {args.detector}^2, {REPOSITORY.name}")


if __name__ == "__main__":
    main()

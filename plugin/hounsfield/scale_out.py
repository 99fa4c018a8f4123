"""``make scale-out``: try several instances on one machine, as a department would run them.

Makes a throwaway PostgreSQL 15 cluster (``hounsfield.db.cluster``), then starts
``--instances`` Orthanc servers with the plugin, one after the other (Orthanc 1.10's index
plugin creates its tables without a lock), on consecutive HTTP and DICOM ports, sharing one
storage folder, each with its own data folder and node name. Ctrl-C stops them all and
removes the cluster; the folder is emptied at the next start (its index would be gone).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from hounsfield.db.cluster import USER, ThrowawayCluster
from hounsfield.launcher import DEFAULT_CONFIG, REPOSITORY

DATABASE = "orthanc"


def instance_environment(
    index: int, *, cluster: ThrowawayCluster, folder: Path, http_port: int, dicom_port: int
) -> dict[str, str]:
    """The variables of instance ``index`` (the README's table, with this cluster's values)."""
    return {
        "ORTHANC__HTTP_PORT": str(http_port + index),
        "ORTHANC__DICOM_PORT": str(dicom_port + index),
        "ORTHANC__POSTGRESQL__ENABLE_INDEX": "true",
        "ORTHANC__POSTGRESQL__HOST": "127.0.0.1",
        "ORTHANC__POSTGRESQL__PORT": str(cluster.port),
        "ORTHANC__POSTGRESQL__DATABASE": DATABASE,
        "ORTHANC__POSTGRESQL__USERNAME": USER,
        "ORTHANC__STORAGE_DIRECTORY": str(folder / "storage"),
        "ORTHANC__HOUNSFIELD__DATA_DIRECTORY": str(folder / f"instance-{index + 1}"),
        "ORTHANC__HOUNSFIELD__NODE_NAME": f"instance-{index + 1}",
    }


def _wait_until_answering(process: subprocess.Popen, port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the instance on port {port} exited ({process.returncode})")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2)
            return
        except urllib.error.HTTPError:  # 503 while a component settles: it answers
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the instance on port {port} did not answer within {timeout:g} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", nargs="?", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--http-port", type=int, default=8042)
    parser.add_argument("--dicom-port", type=int, default=4242)
    parser.add_argument("--folder", type=Path, default=REPOSITORY / "data" / "scale-out")
    args = parser.parse_args(argv)

    shutil.rmtree(args.folder, ignore_errors=True)
    args.folder.mkdir(parents=True)
    cluster = ThrowawayCluster().start()
    cluster.create_database(DATABASE)
    print(f"PostgreSQL 15 on 127.0.0.1:{cluster.port} (database {DATABASE}, user {USER})")
    processes: list[subprocess.Popen] = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        for index in range(args.instances):
            variables = instance_environment(
                index,
                cluster=cluster,
                folder=args.folder,
                http_port=args.http_port,
                dicom_port=args.dicom_port,
            )
            process = subprocess.Popen(
                [sys.executable, "-m", "hounsfield.launcher", str(args.config)],
                env={**os.environ, **variables},
            )
            processes.append(process)
            _wait_until_answering(process, args.http_port + index)
            print(
                f"instance-{index + 1}: http://127.0.0.1:{args.http_port + index}/"
                f"  DICOM port {args.dicom_port + index}"
            )
        print("Ctrl-C stops them all and removes the database.")
        while all(process.poll() is None for process in processes):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(60)
        cluster.stop()


if __name__ == "__main__":
    main()

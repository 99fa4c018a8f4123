"""If Orthanc dies, nothing is lost and it comes back: the systemd unit is valid, and what
it starts, killed with SIGSEGV, is started again, resumes its jobs and says it restarted."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.support.server import OrthancServer, wait_for
from tests.support.supervisor import Supervisor, Unit, render_unit


def test_the_unit_is_valid_for_systemd(tmp_path: Path) -> None:
    unit = render_unit(tmp_path / "hounsfield.service")
    checked = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stderr


def metric(server: OrthancServer, name: str) -> float | None:
    for line in server.get("/tools/metrics-prometheus").text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return None


def attempts(marker: Path) -> list[str]:
    return marker.read_text().splitlines() if marker.exists() else []


def test_a_crashed_orthanc_comes_back_and_its_jobs_resume(tmp_path: Path) -> None:
    server = OrthancServer(tmp_path / "server", hounsfield__workers=1)
    supervisor = Supervisor(Unit.read(render_unit(tmp_path / "hounsfield.service")), server)
    supervisor.start()
    marker = tmp_path / "attempts"
    running = server.submit("tests.sleep", seconds=3, marker=str(marker))
    waiting = server.submit("tests.sleep", seconds=0)
    wait_for(lambda: attempts(marker), 20, "the first job to start")
    crashed = server.process.pid

    os.kill(crashed, signal.SIGSEGV)  # what a crash in native code does
    wait_for(lambda: server.process.pid != crashed, 30, "the supervisor to start Orthanc again")
    server.attach(server.process)

    for job in (running, waiting):
        assert server.wait_job(job["id"], timeout=60)["state"] == "succeeded"
    assert server.job(running["id"])["attempts"] == 2 and len(attempts(marker)) == 2
    runs = server.health()["components"]["orthanc"]
    assert (runs["starts"], runs["uncleanStops"]) == (2, 1)
    wait_for(
        lambda: (
            metric(server, "hounsfield_orthanc_unclean_stops") == 1
            and metric(server, "hounsfield_orthanc_starts") == 2
        ),
        10,
        "the restart to reach the metrics",
    )
    assert supervisor.stop() == 0  # systemctl stop: a clean stop, not restarted
    assert supervisor.starts == 2

"""Nothing queued is lost: worker deaths, Orthanc kill -9, clean stops and restarts."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.support.server import process_alive, wait_for


def attempts_marked(marker: Path) -> list[str]:
    return marker.read_text().splitlines() if marker.exists() else []


def test_a_job_survives_a_kill_9_of_its_worker(make_orthanc, tmp_path: Path) -> None:
    orthanc = make_orthanc().start()
    marker = tmp_path / "attempts"
    job = orthanc.submit("tests.sleep", seconds=2, marker=str(marker))
    wait_for(lambda: attempts_marked(marker), 15, "the first attempt to start")
    victim = int(attempts_marked(marker)[0].split()[0])
    os.kill(victim, signal.SIGKILL)

    done = orthanc.wait_job(job["id"], timeout=30)
    assert done["state"] == "succeeded"
    assert done["attempts"] == 2
    pids = [int(line.split()[0]) for line in attempts_marked(marker)]
    assert len(pids) == 2 and pids[0] == victim and pids[1] != victim
    workers = orthanc.health()["components"]["workers"]["workers"]
    assert workers[0]["restarts"] == 1
    assert workers[0]["lastExit"] == "worker killed by SIGKILL"


def test_a_job_that_keeps_killing_its_worker_fails_after_max_attempts(make_orthanc) -> None:
    orthanc = make_orthanc(hounsfield__max_attempts=2).start()
    job = orthanc.submit("tests.crash")
    done = orthanc.wait_job(job["id"], timeout=30)
    assert done["state"] == "failed"
    assert done["attempts"] == 2
    assert done["error"] == "worker killed by SIGKILL (attempt 2 of 2)"
    after = orthanc.submit("tests.sleep", seconds=0)
    assert orthanc.wait_job(after["id"], timeout=30)["state"] == "succeeded"


def test_a_job_survives_a_kill_9_of_orthanc(make_orthanc, tmp_path: Path) -> None:
    orthanc = make_orthanc().start()
    marker = tmp_path / "attempts"
    job = orthanc.submit("tests.sleep", seconds=3, marker=str(marker))
    wait_for(lambda: attempts_marked(marker), 15, "the first attempt to start")
    first_worker = int(attempts_marked(marker)[0].split()[0])

    orthanc.stop(signal.SIGKILL)
    wait_for(lambda: not process_alive(first_worker), 10, "the orphaned worker to die")

    orthanc.start()
    done = orthanc.wait_job(job["id"], timeout=30)
    assert done["state"] == "succeeded"
    assert done["attempts"] == 2
    assert len(attempts_marked(marker)) == 2


def test_a_clean_stop_leaves_no_process_and_resumes_the_job(make_orthanc, tmp_path: Path) -> None:
    orthanc = make_orthanc(hounsfield__workers=2).start()
    marker = tmp_path / "attempts"
    job = orthanc.submit("tests.sleep", seconds=3, marker=str(marker))
    wait_for(lambda: attempts_marked(marker), 15, "the first attempt to start")
    workers = orthanc.worker_pids()
    assert len(workers) == 2

    assert orthanc.stop(signal.SIGTERM) == 0
    assert not any(process_alive(pid) for pid in workers)

    orthanc.start()
    done = orthanc.wait_job(job["id"], timeout=30)
    assert done["state"] == "succeeded"
    assert done["attempts"] == 1  # a shutdown is not the job's fault
    assert len(attempts_marked(marker)) == 2


def test_queued_jobs_wait_for_workers_across_a_restart(make_orthanc) -> None:
    idle = make_orthanc(hounsfield__workers=0).start()
    jobs = [idle.submit("tests.sleep", seconds=0, n=n) for n in range(3)]
    health = idle.get("/api/health")
    assert health.status_code == 503
    queue = health.json()["components"]["queue"]
    assert queue["healthy"] is False and queue["depth"] == 3
    idle.stop()

    idle.env["ORTHANC__HOUNSFIELD__WORKERS"] = "1"
    idle.start()
    for job in jobs:
        assert idle.wait_job(job["id"])["state"] == "succeeded"
    assert idle.get("/api/health").status_code == 200

"""The job queue through its REST API, with real worker processes."""

from __future__ import annotations

from pathlib import Path

from tests.support.server import OrthancServer, wait_for


def test_a_job_runs_to_success_with_its_result(orthanc: OrthancServer) -> None:
    job = orthanc.submit("tests.sleep", seconds=0.3)
    assert job["state"] == "queued"
    assert job["kind"] == "tests.sleep"
    done = orthanc.wait_job(job["id"])
    assert done["state"] == "succeeded"
    assert done["progress"] == 100
    assert done["attempts"] == 1
    assert done["result"]["slept"] == 0.3
    assert done["result"]["pid"] in orthanc.worker_pids()
    assert done["startedAt"] >= done["createdAt"]
    assert done["finishedAt"] >= done["startedAt"]


def test_progress_is_visible_while_a_job_runs(orthanc: OrthancServer) -> None:
    job = orthanc.submit("tests.sleep", seconds=3)
    running = wait_for(
        lambda: (
            (j := orthanc.job(job["id"]))["state"] == "running" and 0 < j["progress"] < 100 and j
        ),
        10,
        "progress between 0 and 100",
    )
    assert running["worker"]
    assert orthanc.wait_job(job["id"])["state"] == "succeeded"


def test_a_failing_handler_fails_its_job_with_the_error(orthanc: OrthancServer) -> None:
    job = orthanc.submit("tests.fail", message="bad geometry")
    done = orthanc.wait_job(job["id"])
    assert done["state"] == "failed"
    assert done["error"] == "ValueError: bad geometry"
    assert done["attempts"] == 1


def test_jobs_are_listed_and_filtered(orthanc: OrthancServer) -> None:
    job = orthanc.submit("tests.fail", message="listed")
    orthanc.wait_job(job["id"])
    listing = orthanc.get("/api/jobs?state=failed&kind=tests.fail&limit=500").json()
    assert job["id"] in [j["id"] for j in listing["jobs"]]
    assert all(j["state"] == "failed" and j["kind"] == "tests.fail" for j in listing["jobs"])
    assert listing["total"] >= 1
    page = orthanc.get("/api/jobs?limit=1").json()
    assert len(page["jobs"]) == 1 and page["limit"] == 1


def test_a_failed_job_is_retried_as_a_new_job_and_nothing_else_is(orthanc: OrthancServer) -> None:
    failed = orthanc.wait_job(orthanc.submit("tests.fail", message="retry me")["id"])
    again = orthanc.post(f"/api/jobs/{failed['id']}/retry")
    assert again.status_code == 201
    retried = again.json()
    assert retried["id"] != failed["id"] and retried["kind"] == "tests.fail"
    assert retried["params"] == failed["params"]
    assert orthanc.wait_job(retried["id"])["error"] == "ValueError: retry me"
    assert orthanc.job(failed["id"])["state"] == "failed"  # the old one stays as it ended
    done = orthanc.wait_job(orthanc.submit("tests.sleep", seconds=0)["id"])
    refused = orthanc.post(f"/api/jobs/{done['id']}/retry")
    assert refused.status_code == 409 and "succeeded" in refused.json()["error"]
    kinds = orthanc.get("/api/jobs/kinds").json()
    assert {"tests.fail", "tests.sleep"} <= set(kinds["submittable"]) <= set(kinds["kinds"])
    internal = sorted(set(kinds["kinds"]) - set(kinds["submittable"]))
    assert "recon.archive" in internal  # queued by its own route only: never retried here


def test_cancel_a_queued_and_a_running_job(orthanc: OrthancServer, tmp_path: Path) -> None:
    # Two workers: keep both busy so the third job stays queued.
    busy = [orthanc.submit("tests.sleep", seconds=30) for _ in range(2)]
    for job in busy:
        wait_for(lambda j=job: orthanc.job(j["id"])["state"] == "running", 10, "busy workers")
    queued = orthanc.submit("tests.sleep", seconds=1, marker=str(tmp_path / "never"))
    cancelled = orthanc.post(f"/api/jobs/{queued['id']}/cancel").json()
    assert cancelled["state"] == "cancelled"

    for job in busy:
        response = orthanc.post(f"/api/jobs/{job['id']}/cancel").json()
        assert response["cancelRequested"] is True
    for job in busy:
        assert orthanc.wait_job(job["id"], timeout=10)["state"] == "cancelled"
    assert not (tmp_path / "never").exists()

    again = orthanc.post(f"/api/jobs/{queued['id']}/cancel")
    assert again.status_code == 409
    assert "already finished: cancelled" in again.json()["error"]


def test_a_job_ignoring_cancellation_is_stopped_by_killing_its_worker(
    orthanc: OrthancServer,
) -> None:
    job = orthanc.submit("tests.stubborn", seconds=60)
    running = wait_for(
        lambda: (j := orthanc.job(job["id"]))["state"] == "running" and j,
        10,
        "stubborn job running",
    )
    pids_before = set(orthanc.worker_pids())
    orthanc.post(f"/api/jobs/{job['id']}/cancel")
    done = orthanc.wait_job(job["id"], timeout=15)
    assert done["state"] == "cancelled"
    assert done["attempts"] == 1
    wait_for(lambda: len(orthanc.worker_pids()) == 2, 15, "the killed worker to be replaced")
    assert set(orthanc.worker_pids()) != pids_before
    assert running["worker"].split("/")[-1] not in map(str, orthanc.worker_pids())


def niceness(pid: int) -> set[int]:
    """The nice values of the process's threads, as the kernel reports them (field 19 of
    /proc/PID/task/TID/stat)."""
    values = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        values.add(int((task / "stat").read_text().rsplit(")", 1)[1].split()[16]))
    return values


def test_workers_yield_the_cpu_to_orthanc(orthanc: OrthancServer) -> None:
    # README: WorkerNiceness 10 by default, so that a modality's C-STORE goes first; every
    # thread of a worker (numpy's included), not only its first.
    workers = orthanc.worker_pids()
    assert workers and niceness(orthanc.process.pid) == {0}
    for pid in workers:
        assert niceness(pid) == {10}

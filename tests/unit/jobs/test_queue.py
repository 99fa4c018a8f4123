from __future__ import annotations

import threading

import pytest

from hounsfield.db import Database
from hounsfield.jobs.model import JobState
from hounsfield.jobs.queue import DatabaseJobQueue


@pytest.fixture
def queue(database: Database) -> DatabaseJobQueue:
    return DatabaseJobQueue(database, default_max_attempts=2)


def claim(queue: DatabaseJobQueue, worker: str = "node/0/1", kinds=("recon",)):
    return queue.claim(node="node", worker=worker, kinds=kinds)


def test_a_job_goes_from_queued_to_succeeded(queue: DatabaseJobQueue) -> None:
    job = queue.enqueue("recon", {"series": "abc"})
    assert (job.state, job.attempts, job.max_attempts) == (JobState.QUEUED, 0, 2)
    running = claim(queue)
    assert running.id == job.id
    assert (running.state, running.attempts, running.worker) == (JobState.RUNNING, 1, "node/0/1")
    assert queue.report_progress(job.id, "node/0/1", 40, "backprojecting") is False
    assert queue.succeed(job.id, "node/0/1", {"series": "def"})
    done = queue.get(job.id)
    assert (done.state, done.progress, done.result) == (JobState.SUCCEEDED, 100, {"series": "def"})
    assert done.message == "backprojecting"
    assert claim(queue) is None


def test_claims_follow_priority_then_age_and_only_known_kinds(queue: DatabaseJobQueue) -> None:
    first = queue.enqueue("recon", {})
    urgent = queue.enqueue("recon", {}, priority=5)
    other = queue.enqueue("ai", {})
    assert claim(queue).id == urgent.id
    assert claim(queue).id == first.id
    assert claim(queue) is None
    assert claim(queue, kinds=["ai", "recon"]).id == other.id


def test_concurrent_workers_never_claim_the_same_job(database: Database) -> None:
    handles = [database.reopen() for _ in range(4)]
    queues = [DatabaseJobQueue(handle) for handle in handles]
    for n in range(200):
        queues[0].enqueue("recon", {"n": n})
    claimed: list[int] = []
    lock = threading.Lock()

    def drain(index: int) -> None:
        while (job := claim(queues[index], worker=f"node/{index}/1")) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for handle in handles:
        handle.close()
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 200


def test_a_worker_given_up_for_dead_cannot_overwrite_the_next_attempt(
    queue: DatabaseJobQueue,
) -> None:
    job = queue.enqueue("recon", {})
    claim(queue, worker="node/0/111")
    requeued = queue.recover(
        node="node", worker="node/0/111", reason="worker died", count_attempt=True
    )
    assert [j.id for j in requeued] == [job.id]
    assert requeued[0].message == "requeued: worker died"
    claim(queue, worker="node/0/222")
    assert queue.succeed(job.id, "node/0/111", "stale") is False
    assert queue.report_progress(job.id, "node/0/111", 50, None) is False
    assert queue.get(job.id).state is JobState.RUNNING
    assert queue.succeed(job.id, "node/0/222", "fresh")
    assert queue.get(job.id).result == "fresh"


def test_attempts_run_out_after_max_attempts(queue: DatabaseJobQueue) -> None:
    job = queue.enqueue("recon", {})
    for _ in range(2):
        claim(queue)
        queue.recover(node="node", reason="worker killed by SIGKILL", count_attempt=True)
    failed = queue.get(job.id)
    assert failed.state is JobState.FAILED
    assert failed.error == "worker killed by SIGKILL (attempt 2 of 2)"


def test_a_shutdown_gives_the_attempt_back(queue: DatabaseJobQueue) -> None:
    job = queue.enqueue("recon", {})
    for _ in range(5):
        claim(queue)
        queue.recover(node="node", reason="Orthanc stopped", count_attempt=False)
    assert (queue.get(job.id).state, queue.get(job.id).attempts) == (JobState.QUEUED, 0)


def test_recovery_is_limited_to_its_node(queue: DatabaseJobQueue) -> None:
    job = queue.enqueue("recon", {})
    queue.claim(node="other", worker="other/0/1", kinds=["recon"])
    assert queue.recover(node="node", reason="restart", count_attempt=True) == []
    assert queue.get(job.id).state is JobState.RUNNING


def test_cancelling(queue: DatabaseJobQueue) -> None:
    queued = queue.enqueue("recon", {})
    running = queue.enqueue("recon", {})
    queue.claim(node="node", worker="w", kinds=["recon"])  # takes `queued` (older)
    queue.request_cancel(queued.id)
    assert queue.get(queued.id).cancel_requested
    assert queue.report_progress(queued.id, "w", 10, None) is True  # the worker hears it
    assert queue.mark_cancelled(queued.id, "w")
    assert queue.get(queued.id).state is JobState.CANCELLED

    cancelled_now = queue.request_cancel(running.id)
    assert cancelled_now.state is JobState.CANCELLED and cancelled_now.finished_at
    assert queue.request_cancel(123456) is None


def test_a_dead_worker_whose_job_was_cancelled_ends_it_cancelled(queue: DatabaseJobQueue) -> None:
    job = queue.enqueue("recon", {})
    claim(queue)
    queue.request_cancel(job.id)
    assert [j.id for j in queue.cancel_overdue(node="node", grace_seconds=0)] == [job.id]
    assert queue.cancel_overdue(node="node", grace_seconds=60) == []
    assert queue.recover(node="node", reason="killed", count_attempt=True) == []
    assert queue.get(job.id).state is JobState.CANCELLED


def test_dedupe_key_queues_a_job_once(queue: DatabaseJobQueue) -> None:
    first = queue.enqueue("recon", {"a": 1}, dedupe_key="event:1:h:1")
    again = queue.enqueue("recon", {"a": 2}, dedupe_key="event:1:h:1")
    assert again.id == first.id and again.params == {"a": 1}
    assert queue.count() == 1


def test_counts_list_and_age(queue: DatabaseJobQueue) -> None:
    assert queue.oldest_queued_age() is None
    for kind in ("recon", "recon", "ai"):
        queue.enqueue(kind, {})
    claim(queue)
    assert queue.counts() == {
        "queued": 2,
        "running": 1,
        "succeeded": 0,
        "failed": 0,
        "cancelled": 0,
    }
    assert queue.oldest_queued_age() >= 0
    assert [j.kind for j in queue.list(kind="ai", limit=10, offset=0)] == ["ai"]
    assert [j.id for j in queue.list(limit=2, offset=1)] == [2, 1]
    assert queue.count(state=JobState.QUEUED) == 2


def test_jobs_are_found_by_their_parameters(queue: DatabaseJobQueue) -> None:
    first = queue.enqueue("recon", {"series": "abc", "method": "fdk"})
    queue.enqueue("recon", {"series": "def"})
    third = queue.enqueue("recon", {"series": "abc", "method": "tv"})
    queue.enqueue("ai", {"series": "abc"})
    found = queue.list(kind="recon", params={"series": "abc"}, limit=10, offset=0)
    assert [job.id for job in found] == [third.id, first.id]
    assert queue.count(kind="recon", params={"series": "abc", "method": "tv"}) == 1
    assert queue.count(params={"series": "x' OR '1'='1"}) == 0  # values are bound, not spliced


def test_a_job_pinned_to_a_node_waits_for_that_node(queue: DatabaseJobQueue) -> None:
    pinned = queue.enqueue("recon", {}, pinned_node="a")
    free = queue.enqueue("recon", {})
    assert queue.claim(node="b", worker="b/0/1", kinds=["recon"]).id == free.id
    assert queue.claim(node="b", worker="b/0/1", kinds=["recon"]) is None
    assert queue.claim(node="a", worker="a/0/1", kinds=["recon"]).id == pinned.id

"""The worker supervisor with real child processes (a few lines of Python standing in for
the worker): restarts, back-off, crash loops, and the jobs of a worker that died."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from hounsfield.db import Database
from hounsfield.jobs.queue import DatabaseJobQueue
from hounsfield.jobs.supervisor import CRASH_LOOP_EXITS, WorkerPool

WAITS_FOR_STDIN = "import sys; sys.stdin.read()"  # an idle worker: leaves when its pipe closes
EXITS_AT_ONCE = "raise SystemExit(3)"


def spawner(script: str, spawned: list[subprocess.Popen]) -> Callable[[int], subprocess.Popen]:
    def spawn(slot: int) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE)
        spawned.append(process)
        return process

    return spawn


def until(condition: Callable[[], object], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def queue(database: Database) -> DatabaseJobQueue:
    return DatabaseJobQueue(database, default_max_attempts=3)


def started_pool(
    queue: DatabaseJobQueue, script: str, size: int = 1
) -> tuple[WorkerPool, list[subprocess.Popen]]:
    """A pool on node "n" whose workers run ``script``, started; and what it spawned."""
    spawned: list[subprocess.Popen] = []
    pool = WorkerPool(queue, spawner(script, spawned), size=size, node="n", cancel_grace_seconds=1)
    pool.start()
    return pool, spawned


def test_a_killed_worker_is_restarted_and_its_job_queued_again(queue) -> None:
    pool, spawned = started_pool(queue, WAITS_FOR_STDIN)
    try:
        until(lambda: pool.status()[0]["alive"])
        first = spawned[0]
        job = queue.enqueue("k", {})
        assert queue.claim(node="n", worker=f"n/0/{first.pid}", kinds=["k"]).id == job.id

        first.send_signal(signal.SIGKILL)
        until(lambda: len(spawned) == 2 and pool.status()[0]["alive"])
        status = pool.status()[0]
        assert status["restarts"] == 1 and status["lastExit"] == "worker killed by SIGKILL"
        again = queue.get(job.id)
        assert again.state == "queued" and again.attempts == 1
    finally:
        pool.stop()
    assert all(process.poll() is not None for process in spawned)


def test_a_worker_dying_at_start_is_retried_with_back_off_then_reported(queue) -> None:
    pool, spawned = started_pool(queue, EXITS_AT_ONCE)
    try:
        until(lambda: pool.status()[0]["crashLooping"], seconds=20)
    finally:
        pool.stop()
    assert len(spawned) == CRASH_LOOP_EXITS  # backed off between them (1 s, then 2 s)
    assert pool.status()[0]["lastExit"] == "worker exited with code 3"
    assert not pool.healthy()


def test_stopping_ends_the_workers_and_queues_their_jobs_without_an_attempt(queue) -> None:
    pool, spawned = started_pool(queue, WAITS_FOR_STDIN, 2)
    until(lambda: all(worker["alive"] for worker in pool.status()))
    job = queue.enqueue("k", {})
    queue.claim(node="n", worker=f"n/1/{spawned[1].pid}", kinds=["k"])
    pool.stop()
    assert all(process.poll() is not None for process in spawned)
    again = queue.get(job.id)
    assert again.state == "queued" and again.attempts == 0

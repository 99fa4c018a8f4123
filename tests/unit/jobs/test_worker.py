from __future__ import annotations

import pytest

from hounsfield.db import Database
from hounsfield.jobs.context import JobContext
from hounsfield.jobs.model import JobState
from hounsfield.jobs.queue import DatabaseJobQueue
from hounsfield.jobs.worker import Worker
from hounsfield.registry import ExtensionError, Registry, load_extensions


def make_worker(database: Database, **kinds) -> tuple[Worker, DatabaseJobQueue]:
    registry = Registry()
    for kind, handler in kinds.items():
        registry.job_kind(kind, handler)
    queue = DatabaseJobQueue(database)
    return Worker(queue, registry, node="n", name="n/0/1"), queue


def test_a_handler_result_becomes_the_job_result(database: Database) -> None:
    def double(job: JobContext) -> dict:
        job.progress(50, "halfway")
        return {"value": job.params["value"] * 2}

    worker, queue = make_worker(database, double=double)
    job = queue.enqueue("double", {"value": 21})
    assert worker.run_one().id == job.id
    done = queue.get(job.id)
    assert (done.state, done.result, done.message) == (JobState.SUCCEEDED, {"value": 42}, "halfway")
    assert worker.run_one() is None


def test_an_exception_fails_the_job(database: Database) -> None:
    def broken(job: JobContext) -> None:
        raise RuntimeError("detector offset missing")

    worker, queue = make_worker(database, broken=broken)
    job = queue.enqueue("broken", {})
    worker.run_one()
    done = queue.get(job.id)
    assert (done.state, done.error) == (JobState.FAILED, "RuntimeError: detector offset missing")


def test_a_cancellation_is_noticed_at_the_next_progress_report(database: Database) -> None:
    steps = []

    def long(job: JobContext) -> None:
        queue.request_cancel(job.job.id)  # as POST /api/jobs/{id}/cancel would
        for step in range(10):
            steps.append(step)
            job.progress(step * 10, f"step {step}")

    worker, queue = make_worker(database, long=long)
    queue.enqueue("long", {})
    worker.run_one()
    assert steps == [0]
    assert queue.get(1).state is JobState.CANCELLED


def test_extensions_must_import_and_register() -> None:
    with pytest.raises(ExtensionError, match=r"'no\.such\.module' cannot be imported"):
        load_extensions(["no.such.module"], Registry())
    with pytest.raises(ExtensionError, match="'json' has no register"):
        load_extensions(["json"], Registry())

"""A test extension, loaded through the ``Extensions`` setting like any capability.

Its job kinds leave a trace of every attempt in a marker file named by the job, so
tests can count attempts across worker and Orthanc deaths; its stable-study handler
appends to the file named by ``HOUNSFIELD_TEST_EVENTS_LOG`` and queues one job, and every
event is written to ``HOUNSFIELD_TEST_LIFECYCLE_LOG``.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from hounsfield.events.context import EventContext
from hounsfield.events.types import Event
from hounsfield.jobs.context import JobContext
from hounsfield.registry import Registry

EVENTS_LOG_VARIABLE = "HOUNSFIELD_TEST_EVENTS_LOG"
LIFECYCLE_LOG_VARIABLE = "HOUNSFIELD_TEST_LIFECYCLE_LOG"


def _mark_attempt(job: JobContext) -> None:
    marker = job.params.get("marker")
    if marker:
        with open(marker, "a") as stream:
            stream.write(f"{os.getpid()} {job.job.attempts}\n")


def sleep_job(job: JobContext) -> dict[str, Any]:
    """Sleeps ``seconds`` in small steps, reporting progress (and so noticing cancellation)."""
    _mark_attempt(job)
    seconds = float(job.params.get("seconds", 0))
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        job.progress(100 * (1 - left / seconds) if seconds else 100)
        time.sleep(min(0.05, left))
    return {"slept": seconds, "attempt": job.job.attempts, "pid": os.getpid()}


def stubborn_job(job: JobContext) -> None:
    """Sleeps without ever reporting progress: only a hard cancel can stop it."""
    _mark_attempt(job)
    time.sleep(float(job.params.get("seconds", 60)))


def failing_job(job: JobContext) -> None:
    raise ValueError(job.params.get("message", "failed on purpose"))


def crashing_job(job: JobContext) -> None:
    """Kills its own worker process, as a segfault in native code would."""
    _mark_attempt(job)
    os.kill(os.getpid(), signal.SIGKILL)


def record_stable_study(context: EventContext) -> None:
    study = context.orthanc.get_json(f"/studies/{context.event.resource_id}")
    uid = study["MainDicomTags"]["StudyInstanceUID"]
    log_path = Path(os.environ[EVENTS_LOG_VARIABLE])
    with log_path.open("a") as stream:
        stream.write(f"{context.event.resource_id} {context.event.id} {uid}\n")
    context.enqueue("tests.sleep", {"seconds": 0, "study": context.event.resource_id})


def record_lifecycle(context: EventContext) -> None:
    """Every event of every resource, as "<event> <resource id>" lines in delivery order."""
    with Path(os.environ[LIFECYCLE_LOG_VARIABLE]).open("a") as stream:
        stream.write(f"{context.event.type.value} {context.event.resource_id}\n")


def register(registry: Registry) -> None:
    registry.job_kind("tests.sleep", sleep_job)
    registry.job_kind("tests.stubborn", stubborn_job)
    registry.job_kind("tests.fail", failing_job)
    registry.job_kind("tests.crash", crashing_job)
    if EVENTS_LOG_VARIABLE in os.environ:
        registry.on(Event.STUDY_STABLE, record_stable_study, name="tests.record_stable_study")
    if LIFECYCLE_LOG_VARIABLE in os.environ:
        for event in Event:
            registry.on(event, record_lifecycle, name="tests.record_lifecycle")

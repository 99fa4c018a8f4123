"""What a job handler sees while it runs inside a worker process."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from hounsfield.jobs.model import Job
from hounsfield.orthanc_api import OrthancApi

if TYPE_CHECKING:
    from hounsfield.db import Database
    from hounsfield.jobs.queue import JobQueue

PROGRESS_INTERVAL_SECONDS = 0.5


class JobCancelled(Exception):
    """Raised from ``JobContext.progress`` once a cancellation was requested."""


class JobContext:
    """Parameters of the job and a way to report progress (which also notices cancellation)."""

    def __init__(
        self,
        queue: JobQueue,
        job: Job,
        worker: str,
        orthanc: OrthancApi | None = None,
        database: Database | None = None,
    ) -> None:
        self.job = job
        self._queue = queue
        self._worker = worker
        self._orthanc = orthanc
        self._database = database
        self._last_report = 0.0
        self.cancel_requested = False

    @property
    def params(self) -> dict[str, Any]:
        return self.job.params

    @property
    def orthanc(self) -> OrthancApi:
        """Orthanc's REST API, authenticated as the worker service account."""
        if self._orthanc is None:
            raise RuntimeError("this worker was started without access to Orthanc")
        return self._orthanc

    @property
    def database(self) -> Database:
        """The plugin's database (the one the queue is in), for a job that records its
        results in its feature's tables. Write them idempotently (unique keys, ``ON
        CONFLICT``): a job that runs again after a crash writes them again."""
        if self._database is None:
            raise RuntimeError("this worker was started without the plugin's database")
        return self._database

    def progress(self, percent: float, message: str | None = None) -> None:
        """Report progress (0-100); throttled, so call it as often as convenient."""
        now = time.monotonic()
        if message is None and now - self._last_report < PROGRESS_INTERVAL_SECONDS:
            return
        self._last_report = now
        if self._queue.report_progress(self.job.id, self._worker, int(percent), message):
            self.cancel_requested = True
            raise JobCancelled(f"job {self.job.id} was cancelled")

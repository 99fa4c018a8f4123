"""The plugin's figures in Orthanc's metrics (``/tools/metrics-prometheus``), refreshed
by the worker supervisor's tick."""

from __future__ import annotations

from collections.abc import Callable

from hounsfield.events.dispatcher import EventDispatcher
from hounsfield.jobs.queue import JobQueue
from hounsfield.jobs.supervisor import WorkerPool
from hounsfield.runs import RunLog

MetricsSink = Callable[[str, float], None]


class Metrics:
    def __init__(
        self,
        sink: MetricsSink,
        jobs: JobQueue,
        pool: WorkerPool,
        events: EventDispatcher,
        runs: RunLog,
    ) -> None:
        self._sink = sink
        self._jobs = jobs
        self._pool = pool
        self._events = events
        self._runs = runs

    def publish(self) -> None:
        for state, count in self._jobs.counts().items():
            self._sink(f"hounsfield_jobs_{state}", count)
        self._sink("hounsfield_queue_oldest_seconds", self._jobs.oldest_queued_age() or 0.0)
        workers = self._pool.status()
        self._sink("hounsfield_workers_alive", sum(w["alive"] for w in workers))
        self._sink("hounsfield_worker_restarts", sum(w["restarts"] for w in workers))
        self._sink("hounsfield_events_pending", self._events.pending())
        summary = self._runs.summary()
        self._sink("hounsfield_orthanc_starts", summary.starts)
        self._sink("hounsfield_orthanc_unclean_stops", summary.unclean_stops)

"""The plugin's figures, two ways.

* In Orthanc's own metrics (``/tools/metrics-prometheus``), refreshed by the worker
  supervisor's tick (``Metrics.publish``): Orthanc 1.10 takes a name and a value, no labels.
* At ``GET /api/metrics`` (``hounsfield.metrics_routes``), labelled, in Prometheus's text
  exposition format 0.0.4 written here (``exposition``): ``Metrics.families`` reads them
  when the scraper asks, with a handful of indexed queries (``MIGRATIONS``).

Figures of this Orthanc process carry a ``node`` label (the run log's node name); those of
the shared database (the queue, the audit trail) carry none, so that every instance of a
cluster reports the same series for them.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from hounsfield.clock import iso_seconds_ago
from hounsfield.db import Database, Migration, Schema
from hounsfield.events.dispatcher import EventDispatcher
from hounsfield.jobs.model import JobState
from hounsfield.jobs.queue import JobQueue
from hounsfield.jobs.supervisor import WorkerPool
from hounsfield.runs import RunLog

MetricsSink = Callable[[str, float], None]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_WINDOW_SECONDS = 15 * 60  # job durations: over the jobs finished this recently
QUANTILES = (0.5, 0.95)
# The states a job ends in that it ran to: their durations are its work's.
TIMED_STATES = (JobState.SUCCEEDED.value, JobState.FAILED.value)
FINISHED_STATES = tuple(state.value for state in JobState if state.finished)
# The audit trail's entry for a refused sign-in (a page's, or HTTP Basic's): auth.service.
LOGIN_ACTION, LOGIN_REFUSED = "auth.login", "denied"

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = frozenset({"counter", "gauge", "summary", "histogram", "untyped"})


# --- The text exposition format 0.0.4 -------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)
    suffix: str = ""  # a summary's "_sum", "_count"; a histogram's "_bucket"...


@dataclass
class MetricFamily:
    name: str
    type: str  # counter, gauge, summary, histogram or untyped
    help: str
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not _METRIC_NAME.fullmatch(self.name):
            raise ValueError(f"invalid metric name {self.name!r}")
        if self.type not in TYPES:
            raise ValueError(f"invalid metric type {self.type!r}")

    def add(self, value: float, suffix: str = "", **labels: str) -> MetricFamily:
        for name in labels:
            if not _LABEL_NAME.fullmatch(name) or name.startswith("__"):
                raise ValueError(f"invalid label name {name!r} in {self.name}")
        self.samples.append(Sample(value, labels, suffix))
        return self


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """As Prometheus reads them: integers without a fraction, +Inf, -Inf, NaN."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**63:
        return str(int(value))
    return repr(value)


def exposition(families: Iterable[MetricFamily]) -> str:
    """The families in the text format 0.0.4: HELP, TYPE, then one line per sample."""
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.type}")
        for sample in family.samples:
            labels = ",".join(
                f'{name}="{escape_label_value(str(value))}"'
                for name, value in sample.labels.items()
            )
            braces = f"{{{labels}}}" if labels else ""
            lines.append(f"{family.name}{sample.suffix}{braces} {format_value(sample.value)}")
    return "\n".join(lines) + "\n" if lines else ""


def quantile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile of sorted values, interpolated between the two nearest ranks."""
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


# --- What /api/metrics reads cheaply ---------------------------------------------------------


def _create_indexes(schema: Schema) -> None:
    # Durations of the jobs finished in the last minutes; finished jobs by kind and state
    # (read from the index alone); refused sign-ins (the audit trail, from the index alone).
    schema.create_index("jobs", ["finished_at"], name="jobs_by_finished_at")
    schema.create_index("jobs", ["state", "kind"], name="jobs_by_state_kind")
    schema.create_index("audit_log", ["action", "outcome"], name="audit_by_action_outcome")


MIGRATIONS = [Migration("metrics.0001.indexes", _create_indexes)]


class Counter:
    """A count kept in memory by this process: ``increment`` from any thread (Orthanc's
    callbacks), for a few hundred nanoseconds, never waiting on I/O."""

    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()

    def increment(self) -> None:
        with self._lock:
            self._value += 1

    @property
    def value(self) -> int:
        return self._value


class Metrics:
    def __init__(
        self,
        sink: MetricsSink,
        jobs: JobQueue,
        pool: WorkerPool,
        events: EventDispatcher,
        runs: RunLog,
        *,
        database: Database,
        storage_free_bytes: Callable[[], int],
    ) -> None:
        self._sink = sink
        self._jobs = jobs
        self._pool = pool
        self._events = events
        self._runs = runs
        self._db = database
        self._storage_free_bytes = storage_free_bytes
        self.instances_received = Counter()

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

    def families(self) -> list[MetricFamily]:
        """Every figure of ``/api/metrics``, read now."""
        node = self._runs.node
        workers = self._pool.status()
        jobs = MetricFamily("hounsfield_jobs", "gauge", "Jobs in the shared queue, by state.")
        for state, count in self._jobs.counts().items():
            jobs.add(count, state=state)
        return [
            MetricFamily(
                "hounsfield_instances_received_total",
                "counter",
                "DICOM instances this Orthanc process received and admitted since it started "
                "(every road: C-STORE, REST, STOW-RS, modify/anonymize).",
            ).add(self.instances_received.value, node=node),
            jobs,
            MetricFamily(
                "hounsfield_queue_oldest_seconds",
                "gauge",
                "Age of the oldest queued job in seconds (0 when none is queued).",
            ).add(self._jobs.oldest_queued_age() or 0.0),
            self._durations(),
            self._finished(),
            MetricFamily(
                "hounsfield_worker_restarts_total",
                "counter",
                "Worker processes of this Orthanc process restarted after they died.",
            ).add(sum(w["restarts"] for w in workers), node=node),
            MetricFamily(
                "hounsfield_workers_alive", "gauge", "Worker processes of this node alive now."
            ).add(sum(bool(w["alive"]) for w in workers), node=node),
            MetricFamily(
                "hounsfield_login_failures_total",
                "counter",
                "Refused sign-ins (sign-in page and HTTP Basic), as the audit trail records "
                f"them ({LOGIN_ACTION}, {LOGIN_REFUSED}).",
            ).add(self._login_failures()),
            MetricFamily(
                "hounsfield_storage_free_bytes",
                "gauge",
                "Free bytes on the file system of Orthanc's storage directory.",
            ).add(self._storage_free_bytes(), node=node),
            MetricFamily(
                "hounsfield_events_pending",
                "gauge",
                "Events recorded and not yet dispatched to their handlers.",
            ).add(self._events.pending()),
        ]

    def _durations(self) -> MetricFamily:
        family = MetricFamily(
            "hounsfield_job_duration_seconds",
            "summary",
            f"Run time of the jobs finished in the last {DURATION_WINDOW_SECONDS // 60} minutes "
            "(succeeded or failed), by kind: quantiles from start to finish of the last attempt.",
        )
        # The window alone in SQL: a condition on the state would lead the planner to the
        # state's index, through every job that ever succeeded.
        rows = self._db.query(
            "SELECT kind, state, started_at, finished_at FROM jobs WHERE finished_at >= ?",
            (iso_seconds_ago(DURATION_WINDOW_SECONDS),),
        )
        by_kind: dict[str, list[float]] = {}
        for kind, state, started, finished in rows:
            if state not in TIMED_STATES or started is None:
                continue
            seconds = datetime.fromisoformat(finished) - datetime.fromisoformat(started)
            by_kind.setdefault(kind, []).append(max(0.0, seconds.total_seconds()))
        for kind in sorted(by_kind):
            ordered = sorted(by_kind[kind])
            for q in QUANTILES:
                family.add(round(quantile(ordered, q), 6), kind=kind, quantile=format_value(q))
        return family

    def _finished(self) -> MetricFamily:
        family = MetricFamily(
            "hounsfield_jobs_finished_total",
            "counter",
            "Jobs that ended, by kind and state (succeeded, failed, cancelled); a retry is a "
            "new job.",
        )
        marks = ", ".join("?" for _ in FINISHED_STATES)
        rows = self._db.query(
            f"SELECT kind, state, count(*) FROM jobs WHERE state IN ({marks})"
            " GROUP BY kind, state ORDER BY kind, state",
            FINISHED_STATES,
        )
        for kind, state, count in rows:
            family.add(count, kind=kind, state=state)
        return family

    def _login_failures(self) -> int:
        rows = self._db.query(
            "SELECT count(*) FROM audit_log WHERE action = ? AND outcome = ?",
            (LOGIN_ACTION, LOGIN_REFUSED),
        )
        return rows[0][0]

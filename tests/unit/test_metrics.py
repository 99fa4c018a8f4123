"""The Prometheus text our /api/metrics writes (``hounsfield.metrics``), read back by the
reference parser (prometheus_client), and the figures it reads from the database, on both
backends."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hounsfield.audit.trail import AuditEntry, AuditTrail
from hounsfield.db import Database
from hounsfield.events.dispatcher import EventDispatcher
from hounsfield.jobs.queue import DatabaseJobQueue
from hounsfield.jobs.supervisor import WorkerPool
from hounsfield.metrics import (
    DURATION_WINDOW_SECONDS,
    MetricFamily,
    Metrics,
    escape_label_value,
    exposition,
    format_value,
    quantile,
)
from hounsfield.registry import Registry
from hounsfield.runs import RunLog

AWKWARD = ["back\\slash", 'a "quoted" word', "two\nlines", 'all \\" of\n them\\', "", "é ✓"]


def parsed(text: str) -> dict[str, list]:
    """Family name (as the parser names it: a counter without "_total") -> its samples."""
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_label_values_are_escaped_and_read_back_as_written() -> None:
    family = MetricFamily("hounsfield_test_total", "counter", "A test.")
    for index, value in enumerate(AWKWARD):
        family.add(index, kind=value, node="n")
    text = exposition([family])
    samples = parsed(text)["hounsfield_test"].samples
    assert [sample.labels["kind"] for sample in samples] == AWKWARD
    assert [sample.value for sample in samples] == list(range(len(AWKWARD)))
    assert all(sample.name == "hounsfield_test_total" for sample in samples)
    # Every sample on one line: a newline in a value never breaks one.
    assert len(text.splitlines()) == 2 + len(AWKWARD)


def test_the_text_is_the_format_0_0_4_line_by_line() -> None:
    families = [
        MetricFamily("hounsfield_a_total", "counter", 'Help with \\ and\nnewline and "quotes".')
        .add(3, node='x"y')
        .add(4.5, node="z"),
        MetricFamily("hounsfield_b", "gauge", "Unlabelled.").add(0),
        MetricFamily("hounsfield_c_seconds", "summary", "Quantiles.")
        .add(0.25, kind="k", quantile="0.5")
        .add(1.0, kind="k", quantile="0.95"),
        MetricFamily("hounsfield_empty", "gauge", "No sample yet."),
    ]
    assert exposition(families) == (
        '# HELP hounsfield_a_total Help with \\\\ and\\nnewline and "quotes".\n'
        "# TYPE hounsfield_a_total counter\n"
        'hounsfield_a_total{node="x\\"y"} 3\n'
        'hounsfield_a_total{node="z"} 4.5\n'
        "# HELP hounsfield_b Unlabelled.\n"
        "# TYPE hounsfield_b gauge\n"
        "hounsfield_b 0\n"
        "# HELP hounsfield_c_seconds Quantiles.\n"
        "# TYPE hounsfield_c_seconds summary\n"
        'hounsfield_c_seconds{kind="k",quantile="0.5"} 0.25\n'
        'hounsfield_c_seconds{kind="k",quantile="0.95"} 1\n'
        "# HELP hounsfield_empty No sample yet.\n"
        "# TYPE hounsfield_empty gauge\n"
    )
    read = parsed(exposition(families))
    assert read["hounsfield_a"].documentation == 'Help with \\ and\nnewline and "quotes".'
    assert read["hounsfield_a"].type == "counter"
    assert read["hounsfield_c_seconds"].type == "summary"
    assert read["hounsfield_empty"].samples == []
    assert exposition([]) == ""


def test_values_are_written_as_prometheus_reads_them() -> None:
    assert format_value(3) == "3"
    assert format_value(3.0) == "3"
    assert format_value(True) == "1"
    assert format_value(0.1) == "0.1"
    assert format_value(-2.5e-9) == "-2.5e-09"
    assert format_value(2**70) == repr(float(2**70))
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"
    assert format_value(math.nan) == "NaN"
    family = MetricFamily("hounsfield_values", "gauge", "Values.")
    for value in (1, 0.1, -2.5e-9, 2**70, math.inf, -math.inf):
        family.add(value, v=str(value))
    family.add(math.nan, v="nan")
    samples = parsed(exposition([family]))["hounsfield_values"].samples
    assert [s.value for s in samples[:-1]] == [1, 0.1, -2.5e-9, 2**70, math.inf, -math.inf]
    assert math.isnan(samples[-1].value)


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("hounsfield bad", {}),
        ("1hounsfield", {}),
        ("hounsfield_ok", {"bad-label": "x"}),
        ("hounsfield_ok", {"__reserved": "x"}),
    ],
)
def test_invalid_names_are_refused(name: str, labels: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        MetricFamily(name, "gauge", "x").add(1, **labels)


def test_quantiles_interpolate_between_ranks() -> None:
    assert quantile([4.0], 0.95) == 4.0
    assert quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0
    assert quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.95) == pytest.approx(4.8)
    assert quantile([0.0, 10.0], 0.5) == 5.0
    assert escape_label_value('\\"\n') == '\\\\\\"\\n'


# --- The figures, read from a real database (SQLite and PostgreSQL) ---------------------------


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _finish(
    database: Database, queue: DatabaseJobQueue, kind: str, seconds: float, ago: float, state: str
) -> None:
    """A job of ``kind`` that ran ``seconds`` and ended ``ago`` seconds ago in ``state``."""
    job = queue.enqueue(kind, {})
    claimed = queue.claim(node="n1", worker="w", kinds=[kind])
    assert claimed is not None and claimed.id == job.id
    if state == "succeeded":
        assert queue.succeed(job.id, "w", None)
    elif state == "failed":
        assert queue.fail(job.id, "w", "on purpose")
    else:
        assert queue.mark_cancelled(job.id, "w")
    finished = datetime.now(UTC) - timedelta(seconds=ago)
    database.execute(
        "UPDATE jobs SET started_at = ?, finished_at = ? WHERE id = ?",
        (_iso(finished - timedelta(seconds=seconds)), _iso(finished), job.id),
    )


def test_the_figures_come_from_the_tables(database: Database) -> None:
    queue = DatabaseJobQueue(database)
    audit = AuditTrail(database)
    pool = WorkerPool(queue, lambda slot: None, size=2, node="n1", cancel_grace_seconds=1)
    events = EventDispatcher(database, Registry(), lambda *args: None, node="n1")
    metrics = Metrics(
        lambda name, value: None,
        queue,
        pool,
        events,
        RunLog(database, 'node "1"'),
        database=database,
        storage_free_bytes=lambda: 123456789,
    )
    for seconds in (1.0, 2.0, 3.0, 4.0, 5.0):
        _finish(database, queue, "recon.fdk", seconds, ago=60, state="succeeded")
    _finish(
        database, queue, "recon.fdk", 100.0, ago=DURATION_WINDOW_SECONDS + 60, state="succeeded"
    )
    _finish(database, queue, "recon.fdk", 7.0, ago=5, state="failed")
    _finish(database, queue, "ai.analyze", 0.5, ago=5, state="cancelled")  # not timed
    queue.enqueue("ai.analyze", {})
    for outcome in ("denied", "denied", "allowed"):
        audit.append(AuditEntry("auth.login", outcome, username="someone", ip="127.0.0.1"))
    audit.append(AuditEntry("user.password", "denied", username="someone"))
    for _ in range(3):
        metrics.instances_received.increment()

    text = exposition(metrics.families())
    read = parsed(text)
    for family in read.values():
        assert family.documentation, f"{family.name} has no HELP"

    def values(name: str) -> dict[tuple, float]:
        return {
            tuple(sorted(s.labels.items())): s.value
            for s in read[name].samples
            if s.name.startswith(name)
        }

    node = (("node", 'node "1"'),)
    assert values("hounsfield_instances_received") == {node: 3}
    assert values("hounsfield_jobs") == {
        (("state", "queued"),): 1,
        (("state", "running"),): 0,
        (("state", "succeeded"),): 6,
        (("state", "failed"),): 1,
        (("state", "cancelled"),): 1,
    }
    assert values("hounsfield_queue_oldest_seconds")[()] >= 0
    # Five runs of 1-5 s and a failed one of 7 s in the window; the 100 s one is older.
    assert values("hounsfield_job_duration_seconds") == {
        (("kind", "recon.fdk"), ("quantile", "0.5")): 3.5,
        (("kind", "recon.fdk"), ("quantile", "0.95")): pytest.approx(6.5),
    }
    assert values("hounsfield_jobs_finished") == {
        (("kind", "ai.analyze"), ("state", "cancelled")): 1,
        (("kind", "recon.fdk"), ("state", "failed")): 1,
        (("kind", "recon.fdk"), ("state", "succeeded")): 6,
    }
    assert values("hounsfield_worker_restarts") == {node: 0}
    assert values("hounsfield_workers_alive") == {node: 0}
    assert values("hounsfield_login_failures") == {(): 2}
    assert values("hounsfield_storage_free_bytes") == {node: 123456789}
    assert values("hounsfield_events_pending") == {(): 0}


def test_the_queries_read_indexes(database: Database) -> None:
    """SQLite's plan: each query of /api/metrics goes through an index (the two counts read
    the index alone), so a long history costs an index range, not a table scan."""
    if database.dialect.name != "sqlite":
        pytest.skip(
            "PostgreSQL's planner picks by its statistics: the indexes exist, checked below"
        )
    queue = DatabaseJobQueue(database)
    metrics = Metrics(
        lambda name, value: None,
        queue,
        WorkerPool(queue, lambda slot: None, size=0, node="n", cancel_grace_seconds=1),
        EventDispatcher(database, Registry(), lambda *args: None, node="n"),
        RunLog(database, "n"),
        database=database,
        storage_free_bytes=lambda: 0,
    )
    plans: list[str] = []
    original = database.query

    def explained(sql: str, params=()):  # the same statement, through the real database
        plans.extend(row[-1] for row in original(f"EXPLAIN QUERY PLAN {sql}", params))
        return original(sql, params)

    database.query = explained  # type: ignore[method-assign]
    try:
        metrics.families()
    finally:
        database.query = original  # type: ignore[method-assign]
    assert not [plan for plan in plans if plan.startswith("SCAN") and "INDEX" not in plan], plans
    joined = "\n".join(plans)
    assert "jobs_by_finished_at" in joined
    assert "COVERING INDEX jobs_by_state_kind" in joined
    assert "COVERING INDEX audit_by_action_outcome" in joined


def test_the_indexes_exist_on_both_backends(database: Database) -> None:
    if database.dialect.name == "sqlite":
        rows = database.query("SELECT name FROM sqlite_master WHERE type = 'index'")
    else:
        rows = database.query(
            "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        )
    names = {row[0] for row in rows}
    assert {"jobs_by_finished_at", "jobs_by_state_kind", "audit_by_action_outcome"} <= names

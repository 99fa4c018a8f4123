"""The job queue behind a small interface, with SQLite as the embedded backend.

Every state change is one SQL statement guarded by the current state (and, for a
running job, by the claiming worker's id), so a worker that was given up for dead
can never overwrite the outcome of the attempt that replaced it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from hounsfield.clock import age_seconds, iso_seconds_ago, now_iso
from hounsfield.db import Database, Dialect, Migration, Schema
from hounsfield.jobs.model import Job, JobState


class JobQueue(Protocol):
    """What the plugin, the workers and the REST routes need from a queue backend."""

    def enqueue(
        self,
        kind: str,
        params: dict[str, Any],
        *,
        priority: int = 0,
        max_attempts: int | None = None,
        dedupe_key: str | None = None,
        pinned_node: str | None = None,
    ) -> Job:
        """``pinned_node``: only that node's workers may run it (its inputs are files
        only that instance has)."""
        ...

    def get(self, job_id: int) -> Job | None: ...

    def count(
        self,
        *,
        state: JobState | None = None,
        kind: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> int: ...

    def list(
        self,
        *,
        state: JobState | None = None,
        kind: str | None = None,
        params: Mapping[str, str] | None = None,
        limit: int,
        offset: int,
    ) -> list[Job]:
        """Newest first; ``params``: jobs whose parameters hold these values."""
        ...

    def request_cancel(self, job_id: int) -> Job | None: ...

    def claim(self, *, node: str, worker: str, kinds: Iterable[str]) -> Job | None: ...

    def report_progress(
        self, job_id: int, worker: str, progress: int, message: str | None
    ) -> bool: ...

    def succeed(self, job_id: int, worker: str, result: Any) -> bool: ...

    def fail(self, job_id: int, worker: str, error: str) -> bool: ...

    def mark_cancelled(self, job_id: int, worker: str) -> bool: ...

    def recover(
        self, *, node: str, worker: str | None = None, reason: str, count_attempt: bool
    ) -> list[Job]: ...

    def cancel_overdue(self, *, node: str, grace_seconds: float) -> list[Job]: ...

    def counts(self) -> dict[str, int]: ...

    def oldest_queued_age(self) -> float | None: ...


def _create_jobs_table(schema: Schema) -> None:
    schema.create_table(
        "jobs",
        {
            "id": int,
            "kind": str,
            "params": str,
            "state": str,
            "priority": int,
            "progress": int,
            "message": str,
            "result": str,
            "error": str,
            "attempts": int,
            "max_attempts": int,
            "cancel_requested_at": str,
            "node": str,
            "worker": str,
            "dedupe_key": str,
            "created_at": str,
            "started_at": str,
            "finished_at": str,
            "updated_at": str,
        },
        pk="id",
        not_null={
            "kind",
            "params",
            "state",
            "priority",
            "progress",
            "attempts",
            "max_attempts",
            "created_at",
            "updated_at",
        },
        defaults={"priority": 0, "progress": 0, "attempts": 0},
    )
    schema.create_index("jobs", ["state", "priority", "id"], name="jobs_by_state")
    schema.create_index("jobs", ["dedupe_key"], name="jobs_dedupe_key", unique=True)


def _add_pinned_node(schema: Schema) -> None:
    schema.add_column("jobs", "pinned_node", str)


MIGRATIONS = [
    Migration("jobs.0001.create", _create_jobs_table),
    Migration("jobs.0002.pinned_node", _add_pinned_node),
]


class DatabaseJobQueue:
    """Jobs as rows of one table; safe for the plugin's threads, the workers and (on
    PostgreSQL) several instances: a claim takes one queued row that no one else holds."""

    def __init__(self, database: Database, *, default_max_attempts: int = 3) -> None:
        self.db = database
        self.default_max_attempts = default_max_attempts

    def enqueue(
        self,
        kind: str,
        params: dict[str, Any],
        *,
        priority: int = 0,
        max_attempts: int | None = None,
        dedupe_key: str | None = None,
        pinned_node: str | None = None,
    ) -> Job:
        now = now_iso()
        rows = self.db.execute(
            "INSERT INTO jobs (kind, params, state, priority, max_attempts, dedupe_key,"
            " pinned_node, created_at, updated_at) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (dedupe_key) DO NOTHING RETURNING *",
            (
                kind,
                json.dumps(params),
                priority,
                max_attempts or self.default_max_attempts,
                dedupe_key,
                pinned_node,
                now,
                now,
            ),
        )
        if rows:
            return Job.from_row(rows[0])
        existing = self.db.execute("SELECT * FROM jobs WHERE dedupe_key = ?", (dedupe_key,))
        return Job.from_row(existing[0])

    def get(self, job_id: int) -> Job | None:
        rows = self.db.query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return Job.from_row(rows[0]) if rows else None

    def list(
        self,
        *,
        state: JobState | None = None,
        kind: str | None = None,
        params: Mapping[str, str] | None = None,
        limit: int,
        offset: int,
    ) -> list[Job]:
        where, values = _filters(self.db.dialect, state=state, kind=kind, params=params)
        rows = self.db.query(
            f"SELECT * FROM jobs {where} ORDER BY id DESC LIMIT ? OFFSET ?",
            (*values, limit, offset),
        )
        return [Job.from_row(row) for row in rows]

    def count(
        self,
        *,
        state: JobState | None = None,
        kind: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> int:
        where, values = _filters(self.db.dialect, state=state, kind=kind, params=params)
        return self.db.query(f"SELECT count(*) FROM jobs {where}", values)[0][0]

    def request_cancel(self, job_id: int) -> Job | None:
        """Cancel a queued job at once; ask a running one to stop (its worker sees the flag)."""
        now = now_iso()
        with self.db.transaction():
            self.db.execute(
                "UPDATE jobs SET state = 'cancelled', cancel_requested_at = ?, finished_at = ?,"
                " updated_at = ? WHERE id = ? AND state = 'queued'",
                (now, now, now, job_id),
            )
            self.db.execute(
                "UPDATE jobs SET cancel_requested_at = ?, updated_at = ?"
                " WHERE id = ? AND state = 'running' AND cancel_requested_at IS NULL",
                (now, now, job_id),
            )
            rows = self.db.query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return Job.from_row(rows[0]) if rows else None

    def claim(self, *, node: str, worker: str, kinds: Iterable[str]) -> Job | None:
        kinds = list(kinds)
        if not kinds:
            return None
        now = now_iso()
        marks = ", ".join("?" for _ in kinds)
        rows = self.db.execute(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, node = ?, worker = ?,"
            " progress = 0, message = NULL, started_at = ?, updated_at = ?"
            " WHERE id = (SELECT id FROM jobs WHERE state = 'queued' AND kind IN"
            f" ({marks}) AND (pinned_node IS NULL OR pinned_node = ?)"
            f" ORDER BY priority DESC, id LIMIT 1{self.db.dialect.skip_locked})"
            " AND state = 'queued' RETURNING *",
            (node, worker, now, now, *kinds, node),
        )
        return Job.from_row(rows[0]) if rows else None

    def report_progress(self, job_id: int, worker: str, progress: int, message: str | None) -> bool:
        """Record progress; returns True when a cancellation was requested."""
        rows = self.db.execute(
            "UPDATE jobs SET progress = ?, message = coalesce(?, message), updated_at = ?"
            " WHERE id = ? AND worker = ? AND state = 'running' RETURNING cancel_requested_at",
            (max(0, min(100, int(progress))), message, now_iso(), job_id, worker),
        )
        return bool(rows) and rows[0][0] is not None

    def succeed(self, job_id: int, worker: str, result: Any) -> bool:
        return self._finish(job_id, worker, JobState.SUCCEEDED, result=json.dumps(result))

    def fail(self, job_id: int, worker: str, error: str) -> bool:
        return self._finish(job_id, worker, JobState.FAILED, error=error)

    def mark_cancelled(self, job_id: int, worker: str) -> bool:
        return self._finish(job_id, worker, JobState.CANCELLED)

    def recover(
        self, *, node: str, worker: str | None = None, reason: str, count_attempt: bool
    ) -> list[Job]:
        """Settle the running jobs of a dead worker (or of a whole node after a restart).

        A job whose cancellation was requested ends cancelled; one that has used up its
        attempts fails with ``reason``; any other goes back to the queue. When the
        interruption was not the job's fault (a clean shutdown), the attempt is given back.
        """
        now = now_iso()
        scope, scope_params = ("node = ?", [node]) if worker is None else ("worker = ?", [worker])
        refund = 0 if count_attempt else 1
        with self.db.transaction():
            running = f"state = 'running' AND {scope}"
            self.db.execute(
                "UPDATE jobs SET state = 'cancelled', finished_at = ?, updated_at = ?"
                f" WHERE {running} AND cancel_requested_at IS NOT NULL",
                (now, now, *scope_params),
            )
            self.db.execute(
                "UPDATE jobs SET state = 'failed', finished_at = ?, updated_at = ?,"
                " error = ? || ' (attempt ' || attempts || ' of ' || max_attempts || ')'"
                f" WHERE {running} AND attempts - ? >= max_attempts",
                (now, now, reason, *scope_params, refund),
            )
            # A running job was claimed: attempts >= 1 >= refund.
            rows = self.db.execute(
                "UPDATE jobs SET state = 'queued', attempts = attempts - ?, node = NULL,"
                " worker = NULL, progress = 0, message = ?, updated_at = ?"
                f" WHERE {running} RETURNING *",
                (refund, f"requeued: {reason}", now, *scope_params),
            )
        return [Job.from_row(row) for row in rows]

    def cancel_overdue(self, *, node: str, grace_seconds: float) -> list[Job]:
        """Running jobs of ``node`` asked to cancel more than ``grace_seconds`` ago."""
        rows = self.db.query(
            "SELECT * FROM jobs WHERE state = 'running' AND node = ? AND cancel_requested_at <= ?",
            (node, iso_seconds_ago(grace_seconds)),
        )
        return [Job.from_row(row) for row in rows]

    def counts(self) -> dict[str, int]:
        found = dict(self.db.query("SELECT state, count(*) FROM jobs GROUP BY state"))
        return {state.value: found.get(state.value, 0) for state in JobState}

    def oldest_queued_age(self) -> float | None:
        rows = self.db.query("SELECT min(created_at) FROM jobs WHERE state = 'queued'")
        return age_seconds(rows[0][0]) if rows[0][0] else None

    def _finish(
        self,
        job_id: int,
        worker: str,
        state: JobState,
        *,
        result: str | None = None,
        error: str | None = None,
    ) -> bool:
        now = now_iso()
        progress = 100 if state is JobState.SUCCEEDED else None
        rows = self.db.execute(
            "UPDATE jobs SET state = ?, result = ?, error = ?, progress = coalesce(?, progress),"
            " finished_at = ?, updated_at = ? WHERE id = ? AND worker = ? AND state = 'running'"
            " RETURNING id",
            (state.value, result, error, progress, now, now, job_id, worker),
        )
        return bool(rows)


def _filters(
    dialect: Dialect,
    *,
    state: JobState | None,
    kind: str | None,
    params: Mapping[str, str] | None = None,
) -> tuple[str, Sequence[str]]:
    clauses, values = [], []
    if state is not None:
        clauses.append("state = ?")
        values.append(state.value)
    if kind is not None:
        clauses.append("kind = ?")
        values.append(kind)
    for name, value in (params or {}).items():
        clauses.append(f"{dialect.json_member('params')} = ?")
        values += [dialect.json_key(name), value]
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), values

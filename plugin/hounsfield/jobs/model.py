"""What a job is, independent of where it is stored."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    params: dict[str, Any]
    state: JobState
    priority: int
    progress: int
    message: str | None
    result: Any
    error: str | None
    attempts: int
    max_attempts: int
    cancel_requested: bool
    node: str | None
    worker: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    updated_at: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Job:
        return cls(
            id=row["id"],
            kind=row["kind"],
            params=json.loads(row["params"]),
            state=JobState(row["state"]),
            priority=row["priority"],
            progress=row["progress"],
            message=row["message"],
            result=json.loads(row["result"]) if row["result"] is not None else None,
            error=row["error"],
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            cancel_requested=row["cancel_requested_at"] is not None,
            node=row["node"],
            worker=row["worker"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            updated_at=row["updated_at"],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "params": self.params,
            "state": self.state.value,
            "priority": self.priority,
            "progress": self.progress,
            "message": self.message,
            "result": self.result,
            "error": self.error,
            "attempts": self.attempts,
            "maxAttempts": self.max_attempts,
            "cancelRequested": self.cancel_requested,
            "worker": self.worker,
            "createdAt": self.created_at,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "updatedAt": self.updated_at,
        }

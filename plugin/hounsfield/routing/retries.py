"""Sends to other servers that failed, tried again with growing delays.

The routing rules (``lua/``) queue Orthanc jobs: ``DicomModalityStore`` to a DICOM
modality, ``OrthancPeerStore`` to an Orthanc peer. Orthanc runs each once; a destination
that is down fails it (connection refused after ``DicomScuTimeout``) and Orthanc's Lua in
1.10 has no timer to try later. ``Retries`` watches the store jobs and resubmits each failed
one (``POST /jobs/{id}/resubmit``: the same job, listed in ``/jobs`` throughout) after
``first_delay`` seconds, doubling up to ``max_delay``, ``attempts`` times; then it gives up,
which makes ``/api/health`` unhealthy until someone resubmits the job by hand (from Orthanc
Explorer's job page or ``POST /jobs/{id}/resubmit``) or it leaves Orthanc's job history.
A send started by hand (Orthanc Explorer's "Send to DICOM modality") is retried the same way.

What it remembers is in memory: after a restart Orthanc reloads its jobs (``SaveJobs``) and
a failed one is counted from its first attempt again; nothing is lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

STORE_JOBS = frozenset({"DicomModalityStore", "OrthancPeerStore"})
UNFINISHED = frozenset({"Pending", "Running", "Retry", "Paused"})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int  # resubmissions after the first failure
    first_delay: float  # seconds before the first resubmission
    max_delay: float

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure (1, 2, ...)."""
        return min(self.first_delay * 2 ** (failures - 1), self.max_delay)


@dataclass
class FailedSend:
    job: str
    destination: str
    resources: tuple[str, ...]
    failures: int
    due: float  # clock time of the next resubmission
    error: str
    resubmitted: bool = False  # and not yet seen failing again

    def to_json(self, now: float, gave_up: bool) -> dict[str, Any]:
        return {
            "job": self.job,
            "destination": self.destination,
            "resources": list(self.resources),
            "failures": self.failures,
            "error": self.error,
            **({} if gave_up else {"nextAttemptSeconds": round(max(0.0, self.due - now), 1)}),
        }


def destination(job: Mapping[str, Any]) -> str:
    """The AE title (a modality) or URL (a peer) a store job sends to."""
    content = job.get("Content") or {}
    return str(content.get("RemoteAet") or content.get("Peer") or "?")


class Retries:
    def __init__(self, policy: RetryPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._failed: dict[str, FailedSend] = {}
        self._sending = 0
        # The retry task changes what health requests read, from other threads.
        self._lock = threading.Lock()

    def due(self, jobs: Iterable[Mapping[str, Any]]) -> list[str]:
        """Take in Orthanc's jobs (``GET /jobs?expand``); the ids to resubmit now."""
        with self._lock:
            return self._due(jobs)

    def _due(self, jobs: Iterable[Mapping[str, Any]]) -> list[str]:
        now = self._clock()
        seen: set[str] = set()
        self._sending = 0
        resubmit: list[str] = []
        for job in jobs:
            if job.get("Type") not in STORE_JOBS:
                continue
            job_id, state = str(job.get("ID")), job.get("State")
            seen.add(job_id)
            failed = self._failed.get(job_id)
            if state in UNFINISHED:
                self._sending += 1
                if failed is not None and failed.failures > self.policy.attempts:
                    failed.failures, failed.resubmitted = 0, True  # resubmitted by hand
            elif state == "Success":
                self._failed.pop(job_id, None)
            elif state == "Failure":
                if failed is None:
                    failed = self._failed[job_id] = FailedSend(
                        job_id, destination(job), tuple(_resources(job)), 0, now, ""
                    )
                    failed.resubmitted = True  # its first failure is new
                if failed.resubmitted:
                    failed.failures += 1
                    failed.resubmitted = False
                    failed.due = now + self.policy.delay(failed.failures)
                    failed.error = str(job.get("ErrorDetails") or job.get("ErrorDescription"))
                if failed.failures <= self.policy.attempts and now >= failed.due:
                    resubmit.append(job_id)
        for gone in self._failed.keys() - seen:  # deleted, or out of Orthanc's history
            del self._failed[gone]
        return resubmit

    def resubmitted(self, job_id: str) -> None:
        with self._lock:
            self._failed[job_id].resubmitted = True

    def report(self) -> dict[str, Any]:
        """The ``routing`` component of ``/api/health``."""
        now = self._clock()
        with self._lock:
            failed = list(self._failed.values())
            sending = self._sending
        retrying = [f for f in failed if f.failures <= self.policy.attempts]
        gave_up = [f for f in failed if f.failures > self.policy.attempts]
        return {
            "healthy": not gave_up,
            "sending": sending,
            "retrying": [f.to_json(now, gave_up=False) for f in retrying],
            "gaveUp": [f.to_json(now, gave_up=True) for f in gave_up],
            "policy": {
                "attempts": self.policy.attempts,
                "firstDelaySeconds": self.policy.first_delay,
                "maxDelaySeconds": self.policy.max_delay,
            },
            **(
                {
                    "problem": f"{len(gave_up)} send(s) failed {self.policy.attempts + 1} times"
                    " and are no longer retried: resubmit them from Orthanc's jobs once"
                    " the destination is back"
                }
                if gave_up
                else {}
            ),
        }


def _resources(job: Mapping[str, Any]) -> list[str]:
    resources = (job.get("Content") or {}).get("ParentResources") or []
    return [str(resource) for resource in resources]

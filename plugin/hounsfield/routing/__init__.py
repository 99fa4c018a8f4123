"""Routing to other servers: the rules are Lua (``lua/rules.lua``, run by Orthanc's own Lua
engine, ``lua/routing.lua``); this extension tries failed sends again and reports them.

``hounsfield.routing`` in the ``Extensions`` setting; its section:

    "HounsfieldRouting": {"RetryAttempts": 20, "RetryFirstDelaySeconds": 30,
                          "RetryMaxDelaySeconds": 1800, "PollSeconds": 5}

(20 resubmissions, 30 s doubling to 30 min: about eight hours of a destination down
before the send is given up and ``/api/health`` says so.)
"""

from __future__ import annotations

import logging
import threading

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_pascal

from hounsfield.api import BackgroundTask, OrthancError, Registry, Services
from hounsfield.routing.retries import Retries, RetryPolicy

log = logging.getLogger(__name__)
SECTION = "HounsfieldRouting"


class RoutingSettings(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_pascal, extra="forbid", frozen=True, populate_by_name=True
    )

    retry_attempts: int = Field(20, ge=0, le=1000)
    retry_first_delay_seconds: float = Field(30.0, gt=0, le=86400)
    retry_max_delay_seconds: float = Field(1800.0, gt=0, le=86400)
    poll_seconds: float = Field(5.0, gt=0, le=600)


def retry_failed_sends(retries: Retries, every: float) -> BackgroundTask:
    """Each ``every`` seconds: Orthanc's jobs read, failed sends that are due resubmitted."""

    def task(services: Services, stopping: threading.Event) -> None:
        while not stopping.wait(every):
            try:
                for job in retries.due(services.orthanc.get_json("/jobs?expand")):
                    services.orthanc.post_json(f"/jobs/{job}/resubmit", {})
                    retries.resubmitted(job)
                    log.warning("routing: resubmitted the failed send %s", job)
            except OrthancError as error:  # e.g. a job that left the history meanwhile
                log.warning("routing: failed sends not retried this time: %s", error)
            except Exception:
                log.exception("routing: failed sends not retried this time")

    return task


def register(registry: Registry) -> None:
    settings = registry.section(RoutingSettings, SECTION)
    retries = Retries(
        RetryPolicy(
            settings.retry_attempts,
            settings.retry_first_delay_seconds,
            settings.retry_max_delay_seconds,
        )
    )
    registry.background(retry_failed_sends(retries, settings.poll_seconds))
    registry.health("routing", lambda _services: retries.report())

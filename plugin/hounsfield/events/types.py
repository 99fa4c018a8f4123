"""The events handlers can bind to."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Event(StrEnum):
    STUDY_STABLE = "study.stable"
    SERIES_NEW = "series.new"
    SERIES_STABLE = "series.stable"
    INSTANCE_NEW = "instance.new"


@dataclass(frozen=True)
class EventRecord:
    id: int
    type: Event
    resource_id: str
    created_at: str

"""The events handlers can bind to."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Event(StrEnum):
    """Notifications: any number of handlers each, delivered durably (``dispatcher``).

    A study's life: ``study.new`` with its first instance, ``study.stable`` once nothing
    has arrived for Orthanc's StableAge, ``study.deleted`` when it is gone from Orthanc
    (its handlers can no longer read it: the resource id is what they key on)."""

    STUDY_NEW = "study.new"
    STUDY_STABLE = "study.stable"
    STUDY_DELETED = "study.deleted"
    SERIES_NEW = "series.new"
    SERIES_STABLE = "series.stable"
    INSTANCE_NEW = "instance.new"


class Intervention(StrEnum):
    """Questions with exactly one answerer, asked as they happen, whose answer is acted on
    (pynetdicom's intervention events, beside its notifications).

    ``instance.admit``: may Orthanc keep an incoming object? The answerer is called as
    ``(services, dicom, sender, road)`` and returns a ``Refusal`` or None; it runs on
    Orthanc's DICOM and HTTP threads, inside the C-STORE, so it must be quick and bounded.

    ``worklist.find``: what does a modality's Modality Worklist C-FIND match? The answerer
    is called as ``(services, query, caller, called)`` with the query as DICOM bytes and
    the two AE titles, and returns the matching items as DICOM bytes (Orthanc keeps of each
    only the attributes the query asked for). Orthanc has one worklist handler: without an
    answerer, none is registered and Orthanc answers worklist queries as it is configured
    to. Raising answers the modality a failure status.
    """

    INSTANCE_ADMIT = "instance.admit"
    WORKLIST_FIND = "worklist.find"


@dataclass(frozen=True)
class EventRecord:
    id: int
    type: Event
    resource_id: str
    created_at: str

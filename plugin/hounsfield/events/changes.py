"""Orthanc's changes turned into durable events, and studies' stability kept over restarts.

The adapter hands each change it maps to an ``Event``; this records it for the dispatcher
(one INSERT, on Orthanc's change thread) and keeps the table of studies still settling
(``stability``): noted with their first new series, forgotten when stable or deleted, and
declared stable by us after a restart if Orthanc forgot them.
"""

from __future__ import annotations

import logging
import threading

from hounsfield.db import Database
from hounsfield.events.dispatcher import EventDispatcher
from hounsfield.events.stability import StabilityTracker
from hounsfield.events.types import Event
from hounsfield.orthanc_api import OrthancApi, OrthancError

log = logging.getLogger(__name__)


class ChangeRecorder:
    def __init__(
        self,
        database: Database,
        events: EventDispatcher,
        orthanc: OrthancApi,
        *,
        stable_age_seconds: float,
    ) -> None:
        self.db = database
        self.events = events
        self.stability = StabilityTracker(database)
        self._orthanc = orthanc
        self._stable_age = stable_age_seconds
        self._settle_timer: threading.Timer | None = None

    def start(self) -> None:
        """After a restart: studies still settling are declared stable once StableAge has
        passed, unless Orthanc tracks them again by then."""
        leftovers = self.stability.pending()
        if leftovers:
            log.warning("%s stud(ies) were settling when Orthanc stopped", len(leftovers))
            self._settle_timer = threading.Timer(
                self._stable_age, self._settle_leftovers, (leftovers,)
            )
            self._settle_timer.start()

    def stop(self) -> None:
        if self._settle_timer is not None:
            self._settle_timer.cancel()

    def record(self, event: Event, resource_id: str) -> None:
        if event is Event.STUDY_DELETED:
            self.stability.settled(resource_id)  # it will never become stable now
        elif self.events.wants(Event.STUDY_STABLE):  # keep stable studies durable
            if event is Event.SERIES_NEW:
                study_id = self._orthanc.get_json(f"/series/{resource_id}")["ParentStudy"]
                self.stability.unsettled(study_id)
            elif event is Event.STUDY_STABLE:
                self._declare_stable(resource_id)
                return
        self.events.record(event, resource_id)

    def _declare_stable(self, study_id: str) -> None:
        with self.db.transaction():  # forget it as unsettled exactly when its event is stored
            self.stability.settled(study_id)
            self.events.record(Event.STUDY_STABLE, study_id, notify=False)
        self.events.notify()

    def _settle_leftovers(self, study_ids: list[str]) -> None:
        """Declare stable the studies Orthanc forgot in a restart (it tracks the others)."""
        for study_id in study_ids:
            try:
                study = self._orthanc.get_json(f"/studies/{study_id}")
            except OrthancError:
                log.info("study %s is gone; nothing to settle", study_id)
                self.stability.settled(study_id)
                continue
            if study.get("IsStable", True) and study_id in self.stability.pending():
                log.warning("study %s declared stable after the restart", study_id)
                self._declare_stable(study_id)

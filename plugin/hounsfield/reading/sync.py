"""The worklist in step with Orthanc: events as studies come and go, a catch-up at start.

Events keep the table current while the plugin runs: a row when a study's first instance
arrives, refreshed (counts, modalities) when it is stable, removed when it is deleted (its
report stays, marked orphaned). What happened while the plugin was off is caught up at
start by ``reconcile``: the studies Orthanc has and the table lacks are read in batches,
with a pause between batches, on a background thread (Orthanc answers requests meanwhile),
and rows of studies Orthanc no longer has are removed.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from hounsfield.api import (
    BackgroundTask,
    EventContext,
    OrthancApi,
    OrthancError,
    Services,
    get_if_found,
)
from hounsfield.reading.desk import ReadingDesk
from hounsfield.reading.reports import Reports
from hounsfield.reading.settings import ReadingSettings
from hounsfield.reading.worklist import StudySummary, Worklist

log = logging.getLogger(__name__)
BATCH_PAUSE_SECONDS = 0.02  # between batches of a catch-up: Orthanc's own requests go first
SWEEP_SECONDS = 30.0  # how often idle claims are looked for


def study_arrived(context: EventContext) -> None:
    """``study.new`` and ``study.stable``: write what Orthanc says of the study now."""
    study_id = context.event.resource_id
    if _report_only(context, study_id):
        return
    summary = StudySummary.read(context.orthanc, study_id)
    if summary is not None:
        Worklist(context.database).upsert(summary)


def _report_only(context: EventContext, study_id: str) -> bool:
    """Delete a study that holds nothing but its own report's series; whether it did.

    A report is published by a worker: it reads the study, renders the PDF, then stores.
    A study deleted in between is created again, under the same id, by those stores (seen
    on a loaded machine, an admin deleting a study a moment after its report was signed).
    Such a study never came from a modality: it is deleted again, here, with the plugin's
    rights (a worker's account may not delete). The report stays, orphaned.
    """
    ours = Reports(context.database).series_uids(study_id)
    if not ours:
        return False
    series = get_if_found(context.orthanc, f"/studies/{study_id}/series")
    if not series or any(
        item["MainDicomTags"].get("SeriesInstanceUID") not in ours for item in series
    ):
        return False
    log.warning("study %s came back holding only its report: deleted again", study_id)
    for item in series:
        try:
            context.orthanc.delete(f"/series/{item['ID']}")
        except OrthancError as error:
            if error.status != 404:  # gone already
                raise
    return True


def study_deleted(context: EventContext) -> None:
    study_id = context.event.resource_id
    Worklist(context.database).remove(study_id)
    Reports(context.database).orphan(study_id)


def _arrival(last_update: str) -> str | None:
    """Orthanc's LastUpdate (local time, "20261124T065740") as our UTC timestamps."""
    try:
        moment = datetime.strptime(last_update, "%Y%m%dT%H%M%S")
    except ValueError:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def reconcile(
    orthanc: OrthancApi,
    worklist: Worklist,
    reports: Reports,
    *,
    batch: int,
    stopping: threading.Event,
) -> tuple[int, int]:
    """Add the studies Orthanc has that the worklist lacks, remove those it no longer has;
    (added, removed)."""
    ours = worklist.study_ids()  # first: a study added by an event meanwhile is kept
    theirs = set(orthanc.get_json("/studies"))
    removed = 0
    for study_id in ours - theirs:
        worklist.remove(study_id)
        reports.orphan(study_id)
        removed += 1
    missing = sorted(theirs - ours)
    added = 0
    for start in range(0, len(missing), batch):
        if stopping.is_set():
            break
        for study_id in missing[start : start + batch]:
            summary = StudySummary.read(orthanc, study_id)
            if summary is not None:
                worklist.upsert(summary, arrived_at=_arrival(summary.last_update))
                added += 1
        stopping.wait(BATCH_PAUSE_SECONDS)
    return added, removed


def keep_in_step(settings: ReadingSettings) -> BackgroundTask:
    """The background task: catch up once, then release idle claims every half minute."""

    def task(services: Services, stopping: threading.Event) -> None:
        desk = ReadingDesk.of(services, settings)
        started = time.monotonic()
        added, removed = reconcile(
            services.orthanc,
            desk.worklist,
            desk.reports,
            batch=settings.reconcile_batch,
            stopping=stopping,
        )
        log.info(
            "worklist caught up with Orthanc in %.1f s: %d studies added, %d removed",
            time.monotonic() - started,
            added,
            removed,
        )
        while not stopping.wait(SWEEP_SECONDS):
            desk.release_expired()

    return task

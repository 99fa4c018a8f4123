"""CBCT reconstruction: projections in (DICOM), RTK in a worker, a CT series out.

An ordinary extension (``hounsfield.recon`` in the ``Extensions`` setting): everything it
brings is declared in ``register`` below. Nothing here imports ITK/RTK at module level:
the plugin process never loads them, workers do (once, at start-up).
"""

from __future__ import annotations

import functools
import importlib

from hounsfield.api import ACQUISITION, STAFF, Event, Migration, Registry, Schema
from hounsfield.recon import candidates, routes, tasks
from hounsfield.recon.kinds import ARCHIVE, RECONSTRUCT, SIMULATE
from hounsfield.recon.rules import SECTION, DetectionRules
from hounsfield.web.pages import PAGES_DIRECTORY

PAGE_ASSETS = {"recon.js": "text/javascript", "recon.css": "text/css; charset=utf-8"}


def _name_reconstructions_for_what_they_do(schema: Schema) -> None:
    """Jobs of the kind once called "recon.fdk" ran every method: named so now."""
    schema.execute("UPDATE jobs SET kind = ? WHERE kind = 'recon.fdk'", [RECONSTRUCT])


def warm_up() -> None:
    """In each worker as it starts: load RTK and choose FDK's device, before any job waits."""
    importlib.import_module("hounsfield.recon.engine").fdk_device()


def register(registry: Registry) -> None:
    registry.job_kind(SIMULATE, tasks.simulate)
    registry.job_kind(RECONSTRUCT, tasks.reconstruct)
    registry.job_kind(ARCHIVE, tasks.archive_upload, internal=True)
    registry.migration(
        *candidates.MIGRATIONS,
        Migration("recon.0002.reconstruct_kind", _name_reconstructions_for_what_they_do),
    )
    rules = registry.section(DetectionRules, SECTION)
    registry.on(
        Event.STUDY_STABLE,
        functools.partial(routes.assess_stable_study, rules=rules),
        name="recon.queue_on_stable",  # the delivery history keeps this name
    )
    registry.on_worker_start(warm_up)
    registry.routes(routes.routes)
    # The technicians' page: runs of a projection series, new runs, their QC.
    registry.page("/recon", PAGES_DIRECTORY, "recon.html", PAGE_ASSETS, roles=STAFF)
    # Orthanc Explorer's "Reconstruct": the study's projection series on the tuning page.
    registry.study_page("reconstruct", "Reconstruct", "/recon?study={study}", ACQUISITION)

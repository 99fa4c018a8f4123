"""RT-STRUCT contents: every ROI with its contours, volume and HU statistics.

An ordinary extension (``hounsfield.structures`` in the ``Extensions`` setting); its
settings are the ``HounsfieldStructures`` section (``settings``). Structure sets arrive from
treatment planning systems beside the planning CT. When a study is stable, each RTSTRUCT
series is read in a worker (``tasks``: the contours by ``rtstruct`` and ``contours``, the
referenced CT as one volume) and kept (``store``); ``GET /api/series/{id}/structures``
answers from there (``routes``).
"""

from __future__ import annotations

import functools
from typing import Any

from hounsfield.api import Event, JobContext, Registry
from hounsfield.structures import routes, store
from hounsfield.structures.settings import SECTION, StructuresSettings


def read(job: JobContext, settings: StructuresSettings) -> dict[str, Any]:
    """The ``structures.read`` job, imported where it runs (a worker): pydicom's reading of
    the contours and the referenced CT's pixels stay out of Orthanc's process."""
    from hounsfield.structures import tasks

    return tasks.read(job, settings)


def register(registry: Registry) -> None:
    settings = registry.section(StructuresSettings, SECTION)
    registry.migration(*store.MIGRATIONS)
    registry.job_kind(routes.READ, functools.partial(read, settings=settings), internal=True)
    registry.on(
        Event.STUDY_STABLE,
        functools.partial(routes.read_on_stable, settings=settings),
        name="structures.read_on_stable",
    )
    registry.on(Event.STUDY_DELETED, routes.forget_deleted, name="structures.forget_deleted")
    registry.routes(routes.routes)

"""The AI second reader: analyses of stable studies, results as SR and SEG, reviewed by
radiologists.

An ordinary extension (``hounsfield.ai`` in the ``Extensions`` setting, after
``hounsfield.reading``, whose worklist it flags): everything it brings is declared in
``register`` below. Its settings are the ``HounsfieldAI`` section (``settings``). Analyzers
(``model.Analyzer``) are the built-in ones (``analyzers``), ONNX models an admin installs
(``onnx``) and a remote vision-language model (``remote``); each runs in a worker
(``tasks``): scipy, highdicom and onnxruntime are never loaded by Orthanc itself.
"""

from __future__ import annotations

import functools
from typing import Any

from hounsfield.ai import routes, store
from hounsfield.ai.catalogue import ANALYZE
from hounsfield.ai.settings import SECTION, AiSettings
from hounsfield.api import STAFF, Event, JobContext, Registry
from hounsfield.registry import ExtensionError
from hounsfield.web.pages import PAGES_DIRECTORY

NEEDS = "reading.0001.worklist"  # the reading worklist, where findings flag studies


def analyze(job: JobContext, settings: AiSettings) -> dict[str, Any]:
    """The ``ai.analyze`` job, imported where it runs (a worker) only: highdicom and the
    analyzers' scipy stay out of Orthanc's process."""
    from hounsfield.ai import tasks

    return tasks.analyze(job, settings)


def register(registry: Registry) -> None:
    if not any(migration.name == NEEDS for migration in registry.migrations):
        raise ExtensionError("hounsfield.ai needs hounsfield.reading, listed before it")
    settings = registry.section(AiSettings, SECTION)
    registry.migration(*store.MIGRATIONS)
    registry.job_kind(ANALYZE, functools.partial(analyze, settings=settings), internal=True)
    registry.on(
        Event.STUDY_STABLE,
        functools.partial(routes.queue_on_stable, settings=settings),
        name="ai.queue_on_stable",
    )
    registry.routes(routes.routes)
    registry.study_action("analyze", "Analyze", "/api/studies/{study}/analyze", STAFF)
    # The reading page's findings panel: loaded by that page when this extension is there.
    registry.assets("/ai", PAGES_DIRECTORY, {"findings.js": "text/javascript"}, STAFF)

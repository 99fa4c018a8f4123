"""The reading department: worklist, claims, reports from draft to signed, back into the PACS.

An ordinary extension (``hounsfield.reading`` in the ``Extensions`` setting): everything
it brings is declared in ``register`` below. Its settings are the ``HounsfieldReading``
section (``settings``).
"""

from __future__ import annotations

import functools

from hounsfield.api import STAFF, Event, Registry, Role
from hounsfield.reading import reports, routes, sync, worklist
from hounsfield.reading.desk import PUBLISH
from hounsfield.reading.pdf import CATALOGUE
from hounsfield.reading.publish import publish
from hounsfield.reading.settings import SECTION, ReadingSettings
from hounsfield.web.pages import PAGES_DIRECTORY

PAGE_ASSETS = {
    "reading.js": "text/javascript",  # what both pages share
    "worklist.js": "text/javascript",
    "study.html": "text/html; charset=utf-8",  # the reading page: /reading/study.html?id=
    "study.js": "text/javascript",
    "reading.css": "text/css; charset=utf-8",
}


def register(registry: Registry) -> None:
    settings = registry.section(ReadingSettings, SECTION)
    registry.migration(*worklist.MIGRATIONS, *reports.MIGRATIONS)
    registry.on(Event.STUDY_NEW, sync.study_arrived, name="reading.study_new")
    registry.on(Event.STUDY_STABLE, sync.study_arrived, name="reading.study_stable")
    registry.on(Event.STUDY_DELETED, sync.study_deleted, name="reading.study_deleted")
    registry.background(sync.keep_in_step(settings))
    registry.job_kind(PUBLISH, functools.partial(publish, settings=settings), internal=True)
    registry.routes(routes.routes)
    registry.catalogue(CATALOGUE)  # section titles and the PDF's words, for the pages too
    # The radiologists' pages: the worklist, and a study's reading page beside it.
    registry.page("/reading", PAGES_DIRECTORY, "worklist.html", PAGE_ASSETS, roles=STAFF)
    registry.landing("/reading", {Role.RADIOLOGIST, Role.TECHNICIAN})
    registry.study_page("reading", "Open reading page", "/reading/study.html?id={study}", STAFF)

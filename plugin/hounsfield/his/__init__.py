"""The hospital's side: patients and orders from the HIS, the Modality Worklist, and the
technician's acquisition desk.

An ordinary extension (``hounsfield.his`` in the ``Extensions`` setting, after
``hounsfield.reading``, whose worklist arriving studies are linked in): everything it
brings is declared in ``register`` below. Its settings are the ``HounsfieldHIS`` section
(``settings``). Orders arrive by three roads, all ending in the order book (``orders``):
FHIR ``ServiceRequest`` polling (``fhir``), HL7 v2 over MLLP (``hl7v2``, ``mllp``, ``inbox``) and
the acquisition page's form (``routes``). Scanners read them through the Modality
Worklist (``worklist``); an arriving study is matched to its order (``reconcile``).

Orthanc takes one worklist handler: ours replaces the sample ModalityWorklists plugin
(``libModalityWorklists.so``), which must not be loaded beside it.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from hounsfield.api import ACQUISITION, Event, Intervention, Registry, Services
from hounsfield.audit.trail import AuditEntry
from hounsfield.his import reconcile, routes, worklist
from hounsfield.his.fhir import ServiceRequestPoller
from hounsfield.his.inbox import Inbox
from hounsfield.his.mllp import MllpListener
from hounsfield.his.orders import MIGRATIONS, OrderBook
from hounsfield.his.settings import SECTION, HisSettings
from hounsfield.reading.worklist import Worklist
from hounsfield.registry import BackgroundTask, ExtensionError
from hounsfield.web.pages import PAGES_DIRECTORY

log = logging.getLogger(__name__)
NEEDS = "reading.0001.worklist"  # the reading worklist, where arriving orders are linked
CATALOGUE = Path(__file__).parent / "catalogue"
CORRECTIONS_SWEEP_SECONDS = 0.5
PAGE_ASSETS = {"acquisition.js": "text/javascript", "acquisition.css": "text/css; charset=utf-8"}


def find_worklist(services: Services, query: bytes, caller: str, called: str) -> list[bytes]:
    """The ``worklist.find`` intervention: the open orders a modality's C-FIND matches
    (audited: the worklist gives patients' names and orders to the modality that asks)."""
    asked = worklist.parse_query(query)
    orders = [o for o in OrderBook(services.db).search(asked.to_filter()) if asked.matches(o)]
    services.audit.append(
        AuditEntry(
            action="worklist.query",
            outcome="ok",
            username=f"AE {caller}",
            role="modality",
            detail={"called": called, "orders": [order.id for order in orders]},
        )
    )
    return [worklist.item(order) for order in orders]


def listen(settings: HisSettings) -> BackgroundTask:
    """The MLLP listener, from Orthanc's start to its stop."""

    def task(services: Services, stopping: threading.Event) -> None:
        inbox = Inbox(OrderBook(services.db), services.audit, settings.mllp)
        listener = MllpListener(settings.mllp, inbox.handle)
        try:
            listener.start()
        except OSError as error:
            log.error("HL7 MLLP listener cannot listen on port %d: %s", settings.mllp.port, error)
            return
        log.info("HL7 MLLP listener on port %d", settings.mllp.port)
        stopping.wait()
        listener.stop()

    return task


def poll(settings: HisSettings) -> BackgroundTask:
    """ServiceRequests from the FHIR server, every ``PollSeconds``."""

    def task(services: Services, stopping: threading.Event) -> None:
        book = OrderBook(services.db)
        poller = ServiceRequestPoller(
            routes.fhir_client(settings.fhir), lambda command: book.apply(command, by="FHIR")
        )
        while not stopping.is_set():
            poller.poll_once()
            stopping.wait(settings.fhir.poll_seconds)

    return task


def finish_corrections(services: Services, stopping: threading.Event) -> None:
    """Link each confirmed correction's copy once Orthanc's modify job has made it."""
    book, readings = OrderBook(services.db), Worklist(services.db)
    while not stopping.wait(CORRECTIONS_SWEEP_SECONDS):
        try:
            reconcile.finish_corrections(services.orthanc, book, readings)
        except Exception:
            log.exception("corrections could not be followed; trying again")


def register(registry: Registry) -> None:
    if not any(migration.name == NEEDS for migration in registry.migrations):
        raise ExtensionError("hounsfield.his needs hounsfield.reading, listed before it")
    settings = registry.section(HisSettings, SECTION)
    registry.migration(*MIGRATIONS)
    registry.on(Event.STUDY_NEW, reconcile.study_arrived, name="his.study_new")
    registry.on(Event.STUDY_STABLE, reconcile.study_arrived, name="his.study_stable")
    registry.background(finish_corrections)
    registry.routes(routes.routes)
    if settings.worklist:
        registry.intervene(Intervention.WORKLIST_FIND, find_worklist)
    if settings.mllp.port:
        registry.background(listen(settings))
    if settings.fhir.base_url and settings.fhir.poll_seconds:
        registry.background(poll(settings))
    registry.catalogue(CATALOGUE)
    registry.page("/acquisition", PAGES_DIRECTORY, "acquisition.html", PAGE_ASSETS, ACQUISITION)

"""The hospital's patients and orders over FHIR R4: lookups for the order form, and
ServiceRequest polling for the order book.

Transport. GETs with ``requests`` under ``FhirSettings.base_url``, with no, basic or bearer
authorization. One lookup (a read, or a search with all its pages) ends within
``DeadlineSeconds``: each attempt has ``TimeoutSeconds`` per connect or read, cut to what is
left of the deadline, so a hung HIS costs the caller a known time. Only what may pass is
retried (connection errors, timeouts, 429, 502, 503, 504), after ``BackoffSeconds`` doubled
at each retry and never past the deadline; any other answer is final: a 404 on a read is
``HisNotFound``, anything else ``HisUnavailable``. Redirects are not followed, and next links
only under the base URL: the credentials go to the configured server and nowhere else.
Error messages name the resource type, never a query (a search names the patient).

Answers. Bodies are streamed and refused past ``MaxResponseBytes`` (the declared length
first), parsed by ``parse_json`` (bounded depth: Orthanc's threads have small C stacks) and
checked against small models of the parts we read: Content-Type FHIR JSON, the expected
``resourceType``, a Bundle of type searchset. An answer R4 does not allow is a
``HisInvalid`` naming what was wrong, never a crash.

Patient -> ``Patient`` (DICOM's forms):

- id: the MRN: the identifier typed ``MR`` (HL7 v2-0203), else the first identifier with a
  value, else the resource id.
- name: the ``official`` HumanName, else the first, as ``FAMILY^GIVEN1 GIVEN2`` (case kept);
  a name with only ``text`` gives that text as the family name.
- birthDate: ``YYYY-MM-DD`` -> ``YYYYMMDD``; a partial date (``YYYY``, ``YYYY-MM``) is left
  empty, as DICOM dates cannot be partial.
- gender: male ``M``, female ``F``, other ``O``, unknown or absent empty.

A Patient that does not fit (no name, an MRN over 64 characters) is refused like an invalid
one. Searches give ``HisPatient``: the patient and its FHIR id, which ``read_patient`` takes
and a link back to the HIS names. Searches and reads are cached for ``CacheSeconds``, keyed
by the query, least recently used dropped past a bound; errors are never cached.

ServiceRequest -> command (``Source.FHIR``, the ServiceRequest id as source id):

- status ``active`` with an intent that is an order (not a proposal or a plan): PlaceOrder;
  ``revoked`` or ``entered-in-error``: CancelOrder; any other status (``draft``,
  ``on-hold``, ``completed``, ``unknown``) changes nothing here: a completed order is
  completed by its study's arrival, not by the HIS.
- patient: the ``subject`` reference (``Patient/{id}``, relative or under the base URL), read
  through the cache.
- accession number: the identifier typed ``ACSN`` (HL7 v2-0203).
- modality: the first code of the DICOM code system (``DCM``) that is a modality (letters
  only: CT, MR, XA; not the numeric DCM concepts) in ``code``, ``category``, ``orderDetail``.
- requested procedure: ``code.text``, else the first coding's display; cut to 64 characters.
- station AE title: a ``performer`` identifier of system ``urn:dicom:ae``, else a
  ``locationCode`` coding of that system.
- scheduled time: ``occurrenceDateTime``, else ``occurrencePeriod.start``.
- priority: routine -> routine, urgent and asap -> urgent, stat -> stat; absent: routine.

An active order lacking one of these (a scanner needs them all), whose patient is missing or
invalid, or that is itself invalid is skipped with a warning naming its id: one bad resource
cannot stop the feed.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import Annotated, Generic, Literal, TypeVar
from urllib.parse import urljoin

import requests
import urllib3
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from hounsfield.his.model import (
    CancelOrder,
    Command,
    Order,
    Patient,
    PlaceOrder,
    Priority,
    Source,
)
from hounsfield.his.settings import FhirSettings
from hounsfield.untrusted import InputRefused
from hounsfield.untrusted.jsontext import parse_json

log = logging.getLogger(__name__)

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
AE_SYSTEM = "urn:dicom:ae"
FHIR_JSON = ("application/fhir+json", "application/json")
RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_PAGES = 10  # next links followed per search, whatever the server says
MAX_PATIENTS = 100  # patients one search gives
PAGE_SIZE = 100  # ServiceRequests asked for per page; a poll reads MAX_PAGES of them
MAX_DEPTH = 64  # JSON nesting: FHIR resources nest about 10 levels
CACHE_ENTRIES = 1024
CHUNK = 64 << 10
ORDER_INTENTS = frozenset(
    {"order", "original-order", "reflex-order", "filler-order", "instance-order"}
)
PRIORITIES = {
    "routine": Priority.ROUTINE,
    "urgent": Priority.URGENT,
    "asap": Priority.URGENT,
    "stat": Priority.STAT,
}
SEXES = {"male": "M", "female": "F", "other": "O", "unknown": ""}

_FHIR_ID = r"[A-Za-z0-9\-.]{1,64}"
_PATIENT_REFERENCE = re.compile(rf"Patient/({_FHIR_ID})(?:/_history/{_FHIR_ID})?")
_MODALITY = re.compile(r"[A-Z]{2,16}")
_NOT_IN_LO = re.compile(r"[\\\x00-\x1f]")  # what a DICOM long string cannot hold

FhirId = Annotated[str, Field(pattern=rf"^{_FHIR_ID}$")]


class HisUnavailable(Exception):
    """The HIS gave no usable answer. ``timeout``: it gave none in time (callers answer 504),
    else it failed or answered wrong (502). The message is safe to show and to log."""

    def __init__(self, message: str, timeout: bool) -> None:
        super().__init__(message)
        self.message = message
        self.timeout = timeout


class HisInvalid(HisUnavailable):
    """The HIS answered, but not what FHIR R4 allows: retrying will not help, and the poller
    skips the order concerned rather than stop on it."""

    def __init__(self, message: str) -> None:
        super().__init__(message, timeout=False)


class HisNotFound(LookupError):
    """The HIS has no such Patient (a 404 on a read, or an id FHIR does not allow)."""


class _Transient(HisUnavailable):
    """An attempt's failure worth retrying; never leaves the client."""


@dataclass(frozen=True)
class HisPatient:
    """A patient found on the HIS: ``patient`` in DICOM's forms, ``fhir_id`` the id of its
    Patient resource (what ``read_patient`` takes, and what a link back to the HIS names)."""

    patient: Patient
    fhir_id: str


@dataclass(frozen=True)
class Changes:
    """One ServiceRequest poll: the commands in the HIS's order of change, and the newest
    ``meta.lastUpdated`` seen (skipped requests included), where the next poll starts."""

    commands: list[PlaceOrder | CancelOrder]
    last_updated: datetime | None


# -- the parts of FHIR R4 we read; every other element is ignored ----------------------------


class _Fhir(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="ignore", frozen=True)


class _Coding(_Fhir):
    system: str | None = None
    code: str | None = None
    display: str | None = None


class _Concept(_Fhir):
    coding: list[_Coding] = []
    text: str | None = None


class _Identifier(_Fhir):
    system: str | None = None
    value: str | None = None
    type: _Concept | None = None

    def typed(self, code: str) -> bool:
        """Of the v2-0203 identifier type ``code`` (MR, ACSN); servers that leave the
        coding's system out are taken at their word."""
        return self.type is not None and any(
            coding.code == code and coding.system in (V2_0203, None) for coding in self.type.coding
        )


class _HumanName(_Fhir):
    use: str | None = None
    text: str | None = None
    family: str | None = None
    given: list[str] = []


class _Patient(_Fhir):
    resource_type: Literal["Patient"]
    id: FhirId
    identifier: list[_Identifier] = []
    name: list[_HumanName] = []
    birth_date: Annotated[str, Field(pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$")] | None = None
    gender: Literal["male", "female", "other", "unknown"] | None = None


class _Reference(_Fhir):
    reference: str | None = None
    identifier: _Identifier | None = None


class _Period(_Fhir):
    start: str | None = None


class _Meta(_Fhir):
    last_updated: AwareDatetime | None = None


class _ServiceRequest(_Fhir):
    resource_type: Literal["ServiceRequest"]
    id: FhirId
    meta: _Meta | None = None
    status: Literal[
        "draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"
    ]
    intent: str
    priority: Literal["routine", "urgent", "asap", "stat"] | None = None
    subject: _Reference
    identifier: list[_Identifier] = []
    code: _Concept | None = None
    occurrence_date_time: str | None = None
    occurrence_period: _Period | None = None
    performer: list[_Reference] = []
    location_code: list[_Concept] = []
    category: list[_Concept] = []
    order_detail: list[_Concept] = []


class _Link(_Fhir):
    relation: str
    url: str


class _Entry(_Fhir):
    resource: dict[str, object] | None = None


class _Bundle(_Fhir):
    resource_type: Literal["Bundle"]
    type: Literal["searchset"]
    link: list[_Link] = []
    entry: list[_Entry] = []


_Model = TypeVar("_Model", bound=_Fhir)


def _summary(error: ValidationError) -> str:
    """Where and what, without the values (they may name the patient)."""
    parts = [
        f"{'.'.join(str(part) for part in item['loc']) or 'resource'}: {item['msg']}"
        for item in error.errors()[:3]
    ]
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _validated(model: type[_Model], value: object, name: str) -> _Model:
    try:
        return model.model_validate(value)
    except ValidationError as error:
        raise HisInvalid(f"the HIS answered an invalid {name}: {_summary(error)}") from None


# -- Patient -> Patient ----------------------------------------------------------------------


def _mrn(resource: _Patient) -> str:
    typed = (item.value for item in resource.identifier if item.typed("MR") and item.value)
    valued = (item.value for item in resource.identifier if item.value)
    return next(chain(typed, valued), resource.id)


def _person_name(names: list[_HumanName]) -> str:
    """DICOM PN from the official name, else the first; empty (refused later) without one.
    ValueError for a part holding ``^``: it would shift the parts after it."""
    chosen = next((name for name in names if name.use == "official"), names[0] if names else None)
    if chosen is None:
        return ""
    family = (chosen.family or "").strip()
    given = " ".join(part.strip() for part in chosen.given if part.strip())
    parts = [family, given] if family or given else [(chosen.text or "").strip()]
    if any("^" in part for part in parts):
        raise ValueError("name: a name part holds ^, DICOM's separator of name parts")
    return "^".join(parts).rstrip("^")


def _his_patient(value: object) -> HisPatient:
    resource = _validated(_Patient, value, "Patient")
    birth_date = resource.birth_date or ""
    try:
        patient = Patient(
            id=_mrn(resource),
            name=_person_name(resource.name),
            birth_date=birth_date.replace("-", "") if len(birth_date) == 10 else "",
            sex=SEXES[resource.gender] if resource.gender else "",
        )
    except ValueError as error:  # pydantic's ValidationError included
        why = _summary(error) if isinstance(error, ValidationError) else str(error)
        raise HisInvalid(
            f"the HIS answered an invalid Patient: Patient/{resource.id}: {why}"
        ) from None
    return HisPatient(patient=patient, fhir_id=resource.id)


def _fhir_date(value: str) -> str:
    """A search's birth date: YYYYMMDD (DICOM's form) or YYYY-MM-DD, as FHIR's form."""
    if re.fullmatch(r"\d{8}", value):
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return value
    raise ValueError("a birth date, YYYY-MM-DD or YYYYMMDD")


# -- ServiceRequest -> Order -----------------------------------------------------------------


def _accession(request: _ServiceRequest) -> str | None:
    return next((item.value for item in request.identifier if item.typed("ACSN")), None)


def _modality(request: _ServiceRequest) -> str | None:
    code = [request.code] if request.code is not None else []
    for concept in (*code, *request.category, *request.order_detail):
        for coding in concept.coding:
            if coding.system == DCM and coding.code and _MODALITY.fullmatch(coding.code):
                return coding.code
    return None


def _station(request: _ServiceRequest) -> str | None:
    performers = (
        reference.identifier.value
        for reference in request.performer
        if reference.identifier is not None and reference.identifier.system == AE_SYSTEM
    )
    locations = (
        coding.code
        for concept in request.location_code
        for coding in concept.coding
        if coding.system == AE_SYSTEM
    )
    return next((value for value in chain(performers, locations) if value), None)


def _scheduled(request: _ServiceRequest) -> datetime | None:
    period = request.occurrence_period
    text = request.occurrence_date_time or (period.start if period is not None else None)
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:  # a partial dateTime (YYYY, YYYY-MM) schedules nothing
        return None


def _procedure(request: _ServiceRequest) -> str:
    code = request.code
    if code is None:
        return ""
    text = code.text or next((coding.display for coding in code.coding if coding.display), "")
    return _NOT_IN_LO.sub(" ", text).strip()[:64].rstrip()


def _skipped(request: _ServiceRequest, why: str) -> None:
    log.warning("FHIR ServiceRequest/%s skipped: %s", request.id, why)


def _root_cause(error: BaseException) -> str:
    """The innermost cause of a transport error: requests' own messages carry the URL, and a
    search's URL names the patient."""
    while (inner := error.__cause__ or error.__context__) is not None:
        error = inner
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return type(error).__name__


_Key = TypeVar("_Key", bound=Hashable)
_Value = TypeVar("_Value")


class _Cache(Generic[_Key, _Value]):
    """Answers kept ``seconds``, the least recently used dropped past ``entries``; shared by
    Orthanc's HTTP threads, hence the lock. Two threads missing at once both ask the HIS."""

    def __init__(self, seconds: float, entries: int, clock: Callable[[], float]) -> None:
        self._seconds = seconds
        self._entries = entries
        self._clock = clock
        self._lock = threading.Lock()
        self._items: OrderedDict[_Key, tuple[float, _Value]] = OrderedDict()

    def get(self, key: _Key) -> _Value | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if self._clock() - item[0] >= self._seconds:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return item[1]

    def put(self, key: _Key, value: _Value) -> None:
        with self._lock:
            self._items[key] = (self._clock(), value)
            self._items.move_to_end(key)
            while len(self._items) > self._entries:
                self._items.popitem(last=False)


class _Sessions(threading.local):
    """A ``requests.Session`` per thread: sessions are not documented as thread-safe."""

    session: requests.Session | None = None


class FhirClient:
    """Patients and ServiceRequests of one FHIR R4 server; safe to share between threads.

    ``clock`` (monotonic seconds) measures deadlines and cache ages: tests pass their own."""

    def __init__(
        self,
        settings: FhirSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        cache_entries: int = CACHE_ENTRIES,
    ) -> None:
        self._settings = settings
        self._base = settings.base_url.rstrip("/")
        self._clock = clock
        self._sessions = _Sessions()
        self._headers = {"Accept": "application/fhir+json"}
        if settings.auth == "basic":
            pair = f"{settings.username}:{settings.password}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        elif settings.auth == "bearer":
            self._headers["Authorization"] = "Bearer " + settings.token
        self._searches: _Cache[tuple[tuple[str, str], ...], tuple[HisPatient, ...]] = _Cache(
            settings.cache_seconds, cache_entries, clock
        )
        self._reads: _Cache[str, Patient] = _Cache(settings.cache_seconds, cache_entries, clock)

    # -- patients ----------------------------------------------------------------------------

    def search_patients(
        self,
        *,
        identifier: str | None = None,
        name: str | None = None,
        birthdate: str | None = None,
    ) -> list[HisPatient]:
        """Patients matching all the given parameters (FHIR search semantics: ``identifier``
        as ``system|value`` or a value, ``name`` a start of any name part), at most
        ``MAX_PATIENTS``. ValueError without any parameter: that would list the hospital."""
        given = (
            ("identifier", identifier),
            ("name", name),
            ("birthdate", _fhir_date(birthdate) if birthdate else None),
        )
        params = tuple((key, value) for key, value in given if value)
        if not params:
            raise ValueError("search by identifier, name or birth date")
        cached = self._searches.get(params)
        if cached is not None:
            return list(cached)
        resources = self._search(
            "Patient",
            {**dict(params), "_count": str(MAX_PATIENTS)},
            limit=MAX_PATIENTS,
            deadline=self._clock() + self._settings.deadline_seconds,
        )
        found = tuple(_his_patient(resource) for resource in resources)
        self._searches.put(params, found)
        return list(found)

    def read_patient(self, id: str) -> Patient:
        """The Patient resource ``id`` (a FHIR id, as ``HisPatient.fhir_id``)."""
        if not re.fullmatch(_FHIR_ID, id):
            raise HisNotFound(f"no Patient {id!r}: not a FHIR id")
        cached = self._reads.get(id)
        if cached is not None:
            return cached
        deadline = self._clock() + self._settings.deadline_seconds
        answer = self._get(f"{self._base}/Patient/{id}", None, deadline, f"GET Patient/{id}")
        patient = _his_patient(answer).patient
        self._reads.put(id, patient)
        return patient

    # -- orders ------------------------------------------------------------------------------

    def service_requests(self, since: datetime | None) -> Changes:
        """ServiceRequests changed after ``since`` (all on the first poll), oldest first, as
        commands. Pages are sorted by ``_lastUpdated``, so a poll cut at ``MAX_PAGES`` pages
        leaves the rest to the next. Each page and each patient read has its own deadline:
        nobody waits on a poll."""
        params = {"_sort": "_lastUpdated", "_count": str(PAGE_SIZE)}
        if since is not None:
            params["_lastUpdated"] = "gt" + since.isoformat()
        resources = self._search(
            "ServiceRequest", params, limit=PAGE_SIZE * MAX_PAGES, deadline=None
        )
        commands: list[PlaceOrder | CancelOrder] = []
        newest = since
        for resource in resources:
            try:
                request = _validated(_ServiceRequest, resource, "ServiceRequest")
            except HisInvalid as error:
                log.warning("FHIR ServiceRequest/%s skipped: %s", resource.get("id"), error)
                continue
            stamp = request.meta.last_updated if request.meta is not None else None
            if stamp is not None and (newest is None or stamp > newest):
                newest = stamp
            command = self._command(request)
            if command is not None:
                commands.append(command)
        return Changes(commands=commands, last_updated=newest)

    def _command(self, request: _ServiceRequest) -> PlaceOrder | CancelOrder | None:
        if request.status in ("revoked", "entered-in-error"):
            return CancelOrder(source=Source.FHIR, source_id=request.id)
        if request.status != "active" or request.intent not in ORDER_INTENTS:
            return None
        order = self._order(request)
        if order is None:
            return None
        return PlaceOrder(source=Source.FHIR, source_id=request.id, order=order)

    def _order(self, request: _ServiceRequest) -> Order | None:
        """The order a scanner can do, or None (with a warning) when something is missing."""
        accession = _accession(request)
        modality = _modality(request)
        station = _station(request)
        scheduled = _scheduled(request)
        patient_id = self._patient_id(request.subject)
        if (
            accession is None
            or modality is None
            or station is None
            or scheduled is None
            or patient_id is None
        ):
            needed = (
                ("accession number (an identifier typed ACSN)", accession),
                (f"modality (a {DCM} code)", modality),
                (f"station (a performer identifier or locationCode in {AE_SYSTEM})", station),
                ("scheduled time (occurrenceDateTime or occurrencePeriod.start)", scheduled),
                ("subject Patient on this server", patient_id),
            )
            _skipped(request, "no " + ", no ".join(what for what, value in needed if value is None))
            return None
        try:
            patient = self.read_patient(patient_id)
        except (HisNotFound, HisInvalid) as error:
            _skipped(request, f"its subject Patient/{patient_id}: {error}")
            return None
        try:
            return Order(
                patient=patient,
                accession_number=accession,
                modality=modality,
                requested_procedure=_procedure(request),
                scheduled_station_ae=station,
                scheduled_time=scheduled,
                priority=PRIORITIES[request.priority] if request.priority else Priority.ROUTINE,
            )
        except ValidationError as error:
            _skipped(request, _summary(error))
            return None

    def _patient_id(self, subject: _Reference) -> str | None:
        """The id of a Patient on this server: a reference elsewhere would read the wrong one."""
        reference = subject.reference or ""
        if reference.startswith(self._base + "/"):
            reference = reference[len(self._base) + 1 :]
        match = _PATIENT_REFERENCE.fullmatch(reference)
        return match.group(1) if match else None

    # -- transport ---------------------------------------------------------------------------

    def _search(
        self, resource_type: str, params: Mapping[str, str], *, limit: int, deadline: float | None
    ) -> list[dict[str, object]]:
        """The resources of ``resource_type`` in a search's pages (outcomes and included
        resources of other types left out), at most ``limit`` of them and ``MAX_PAGES`` pages.
        ``deadline`` bounds all the pages; None gives each page its own."""
        url = f"{self._base}/{resource_type}"
        query: Mapping[str, str] | None = params
        found: list[dict[str, object]] = []
        for _ in range(MAX_PAGES):
            page_deadline = (
                self._clock() + self._settings.deadline_seconds if deadline is None else deadline
            )
            try:
                answer = self._get(url, query, page_deadline, f"GET {resource_type}")
            except HisNotFound:
                raise HisUnavailable(
                    f"the HIS has no {resource_type} search under its BaseUrl (404)", timeout=False
                ) from None
            bundle = _validated(_Bundle, answer, "Bundle")
            found.extend(
                entry.resource
                for entry in bundle.entry
                if entry.resource is not None
                and entry.resource.get("resourceType") == resource_type
            )
            following = next((link.url for link in bundle.link if link.relation == "next"), None)
            if len(found) >= limit or following is None:
                if following is not None or len(found) > limit:
                    log.warning(
                        "FHIR %s search: more than %d found, the rest left", resource_type, limit
                    )
                return found[:limit]
            url, query = self._on_base(urljoin(url, following)), None
        log.warning("FHIR %s search: more than %d pages, the rest left", resource_type, MAX_PAGES)
        return found

    def _on_base(self, url: str) -> str:
        if url.startswith((self._base + "/", self._base + "?")):
            return url
        raise HisInvalid("the HIS gave a next link outside its BaseUrl: not followed")

    def _get(
        self, url: str, params: Mapping[str, str] | None, deadline: float, what: str
    ) -> object:
        """The JSON of a 200 answer, attempts retried while worth it and time is left; ``what``
        names the request in messages, without its query."""
        attempt = 0
        while True:
            left = deadline - self._clock()
            if left <= 0:
                raise HisUnavailable(
                    f"no answer from the HIS to {what} within the deadline", timeout=True
                )
            timeout = min(self._settings.timeout_seconds, left)
            try:
                return self._attempt(url, params, timeout, deadline, what)
            except _Transient as failure:
                pause = self._settings.backoff_seconds * 2**attempt
                if attempt == self._settings.retries or self._clock() + pause >= deadline:
                    tries = f"{attempt + 1} attempt{'s' if attempt else ''}"
                    raise HisUnavailable(f"{failure.message} ({tries})", failure.timeout) from None
            time.sleep(pause)
            attempt += 1

    def _attempt(
        self,
        url: str,
        params: Mapping[str, str] | None,
        timeout: float,
        deadline: float,
        what: str,
    ) -> object:
        session = self._sessions.session
        if session is None:
            session = self._sessions.session = requests.Session()
        try:
            response = session.get(
                url,
                params=params,
                headers=self._headers,
                timeout=timeout,
                stream=True,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise _Transient(f"no answer from the HIS to {what} in {timeout:.3g} s", True) from None
        except requests.ConnectionError as error:
            raise _Transient(f"cannot reach the HIS: {_root_cause(error)}", False) from None
        except requests.RequestException as error:
            raise HisUnavailable(
                f"the request to the HIS failed: {_root_cause(error)}", False
            ) from None
        with response:
            status = response.status_code
            if status in RETRY_STATUSES:
                raise _Transient(f"the HIS answered {status} to {what}", timeout=status == 504)
            if status == 404:
                raise HisNotFound(f"the HIS has no {what[4:]}")
            if status != 200:
                raise HisUnavailable(
                    f"the HIS answered {status} {response.reason} to {what}", timeout=False
                )
            kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if kind not in FHIR_JSON:
                raise HisInvalid(f"the HIS answered {what} with {kind or 'no type'}, not FHIR JSON")
            body = self._body(response, timeout, deadline, what)
        try:
            return parse_json(
                body, max_bytes=self._settings.max_response_bytes, max_depth=MAX_DEPTH
            )
        except InputRefused as error:
            raise HisInvalid(f"the HIS answered {what} with {error.message}") from None

    def _body(
        self, response: requests.Response, timeout: float, deadline: float, what: str
    ) -> bytes:
        """The body, read one socket read at a time, each allowed what is left of the attempt's
        timeout and the deadline: a server trickling bytes cannot stretch the lookup."""
        limit = self._settings.max_response_bytes
        declared = response.headers.get("Content-Length", "")
        too_large = HisInvalid(f"the HIS's answer to {what} exceeds MaxResponseBytes ({limit})")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        raw: urllib3.HTTPResponse = response.raw
        body = bytearray()
        while True:
            left = min(timeout, deadline - self._clock())
            if left <= 0:
                raise _Transient(f"the HIS's answer to {what} was not over in time", True)
            connection = raw.connection
            if connection is not None and connection.sock is not None:
                connection.sock.settimeout(left)
            try:
                chunk = raw.read1(CHUNK)
            except urllib3.exceptions.TimeoutError:
                raise _Transient(f"the HIS's answer to {what} stalled", True) from None
            except urllib3.exceptions.HTTPError as error:
                raise _Transient(
                    f"the HIS's answer to {what} broke off: {_root_cause(error)}", False
                ) from None
            if not chunk:
                return bytes(body)
            body += chunk
            if len(body) > limit:
                raise too_large


class ServiceRequestPoller:
    """Orders from the HIS by polling: each poll asks for the ServiceRequests changed since the
    newest change the previous one saw, and hands each command to ``apply``.

    The position is kept in memory: after a restart the first poll reads everything again,
    which is harmless as the order book keeps one order per (source, source id). One thread
    polls (a timer); ``poll_once`` is not meant to run twice at once."""

    def __init__(self, client: FhirClient, apply: Callable[[Command], None]) -> None:
        self._client = client
        self._apply = apply
        self._since: datetime | None = None

    @property
    def since(self) -> datetime | None:
        """Where the next poll starts: None until a poll saw a change."""
        return self._since

    def poll_once(self) -> int:
        """The number of commands applied. Failures are logged, not raised; the position moves
        only when every command was applied, so the next poll retries the rest (and reapplies
        the first ones, which changes nothing)."""
        try:
            changes = self._client.service_requests(self._since)
        except HisUnavailable as error:
            log.warning("FHIR ServiceRequest poll failed, retried at the next: %s", error.message)
            return 0
        for applied, command in enumerate(changes.commands):
            try:
                self._apply(command)
            except Exception:
                log.exception(
                    "FHIR ServiceRequest/%s could not be applied; retried at the next poll",
                    command.source_id,
                )
                return applied
        self._since = changes.last_updated
        return len(changes.commands)

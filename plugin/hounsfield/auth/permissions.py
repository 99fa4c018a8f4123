"""Who may call what: our routes declare it where they are defined, Orthanc's doors here.

A route of ours states its ``Access`` in its decorator (``@routes.get(path, roles=STAFF)``,
see ``hounsfield.web.router``); the gate joins every registered route's rule, then the
rules below for Orthanc's own doors (its REST API, DICOMweb, WADO-URI, Explorer), then the
admin catch-all. The first rule whose pattern and method match decides; a request nothing
matches is refused. A referrer passes a rule that names a study only for a study linked
to them: the rule says which path (or query) parameter names the study, and how.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from hounsfield.auth.roles import OPERATIONS, PEOPLE, STAFF, Role

ANY_METHOD = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH"})
ANY_USER = frozenset(Role)
ADMIN = frozenset({Role.ADMIN})
ACQUISITION = frozenset({Role.ADMIN, Role.TECHNICIAN})
READERS = PEOPLE  # staff, and a referrer for a study linked to them


class StudyRef(StrEnum):
    """How a route names the study it touches, for the referrer check and the audit."""

    ORTHANC_PATIENT = "patient"
    ORTHANC_STUDY = "study"
    ORTHANC_SERIES = "series"
    ORTHANC_INSTANCE = "instance"
    STUDY_UID = "study_uid"
    SOP_INSTANCE_UID = "sop_instance_uid"


@dataclass(frozen=True)
class Study:
    """The study a request touches: ``parameter`` (a path parameter, or ``?name`` for a
    query parameter) holds a ``ref``. With it, a referrer passes only for a linked study."""

    ref: StudyRef
    parameter: str


class PermissionMissing(ValueError):
    """A route was declared without saying who may call it."""


@dataclass(frozen=True)
class Access:
    """Who may call a route, and how each call is audited."""

    roles: frozenset[Role] = frozenset()
    open: bool = False  # no authentication at all
    audit: str = (
        ""  # the audit action: every call, allowed or refused, is an access to patient data
    )
    study: Study | None = None
    # Query parameters a referrer may send (None: any). A search matched on other keys as
    # well (0020000D, a second spelling...) could name another study.
    referrer_query: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if not self.open and not self.roles:
            raise PermissionMissing("give the roles that may call it, or open=True")

    @property
    def patient_data(self) -> bool:
        return bool(self.audit)


@dataclass(frozen=True)
class Rule:
    methods: frozenset[str]
    template: str  # for people: what ``pattern`` matches
    pattern: re.Pattern[str]
    access: Access


@dataclass(frozen=True)
class Match:
    rule: Rule
    params: Mapping[str, str]


def door(
    methods: str | Iterable[str],
    template: str,
    *,
    roles: Iterable[Role] = (),
    audit: str = "",
    study: Study | None = None,
) -> Rule:
    """A rule for one of Orthanc's doors: ``{name}`` is one path segment, a trailing
    ``/**`` any rest of the path (or nothing)."""
    rest = template.endswith("/**")
    body = template[:-3] if rest else template
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(body))
    pattern = re.compile(f"^{regex}{'(?:/.*)?' if rest else ''}$")
    method_set = frozenset(methods.split(",") if isinstance(methods, str) else methods)
    return Rule(method_set, template, pattern, Access(frozenset(roles), audit=audit, study=study))


def _readable(template: str, ref: StudyRef, parameter: str) -> Rule:
    """Staff read it; a referrer too, when the study it belongs to is linked to them."""
    return door("GET", template, roles=READERS, study=Study(ref, parameter), audit="study.view")


def _staff_search(methods: str, template: str) -> Rule:
    return door(methods, template, roles=STAFF, audit="patient.search")


ORTHANC_DOORS: tuple[Rule, ...] = (
    # Orthanc's REST API: reading.
    door("GET", "/system", roles=STAFF),
    # Orthanc's Prometheus figures: counts and timings, no patient data.
    door("GET", "/tools/metrics-prometheus", roles=OPERATIONS),
    _staff_search("GET", "/patients"),
    _staff_search("GET", "/studies"),
    _staff_search("GET", "/series"),
    _staff_search("GET", "/instances"),
    _staff_search("POST", "/tools/find"),
    _staff_search("POST", "/tools/lookup"),
    door(
        "GET",
        "/patients/{id}/**",
        roles=STAFF,
        study=Study(StudyRef.ORTHANC_PATIENT, "id"),
        audit="patient.view",
    ),
    _readable("/studies/{id}/**", StudyRef.ORTHANC_STUDY, "id"),
    _readable("/series/{id}/**", StudyRef.ORTHANC_SERIES, "id"),
    _readable("/instances/{id}/**", StudyRef.ORTHANC_INSTANCE, "id"),
    # DICOMweb: searches and retrieval (the plugin's own routes on the same URIs declare
    # theirs; these cover the rest of the DICOMweb plugin).
    _staff_search("GET", "/dicom-web/series"),
    _staff_search("GET", "/dicom-web/instances"),
    _readable("/dicom-web/studies/{uid}/**", StudyRef.STUDY_UID, "uid"),
    # WADO-URI: Orthanc finds the object by its objectUID alone (studyUID is not checked),
    # so the study a referrer reads is the object's own.
    _readable("/wado", StudyRef.SOP_INSTANCE_UID, "?objectUID"),
)
# Admins: everything else (Explorer, deletes, modalities, peers, jobs, configuration).
ADMIN_CATCH_ALL = door(ANY_METHOD, "/**", roles=ADMIN)


def _first_segment(template: str) -> str | None:
    """The literal first segment every path a rule matches starts with (None: any)."""
    segment = template[1:].split("/", 1)[0]
    return segment if segment and "{" not in segment and "*" not in segment else None


class PermissionTable:
    """The rules in order, first match deciding, looked up by the path's first segment.

    The gate asks for every request (every DICOMweb frame a viewer loads); trying each of
    ~50 patterns in turn was a fifth of the gate's time. A path is tried only against the
    rules for its first segment and those that match any: the same rules in the same
    order, so the same answer."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        first = {rule: _first_segment(rule.template) for rule in self.rules}
        self._anywhere = tuple(rule for rule in self.rules if first[rule] is None)
        self._by_segment = {
            segment: tuple(rule for rule in self.rules if first[rule] in (segment, None))
            for segment in set(first.values()) - {None}
        }

    def match(self, method: str, path: str) -> Match | None:
        segment = path[1:].split("/", 1)[0]
        for rule in self._by_segment.get(segment, self._anywhere):
            if method in rule.methods:
                found = rule.pattern.match(path)
                if found:
                    return Match(rule, found.groupdict())
        return None

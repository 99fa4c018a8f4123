"""The permission table: every route and method, ours and Orthanc's, mapped to roles.

The first rule whose template and method match decides. Anything no rule matches is
denied; the last rule gives admins everything else (Orthanc Explorer, configuration,
deletes...). A referrer passes a ``study`` rule only for a study linked to them: the
rule says which path parameter (or query parameter) names the study and how.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from hounsfield.auth.roles import STAFF, Role

ANY_METHOD = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH"})
ANY_USER = frozenset(Role)
ADMIN = frozenset({Role.ADMIN})
ACQUISITION = frozenset({Role.ADMIN, Role.TECHNICIAN})


class StudyRef(StrEnum):
    """How a route names the study it touches, for the referrer check and the audit."""

    ORTHANC_PATIENT = "patient"
    ORTHANC_STUDY = "study"
    ORTHANC_SERIES = "series"
    ORTHANC_INSTANCE = "instance"
    STUDY_UID = "study_uid"
    SOP_INSTANCE_UID = "sop_instance_uid"


@dataclass(frozen=True)
class Rule:
    methods: frozenset[str]
    template: str
    roles: frozenset[Role] = field(default_factory=frozenset)
    open: bool = False  # no authentication at all
    referrer_study: str | None = None  # path (or ?query) parameter a referrer is checked on
    # Query parameters a referrer may send here (None: any). A search matched on other
    # keys as well (0020000D, a second spelling...) could name another study.
    referrer_query: frozenset[str] | None = None
    study_ref: StudyRef | None = None  # what that parameter is
    patient_data: bool = False  # audited as an access to patient data
    action: str = ""  # audit action name
    pattern: re.Pattern[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", _compile(self.template))


def _compile(template: str) -> re.Pattern[str]:
    """``{name}`` is one path segment, a trailing ``/**`` any rest (or nothing)."""
    rest = template.endswith("/**")
    body = template[:-3] if rest else template
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(body))
    return re.compile(f"^{regex}{'(?:/.*)?' if rest else ''}$")


def _rule(methods: str | frozenset[str], template: str, **kwargs) -> Rule:
    method_set = frozenset(methods.split(",")) if isinstance(methods, str) else methods
    return Rule(method_set, template, **kwargs)


def _readable(template: str, ref: StudyRef, parameter: str, action: str) -> Rule:
    """Staff read it; a referrer too, when the study it belongs to is linked to them."""
    return _rule(
        "GET",
        template,
        roles=STAFF | {Role.REFERRER},
        referrer_study=parameter,
        study_ref=ref,
        patient_data=True,
        action=action,
    )


def _staff_search(methods: str, template: str) -> Rule:
    return _rule(methods, template, roles=STAFF, patient_data=True, action="patient.search")


RULES: tuple[Rule, ...] = (
    # Open doors: signing in, refreshing (the refresh cookie authenticates), health.
    _rule("POST", "/api/auth/login", open=True),
    _rule("POST", "/api/auth/refresh", open=True),
    _rule("GET", "/api/health", open=True),
    _rule("GET", "/login/**", open=True),  # the sign-in page and its assets
    # Every signed-in user: themselves.
    _rule("GET", "/api/auth/me", roles=ANY_USER),
    _rule("POST", "/api/auth/logout", roles=ANY_USER),
    _rule("POST", "/api/auth/password", roles=ANY_USER),
    _rule("POST", "/api/auth/totp/**", roles=ANY_USER),
    # The viewer's files (OHIF): every signed-in user; what it shows is checked per request.
    _rule("GET", "/ohif", roles=ANY_USER),
    _rule("GET", "/ohif/**", roles=ANY_USER),
    # The reconstruction page: staff see runs (starting one takes acquisition rights).
    _rule("GET", "/recon", roles=STAFF),
    _rule("GET", "/recon/**", roles=STAFF),
    # Administration of users and the audit trail.
    _rule("GET,POST", "/api/users", roles=ADMIN),
    _rule("GET,PATCH,DELETE", "/api/users/{name}", roles=ADMIN),
    _rule("GET", "/api/audit/**", roles=ADMIN),
    # Jobs: staff follow them; acquisition staff submit and cancel.
    _rule("GET", "/api/jobs/**", roles=STAFF),
    _rule("POST", "/api/jobs", roles=ACQUISITION),
    _rule("POST", "/api/jobs/{job_id}/cancel", roles=ACQUISITION),
    # CBCT: acquisition staff acquire and tune reconstructions; staff follow them.
    _rule(
        "POST", "/api/acquisitions/**", roles=ACQUISITION, patient_data=True, action="study.store"
    ),
    _rule("POST", "/api/reconstructions", roles=ACQUISITION),
    _rule("GET", "/api/reconstructions/**", roles=STAFF),
    _rule("GET", "/api/projections", roles=STAFF),
    # Orthanc's REST API: reading.
    _rule("GET", "/system", roles=STAFF),
    _staff_search("GET", "/patients"),
    _staff_search("GET", "/studies"),
    _staff_search("GET", "/series"),
    _staff_search("GET", "/instances"),
    _staff_search("POST", "/tools/find"),
    _staff_search("POST", "/tools/lookup"),
    _rule(
        "GET",
        "/patients/{id}/**",
        roles=STAFF,
        study_ref=StudyRef.ORTHANC_PATIENT,
        patient_data=True,
        action="patient.view",
    ),
    _readable("/studies/{id}/**", StudyRef.ORTHANC_STUDY, "id", "study.view"),
    _readable("/series/{id}/**", StudyRef.ORTHANC_SERIES, "id", "study.view"),
    _readable("/instances/{id}/**", StudyRef.ORTHANC_INSTANCE, "id", "study.view"),
    # Orthanc's REST API: storing.
    _rule("POST", "/instances", roles=ACQUISITION, patient_data=True, action="study.store"),
    # DICOMweb: QIDO searches, study retrieval, STOW.
    # A referrer may search for one linked study by its UID: that is how a viewer (OHIF)
    # opens a study from a link. Any other search stays with staff.
    _rule(
        "GET",
        "/dicom-web/studies",
        roles=STAFF | {Role.REFERRER},
        referrer_study="?StudyInstanceUID",
        referrer_query=frozenset(
            {"StudyInstanceUID", "limit", "offset", "fuzzymatching", "includefield"}
        ),
        study_ref=StudyRef.STUDY_UID,
        patient_data=True,
        action="patient.search",
    ),
    _staff_search("GET", "/dicom-web/series"),
    _staff_search("GET", "/dicom-web/instances"),
    _readable("/dicom-web/studies/{uid}/**", StudyRef.STUDY_UID, "uid", "study.view"),
    _rule(
        "POST", "/dicom-web/studies/**", roles=ACQUISITION, patient_data=True, action="study.store"
    ),
    # WADO-URI: Orthanc finds the object by its objectUID alone (studyUID is not checked),
    # so the study a referrer reads is the object's own.
    _readable("/wado", StudyRef.SOP_INSTANCE_UID, "?objectUID", "study.view"),
    # Admins: everything else (Explorer, deletes, modalities, peers, jobs, configuration).
    _rule(ANY_METHOD, "/**", roles=ADMIN, study_ref=None, action="admin"),
)


@dataclass(frozen=True)
class Match:
    rule: Rule
    params: Mapping[str, str]


def match(method: str, path: str, rules: Iterable[Rule] = RULES) -> Match | None:
    for rule in rules:
        if method not in rule.methods:
            continue
        found = rule.pattern.match(path)
        if found:
            return Match(rule, found.groupdict())
    return None

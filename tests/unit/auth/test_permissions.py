from __future__ import annotations

import pytest

from hounsfield.app import build_registry
from hounsfield.auth.permissions import (
    ADMIN_CATCH_ALL,
    ORTHANC_DOORS,
    Match,
    PermissionMissing,
    PermissionTable,
    StudyRef,
)
from hounsfield.auth.roles import Role
from hounsfield.web import Router, RouteTable

# The table the gate uses: every feature's routes (our extensions' included), then
# Orthanc's doors, then the admin catch-all.
RULES = [
    *Router(build_registry(["hounsfield.recon", "hounsfield.reading"], {}).route_tables).rules(),
    *ORTHANC_DOORS,
    ADMIN_CATCH_ALL,
]


TABLE = PermissionTable(RULES)


def match(method: str, path: str) -> Match | None:
    return TABLE.match(method, path)


def first_match_by_scanning(method: str, path: str) -> Match | None:
    """The table's meaning, written the slow obvious way."""
    for rule in RULES:
        found = rule.pattern.match(path) if method in rule.methods else None
        if found:
            return Match(rule, found.groupdict())
    return None


SAMPLE_PATHS = [
    "/",
    "/system",
    "/systemx",
    "/studies",
    "/studies/abc",
    "/studies/abc/series",
    "/studies-x/abc",
    "/api",
    "/api/jobs/7",
    "/api/jobs/seven",
    "/api/reconstructions",
    "/api/studies/abc/report",
    "/api/studies/abc/report/pdf",
    "/api/worklist",
    "/api/nothing/here",
    "/dicom-web/studies/1.2.3/series/1.2.4/instances/1.2.5/frames/1",
    "/dicom-web/series",
    "/wado",
    "/recon",
    "/recon/app.js",
    "/ohif/",
    "/app/explorer.html",
    "/tools/find",
]


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
def test_the_indexed_table_answers_as_a_scan_of_the_rules_in_order(method: str) -> None:
    # Every rule's own template (parameters filled in) and paths near them.
    paths = SAMPLE_PATHS + [
        rule.template.replace("/**", "/x/y").replace("{", "").replace("}", "") for rule in RULES
    ]
    for path in paths:
        expected = first_match_by_scanning(method, path)
        found = match(method, path)
        assert (found and found.rule, found and found.params) == (
            expected and expected.rule,
            expected and expected.params,
        ), path


def roles_for(method: str, path: str) -> set[Role]:
    found = match(method, path)
    return set(found.rule.access.roles) if found else set()


def test_open_doors_are_exactly_sign_in_refresh_and_health() -> None:
    open_rules = {(tuple(sorted(r.methods)), r.template) for r in RULES if r.access.open}
    assert open_rules == {
        (("POST",), "/api/auth/login"),
        (("POST",), "/api/auth/refresh"),
        (("GET",), "/api/health"),
        (("GET",), "/login"),
        (("GET",), "/login/{asset}"),
        (("GET",), "/i18n"),  # the words of the sign-in page (and of every page of ours)
        (("GET",), "/favicon.ico"),  # asked for by browsers on every page
    }


def test_a_route_without_a_permission_is_refused_where_it_is_declared() -> None:
    with pytest.raises(PermissionMissing, match=r"route GET /api/forgotten: give the roles"):
        RouteTable().get("/api/forgotten")


@pytest.mark.parametrize(
    ("method", "path", "ref", "parameter"),
    [
        ("GET", "/studies/abc", StudyRef.ORTHANC_STUDY, "abc"),
        ("GET", "/api/studies/abc/report", StudyRef.ORTHANC_STUDY, "abc"),
        ("GET", "/api/studies/abc/report/pdf", StudyRef.ORTHANC_STUDY, "abc"),
        ("GET", "/api/studies/abc/report/history", StudyRef.ORTHANC_STUDY, "abc"),
        ("GET", "/series/abc/archive", StudyRef.ORTHANC_SERIES, "abc"),
        ("GET", "/instances/abc/frames/0/preview", StudyRef.ORTHANC_INSTANCE, "abc"),
        (
            "GET",
            "/dicom-web/studies/1.2.3/series/4/instances/5/frames/1",
            StudyRef.STUDY_UID,
            "1.2.3",
        ),
    ],
)
def test_study_routes_name_their_study(method, path, ref, parameter) -> None:
    found = match(method, path)
    assert found.rule.access.study.ref is ref
    assert found.params[found.rule.access.study.parameter] == parameter
    assert Role.REFERRER in found.rule.access.roles


@pytest.mark.parametrize(
    "path",
    [
        "/patients",
        "/studies",
        "/series",
        "/instances",
        "/dicom-web/series",
        "/dicom-web/instances",
        "/patients/abc",
        "/patients/abc/studies",
        "/api/worklist",
        "/api/reports/orphaned",
    ],
)
def test_a_referrer_can_list_nothing(path: str) -> None:
    assert Role.REFERRER not in roles_for("GET", path)
    assert Role.REFERRER not in roles_for("POST", "/tools/find")


def test_a_referrer_searches_studies_only_by_a_linked_uid() -> None:
    """The viewer opens a study by searching for its UID; the gate checks the UID is linked
    and that nothing else in the query could widen the search."""
    found = match("GET", "/dicom-web/studies")
    assert Role.REFERRER in found.rule.access.roles
    assert found.rule.access.study.parameter == "?StudyInstanceUID"
    assert "0020000D" not in found.rule.access.referrer_query
    assert "PatientID" not in found.rule.access.referrer_query


def test_only_radiologists_and_admins_write_reports() -> None:
    for method, path in [
        ("PUT", "/api/studies/abc/report"),
        ("POST", "/api/studies/abc/report/sign"),
        ("POST", "/api/studies/abc/report/amend"),
        ("POST", "/api/studies/abc/claim"),
        ("DELETE", "/api/studies/abc/claim"),
    ]:
        assert roles_for(method, path) == {Role.ADMIN, Role.RADIOLOGIST}, (method, path)
    assert roles_for("PUT", "/api/studies/abc/assignment") == {Role.ADMIN}


def test_unknown_routes_and_methods_fall_to_admins_only() -> None:
    assert roles_for("GET", "/SYSTEM") == {Role.ADMIN}
    assert roles_for("DELETE", "/studies/abc") == {Role.ADMIN}
    assert roles_for("PUT", "/api/jobs") == {Role.ADMIN}
    assert roles_for("BREW", "/api/jobs") == set()


def test_templates_match_whole_segments_only() -> None:
    assert match("GET", "/studies-x/abc").rule.template == "/**"
    assert match("GET", "/systemx").rule.template == "/**"
    assert match("GET", "/api/jobs/7").rule.access == match("GET", "/api/jobs").rule.access
    assert match("GET", "/api/jobs/seven").rule is ADMIN_CATCH_ALL  # not a job id

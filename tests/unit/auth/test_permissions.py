from __future__ import annotations

import pytest

from hounsfield.auth.permissions import RULES, StudyRef, match
from hounsfield.auth.roles import Role


def roles_for(method: str, path: str) -> set[Role]:
    found = match(method, path)
    return set(found.rule.roles) if found else set()


def test_open_doors_are_exactly_sign_in_refresh_and_health() -> None:
    open_rules = {(tuple(sorted(r.methods)), r.template) for r in RULES if r.open}
    assert open_rules == {
        (("POST",), "/api/auth/login"),
        (("POST",), "/api/auth/refresh"),
        (("GET",), "/api/health"),
        (("GET",), "/login/**"),
    }


@pytest.mark.parametrize(
    ("method", "path", "ref", "parameter"),
    [
        ("GET", "/studies/abc", StudyRef.ORTHANC_STUDY, "abc"),
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
    assert found.rule.study_ref is ref
    assert found.params[found.rule.referrer_study] == parameter
    assert Role.REFERRER in found.rule.roles


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
    ],
)
def test_a_referrer_can_list_nothing(path: str) -> None:
    assert Role.REFERRER not in roles_for("GET", path)
    assert Role.REFERRER not in roles_for("POST", "/tools/find")


def test_a_referrer_searches_studies_only_by_a_linked_uid() -> None:
    """The viewer opens a study by searching for its UID; the gate checks the UID is linked
    and that nothing else in the query could widen the search."""
    found = match("GET", "/dicom-web/studies")
    assert Role.REFERRER in found.rule.roles
    assert found.rule.referrer_study == "?StudyInstanceUID"
    assert "0020000D" not in found.rule.referrer_query
    assert "PatientID" not in found.rule.referrer_query


def test_unknown_routes_and_methods_fall_to_admins_only() -> None:
    assert roles_for("GET", "/SYSTEM") == {Role.ADMIN}
    assert roles_for("DELETE", "/studies/abc") == {Role.ADMIN}
    assert roles_for("PUT", "/api/jobs") == {Role.ADMIN}
    assert roles_for("BREW", "/api/jobs") == set()


def test_templates_match_whole_segments_only() -> None:
    assert match("GET", "/studies-x/abc").rule.template == "/**"
    assert match("GET", "/systemx").rule.template == "/**"
    assert match("GET", "/api/jobs/7").rule.roles == match("GET", "/api/jobs").rule.roles

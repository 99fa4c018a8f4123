"""Every route that takes a body, every header the gate reads, every multipart upload:
hostile inputs, then the server must still be whole (conftest's ``assert_unharmed``)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file

from hounsfield.app import build_registry
from tests.fuzz.conftest import EXTENSIONS, Target
from tests.fuzz.strategies import (
    content_types,
    json_bodies,
    multipart_bodies,
    query_strings,
    tokens,
)

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# Logging out would end the fuzzing session itself; it reads no body.
NOT_FUZZED = {("POST", "/api/auth/logout")}
PARAMETER_VALUES = {"int": "1", "str": "fuzz-target", "path": "x"}


def routes_with_bodies() -> list[tuple[str, str]]:
    """(method, path) of every route, ours and our extensions', that accepts a body."""
    found = []
    for table in build_registry(list(EXTENSIONS), {}).route_tables:
        for route in table.routes:
            if route.method in ("POST", "PUT") and (route.method, route.template) not in NOT_FUZZED:
                path = re.sub(
                    r"\{\w+(?::(\w+))?\}",
                    lambda m: PARAMETER_VALUES[m.group(1) or "str"],
                    route.template,
                )
                found.append((route.method, path))
    return sorted(set(found))


ROUTES_WITH_BODIES = routes_with_bodies()


def test_the_routes_with_bodies_are_all_found() -> None:
    assert ("POST", "/api/auth/login") in ROUTES_WITH_BODIES
    assert ("POST", "/instances") in ROUTES_WITH_BODIES
    assert ("POST", "/api/acquisitions") in ROUTES_WITH_BODIES
    assert ("PUT", "/api/users/fuzz-target") in ROUTES_WITH_BODIES
    assert ("PUT", "/api/studies/fuzz-target/report") in ROUTES_WITH_BODIES
    assert ("POST", "/api/studies/fuzz-target/analyze") in ROUTES_WITH_BODIES
    assert ("POST", "/api/findings/fuzz-target/review") in ROUTES_WITH_BODIES
    assert ("POST", "/api/orders") in ROUTES_WITH_BODIES
    assert ("POST", "/api/his/mismatches/1/dismiss") in ROUTES_WITH_BODIES


@SETTINGS
@given(
    route=st.sampled_from(ROUTES_WITH_BODIES),
    body=json_bodies,
    content_type=content_types,
    query=query_strings,
    signed_in=st.booleans(),
)
def test_hostile_bodies(
    target: Target,
    route: tuple[str, str],
    body: bytes,
    content_type: str,
    query: str,
    signed_in: bool,
) -> None:
    method, path = route
    target.send(
        method,
        f"{path}?{query}" if query else path,
        body,
        {"Content-Type": content_type},
        signed_in=signed_in,
    )


@SETTINGS
@given(
    path=st.sampled_from(
        [
            "/api/auth/me",
            "/api/jobs",
            "/system",
            "/dicom-web/studies",
            "/ohif/",
            "/recon",
            "/instances",
        ]
    ),
    token=tokens(),
    where=st.sampled_from(["bearer", "cookie", "scheme", "basic", "basic-encoded", "key"]),
    # Framing headers (Content-Length, Transfer-Encoding) are left to the explicit cases in
    # tests/integration/test_hostile_input.py: a length that lies makes the server wait for
    # bytes that never come, which is HTTP, not a parser of ours.
    extra=st.dictionaries(
        st.sampled_from(
            [
                "X-CSRF-Token",
                "X-HTTP-Method-Override",
                "Host",
                "Forwarded",
                "Accept",
                "Cookie",
                "X-Forwarded-For",
            ]
        ),
        st.text(alphabet='abc0123456789=;,*/ -_"\\', max_size=100),
        max_size=3,
    ),
    post=st.booleans(),
)
def test_hostile_headers(
    target: Target, path: str, token: str, where: str, extra: dict, post: bool
) -> None:
    if where == "bearer":
        headers = {"Authorization": f"Bearer {token}"}
    elif where == "basic":  # whatever follows the scheme, base64 or not
        headers = {"Authorization": f"Basic {token}"}
    elif where == "basic-encoded":  # well-formed base64 of anything ("user:password" or not)
        encoded = base64.b64encode(token.encode("utf-8", "surrogatepass")).decode()
        headers = {"Authorization": f"Basic {encoded}"}
    elif where == "key":  # what looks like one of our API keys
        headers = {"Authorization": f"Bearer hfk_{token}"}
    elif where == "cookie":
        headers = {"Cookie": f"hf_access={token}; hf_csrf={token[:50]}"}
    else:
        headers = {"Authorization": token}
    headers.update(extra)
    target.send("POST" if post else "GET", path, b"{}" if post else None, headers, signed_in=False)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    path=st.sampled_from(["/api/acquisitions", "/dicom-web/studies", "/dicom-web/studies/1.2.3"]),
    body=multipart_bodies(),
    media=st.sampled_from(["multipart/mixed", 'multipart/related; type="application/dicom"']),
)
def test_hostile_multipart_uploads(target: Target, path: str, body: bytes, media: str) -> None:
    target.send("POST", path, body, {"Content-Type": f"{media}; boundary=fuzzb"})


@SETTINGS
@given(
    path=st.sampled_from(
        ["/api/worklist", "/api/jobs", "/api/audit", "/api/reports/orphaned", "/i18n"]
    ),
    query=query_strings,
)
def test_hostile_listing_queries(target: Target, path: str, query: str) -> None:
    target.send("GET", f"{path}?{query}")


@pytest.fixture(scope="module")
def stored_series(target: Target) -> str:
    """The series metadata path of a CT slice stored in the target."""
    target.server.store(Path(get_testdata_file("CT_small.dcm")))
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"), stop_before_pixels=True)
    return f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/metadata"


HEADER_TEXT = st.text(alphabet='abc0123456789=;,*/:. -_"\\{}[]+', max_size=80)


@SETTINGS
@given(
    headers=st.fixed_dictionaries(
        {},
        optional={
            "Host": HEADER_TEXT,
            "Forwarded": st.builds("host={};proto={}".format, HEADER_TEXT, HEADER_TEXT),
            "Accept": st.sampled_from(
                ["application/dicom+xml", "application/dicom+json", "text/html", "*/*, x/y;q=0"]
            )
            | HEADER_TEXT,
        },
    ),
    uid=st.sampled_from(["study", "series"]),
    hostile_uid=st.text(alphabet="0123456789.%*?-_x", max_size=70),
)
def test_hostile_series_metadata_requests(
    target: Target, stored_series: str, headers: dict, uid: str, hostile_uid: str
) -> None:
    """The series metadata answer names the client's host: whatever it says, the answer
    stays DICOM JSON (or XML) that parses, for the stored series and for made-up UIDs."""
    status, payload = target.send("GET", stored_series, headers=headers)
    if status == 200 and "xml" not in headers.get("Accept", ""):
        assert len(json.loads(payload)) == 1
    study, series = stored_series.split("/")[3:6:2]
    made_up = (
        f"/dicom-web/studies/{hostile_uid or 'x'}/series/{series}/metadata"
        if uid == "study"
        else f"/dicom-web/studies/{study}/series/{hostile_uid or 'x'}/metadata"
    )
    target.send("GET", made_up, headers=headers)


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/studies/%80", {}),  # a lone continuation byte
        ("/api/worklist/%80", {}),
        ("/dicom-web/studies/%FF", {}),
        ("/studies/%C0%AF", {}),  # an overlong "/"
        ("/studies/%ED%A0%80", {}),  # a surrogate
        ("/studies/%F4%90%80%80", {}),  # above U+10FFFF
        ("/system", {"X-Note": "caf\xe9"}),  # Latin-1 in a header
    ],
)
def test_what_is_not_utf8_once_decoded_is_refused_before_the_python_plugin(
    target: Target, path: str, headers: dict[str, str]
) -> None:
    """The Python plugin cannot make a string of it and would answer 500 on any route: the
    URI guard (plugin/native/uri_guard.c) refuses it first, and UTF-8 still passes."""
    assert target.send("GET", path, headers=headers)[0] == 403
    assert target.send("GET", "/dicom-web/studies/%C3%A9%E2%82%AC%F0%9F%A6%B4")[0] == 404


def test_the_server_is_whole_after_the_http_fuzz(target: Target) -> None:
    target.assert_unharmed()

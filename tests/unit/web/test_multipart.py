"""Splitting multipart bodies as clients send them (urllib3 here, curl and browsers alike)."""

from __future__ import annotations

import pytest
from urllib3 import encode_multipart_formdata

from hounsfield.web.multipart import MultipartError, iter_parts

LIMITS = {"max_parts": 100, "max_header_bytes": 8192}


def split_parts(body: bytes, content_type: str, **limits: int) -> dict[str, list[memoryview]]:
    fields: dict[str, list[memoryview]] = {}
    for part in iter_parts(body, content_type, **limits):
        fields.setdefault(part.name, []).append(part.content)
    return fields


def encoded(fields: list) -> tuple[bytes, str]:
    body, content_type = encode_multipart_formdata(fields)
    return body, content_type.replace("multipart/form-data", "multipart/mixed")


def test_parts_come_out_by_name_in_order_and_byte_exact() -> None:
    tricky = b"\r\n--not-the-boundary\r\n\r\n" + bytes(range(256)) * 64
    body, content_type = encoded(
        [
            ("projections", ("a.tif", tricky, "image/tiff")),
            ("geometry", ("g.json", b'{"i0": 1}', "application/json")),
            ("projections", ("b.tif", b"", "image/tiff")),
        ]
    )
    parts = split_parts(body, content_type, **LIMITS)
    assert {name: [bytes(view) for view in views] for name, views in parts.items()} == {
        "projections": [tricky, b""],
        "geometry": [b'{"i0": 1}'],
    }


def test_a_quoted_boundary_and_a_preamble_are_understood() -> None:
    body = (
        b'preamble to ignore\r\n--b 1\r\nContent-Disposition: form-data; name="x"\r\n\r\n'
        b"value\r\n--b 1--\r\n"
    )
    parts = split_parts(body, 'multipart/mixed; boundary="b 1"', **LIMITS)
    assert [bytes(view) for view in parts["x"]] == [b"value"]


@pytest.mark.parametrize(
    ("cut", "content_type", "message"),
    [
        (lambda body: body[:-20], None, "ends inside a part"),
        (lambda body: body, "multipart/mixed", "without a boundary"),
        (lambda body: b"no delimiter at all", None, "no boundary found"),
    ],
)
def test_malformed_bodies_are_named(cut, content_type: str | None, message: str) -> None:
    body, announced = encoded([("geometry", ("g.json", b"{}", "application/json"))])
    with pytest.raises(MultipartError, match=message):
        split_parts(cut(body), content_type or announced, **LIMITS)


def test_parts_and_header_blocks_are_bounded_before_parsing() -> None:
    many, content_type = encoded([(f"p{n}", ("f", b"x", "text/plain")) for n in range(101)])
    with pytest.raises(MultipartError, match="more than 100 parts") as refused:
        split_parts(many, content_type, **LIMITS)
    assert refused.value.limit == "Limits.MultipartParts"
    long_header = ("long", ("f" * 9000, b"x", "text/plain"))
    body, content_type = encoded([long_header])
    with pytest.raises(MultipartError, match="headers exceed 8192 bytes"):
        split_parts(body, content_type, **LIMITS)
    with pytest.raises(MultipartError, match="boundary longer than 70"):
        split_parts(body, "multipart/mixed; boundary=" + "b" * 71, **LIMITS)

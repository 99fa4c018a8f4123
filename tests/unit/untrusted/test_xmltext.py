"""Bounded XML: size first, entities and DTDs refused, depth counted as the parser reads."""

from __future__ import annotations

import time

import pytest

from hounsfield.untrusted import InputRefused
from hounsfield.untrusted.xmltext import parse_xml
from tests.support.stack import outcome_on_small_stack

LIMITS = {"max_bytes": 1 << 22, "max_depth": 32}


def test_a_deep_document_is_refused_on_a_stack_as_small_as_orthancs() -> None:
    document = b"<a>" * 300_000 + b"</a>" * 300_000
    started = time.monotonic()
    error = outcome_on_small_stack(lambda: parse_xml(document, **LIMITS))
    assert isinstance(error, InputRefused) and error.limit == "Limits.XmlDepth"
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>', "DTD or entities"),
        (b"<a><b></a>", "malformed XML"),
        (b"", "malformed XML"),
        (b"\xff\xfe<a/>", "malformed XML"),
    ],
)
def test_what_xml_must_not_carry_is_refused(document: bytes, message: str) -> None:
    with pytest.raises(InputRefused, match=message):
        parse_xml(document, **LIMITS)


def test_size_is_checked_before_parsing_and_good_documents_pass() -> None:
    with pytest.raises(InputRefused) as refused:
        parse_xml(b"<a>" + b"x" * 2000 + b"</a>", max_bytes=1024, max_depth=4)
    assert refused.value.too_large and refused.value.limit == "Limits.XmlBytes"
    root = parse_xml(b"<a><b>1</b><b>2</b></a>", max_bytes=1024, max_depth=2)
    assert [child.text for child in root] == ["1", "2"]

"""Bounded JSON: depth measured without recursion, against a reference computed on parsed values."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hounsfield.untrusted import InputRefused
from hounsfield.untrusted.jsontext import nesting_depth, parse_json
from tests.support.stack import outcome_on_small_stack

# Strings full of what a naive bracket counter gets wrong: brackets, quotes, backslashes.
tricky_text = st.text(alphabet='[]{}"\\ aé', max_size=8)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(tricky_text, children, max_size=3)
    ),
    max_leaves=30,
)


def reference_depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(reference_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(reference_depth, value), default=0)
    return 0


@given(values, st.booleans())
def test_depth_matches_the_parsed_structure(value: object, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert nesting_depth(text) == reference_depth(value)


def test_a_deep_body_is_refused_on_a_thread_as_small_as_orthancs() -> None:
    """The crash this guards against: 100 KiB of C stack, as on Orthanc's HTTP threads."""
    error = outcome_on_small_stack(
        lambda: parse_json(b"[" * 100_000 + b"]" * 100_000, max_bytes=1 << 20, max_depth=32)
    )
    assert isinstance(error, InputRefused) and error.limit == "Limits.JsonDepth"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"a": 1, "a": 2}', "the key 'a' appears twice"),
        (b"[NaN]", "NaN is not a JSON value"),
        (b'["\\ud800"]', "lone surrogate"),
        (b"1" * 5000, "4300 digits"),
        (b"\xff{}", "not UTF-8"),
        (b'{"a": ', "Expecting value"),
    ],
)
def test_what_parsers_disagree_on_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(InputRefused, match=message) as refused:
        parse_json(body, max_bytes=1 << 20, max_depth=32)
    assert not refused.value.too_large


def test_size_is_checked_first_and_valid_documents_pass() -> None:
    with pytest.raises(InputRefused) as refused:
        parse_json(b"[" + b"1," * 600 + b"1]", max_bytes=1024, max_depth=32)
    assert refused.value.too_large and refused.value.limit == "Limits.RequestBytes"
    assert parse_json(b'{"a": ["\\ud83d\\ude00", {"b": "[[["}]}', max_bytes=64, max_depth=3) == {
        "a": ["\U0001f600", {"b": "[[["}]
    }

"""JSON from senders: size, nesting, encoding and duplicate keys checked, then parsed.

``json.loads`` recurses in C at every ``[`` or ``{``: about 650 levels overflow a
100 KiB stack (measured on a plain thread with that stack size), and Orthanc's HTTP
threads have 100 KiB. The depth is therefore measured first in linear time without
recursion (numpy over the bytes, strings masked out) and the parse runs only below the
limit. A strict parse also refuses what parsers disagree on (duplicate keys), what JSON
does not allow (NaN, Infinity) and lone surrogates, which would fail later in SQLite.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from hounsfield.untrusted import InputRefused

_QUOTE, _BACKSLASH = 0x22, 0x5C
_OPENING = (0x5B, 0x7B)  # [ {
_CLOSING = (0x5D, 0x7D)  # ] }
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def nesting_depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in ``data``, brackets inside strings aside."""
    text = np.frombuffer(data, dtype=np.uint8)
    opening = np.isin(text, _OPENING)
    closing = np.isin(text, _CLOSING)
    quotes = np.flatnonzero(text == _QUOTE).astype(np.int32)
    if quotes.size:
        escaped = np.zeros(quotes.size, dtype=bool)
        after_backslash = (quotes > 0) & (text[quotes - 1] == _BACKSLASH)
        if after_backslash.any():
            # Escaped when an odd run of backslashes precedes it: runs measured from the
            # position of the last byte that is not a backslash.
            positions = np.arange(text.size, dtype=np.int32)
            last_plain = np.maximum.accumulate(np.where(text != _BACKSLASH, positions, -1))
            before = quotes[after_backslash] - 1
            escaped[after_backslash] = (before - last_plain[before]) % 2 == 1
        toggles = np.zeros(text.size, dtype=np.int8)
        toggles[quotes[~escaped]] = 1
        inside = np.bitwise_xor.accumulate(toggles).astype(bool)
        opening &= ~inside
        closing &= ~inside
    levels = np.cumsum(opening, dtype=np.int32) - np.cumsum(closing, dtype=np.int32)
    return int(levels.max(initial=0))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InputRefused(f"malformed JSON: the key {key!r} appears twice in one object")
        result[key] = value
    return result


def _no_constant(name: str) -> None:
    raise InputRefused(f"malformed JSON: {name} is not a JSON value")


def _check_strings(value: Any) -> None:
    """Every string must be encodable: JSON's \\ud800 escapes can make lone surrogates."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise InputRefused("malformed JSON: a \\u escape makes a lone surrogate") from None


def parse_json(data: bytes | memoryview, *, max_bytes: int, max_depth: int) -> Any:
    """``data`` as JSON (RFC 8259, UTF-8); InputRefused naming the problem or the limit."""
    if len(data) > max_bytes:
        raise InputRefused(
            f"JSON body exceeds {max_bytes} bytes", limit="Limits.RequestBytes", too_large=True
        )
    data = bytes(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputRefused(f"JSON is not UTF-8 text: {error.reason}") from error
    brackets = data.count(b"[") + data.count(b"{")
    if brackets > max_depth and nesting_depth(data) > max_depth:
        raise InputRefused(f"JSON nested deeper than {max_depth} levels", limit="Limits.JsonDepth")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except InputRefused:
        raise
    except json.JSONDecodeError as error:
        raise InputRefused(
            f"malformed JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from error
    except ValueError as error:  # e.g. an integer of more than 4300 digits
        raise InputRefused(f"malformed JSON: {error}") from error
    if _SURROGATE_ESCAPE.search(text):
        _check_strings(value)
    return value

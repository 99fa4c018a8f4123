"""Environment overrides with the convention of the official Orthanc Docker images.

``ORTHANC__HTTP_PORT=8043`` sets ``HttpPort``; ``__`` descends into sections, so
``ORTHANC__HOUNSFIELD__WORKERS=2`` sets ``Hounsfield.Workers``. A segment matches an
existing key ignoring case and underscores, else it becomes PascalCase. Values are
read as JSON when they parse (numbers, booleans, lists, objects), else as text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

PREFIX = "ORTHANC__"


class EnvConfigError(ValueError):
    """An ``ORTHANC__`` variable cannot be applied; the message names it."""


def apply_env_overrides(config: dict[str, Any], environ: Mapping[str, str]) -> list[str]:
    """Apply every ``ORTHANC__`` variable to ``config`` in place; returns the keys set."""
    applied = []
    for name in sorted(environ):
        if not name.startswith(PREFIX):
            continue
        segments = name[len(PREFIX) :].split("__")
        if not all(segments):
            raise EnvConfigError(f"{name}: empty segment in variable name")
        target = config
        path = []
        for segment in segments[:-1]:
            key = key_for(target, segment)
            if not isinstance(target.get(key), dict):
                if key in target:
                    raise EnvConfigError(f"{name}: {'.'.join([*path, key])} is not a section")
                target[key] = {}
            target = target[key]
            path.append(key)
        key = key_for(target, segments[-1])
        target[key] = parse_value(environ[name])
        applied.append(".".join([*path, key]))
    return applied


def key_for(mapping: Mapping[str, Any], segment: str) -> str:
    wanted = _fold(segment)
    for key in mapping:
        if _fold(key) == wanted:
            return key
    return "".join(word.capitalize() for word in segment.lower().split("_"))


def parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _fold(name: str) -> str:
    return name.replace("_", "").lower()

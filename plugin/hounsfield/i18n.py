"""Translations: one JSON catalogue per language, a folder of them per feature.

A catalogue is a flat JSON object, message key -> text, with ``{name}`` placeholders
(``"report.signed": "Signed by {signer} on {time}"``). A feature keeps its catalogues in a
folder of its own (``en.json``, ``fr.json``...); adding a language is adding one file to
each folder and its code to ``LANGUAGES``, no code. English is the reference: every key it
has must be in every other catalogue (``missing`` finds the gaps; a test runs it on every
folder).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path

LANGUAGES = ("en", "fr", "de", "es", "ru")
REFERENCE = "en"


class Catalogue:
    """The messages of one folder, in every language."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.messages: dict[str, dict[str, str]] = {
            language: json.loads((folder / f"{language}.json").read_text(encoding="utf-8"))
            for language in LANGUAGES
            if (folder / f"{language}.json").is_file()
        }

    def text(self, language: str, key: str, **values: object) -> str:
        """The message in ``language`` (English where that language lacks it)."""
        messages = self.messages.get(language, {})
        template = messages.get(key) or self.messages[REFERENCE][key]
        return template.format(**values)

    def missing(self) -> dict[str, list[str]]:
        """Keys of the English catalogue that a language lacks, per language."""
        reference = self.messages.get(REFERENCE, {})
        return {
            language: sorted(set(reference) - set(self.messages.get(language, {})))
            for language in LANGUAGES
            if set(reference) - set(self.messages.get(language, {}))
        }


@functools.cache
def catalogue(folder: Path) -> Catalogue:
    return Catalogue(folder)


def best_language(accept_language: str, preferred: str | None = None) -> str:
    """``preferred`` (a user's setting) when we have it, else the browser's first
    language we have (an ``Accept-Language`` header), else English."""
    if preferred in LANGUAGES:
        return preferred
    ranked: list[tuple[float, str]] = []
    for position, part in enumerate(accept_language.split(",")[:20]):
        tag, _, parameters = part.strip().partition(";")
        quality = 1.0
        if parameters.strip().startswith("q="):
            try:
                quality = float(parameters.strip()[2:])
            except ValueError:
                continue
        ranked.append((-quality + position * 1e-6, tag.split("-")[0].lower()))
    for _, language in sorted(ranked):
        if language in LANGUAGES:
            return language
    return REFERENCE


def language_names() -> Mapping[str, str]:
    """Each language in its own words, for a language menu."""
    return {"en": "English", "fr": "Français", "de": "Deutsch", "es": "Español", "ru": "Русский"}

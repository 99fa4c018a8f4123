"""Every catalogue in the repository is complete in every language, placeholders included.

Catalogues are found, not listed: any folder under ``plugin/`` or ``html/`` that holds an
``en.json`` is one, so a feature's new folder is checked the day it is added.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hounsfield.i18n import LANGUAGES, REFERENCE, Catalogue

REPOSITORY = Path(__file__).resolve().parents[2]
FOLDERS = sorted(
    path.parent
    for root in ("plugin", "html")
    for path in (REPOSITORY / root).rglob(f"{REFERENCE}.json")
)
PLACEHOLDER = re.compile(r"\{(\w+)\}")
PAGES = REPOSITORY / "html"
# A key a page names literally: data-i18n="key" (or -placeholder...) and t("key"...).
PAGE_KEY = re.compile(r"""data-i18n(?:-[a-z-]+)?="([^"]+)"|\bt\("([^"]+)"[,)]""")


def ids(folder: Path) -> str:
    return str(folder.relative_to(REPOSITORY))


def test_the_catalogues_are_found() -> None:
    found = {ids(folder) for folder in FOLDERS}
    assert {"plugin/hounsfield/reading/catalogue", "html/i18n"} <= found


@pytest.mark.parametrize("folder", FOLDERS, ids=ids)
def test_every_language_has_every_key(folder: Path) -> None:
    assert Catalogue(folder).missing() == {}


@pytest.mark.parametrize("folder", FOLDERS, ids=ids)
def test_placeholders_match_between_languages(folder: Path) -> None:
    """A translation that drops or renames ``{name}`` would print it raw, or lose a value."""
    messages = Catalogue(folder).messages
    wrong = {
        (language, key)
        for language in LANGUAGES
        for key, text in messages.get(language, {}).items()
        if key in messages[REFERENCE]
        and set(PLACEHOLDER.findall(text)) != set(PLACEHOLDER.findall(messages[REFERENCE][key]))
    }
    assert wrong == set()


@pytest.mark.parametrize("folder", FOLDERS, ids=ids)
def test_no_language_is_english_copied(folder: Path) -> None:
    """Some words are the same in two languages ("Technique", "PDF"); most are not."""
    messages = Catalogue(folder).messages
    for language in set(LANGUAGES) - {REFERENCE}:
        same = [key for key, text in messages[REFERENCE].items() if messages[language][key] == text]
        assert len(same) < len(messages[REFERENCE]) / 3, (language, same)


def test_every_word_a_page_names_is_in_the_catalogue() -> None:
    """In the core's or a feature's catalogue: every one is served to every page."""
    english = {
        key: text
        for folder in FOLDERS
        for key, text in Catalogue(folder).messages[REFERENCE].items()
    }
    named = {
        attribute or call
        for path in [*PAGES.glob("*.html"), *PAGES.glob("*.js")]
        for attribute, call in PAGE_KEY.findall(path.read_text(encoding="utf-8"))
    }
    assert named and named - set(english) == set()

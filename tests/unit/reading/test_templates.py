"""Templates: chosen by what the study is, filled from its tags, sandboxed."""

from __future__ import annotations

from pathlib import Path

import pytest

from hounsfield.i18n import LANGUAGES
from hounsfield.reading.templates import StudyFacts, Templates, UnknownTemplate


def facts(modalities: tuple[str, ...], *words: str, **technique: str) -> StudyFacts:
    return StudyFacts(
        patient={"name": "DOE JANE", "id": "P1", "birth_date": "", "sex": "F"},
        study={"date": "20261124", "description": "", "accession": "A1"},
        technique={
            "parameters": "",
            "contrast": "",
            "modalities": ", ".join(modalities),
            **technique,
        },
        modalities=modalities,
        words=frozenset(words),
    )


@pytest.mark.parametrize(
    ("study", "expected"),
    [
        (facts(("CT",), "CHEST"), "ct-chest"),
        (facts(("CT", "SR"), "THORAX"), "ct-chest"),
        (facts(("CT",), "HEAD"), "ct-head"),
        (facts(("CT", "XA"), "CBCT", "MANDIBLE"), "cbct-dental"),
        (facts(("DX",), "CHEST"), "xr-chest"),
        (facts(("MR",), "BRAIN"), "mr-brain"),
        (facts(("CT",), "ABDOMEN"), "generic"),
        (facts(("US",)), "generic"),
    ],
)
def test_the_template_fits_the_study(study: StudyFacts, expected: str) -> None:
    assert Templates().choose(study) == expected


def test_every_shipped_template_speaks_every_language() -> None:
    shelf = Templates()
    assert {"generic", "ct-head", "ct-chest", "cbct-dental", "xr-chest", "mr-brain"} <= set(
        shelf.available
    )
    for info in shelf.available.values():
        assert info.languages == LANGUAGES, info.name
        titles = {shelf.title(info.name, language) for language in LANGUAGES}
        assert len(titles) == len(LANGUAGES), f"{info.name}: a title left untranslated"


def test_sections_are_filled_from_the_tags() -> None:
    study = facts(("CT",), "CHEST", parameters="120 kV, 250 mAs, 1.25 mm", contrast="IOHEXOL")
    study = StudyFacts(**{**study.__dict__, "derived": ("FDK (RTK) of series 1.2.3",)})
    sections = Templates().render("ct-chest", "de", study)
    assert sections["technique"].startswith("CT des Thorax mit Kontrastmittel.")
    assert "120 kV, 250 mAs, 1.25 mm" in sections["technique"]
    assert "Kontrastmittel: IOHEXOL" in sections["technique"]
    assert "Rekonstruktion: FDK (RTK) of series 1.2.3" in sections["technique"]
    assert sections["findings"].startswith("Lunge und Atemwege:")


def test_an_admins_folder_adds_and_overrides_templates(tmp_path: Path) -> None:
    (tmp_path / "ct-chest.en.j2").write_text(
        '{% set title = "Chest, our way" %}{% set modalities = ["CT"] %}'
        '{% set keywords = ["CHEST"] %}{% block findings %}Our lungs line.{% endblock %}'
    )
    (tmp_path / "us-neck.en.j2").write_text(
        '{% set title = "US neck" %}{% set modalities = ["US"] %}{% set keywords = ["NECK"] %}'
        "{% block findings %}Thyroid: {{ patient.name }}{% endblock %}"
    )
    shelf = Templates(tmp_path)
    assert shelf.render("ct-chest", "en", facts(("CT",), "CHEST")) == {
        "findings": "Our lungs line."
    }
    assert shelf.title("ct-chest", "en") == "Chest, our way"
    assert shelf.title("ct-chest", "fr") == "Scanner thoracique"  # file by file: fr is ours
    assert shelf.choose(facts(("US",), "NECK")) == "us-neck"
    assert shelf.render("us-neck", "en", facts(("US",), "NECK")) == {
        "findings": "Thyroid: DOE JANE"
    }


def test_a_template_cannot_reach_python(tmp_path: Path) -> None:
    (tmp_path / "evil.en.j2").write_text(
        "{% block findings %}{{ ''.__class__.__mro__[1].__subclasses__() }}{% endblock %}"
    )
    with pytest.raises(UnknownTemplate, match="failed"):
        Templates(tmp_path).render("evil", "en", facts(("CT",)))


def test_an_unknown_template_is_named() -> None:
    with pytest.raises(UnknownTemplate, match="no template 'ct-knee'"):
        Templates().render("ct-knee", "en", facts(("CT",)))

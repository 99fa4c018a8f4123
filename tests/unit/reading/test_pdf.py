"""The printed report in each language, read back with pypdf."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader

from hounsfield.reading.pdf import PrintedReport, Signature, render

# Written here, independently of the catalogues: the impression heading in each language.
IMPRESSION = {
    "en": "Impression",
    "fr": "Conclusion",
    "de": "Beurteilung",
    "es": "Impresión diagnóstica",
    "ru": "Заключение",
}


def report(language: str, **changes: object) -> PrintedReport:
    values: dict[str, object] = {
        "language": language,
        "template_title": "CT",
        "patient": {"name": "Иванова Анна", "id": "P-77", "birth_date": "19700102", "sex": "F"},
        "study": {"date": "20261124", "accession": "ACC-9", "description": "CT CHEST"},
        "sections": {"findings": "Узел 6 мм. <script>alert(1)</script>", "impression": "Ok."},
        "number": 1,
        "signature": Signature("dr-ana", "2026-11-24T07:05:00.000+00:00"),
        "digest": "ab" * 32,
    }
    values.update(changes)
    return PrintedReport(**values)  # type: ignore[arg-type]


def text(document: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(document)).pages)


@pytest.mark.parametrize("language", sorted(IMPRESSION))
def test_each_language_prints_its_labels_and_cyrillic_text(language: str) -> None:
    printed = text(render(report(language)))
    assert IMPRESSION[language] in printed
    assert "Иванова Анна" in printed and "P-77" in printed and "1970-01-02" in printed
    assert "Узел 6 мм. <script>alert(1)</script>" in printed  # text, never markup
    assert "dr-ana" in printed and "2026-11-24 07:05 UTC" in printed


def test_a_long_report_is_numbered_page_by_page() -> None:
    long = report("en", sections={"findings": "A line of findings.\n" * 200})
    reader = PdfReader(io.BytesIO(render(long)))
    pages = len(reader.pages)
    assert pages >= 3
    for number, page in enumerate(reader.pages, start=1):
        assert f"Page {number} of {pages}" in page.extract_text()


def test_an_amendment_is_marked_with_both_signatures_and_the_reason() -> None:
    amended = report(
        "fr",
        number=2,
        signature=Signature("dr-ben", "2026-11-25T08:00:00.000+00:00"),
        first_signature=Signature("dr-ana", "2026-11-24T07:05:00.000+00:00"),
        amendment_reason="Latéralité corrigée",
    )
    printed = text(render(amended))
    assert "COMPTE RENDU MODIFIÉ (version 2)" in printed
    assert "dr-ana" in printed and "dr-ben" in printed and "Latéralité corrigée" in printed


def test_the_institution_and_its_logo_head_the_page(tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    Image.new("RGB", (120, 60), (20, 90, 160)).save(logo)
    document = render(report("de", institution="Radiologie Nord", logo=logo))
    page = PdfReader(io.BytesIO(document)).pages[0]
    assert "Radiologie Nord" in page.extract_text()
    (image,) = page.images
    assert image.image.size == (120, 60)
    without = PdfReader(io.BytesIO(render(report("de")))).pages[0]
    assert list(without.images) == []

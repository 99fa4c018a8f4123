"""The printable report: one signed version as a PDF (fpdf2, DejaVu fonts).

fpdf2 is pure Python and embeds TrueType fonts as subsets; DejaVu (Debian's
``fonts-dejavu-core``, installed by ``make``) covers Latin and Cyrillic, so the five
languages print from one font. Report text is written as text, never interpreted (no
markup): what a radiologist typed, ``<script>`` included, is what is printed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fpdf import FPDF

from hounsfield.i18n import catalogue
from hounsfield.reading.model import SECTIONS

FONTS = Path("/usr/share/fonts/truetype/dejavu")
CATALOGUE = Path(__file__).parent / "catalogue"
Translate = Callable[..., str]  # a catalogue key and its values -> text
GREY, RED, BLACK = (90, 90, 90), (170, 20, 20), (0, 0, 0)


@dataclass(frozen=True)
class Signature:
    signer: str
    signed_at: str  # ISO 8601


@dataclass(frozen=True)
class PrintedReport:
    """Everything on the page, already chosen (which version, which language)."""

    language: str
    template_title: str
    patient: dict[str, str]  # name, id, birth_date, sex
    study: dict[str, str]  # date, accession, description, modalities
    sections: dict[str, str]
    number: int
    signature: Signature
    digest: str
    first_signature: Signature | None = None  # an amendment: who signed the report first
    amendment_reason: str | None = None
    institution: str = ""
    logo: Path | None = None


def dicom_date(value: str) -> str:
    """YYYYMMDD as YYYY-MM-DD (other values as they are)."""
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value


def local_time(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return iso


class _Document(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(format="A4")
        self._footer_text = footer_text
        self.add_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
        self.add_font("DejaVu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
        self.set_auto_page_break(auto=True, margin=20)
        self.set_margins(20, 18, 20)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font("DejaVu", "", 8)
        self.set_text_color(*GREY)
        text = self._footer_text.replace("{page}", str(self.page_no())).replace("{pages}", "{nb}")
        self.cell(0, 6, text, align="C")


def render(report: PrintedReport) -> bytes:
    words = catalogue(CATALOGUE)

    def t(key: str, **values: object) -> str:
        return words.text(report.language, key, **values)

    pdf = _Document(t("report.page", page="{page}", pages="{pages}"))
    pdf.set_title(t("report.document_title"))
    pdf.set_creator("Hounsfield")
    pdf.add_page()
    if report.logo is not None and report.logo.is_file():
        pdf.image(str(report.logo), x=pdf.w - pdf.r_margin - 30, y=12, h=14)
    pdf.set_font("DejaVu", "B", 11)
    if report.institution:
        pdf.cell(0, 6, report.institution, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "B", 16)
    pdf.cell(0, 10, t("report.title"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 10)
    pdf.set_text_color(*GREY)
    pdf.cell(0, 5, report.template_title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*BLACK)
    if report.first_signature is not None:
        pdf.ln(2)
        pdf.set_font("DejaVu", "B", 11)
        pdf.set_text_color(*RED)
        pdf.cell(
            0, 7, t("report.amendment_mark", number=report.number), new_x="LMARGIN", new_y="NEXT"
        )
        pdf.set_text_color(*BLACK)
    pdf.ln(3)
    _identification(pdf, report, t)
    for section in SECTIONS:
        text = report.sections.get(section, "").strip()
        if not text:
            continue
        pdf.ln(3)
        pdf.set_font("DejaVu", "B", 11)
        pdf.cell(0, 7, t(f"section.{section}"), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 10)
        pdf.multi_cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")
    _signatures(pdf, report, t)
    return bytes(pdf.output())


def _identification(pdf: FPDF, report: PrintedReport, t: Translate) -> None:
    rows = [
        ("report.patient", report.patient.get("name", "")),
        ("report.patient_id", report.patient.get("id", "")),
        ("report.birth_date", dicom_date(report.patient.get("birth_date", ""))),
        ("report.sex", report.patient.get("sex", "")),
        ("report.accession", report.study.get("accession", "")),
        ("report.study_date", dicom_date(report.study.get("date", ""))),
        ("report.description", report.study.get("description", "")),
        ("report.modalities", report.study.get("modalities", "")),
    ]
    pdf.set_draw_color(200, 200, 200)
    for key, value in rows:
        if not value:
            continue
        pdf.set_font("DejaVu", "B", 9)
        pdf.cell(45, 6, t(key), border="B")
        pdf.set_font("DejaVu", "", 9)
        pdf.cell(0, 6, value, border="B", new_x="LMARGIN", new_y="NEXT")


def _paragraph(pdf: FPDF, text: str, *, size: int = 10, bold: bool = False) -> None:
    pdf.set_font("DejaVu", "B" if bold else "", size)
    pdf.multi_cell(0, size / 2, text, new_x="LMARGIN", new_y="NEXT")


def _signatures(pdf: FPDF, report: PrintedReport, t: Translate) -> None:
    pdf.ln(6)
    signed = report.signature
    when = local_time(signed.signed_at)
    if report.first_signature is not None:
        first = report.first_signature
        _paragraph(
            pdf, t("report.first_signed", signer=first.signer, time=local_time(first.signed_at))
        )
        _paragraph(pdf, t("report.amended", signer=signed.signer, time=when), bold=True)
        _paragraph(pdf, t("report.amendment_reason", reason=report.amendment_reason or ""))
    else:
        _paragraph(pdf, t("report.signed", signer=signed.signer, time=when), bold=True)
    pdf.set_text_color(*GREY)
    _paragraph(pdf, t("report.digest", digest=report.digest), size=7)
    pdf.set_text_color(*BLACK)

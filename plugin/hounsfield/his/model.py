"""Patients and orders as the hospital sends them, whatever the road (FHIR, HL7 v2, a form).

Every road ends in the same few values: a ``Patient`` (demographics in DICOM's own forms,
so that what a scanner gets from the worklist is what the HIS said) and an ``Order`` for
one scheduled procedure step. The parsers of each road build these; the order book
(``orders``) stores them; the Modality Worklist (``worklist``) and reconciliation on
arrival (``reconcile``) read them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

# DICOM value representations (PS3.5 6.2): what the worklist will carry.
_PN_COMPONENT = r"[^\\\^=\x00-\x1f]*"
_PN = re.compile(rf"{_PN_COMPONENT}(\^{_PN_COMPONENT}){{0,4}}")
_DATE = re.compile(r"\d{8}")
_AE = re.compile(r"[ -\[\]-~]{1,16}")  # printable ASCII, no backslash
_CS = re.compile(r"[A-Z0-9 _]{1,16}")


class Priority(StrEnum):
    """An order's urgency; the reading worklist takes it over when the study arrives."""

    ROUTINE = "routine"
    URGENT = "urgent"
    STAT = "stat"


class Source(StrEnum):
    """The road an order came by; (source, source id) identifies it there."""

    MANUAL = "manual"
    HL7 = "hl7"
    FHIR = "fhir"


class OrderStatus(StrEnum):
    SCHEDULED = "scheduled"  # on the Modality Worklist
    COMPLETED = "completed"  # its study arrived
    CANCELLED = "cancelled"


def _person_name(value: str) -> str:
    value = value.strip()
    if not value or len(value) > 64 or not _PN.fullmatch(value):
        raise ValueError("a DICOM person name: FAMILY^GIVEN^MIDDLE^PREFIX^SUFFIX, e.g. DOE^JANE")
    return value


def _dicom_date(value: str) -> str:
    value = value.replace("-", "")
    if not _DATE.fullmatch(value):
        raise ValueError("a date, YYYY-MM-DD or YYYYMMDD")
    datetime.strptime(value, "%Y%m%d")  # a real day of a real month
    return value


def _ae_title(value: str) -> str:
    value = value.strip()
    if not _AE.fullmatch(value):
        raise ValueError("an AE title: 1 to 16 printable ASCII characters, no backslash")
    return value


def _code_string(value: str) -> str:
    value = value.strip().upper()
    if not _CS.fullmatch(value):
        raise ValueError("a DICOM code string: 1 to 16 of A-Z, 0-9, space and underscore")
    return value


PersonName = Annotated[str, AfterValidator(_person_name)]
DicomDate = Annotated[str, AfterValidator(_dicom_date)]
AeTitle = Annotated[str, AfterValidator(_ae_title)]
Modality = Annotated[str, AfterValidator(_code_string)]
# Long strings (LO, 64 characters) without the separators a DICOM value cannot hold, and
# without the spaces around them that DICOM matching ignores (a scanner's query for "A1"
# must find " A1 ").
_TEXT = r"^[^\\\x00-\x1f]+$"
Identifier = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=_TEXT)
]
Accession = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=16, pattern=_TEXT)
]
Description = Annotated[str, Field(max_length=64, pattern=r"^[^\\\x00-\x1f]*$")]


class Patient(BaseModel):
    """A patient as the HIS knows them, in DICOM's forms (PN, DA, CS)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Identifier
    name: PersonName
    birth_date: DicomDate | Literal[""] = ""
    sex: Literal["M", "F", "O", ""] = ""


class Order(BaseModel):
    """One requested procedure, scheduled on one station: the body of ``POST /api/orders``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    patient: Patient
    accession_number: Accession
    modality: Modality
    requested_procedure: Description = ""
    scheduled_station_ae: AeTitle
    scheduled_time: datetime  # ISO 8601; a time without offset is the department's own
    priority: Priority = Priority.ROUTINE


@dataclass(frozen=True)
class PlaceOrder:
    """New or changed (an HL7 ``NW``/``XO``, a FHIR ServiceRequest seen again)."""

    source: Source
    source_id: str
    order: Order


@dataclass(frozen=True)
class CancelOrder:
    source: Source
    source_id: str


@dataclass(frozen=True)
class UpdatePatient:
    """New demographics for a patient (HL7 ``ADT^A08``)."""

    patient: Patient


@dataclass(frozen=True)
class MergePatients:
    """``prior_id`` is now ``patient`` (HL7 ``ADT^A40``): recorded and reported to admins;
    stored DICOM is never rewritten behind their back."""

    prior_id: str
    patient: Patient


Command = PlaceOrder | CancelOrder | UpdatePatient | MergePatients

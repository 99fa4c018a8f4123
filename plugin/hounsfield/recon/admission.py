"""Refusing unusable projection objects as they arrive, instead of failing their job later.

A modality whose projections cannot be reconstructed (angles that do not match the
frames, impossible distances, a cut transfer...) learns it from the C-STORE status, and
nothing half-usable enters the archive. Objects the detection rules do not select pass
untouched: only the header is read for them.
"""

from __future__ import annotations

import io

import pydicom
from pydicom.errors import InvalidDicomError

from hounsfield.extensions import Refusal
from hounsfield.recon.projections import ProjectionError, read_geometry
from hounsfield.recon.rules import DetectionRules

SELECTING_TAGS = [
    "Modality",
    "NumberOfFrames",
    "DistanceSourceToDetector",
    "PositionerPrimaryAngleIncrement",
    "StudyInstanceUID",
]


def projection_refusal(dicom: bytes, rules: DetectionRules) -> Refusal | None:
    """A Refusal naming the problem when ``dicom`` is a projection object that cannot be used."""
    try:
        header = pydicom.dcmread(
            io.BytesIO(dicom), stop_before_pixels=True, specific_tags=SELECTING_TAGS
        )
    except (InvalidDicomError, ValueError, EOFError, OSError):
        return None  # not DICOM we can read: Orthanc judges it
    tags = {name: header.get(name) for name in SELECTING_TAGS if header.get(name) not in (None, "")}
    if not rules.matches(tags):
        return None
    try:
        read_geometry(pydicom.dcmread(io.BytesIO(dicom)))
    except ProjectionError as error:
        return Refusal(f"unusable projection series: {error}", tags.get("StudyInstanceUID"))
    except Exception as error:  # a header pydicom cannot make sense of
        return Refusal(f"unreadable projection object: {error}", tags.get("StudyInstanceUID"))
    return None

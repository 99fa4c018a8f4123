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

# (0018,1521) PositionerPrimaryAngleIncrement as it appears in a little- or big-endian
# file: an object without these bytes cannot be selected, and is passed without parsing
# (this keeps the check at microseconds for the CT slices that make most of the traffic).
ANGLE_INCREMENT_TAG_BYTES = (b"\x18\x00\x21\x15", b"\x00\x18\x15\x21")

DEFER_BYTES = 64 * 1024

SELECTING_TAGS = [
    "Modality",
    "NumberOfFrames",
    "DistanceSourceToDetector",
    "PositionerPrimaryAngleIncrement",
    "StudyInstanceUID",
]


def projection_refusal(dicom: bytes, rules: DetectionRules) -> Refusal | None:
    """A Refusal naming the problem when ``dicom`` is a projection object that cannot be used."""
    if not any(tag in dicom for tag in ANGLE_INCREMENT_TAG_BYTES):
        return None
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
        # Values over 64 kB (the pixels) stay unread: their lengths are all the check needs.
        dataset = pydicom.dcmread(io.BytesIO(dicom), defer_size=DEFER_BYTES)
        _check_complete(dataset, len(dicom))
        read_geometry(dataset)
    except ProjectionError as error:
        return Refusal(f"unusable projection series: {error}", tags.get("StudyInstanceUID"))
    except Exception as error:  # a header pydicom cannot make sense of
        return Refusal(f"unreadable projection object: {error}", tags.get("StudyInstanceUID"))
    return None


def _check_complete(dataset: pydicom.Dataset, size: int) -> None:
    """A deferred value must lie inside the file: a transfer cut short ends inside it."""
    element = dataset.get_item("PixelData")
    if element is not None and element.value is None and element.length != 0xFFFFFFFF:
        present = size - element.value_tell
        if present < element.length:
            raise ProjectionError(
                f"the object ends inside its pixel data ({present} of {element.length} bytes)"
            )

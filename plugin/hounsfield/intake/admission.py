"""Which arriving objects are refused: the corrupt ones, whatever road they come by.

Judged on the bytes alone in a bounded, non-recursive walk (``structure``): 0.13 ms for a
CT slice of 258 elements. What is refused is what could not be stored faithfully: an
object cut short, pixel data shorter than its header announces, sequences nested deeper
than Limits.DicomDepth. Everything else is Orthanc's to accept, and then kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hounsfield.intake.structure import summarize

UIDS = ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID")


@dataclass(frozen=True)
class Refusal:
    """Why an incoming object is not stored; told to its sender on every road."""

    reason: str
    uids: Mapping[str, str] = field(default_factory=dict)  # those the object's header gave
    limit: str | None = None  # the configuration key of the limit it hit, if any
    conflict: bool = False  # a sound object the request may not store (another study)

    @property
    def study_uid(self) -> str | None:
        return self.uids.get("StudyInstanceUID")


@dataclass(frozen=True)
class Examination:
    uids: Mapping[str, str]  # the identifying UIDs read from the object (some may lack)
    refusal: Refusal | None


def examine(dicom: bytes, *, max_depth: int) -> Examination:
    """The object's UIDs, and a Refusal naming its corruption if it is corrupt."""
    summary = summarize(dicom, max_depth=max_depth)
    uids = {name: str(summary.values[name]) for name in UIDS if summary.values.get(name)}
    if summary.problem is None:
        return Examination(uids, None)
    refusal = Refusal(f"corrupt DICOM object: {summary.problem}", uids, summary.limit)
    return Examination(uids, refusal)


def judge(dicom: bytes, *, max_depth: int) -> Refusal | None:
    """A Refusal naming the corruption in ``dicom``, or None to let Orthanc store it."""
    return examine(dicom, max_depth=max_depth).refusal

"""The words of the reading workflow: priorities, statuses and the moves between them.

A study's status is one of ``Status``; each move (``Move``) is allowed from some statuses
only. The stores check a move with one guarded SQL statement each, and explain a refusal
with ``refusal`` so that the route can say why (409) rather than just "no".
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Priority(IntEnum):
    """Stored as numbers so that "most urgent first" is an index order."""

    ROUTINE = 0
    URGENT = 1
    STAT = 2

    @classmethod
    def parse(cls, name: str) -> Priority:
        try:
            return cls[name.upper()]
        except KeyError:
            known = ", ".join(p.name.lower() for p in cls)
            raise ValueError(f"unknown priority {name!r}; one of {known}") from None

    @property
    def label(self) -> str:
        return self.name.lower()


class Status(StrEnum):
    UNREAD = "unread"
    IN_PROGRESS = "in_progress"  # claimed, nothing written yet
    DRAFT = "draft"
    FINAL = "final"  # signed
    AMENDED = "amended"  # signed again, with a reason


# The sections a report may have, in reading order (templates fill some, the SR and the PDF
# keep this order).
SECTIONS = (
    "clinical_information",
    "technique",
    "comparison",
    "findings",
    "impression",
    "recommendations",
)

OPEN = (Status.UNREAD, Status.IN_PROGRESS, Status.DRAFT)  # not signed yet
SIGNED = (Status.FINAL, Status.AMENDED)


class ReadingConflict(Exception):
    """A move the study's state does not allow (HTTP 409), with what the client needs to
    know to recover (the holder of the claim, the current version)."""

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotInWorklist(LookupError):
    """No such study in the worklist (deleted, or never stored)."""

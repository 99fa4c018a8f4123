"""The one road every upload takes into Orthanc: each object judged, then stored.

REST uploads and STOW-RS come here object by object; C-STORE and Orthanc's own roads
(modify, anonymize) are judged by the same ``judge`` from the adapter's callbacks. A
refusal is logged and written to the audit trail with the sender and the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hounsfield.audit.trail import AuditEntry, AuditTrail
from hounsfield.intake.admission import UIDS, Examination, Refusal, examine
from hounsfield.orthanc_api import OrthancApi

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sender:
    """Who sends an object: a user, a modality's AE title or one of Orthanc's roads."""

    name: str
    role: str | None = None
    ip: str | None = None


class Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal


@dataclass(frozen=True)
class Stored:
    answer: dict[str, Any]  # Orthanc's (ID, ParentSeries, Status: Success or AlreadyStored...)
    uids: Mapping[str, str]  # SOPClassUID, SOPInstanceUID, SeriesInstanceUID, StudyInstanceUID


class Intake:
    def __init__(self, orthanc: OrthancApi, audit: AuditTrail, *, max_depth: int) -> None:
        self._orthanc = orthanc
        self._audit = audit
        self._max_depth = max_depth

    def judge(self, dicom: bytes, sender: Sender, road: str) -> Refusal | None:
        """A Refusal (logged and audited) when ``dicom`` is corrupt, else None."""
        return self._examine(dicom, sender, road).refusal

    def _examine(
        self, dicom: bytes, sender: Sender, road: str, study_uid: str | None = None
    ) -> Examination:
        examination = examine(dicom, max_depth=self._max_depth)
        found = examination.uids.get("StudyInstanceUID")
        if examination.refusal is None and study_uid is not None and found != study_uid:
            reason = f"the object belongs to study {found}, not to {study_uid} named by the request"
            examination = Examination(
                examination.uids, Refusal(reason, examination.uids, conflict=True)
            )
        refusal = examination.refusal
        if refusal is not None:
            log.warning("refused an object from %s (%s): %s", sender.name, road, refusal.reason)
            self._audit.append(
                AuditEntry(
                    action="instance.store",
                    outcome="refused",
                    username=sender.name,
                    role=sender.role,
                    ip=sender.ip,
                    study_uid=refusal.study_uid,
                    detail={
                        "reason": refusal.reason,
                        "road": road,
                        "sopInstanceUid": refusal.uids.get("SOPInstanceUID"),
                    },
                )
            )
        return examination

    def store(
        self, dicom: bytes, sender: Sender, road: str, *, study_uid: str | None = None
    ) -> Stored:
        """Store a judged object: Refused if it is corrupt (or not of ``study_uid`` when the
        request names one), OrthancError if Orthanc would not store it (not DICOM...)."""
        examination = self._examine(dicom, sender, road, study_uid)
        if examination.refusal is not None:
            raise Refused(examination.refusal)
        answer = self._orthanc.store(dicom)
        uids = dict(examination.uids)
        if any(name not in uids for name in UIDS) and answer.get("ID"):
            # The walk stopped before them (Orthanc read further): Orthanc knows them.
            tags = self._orthanc.get_json(f"/instances/{answer['ID']}/simplified-tags")
            uids.update({name: tags[name] for name in UIDS if tags.get(name)})
        return Stored(answer, uids)

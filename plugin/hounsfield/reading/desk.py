"""The reading desk: every move of the workflow, checked, audited, in one transaction.

A move touches the worklist row (status, claim) and the report together; both guarded
statements run in one transaction, so a refused move leaves both as they were. Each move
is audited (``reading.*`` actions) with its outcome, refusals included. Signing and
amending queue the publication of the signed version (PDF, Encapsulated PDF, SR) in the
same transaction: a crash right after a signature still publishes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from hounsfield.api import Role, Services
from hounsfield.audit.trail import AuditEntry, AuditTrail
from hounsfield.clock import iso_seconds_ago
from hounsfield.db import Database, Row
from hounsfield.jobs.model import Job
from hounsfield.reading.model import NotInWorklist, Priority, ReadingConflict, Status
from hounsfield.reading.reports import Content, Reports, SignedVersion, StudyIdentity
from hounsfield.reading.settings import ReadingSettings
from hounsfield.reading.worklist import Worklist

PUBLISH = "reading.publish"
Submit = Callable[..., Job]
Result = TypeVar("Result")


@dataclass(frozen=True)
class Actor:
    """Who makes a move."""

    username: str
    role: Role
    ip: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class ReadingDesk:
    def __init__(
        self, database: Database, audit: AuditTrail, submit: Submit, settings: ReadingSettings
    ) -> None:
        self.db = database
        self.audit = audit
        self.submit = submit
        self.settings = settings
        self.worklist = Worklist(database)
        self.reports = Reports(database)

    @classmethod
    def of(cls, services: Services, settings: ReadingSettings) -> ReadingDesk:
        return cls(services.db, services.audit, services.submit, settings)

    def expired_before(self) -> str:
        """Claims idle since this time no longer hold."""
        return iso_seconds_ago(self.settings.claim_minutes * 60)

    def _record(
        self,
        actor: Actor,
        action: str,
        study_id: str,
        study_uid: str | None,
        outcome: str,
        **detail: object,
    ) -> None:
        self.audit.append(
            AuditEntry(
                action=action,
                outcome=outcome,
                username=actor.username,
                role=actor.role.value,
                ip=actor.ip,
                resource=f"/studies/{study_id}",
                study_uid=study_uid,
                detail={key: value for key, value in detail.items() if value is not None},
            )
        )

    def _move(
        self, actor: Actor, action: str, study_id: str, move: Callable[[], Result], **detail: object
    ) -> Result:
        """Run ``move`` in one transaction; audit its outcome either way."""
        try:
            with self.db.transaction():
                result = move()
        except ReadingConflict as conflict:
            uid = self._uid(study_id)
            self._record(
                actor, action, study_id, uid, "refused", refusal=conflict.message, **detail
            )
            raise
        self._record(actor, action, study_id, self._uid(study_id), "ok", **detail)
        return result

    def _uid(self, study_id: str) -> str | None:
        try:
            return self.worklist.get(study_id)["study_uid"]
        except NotInWorklist:
            row = self.reports.current(study_id)
            return row["study_uid"] if row else None

    # -- claims and priority -------------------------------------------------------------

    def claim(self, actor: Actor, study_id: str) -> Row:
        return self._move(
            actor,
            "reading.claim",
            study_id,
            lambda: self.worklist.claim(
                study_id, actor.username, expired_before=self.expired_before()
            ),
        )

    def release(self, actor: Actor, study_id: str) -> Row:
        return self._move(
            actor,
            "reading.release",
            study_id,
            lambda: self.worklist.release(study_id, actor.username, anyone=actor.is_admin),
        )

    def assign(self, actor: Actor, study_id: str, to: str) -> Row:
        return self._move(
            actor, "reading.assign", study_id, lambda: self.worklist.assign(study_id, to), to=to
        )

    def prioritise(self, actor: Actor, study_id: str, priority: Priority) -> Row:
        return self._move(
            actor,
            "reading.priority",
            study_id,
            lambda: self.worklist.set_priority(study_id, priority),
            priority=priority.label,
        )

    def release_expired(self) -> int:
        """Release claims idle for longer than the setting allows (audited, as the system)."""
        released = self.worklist.release_expired(self.expired_before())
        system = Actor("system", Role.ADMIN)
        for row in released:
            self._record(
                system,
                "reading.claim_expired",
                row["study_id"],
                row["study_uid"],
                "ok",
                holder=row["claimed_by"],
            )
        return len(released)

    # -- the report ------------------------------------------------------------------------

    def save(self, actor: Actor, study_id: str, content: Content, version: int) -> Row:
        def move() -> Row:
            self.worklist.write(study_id, actor.username, expired_before=self.expired_before())
            return self.reports.save_draft(
                self._identity(study_id), content, version=version, author=actor.username
            )

        return self._move(actor, "reading.save", study_id, move, version=version)

    def sign(self, actor: Actor, study_id: str, version: int) -> SignedVersion:
        def move() -> SignedVersion:
            self.worklist.signed(
                study_id, actor.username, Status.FINAL, expired_before=self.expired_before()
            )
            signed, report = self.reports.sign(
                study_id, version=version, signer=actor.username, status=Status.FINAL, reason=None
            )
            self._publish(signed, report)
            return signed

        return self._move(actor, "reading.sign", study_id, move, version=version)

    def amend(
        self, actor: Actor, study_id: str, content: Content, version: int, reason: str
    ) -> SignedVersion:
        def move() -> SignedVersion:
            self.worklist.signed(
                study_id, actor.username, Status.AMENDED, expired_before=self.expired_before()
            )
            signed, report = self.reports.sign(
                study_id,
                version=version,
                signer=actor.username,
                status=Status.AMENDED,
                reason=reason,
                content=content,
            )
            self._publish(signed, report)
            return signed

        return self._move(actor, "reading.amend", study_id, move, version=version, reason=reason)

    def _identity(self, study_id: str) -> StudyIdentity:
        row = self.worklist.get(study_id)
        return StudyIdentity(
            study_id, row["study_uid"], row["patient_name"], row["patient_id"], row["accession"]
        )

    def _publish(self, signed: SignedVersion, report: Row) -> None:
        """Queue the version's PDF and SR, with all they say (``publish.Publication``)."""
        earlier = [v for v in self.reports.versions(signed.study_id) if v.number < signed.number]
        params = {
            **signed.to_json(),
            "study": signed.study_id,
            "pdfSeriesUid": report["pdf_series_uid"],
            "pdfSopUid": signed.pdf_sop_uid,
            "srSeriesUid": report["sr_series_uid"],
            "srSopUid": signed.sr_sop_uid,
            "firstSigner": earlier[0].signer if earlier else None,
            "firstSigned": earlier[0].signed_at if earlier else None,
            "replaces": [version.sr_sop_uid for version in earlier],
        }
        self.submit(
            PUBLISH, params, dedupe_key=f"reading:publish:{signed.study_id}:{signed.number}"
        )

"""Reports: a draft saved as often as the radiologist types, signed versions kept forever.

``reading_reports`` holds one row per study: the text being written (or the last signed
one) and ``revision``, the optimistic version a save must name (a save carrying a stale one
is refused with the current one, so two editors never overwrite each other silently).
``reading_report_versions`` holds every signed version, appended and never changed: the
first signature (``final``) and each amendment with its reason. They stay when the study is
deleted from Orthanc (``orphaned``): a signed report is a legal record.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydicom.uid import generate_uid

from hounsfield.api import Migration
from hounsfield.clock import now_iso
from hounsfield.db import Database, Row, Schema
from hounsfield.reading.model import ReadingConflict, Status

REPORTS = "reading_reports"
VERSIONS = "reading_report_versions"


def _create(schema: Schema) -> None:
    schema.create_table(
        REPORTS,
        {
            "study_id": str,
            "study_uid": str,
            "patient_name": str,
            "patient_id": str,
            "accession": str,
            "status": str,  # draft, final, amended
            "revision": int,
            "template": str,
            "language": str,
            "sections": str,  # JSON: section name -> text
            "author": str,
            "updated_at": str,
            "signed_versions": int,
            "pdf_series_uid": str,  # where the signed versions go in the study
            "sr_series_uid": str,
            "orphaned_at": str,  # the study was deleted from Orthanc
        },
        pk="study_id",
        not_null={"study_uid", "status", "revision", "sections", "updated_at"},
        defaults={"signed_versions": 0},
    )
    schema.create_index(REPORTS, ["orphaned_at"], name="reports_orphaned")
    schema.create_table(
        VERSIONS,
        {
            "study_id": str,
            "number": int,
            "status": str,  # final, amended
            "template": str,
            "language": str,
            "sections": str,
            "signer": str,
            "signed_at": str,
            "sha256": str,
            "reason": str,  # why it was amended
            "pdf_sop_uid": str,
            "sr_sop_uid": str,
        },
        pk=("study_id", "number"),
        not_null={"status", "sections", "signer", "signed_at", "sha256"},
        foreign_keys=[("study_id", REPORTS, "study_id")],
    )
    schema.forbid_changes(VERSIONS, "a signed report version is never changed or removed")


MIGRATIONS = [Migration("reading.0002.reports", _create)]


@dataclass(frozen=True)
class Content:
    """What a radiologist writes."""

    template: str
    language: str
    sections: dict[str, str]

    def digest(self) -> str:
        """SHA-256 of the content in a canonical form: what a signature vouches for."""
        canonical = json.dumps(
            {"template": self.template, "language": self.language, "sections": self.sections},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class StudyIdentity:
    """Kept with the report so that it stays identifiable once the study is deleted."""

    study_id: str
    study_uid: str
    patient_name: str
    patient_id: str
    accession: str


@dataclass(frozen=True)
class SignedVersion:
    study_id: str
    number: int
    status: Status
    content: Content
    signer: str
    signed_at: str
    sha256: str
    reason: str | None
    pdf_sop_uid: str
    sr_sop_uid: str

    @classmethod
    def from_row(cls, row: Row) -> SignedVersion:
        """From a row of the versions table."""
        return cls(
            study_id=row["study_id"],
            number=row["number"],
            status=Status(row["status"]),
            content=Content(row["template"], row["language"], json.loads(row["sections"])),
            signer=row["signer"],
            signed_at=row["signed_at"],
            sha256=row["sha256"],
            reason=row["reason"],
            pdf_sop_uid=row["pdf_sop_uid"],
            sr_sop_uid=row["sr_sop_uid"],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "status": self.status.value,
            "template": self.content.template,
            "language": self.content.language,
            "sections": self.content.sections,
            "signer": self.signer,
            "signed": self.signed_at,
            "sha256": self.sha256,
            "reason": self.reason,
        }


def report_json(row: Row) -> dict[str, Any]:
    return {
        "study": row["study_id"],
        "status": row["status"],
        "version": row["revision"],
        "template": row["template"],
        "language": row["language"],
        "sections": json.loads(row["sections"]),
        "author": row["author"],
        "updated": row["updated_at"],
        "signedVersions": row["signed_versions"],
        "orphaned": row["orphaned_at"],
    }


class Reports:
    def __init__(self, database: Database) -> None:
        self.db = database

    def current(self, study_id: str) -> Row | None:
        rows = self.db.query(f"SELECT * FROM {REPORTS} WHERE study_id = ?", (study_id,))
        return rows[0] if rows else None

    def save_draft(
        self, study: StudyIdentity, content: Content, *, version: int, author: str
    ) -> Row:
        """Save the draft over ``version`` (0: the first save); a stale version, or a
        signed report, is refused with the current version."""
        now = now_iso()
        values = {
            "id": study.study_id,
            "uid": study.study_uid,
            "name": study.patient_name,
            "pid": study.patient_id,
            "acc": study.accession,
            "template": content.template,
            "language": content.language,
            "sections": json.dumps(content.sections, ensure_ascii=False),
            "author": author,
            "now": now,
            "version": version,
        }
        if version == 0:
            rows = self.db.execute(
                f"INSERT INTO {REPORTS} (study_id, study_uid, patient_name, patient_id, accession,"
                " status, revision, template, language, sections, author, updated_at)"
                " VALUES (:id, :uid, :name, :pid, :acc, 'draft', 1, :template, :language,"
                " :sections, :author, :now) ON CONFLICT (study_id) DO NOTHING RETURNING *",
                values,
            )
        else:
            rows = self.db.execute(
                f"UPDATE {REPORTS} SET revision = revision + 1, template = :template,"
                " language = :language, sections = :sections, author = :author,"
                " updated_at = :now"
                " WHERE study_id = :id AND revision = :version AND status = 'draft'"
                " RETURNING *",
                values,
            )
        if not rows:
            raise self._stale(study.study_id, version)
        return rows[0]

    def sign(
        self,
        study_id: str,
        *,
        version: int,
        signer: str,
        status: Status,
        reason: str | None,
        content: Content | None = None,
    ) -> tuple[SignedVersion, Row]:
        """Sign the draft (``final``), or a new ``content`` as an amendment (``amended``,
        with its ``reason``), over ``version``: the new signed version, appended, and the
        report's row as it is now."""
        now = now_iso()
        allowed = "('draft')" if status is Status.FINAL else "('final', 'amended')"
        with self.db.transaction():
            setting = (
                ", template = :template, language = :language, sections = :sections"
                if content
                else ""
            )
            rows = self.db.execute(
                f"UPDATE {REPORTS} SET status = :status, revision = revision + 1,"
                " signed_versions = signed_versions + 1, updated_at = :now,"
                " pdf_series_uid = COALESCE(pdf_series_uid, :pdf_series),"
                f" sr_series_uid = COALESCE(sr_series_uid, :sr_series){setting}"
                f" WHERE study_id = :id AND revision = :version AND status IN {allowed}"
                " RETURNING *",
                {
                    "status": status.value,
                    "now": now,
                    "pdf_series": generate_uid(),
                    "sr_series": generate_uid(),
                    "id": study_id,
                    "version": version,
                    **(
                        {
                            "template": content.template,
                            "language": content.language,
                            "sections": json.dumps(content.sections, ensure_ascii=False),
                        }
                        if content
                        else {}
                    ),
                },
            )
            if not rows:
                raise self._stale(study_id, version)
            row = rows[0]
            signed = Content(row["template"], row["language"], json.loads(row["sections"]))
            version_row = self.db.execute(
                f"INSERT INTO {VERSIONS} (study_id, number, status, template, language,"
                " sections, signer, signed_at, sha256, reason, pdf_sop_uid, sr_sop_uid)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                (
                    study_id,
                    row["signed_versions"],
                    status.value,
                    signed.template,
                    signed.language,
                    row["sections"],
                    signer,
                    now,
                    signed.digest(),
                    reason,
                    generate_uid(),
                    generate_uid(),
                ),
            )
        return SignedVersion.from_row(version_row[0]), row

    def versions(self, study_id: str) -> list[SignedVersion]:
        rows = self.db.query(
            f"SELECT * FROM {VERSIONS} WHERE study_id = ? ORDER BY number", (study_id,)
        )
        return [SignedVersion.from_row(row) for row in rows]

    def series_uids(self, study_id: str) -> set[str]:
        """The SeriesInstanceUIDs the study's signed versions are published into."""
        rows = self.db.query(
            f"SELECT pdf_series_uid, sr_series_uid FROM {REPORTS} WHERE study_id = ?", (study_id,)
        )
        return {uid for row in rows for uid in row if uid}

    def orphan(self, study_id: str) -> None:
        """The study left Orthanc: its report stays, marked (drafts included, for admins)."""
        self.db.execute(
            f"UPDATE {REPORTS} SET orphaned_at = ? WHERE study_id = ? AND orphaned_at IS NULL",
            (now_iso(), study_id),
        )

    def orphaned(self, *, limit: int, offset: int) -> tuple[list[Row], int]:
        total = self.db.query(f"SELECT count(*) FROM {REPORTS} WHERE orphaned_at IS NOT NULL")
        rows = self.db.query(
            f"SELECT * FROM {REPORTS} WHERE orphaned_at IS NOT NULL"
            " ORDER BY orphaned_at DESC LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return rows, total[0][0]

    def _stale(self, study_id: str, version: int) -> ReadingConflict:
        row = self.current(study_id)
        if row is None:
            return ReadingConflict(
                f"version {version} is not the report's version: it has none yet (send 0)",
                version=0,
            )
        if row["status"] != Status.DRAFT and row["revision"] == version:
            return ReadingConflict(
                "the report is signed: it can only be amended",
                version=row["revision"],
                reportStatus=row["status"],
            )
        return ReadingConflict(
            f"version {version} is stale: the report is at version {row['revision']}",
            version=row["revision"],
            reportStatus=row["status"],
        )

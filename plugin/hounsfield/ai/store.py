"""Findings and their reviews, in our tables beside the DICOM objects that carry them.

The SR and SEG in the study are the record a viewer and another PACS read; these tables
are what the reading page works with: a finding's review (confirmed, rejected, modified,
by whom and when, with its history) is ours to keep, not Orthanc's. A finding is keyed
on (series, analyzer, key): an analysis that runs again (after a crash, or on demand)
updates its findings in place and never adds a second copy; its reviews stay.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from hounsfield.ai.model import Analysis, Severity, Volume
from hounsfield.api import Migration, Schema
from hounsfield.clock import now_iso
from hounsfield.db import Database, Row

FINDINGS = "ai_findings"
REVIEWS = "ai_reviews"
ANALYSES = "ai_analyses"


def _create(schema: Schema) -> None:
    schema.create_table(
        ANALYSES,
        {
            "id": int,
            "study_id": str,  # Orthanc's identifiers
            "series_id": str,
            "analyzer": str,
            "version": str,
            "job_id": int,
            "sr_instance": str,  # the objects stored into the study (Orthanc's ids)
            "seg_instance": str,
            "measurements": str,  # JSON: [{"name", "value", "unit", "segment"}]
            "finished_at": str,
        },
        pk="id",
        not_null={"study_id", "series_id", "analyzer", "version", "finished_at"},
    )
    schema.create_index(ANALYSES, ["series_id", "analyzer"], name="ai_analysis_once", unique=True)
    schema.create_index(ANALYSES, ["study_id"], name="ai_analyses_by_study")
    schema.create_table(
        FINDINGS,
        {
            "id": int,
            "study_id": str,
            "series_id": str,
            "analyzer": str,
            "key": str,
            "category": str,
            "description": str,
            "severity": str,
            "confidence": float,
            "instance_uid": str,
            "frame": int,
            "x": float,  # patient coordinates, mm
            "y": float,
            "z": float,
            "size_mm": float,
            "volume_ml": float,
            "found_at": str,
            "review": str,  # the last decision, NULL until reviewed
            "reviewed_by": str,
            "reviewed_at": str,
            "changes": str,  # JSON: the reviewer's corrections
            "notes": str,
        },
        pk="id",
        not_null={"study_id", "series_id", "analyzer", "key", "category", "severity", "found_at"},
    )
    schema.create_index(
        FINDINGS, ["series_id", "analyzer", "key"], name="ai_finding_once", unique=True
    )
    schema.create_index(FINDINGS, ["study_id"], name="ai_findings_by_study")
    schema.create_table(
        REVIEWS,
        {
            "id": int,
            "finding_id": int,
            "decision": str,
            "notes": str,
            "changes": str,
            "reviewer": str,
            "reviewed_at": str,
        },
        pk="id",
        not_null={"finding_id", "decision", "reviewer", "reviewed_at"},
        foreign_keys=[("finding_id", FINDINGS, "id")],
    )
    schema.create_index(REVIEWS, ["finding_id"], name="ai_reviews_by_finding")
    schema.forbid_changes(REVIEWS, "a finding's review history is appended to, never rewritten")


MIGRATIONS = [Migration("ai.0001.findings", _create)]


class Decision(StrEnum):
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    MODIFIED = "modified"


class UnknownFinding(LookupError):
    pass


@dataclass(frozen=True)
class Placed:
    """Where a finding is: the slice's SOP instance and patient coordinates."""

    instance_uid: str | None
    point: tuple[float, float, float] | None


def finding_json(row: Row) -> dict[str, Any]:
    point = None if row["x"] is None else [row["x"], row["y"], row["z"]]
    return {
        "id": row["id"],
        "analyzer": row["analyzer"],
        "category": row["category"],
        "description": row["description"],
        "location": {
            "series": row["series_id"],
            "instance": row["instance_uid"],
            "frame": row["frame"],
            "patient": point,
        },
        "size_mm": row["size_mm"],
        "volume_ml": row["volume_ml"],
        "confidence": row["confidence"],
        "severity": row["severity"],
        "review": None
        if row["review"] is None
        else {
            "decision": row["review"],
            "by": row["reviewed_by"],
            "at": row["reviewed_at"],
            "notes": row["notes"],
            "changes": json.loads(row["changes"] or "{}"),
        },
    }


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


class Findings:
    def __init__(self, database: Database) -> None:
        self.db = database

    def record(
        self,
        study_id: str,
        series_id: str,
        volume: Volume,
        analysis: Analysis,
        *,
        job_id: int,
        sr_instance: str | None,
        seg_instance: str | None,
    ) -> list[Row]:
        """Write one analysis of a series, replacing what the same analyzer said of it
        before (its unreviewed findings that it no longer makes go; reviewed ones stay)."""
        now = now_iso()
        measurements = json.dumps(
            [
                {"name": m.name, "value": m.value, "unit": m.unit, "segment": m.segment}
                for m in analysis.measurements
            ]
        )
        with self.db.transaction():
            self.db.execute(
                f"INSERT INTO {ANALYSES} (study_id, series_id, analyzer, version, job_id,"
                " sr_instance, seg_instance, measurements, finished_at) VALUES (?, ?, ?, ?, ?,"
                " ?, ?, ?, ?) ON CONFLICT (series_id, analyzer) DO UPDATE SET"
                " version = excluded.version, job_id = excluded.job_id,"
                " sr_instance = excluded.sr_instance, seg_instance = excluded.seg_instance,"
                " measurements = excluded.measurements, finished_at = excluded.finished_at",
                (
                    study_id,
                    series_id,
                    analysis.analyzer,
                    analysis.version,
                    job_id,
                    sr_instance,
                    seg_instance,
                    measurements,
                    now,
                ),
            )
            keys = [finding.key for finding in analysis.findings]
            kept = f" AND key NOT IN ({', '.join('?' for _ in keys)})" if keys else ""
            self.db.execute(
                f"DELETE FROM {FINDINGS} WHERE series_id = ? AND analyzer = ?"
                f" AND review IS NULL{kept}",
                (series_id, analysis.analyzer, *keys),
            )
            for finding in analysis.findings:
                place = Placed(None, None)
                if finding.centroid is not None:
                    place = Placed(
                        volume.instance_at(finding.centroid), volume.patient_point(finding.centroid)
                    )
                x, y, z = place.point or (None, None, None)
                self.db.execute(
                    f"INSERT INTO {FINDINGS} (study_id, series_id, analyzer, key, category,"
                    " description, severity, confidence, instance_uid, frame, x, y, z, size_mm,"
                    " volume_ml, found_at) VALUES (:study, :series, :analyzer, :key, :category,"
                    " :description, :severity, :confidence, :instance, :frame, :x, :y, :z,"
                    " :size, :volume, :now) ON CONFLICT (series_id, analyzer, key) DO UPDATE"
                    " SET category = excluded.category, description = excluded.description,"
                    " severity = excluded.severity, confidence = excluded.confidence,"
                    " instance_uid = excluded.instance_uid, frame = excluded.frame,"
                    " x = excluded.x, y = excluded.y, z = excluded.z,"
                    " size_mm = excluded.size_mm, volume_ml = excluded.volume_ml",
                    {
                        "study": study_id,
                        "series": series_id,
                        "analyzer": analysis.analyzer,
                        "key": finding.key,
                        "category": finding.category,
                        "description": finding.description,
                        "severity": finding.severity.value,
                        "confidence": round(float(finding.confidence), 3),
                        "instance": place.instance_uid,
                        "frame": None if place.instance_uid is None else 1,
                        "x": _rounded(x, 2),
                        "y": _rounded(y, 2),
                        "z": _rounded(z, 2),
                        "size": _rounded(finding.size_mm, 2),
                        "volume": _rounded(finding.volume_ml, 3),
                        "now": now,
                    },
                )
            return self.of_study(study_id)

    def of_study(self, study_id: str) -> list[Row]:
        """Most severe first, then by analyzer and key (a stable order for pages)."""
        return self.db.query(
            f"SELECT * FROM {FINDINGS} WHERE study_id = ? ORDER BY CASE severity"
            " WHEN 'critical' THEN 0 WHEN 'moderate' THEN 1 WHEN 'minor' THEN 2 ELSE 3 END,"
            " analyzer, key",
            (study_id,),
        )

    def analyses(self, study_id: str) -> list[Row]:
        return self.db.query(
            f"SELECT * FROM {ANALYSES} WHERE study_id = ? ORDER BY series_id, analyzer",
            (study_id,),
        )

    def get(self, finding_id: int) -> Row:
        rows = self.db.query(f"SELECT * FROM {FINDINGS} WHERE id = ?", (finding_id,))
        if not rows:
            raise UnknownFinding(finding_id)
        return rows[0]

    def review(
        self,
        finding_id: int,
        decision: Decision,
        *,
        reviewer: str,
        notes: str,
        changes: Mapping[str, object],
    ) -> Row:
        """Record a decision: the finding's current review, and one more history entry."""
        now = now_iso()
        changed = json.dumps(dict(changes), sort_keys=True)
        with self.db.transaction():
            rows = self.db.execute(
                f"UPDATE {FINDINGS} SET review = ?, reviewed_by = ?, reviewed_at = ?,"
                " notes = ?, changes = ? WHERE id = ? RETURNING *",
                (decision.value, reviewer, now, notes, changed, finding_id),
            )
            if not rows:
                raise UnknownFinding(finding_id)
            self.db.execute(
                f"INSERT INTO {REVIEWS} (finding_id, decision, notes, changes, reviewer,"
                " reviewed_at) VALUES (?, ?, ?, ?, ?, ?)",
                (finding_id, decision.value, notes, changed, reviewer, now),
            )
        return rows[0]

    def history(self, finding_id: int) -> list[dict[str, Any]]:
        rows = self.db.query(
            f"SELECT * FROM {REVIEWS} WHERE finding_id = ? ORDER BY id", (finding_id,)
        )
        return [
            {
                "decision": row["decision"],
                "by": row["reviewer"],
                "at": row["reviewed_at"],
                "notes": row["notes"],
                "changes": json.loads(row["changes"] or "{}"),
            }
            for row in rows
        ]


@dataclass(frozen=True)
class Summary:
    """What the worklist row says of a study's findings."""

    text: str
    awaiting_review: bool  # a critical finding nobody has reviewed yet

    @classmethod
    def of(cls, rows: list[Row]) -> Summary:
        """From the study's findings as reviewed: a rejected one does not count, a
        corrected one counts with the reviewer's severity and category."""
        reviewed = [{**_effective(row), "review": row["review"]} for row in rows]
        shown = [
            row
            for row in reviewed
            if row["severity"] != Severity.NORMAL and row["review"] != Decision.REJECTED
        ]
        critical = [row for row in shown if row["severity"] == Severity.CRITICAL]
        waiting = [row for row in critical if row["review"] is None]
        if not shown:
            return cls("no findings" if rows else "", False)
        parts = [f"{len(shown)} finding{'s' if len(shown) > 1 else ''}"]
        if critical:
            parts.append(f"{len(critical)} critical")
        if waiting:
            parts.append(f"{len(waiting)} to review")
        categories = sorted({row["category"].replace("-", " ") for row in shown})
        return cls(f"{', '.join(parts)}: {', '.join(categories)}"[:200], bool(waiting))


def _effective(row: Row) -> dict[str, str]:
    """A finding's severity and category after its review's corrections."""
    changes = json.loads(row["changes"] or "{}") if row["review"] == Decision.MODIFIED else {}
    return {
        "severity": changes.get("severity", row["severity"]),
        "category": changes.get("category", row["category"]),
    }

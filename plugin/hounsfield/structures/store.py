"""What was read from each RT-STRUCT series, kept until the series or its study changes.

Reading a structure set means its contours and, for HU statistics, the referenced CT's
pixels (tens of megabytes): a worker does it once per content (``tasks``), and ``GET
/api/series/{id}/structures`` answers from this table.
"""

from __future__ import annotations

import json
from typing import Any

from hounsfield.api import Migration, Schema
from hounsfield.clock import now_iso
from hounsfield.db import Database

TABLE = "structure_sets"


def _create(schema: Schema) -> None:
    schema.create_table(
        TABLE,
        {
            "series_id": str,  # Orthanc's id of the RTSTRUCT series
            "study_id": str,
            "content": str,  # what was read: the key of the job that read it
            "result": str,  # JSON: {"structureSets": [...]}
            "extracted_at": str,
        },
        pk="series_id",
        not_null={"study_id", "content", "result", "extracted_at"},
    )


MIGRATIONS = [Migration("structures.0001.structure_sets", _create)]


class StructureStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def save(self, series_id: str, study_id: str, content: str, result: dict[str, Any]) -> None:
        """One statement: the newest reading replaces the one before."""
        self._db.execute(
            f"INSERT INTO {TABLE} (series_id, study_id, content, result, extracted_at)"
            " VALUES (:series, :study, :content, :result, :now) ON CONFLICT (series_id)"
            " DO UPDATE SET study_id = excluded.study_id, content = excluded.content,"
            " result = excluded.result, extracted_at = excluded.extracted_at",
            {
                "series": series_id,
                "study": study_id,
                "content": content,
                "result": json.dumps(result, allow_nan=False),
                "now": now_iso(),
            },
        )

    def get(self, series_id: str) -> tuple[str, dict[str, Any]] | None:
        """(the content it was read from, the answer) of the series' latest reading."""
        rows = self._db.query(
            f"SELECT study_id, content, result, extracted_at FROM {TABLE}"
            " WHERE series_id = :series",
            {"series": series_id},
        )
        if not rows:
            return None
        row = rows[0]
        answer = {
            "series": series_id,
            "study": row["study_id"],
            "extractedAt": row["extracted_at"],
            **json.loads(row["result"]),
        }
        return row["content"], answer

    def forget_study(self, study_id: str) -> None:
        self._db.execute(f"DELETE FROM {TABLE} WHERE study_id = :study", {"study": study_id})

"""Projection series the stable-study hook has looked at, and whether each can be
reconstructed: a series that cannot (8-bit detector counts, missing geometry, angles that
do not match its frames) is kept in the archive like any other, shown with the reason on
the reconstruction page and in the API, and never queued for a reconstruction.

The verdict comes from Orthanc's tags of the series' first instance, read with the same
``geometry_of`` a worker reconstructs with, so the two cannot disagree about a header.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from hounsfield.clock import now_iso
from hounsfield.db import Database, Migration, Schema
from hounsfield.orthanc_api import OrthancApi
from hounsfield.recon.projections import ProjectionError, ProjectionHeader, geometry_of
from hounsfield.recon.rules import DetectionRules

# Orthanc's JSON leaves out values longer than 256 characters (1.10 ignores
# ?ignore-length=), and PositionerPrimaryAngleIncrement, one value per frame, is longer
# for any real orbit: it is read raw, as DS text or FL floats (its VR is "FL or DS").
INCREMENTS = "/instances/{}/content/0018-1520"
DECIMAL_TEXT = re.compile(rb"[0-9eE+\-. \\]*")


def _create(schema: Schema) -> None:
    schema.create_table(
        "recon_projection_series",
        {
            "series_id": str,
            "study_id": str,
            "description": str,
            "modality": str,
            "frames": int,
            "reconstructable": int,
            "reason": str,
            "assessed_at": str,
        },
        pk="series_id",
        not_null={"study_id", "reconstructable", "assessed_at"},
    )
    schema.create_index("recon_projection_series", ["assessed_at"], name="recon_series_recent")


MIGRATIONS = [Migration("recon.0001.projection_series", _create)]


@dataclass(frozen=True)
class ProjectionSeries:
    series_id: str
    study_id: str
    description: str
    modality: str
    frames: int
    reconstructable: bool
    reason: str | None  # why it cannot be reconstructed
    assessed_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.series_id,
            "study": self.study_id,
            "description": self.description,
            "modality": self.modality,
            "frames": self.frames,
            "reconstructable": self.reconstructable,
            "reason": self.reason,
            "assessedAt": self.assessed_at,
        }


def assess(orthanc: OrthancApi, series_id: str, rules: DetectionRules) -> ProjectionSeries | None:
    """The verdict on a series the rules select; None for any other series."""
    series = orthanc.get_json(f"/series/{series_id}")
    main = series["MainDicomTags"]
    if main.get("Modality") not in rules.modalities or not series["Instances"]:
        return None  # decided without reading an instance
    instance = series["Instances"][0]
    tags = orthanc.get_json(f"/instances/{instance}/simplified-tags")
    if not rules.matches(tags):
        return None
    try:
        geometry_of(header_in_orthanc(orthanc, instance, tags))
        reason = None
    except ProjectionError as error:
        reason = str(error)
    return ProjectionSeries(
        series_id=series_id,
        study_id=series["ParentStudy"],
        description=main.get("SeriesDescription", ""),
        modality=main.get("Modality", ""),
        frames=int(float(tags.get("NumberOfFrames") or 1)),
        reconstructable=reason is None,
        reason=reason,
        assessed_at=now_iso(),
    )


def header_in_orthanc(
    orthanc: OrthancApi, instance: str, tags: dict[str, Any] | None = None
) -> ProjectionHeader:
    """The projection header of an instance in Orthanc, read without its pixels (``tags``:
    its simplified tags, when the caller has them already)."""
    if tags is None:
        tags = orthanc.get_json(f"/instances/{instance}/simplified-tags")
    if tags.get("PositionerPrimaryAngleIncrement") is None:  # too long for Orthanc's JSON
        raw = orthanc.get_bytes(INCREMENTS.format(instance))
        tags = {**tags, "PositionerPrimaryAngleIncrement": _increments(raw)}
    return ProjectionHeader.from_orthanc(tags)


def _increments(raw: bytes) -> str | list[float]:
    """A raw PositionerPrimaryAngleIncrement: DS text (no NUL byte can be in it) or FL."""
    if DECIMAL_TEXT.fullmatch(raw):
        return raw.decode("ascii").strip()
    return [float(value) for value in np.frombuffer(raw[: len(raw) // 4 * 4], dtype="<f4")]


class ProjectionSeriesStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    def record(self, verdict: ProjectionSeries) -> None:
        row = asdict(verdict)
        row["reconstructable"] = int(verdict.reconstructable)
        self.db.execute(
            "INSERT INTO recon_projection_series (series_id, study_id, description, modality,"
            " frames, reconstructable, reason, assessed_at) VALUES (:series_id, :study_id,"
            " :description, :modality, :frames, :reconstructable, :reason, :assessed_at)"
            " ON CONFLICT (series_id) DO UPDATE SET study_id = excluded.study_id,"
            " description = excluded.description, modality = excluded.modality,"
            " frames = excluded.frames, reconstructable = excluded.reconstructable,"
            " reason = excluded.reason, assessed_at = excluded.assessed_at",
            row,
        )

    def get(self, series_id: str) -> ProjectionSeries | None:
        rows = self.db.query(
            "SELECT * FROM recon_projection_series WHERE series_id = ?", (series_id,)
        )
        return _from_row(rows[0]) if rows else None

    def list(self, *, limit: int, offset: int) -> list[ProjectionSeries]:
        """Newest verdicts first."""
        rows = self.db.query(
            "SELECT * FROM recon_projection_series ORDER BY assessed_at DESC, series_id"
            " LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [_from_row(row) for row in rows]

    def count(self) -> int:
        return self.db.query("SELECT COUNT(*) AS n FROM recon_projection_series")[0]["n"]


def _from_row(row: Any) -> ProjectionSeries:
    values = dict(row)
    values["reconstructable"] = bool(values["reconstructable"])
    return ProjectionSeries(**values)

"""Findings and reviews in our tables: one row per finding however often its analysis
runs, reviews kept with their history, the worklist flagged while something critical
awaits review. On both backends."""

from __future__ import annotations

import numpy as np
import pytest

from hounsfield.ai.model import Analysis, Finding, Measurement, Severity, Volume
from hounsfield.ai.store import Decision, Findings, Summary, finding_json
from hounsfield.db import Database, IntegrityError
from hounsfield.reading.model import Priority
from hounsfield.reading.worklist import Worklist
from tests.unit.reading.conftest import summary

VOLUME = Volume(
    voxels=np.zeros((4, 8, 8), np.float32),
    spacing=(2.0, 0.5, 0.5),
    origin=(-10.0, -20.0, 100.0),
    orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    instances=("1.1", "1.2", "1.3", "1.4"),
    sop_class="1.2.840.10008.5.1.4.1.1.2",
    series_uid="1.9",
    study_uid="1.8",
    frame_of_reference="1.7",
)


def metal(key: str, volume_ml: float = 1.5) -> Finding:
    return Finding(
        key=key,
        category="metal",
        description="High-density foreign body",
        severity=Severity.MINOR,
        confidence=0.9,
        centroid=(2.0, 4.0, 6.0),
        extent=((1.0, 3.0, 5.0), (3.0, 5.0, 7.0)),
        size_mm=8.0,
        volume_ml=volume_ml,
    )


CRITICAL = Finding(
    key="region-1",
    category="intracranial-hyperdensity",
    description="Hyperdense intracranial region, needs review",
    severity=Severity.CRITICAL,
    confidence=0.7,
    centroid=(1.0, 2.0, 3.0),
    volume_ml=2.0,
)


def record(findings: Findings, analyzer: str, *found: Finding, job: int = 1) -> list:
    analysis = Analysis(analyzer, "1.0", found, (Measurement("Metal volume", 1.5, "ml"),))
    return findings.record(
        "study-a", "series-a", VOLUME, analysis, job_id=job, sr_instance="sr", seg_instance=None
    )


def test_a_finding_is_placed_in_patient_coordinates_on_its_slice(database: Database) -> None:
    [row] = record(Findings(database), "metal", metal("metal-1"))
    shown = finding_json(row)
    # Origin + 2 slices x 2 mm along z, 4 rows x 0.5 mm along y, 6 columns x 0.5 mm along x.
    assert shown["location"] == {
        "series": "series-a",
        "instance": "1.3",
        "frame": 1,
        "patient": [-7.0, -18.0, 104.0],
    }
    assert (shown["size_mm"], shown["volume_ml"], shown["severity"]) == (8.0, 1.5, "minor")
    assert shown["review"] is None


def test_running_again_updates_in_place_and_keeps_reviews(database: Database) -> None:
    findings = Findings(database)
    first = {
        row["key"]: row["id"]
        for row in record(findings, "metal", metal("metal-1"), metal("metal-2"))
    }
    findings.review(first["metal-2"], Decision.CONFIRMED, reviewer="dr-eve", notes="", changes={})
    again = record(findings, "metal", metal("metal-1", volume_ml=1.6), job=2)
    # metal-1 updated in place; metal-2 no longer found but reviewed: kept; nothing doubled.
    assert {row["key"]: row["id"] for row in again} == first
    assert {row["key"]: row["volume_ml"] for row in again} == {"metal-1": 1.6, "metal-2": 1.5}
    third = record(findings, "metal", job=3)
    assert [row["key"] for row in third] == ["metal-2"]  # the unreviewed one went
    [analysis] = findings.analyses("study-a")
    assert (analysis["job_id"], analysis["sr_instance"]) == (3, "sr")


def test_reviews_are_kept_in_order_and_never_rewritten(database: Database) -> None:
    findings = Findings(database)
    [row] = record(findings, "intracranial", CRITICAL)
    findings.review(row["id"], Decision.CONFIRMED, reviewer="dr-eve", notes="seen", changes={})
    latest = findings.review(
        row["id"], Decision.MODIFIED, reviewer="dr-max", notes="", changes={"volume_ml": 2.5}
    )
    assert finding_json(latest)["review"]["changes"] == {"volume_ml": 2.5}
    history = findings.history(row["id"])
    assert [(h["decision"], h["by"]) for h in history] == [
        ("confirmed", "dr-eve"),
        ("modified", "dr-max"),
    ]
    with pytest.raises(IntegrityError):
        database.execute("UPDATE ai_reviews SET decision = 'rejected'")


def test_most_severe_first(database: Database) -> None:
    findings = Findings(database)
    record(findings, "metal", metal("metal-1"))
    record(findings, "intracranial", CRITICAL)
    assert [row["severity"] for row in findings.of_study("study-a")] == ["critical", "minor"]


def test_a_critical_finding_flags_the_study_until_it_is_reviewed(database: Database) -> None:
    worklist, findings = Worklist(database), Findings(database)
    worklist.upsert(summary("study-a"))
    rows = record(findings, "intracranial", CRITICAL)
    waiting = Summary.of(rows)
    assert waiting.awaiting_review and "1 critical" in waiting.text
    assert worklist.annotate("study-a", waiting.text, flagged=waiting.awaiting_review)
    row = worklist.get("study-a")
    assert (row["flagged"], Priority(row["priority"])) == (1, Priority.STAT)
    findings.review(rows[0]["id"], Decision.CONFIRMED, reviewer="dr-eve", notes="", changes={})
    reviewed = Summary.of(findings.of_study("study-a"))
    assert not reviewed.awaiting_review
    worklist.annotate("study-a", reviewed.text, flagged=False)
    row = worklist.get("study-a")
    # The flag goes; the priority stays stat until a reader lowers it.
    assert (row["flagged"], Priority(row["priority"])) == (0, Priority.STAT)
    assert not worklist.annotate("no-such-study", "", flagged=True)


def test_rejected_and_normal_findings_are_not_counted(database: Database) -> None:
    findings = Findings(database)
    normal = Finding("quality", "image-quality", "Image quality within limits", Severity.NORMAL, 1)
    rows = record(findings, "metal", metal("metal-1"), normal)
    assert Summary.of(rows).text == "1 finding: metal"
    metal_row = next(row for row in rows if row["key"] == "metal-1")
    findings.review(metal_row["id"], Decision.REJECTED, reviewer="dr-eve", notes="", changes={})
    assert Summary.of(findings.of_study("study-a")).text == "no findings"


def test_a_corrected_finding_counts_as_corrected(database: Database) -> None:
    findings = Findings(database)
    [row] = record(findings, "intracranial", CRITICAL)
    findings.review(
        row["id"],
        Decision.MODIFIED,
        reviewer="dr-eve",
        notes="calcification",
        changes={"severity": "minor", "category": "calcification"},
    )
    assert Summary.of(findings.of_study("study-a")).text == "1 finding: calcification"

"""The worklist table: search against a plain Python filter of the same rows, and the
guards of each move."""

from __future__ import annotations

import random

import pytest

from hounsfield.clock import iso_seconds_ago
from hounsfield.db import Database
from hounsfield.reading.model import Priority, ReadingConflict, Status
from hounsfield.reading.worklist import Worklist, WorklistFilter, fold
from tests.unit.reading.conftest import summary

NAMES = ["Müller^Zoë", "MULLER^Anne", "Mullerova^Eva", "Ivanov^Ivan", "Иванов^Иван", "O_Brien^Pat"]
MODALITIES = [("CT",), ("CT", "SR"), ("MR",), ("CR",), ("DX", "XA")]


@pytest.fixture
def worklist(database: Database) -> Worklist:
    return Worklist(database)


@pytest.fixture
def rows(worklist: Worklist) -> list[dict]:
    """60 studies with random names, modalities, dates and priorities, as plain dicts."""
    rng = random.Random(7)
    made = []
    for number in range(60):
        study = {
            "id": f"s{number:03d}",
            "name": rng.choice(NAMES),
            "modalities": rng.choice(MODALITIES),
            "date": f"2026{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}",
            "priority": rng.choice(list(Priority)),
            "arrival": f"2026-11-24T06:{number:02d}:00.000+00:00",
            "patient_id": f"P{number % 7}",
        }
        worklist.upsert(
            summary(
                study["id"],
                patient_name=study["name"],
                modalities=study["modalities"],
                study_date=study["date"],
                patient_id=study["patient_id"],
            ),
            arrived_at=study["arrival"],
        )
        if study["priority"] is not Priority.ROUTINE:
            worklist.set_priority(study["id"], study["priority"])
        made.append(study)
    return made


def ids(worklist: Worklist, wanted: WorklistFilter, user: str = "dr-a") -> list[str]:
    found, total = worklist.search(wanted, user=user, limit=1000, offset=0)
    assert total == len(found)
    return [row["study_id"] for row in found]


def default_order(studies: list[dict]) -> list[str]:
    ordered = sorted(studies, key=lambda s: (-int(s["priority"]), s["arrival"], s["id"]))
    return [s["id"] for s in ordered]


def test_names_are_folded_for_search() -> None:
    assert fold("Müller^Zoë") == "muller zoe"
    assert fold("ИВАНОВ^Иван") == "иванов иван"
    assert fold("  Doe^^John  ") == "doe john"


def test_the_default_order_is_most_urgent_then_longest_waiting(worklist, rows) -> None:
    assert ids(worklist, WorklistFilter()) == default_order(rows)


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        ("*muller*", lambda name: "muller" in fold(name)),
        ("MULLER*", lambda name: fold(name).startswith("muller")),
        ("müller^zoë", lambda name: fold(name) == "muller zoe"),
        ("*иван*", lambda name: "иван" in fold(name)),
        ("o_brien*", lambda name: fold(name).startswith("o_brien")),
        ("o%*", lambda name: fold(name).startswith("o%")),  # % is a letter, not a wildcard
    ],
)
def test_patient_name_wildcards_ignore_case_and_accents(worklist, rows, pattern, matches) -> None:
    expected = default_order([s for s in rows if matches(s["name"])])
    assert ids(worklist, WorklistFilter(patient_name=pattern)) == expected


def test_filters_combine(worklist, rows) -> None:
    wanted = WorklistFilter(
        modality="ct",
        date_from="20260301",
        date_to="20260930",
        priorities=(Priority.URGENT, Priority.STAT),
    )
    expected = [
        s
        for s in rows
        if "CT" in s["modalities"]
        and "20260301" <= s["date"] <= "20260930"
        and s["priority"] in (Priority.URGENT, Priority.STAT)
    ]
    assert expected, "the sample must exercise the filter"
    assert ids(worklist, wanted) == default_order(expected)
    assert ids(worklist, WorklistFilter(patient_id="P3")) == default_order(
        [s for s in rows if s["patient_id"] == "P3"]
    )


def test_sorting_on_a_column_and_paging_with_the_total(worklist, rows) -> None:
    by_date = sorted(rows, key=lambda s: (s["date"], -int(s["priority"]), s["arrival"], s["id"]))
    page, total = worklist.search(
        WorklistFilter(sort="-studyDate"), user="dr-a", limit=10, offset=20
    )
    descending = sorted(
        rows, key=lambda s: (-int(s["date"]), -int(s["priority"]), s["arrival"], s["id"])
    )
    assert total == 60
    assert [row["study_id"] for row in page] == [s["id"] for s in descending[20:30]]
    ascending = ids(worklist, WorklistFilter(sort="studyDate"))
    assert ascending == [s["id"] for s in by_date]


def test_studies_no_one_holds_sort_alike_on_both_backends(worklist, rows) -> None:
    fresh = iso_seconds_ago(600)
    worklist.claim("s001", "dr-b", expired_before=fresh)
    worklist.claim("s002", "dr-a", expired_before=fresh)
    unassigned = default_order([s for s in rows if s["id"] not in ("s001", "s002")])
    ascending = ids(worklist, WorklistFilter(sort="assignedTo"))
    assert ascending == [*unassigned, "s002", "s001"]
    assert ids(worklist, WorklistFilter(sort="-assignedTo")) == ["s001", "s002", *unassigned]


def test_assigned_filters_follow_claims(worklist, rows) -> None:
    fresh = iso_seconds_ago(600)
    worklist.claim("s001", "dr-a", expired_before=fresh)
    worklist.claim("s002", "dr-b", expired_before=fresh)
    assert ids(worklist, WorklistFilter(assigned="me"), user="dr-a") == ["s001"]
    assert set(ids(worklist, WorklistFilter(assigned="anyone"))) == {"s001", "s002"}
    assert len(ids(worklist, WorklistFilter(assigned="none"))) == 58
    assert ids(worklist, WorklistFilter(assigned="dr-b")) == ["s002"]
    assert ids(worklist, WorklistFilter(statuses=(Status.IN_PROGRESS,))) == default_order(
        [s for s in rows if s["id"] in ("s001", "s002")]
    )


def test_one_holder_at_a_time_until_the_claim_goes_idle(worklist: Worklist) -> None:
    worklist.upsert(summary("s1"))
    fresh = iso_seconds_ago(600)
    held = worklist.claim("s1", "dr-a", expired_before=fresh)
    assert (held["claimed_by"], held["status"], held["first_opened_at"]) == (
        "dr-a",
        "in_progress",
        held["claimed_at"],
    )
    with pytest.raises(ReadingConflict, match="held by dr-a") as refused:
        worklist.claim("s1", "dr-b", expired_before=fresh)
    assert refused.value.details["holder"] == "dr-a"
    # Idle since before the cut-off: the claim no longer holds
    taken = worklist.claim("s1", "dr-b", expired_before=iso_seconds_ago(-60))
    assert taken["claimed_by"] == "dr-b"
    assert taken["first_opened_at"] == held["first_opened_at"]


def test_releases(worklist: Worklist) -> None:
    worklist.upsert(summary("s1"))
    worklist.claim("s1", "dr-a", expired_before=iso_seconds_ago(600))
    with pytest.raises(ReadingConflict, match="held by dr-a"):
        worklist.release("s1", "dr-b")
    released = worklist.release("s1", "boss", anyone=True)
    assert (released["claimed_by"], released["status"]) == (None, "unread")
    worklist.claim("s1", "dr-a", expired_before=iso_seconds_ago(600))
    assert worklist.release_expired(iso_seconds_ago(600)) == []
    (expired,) = worklist.release_expired(iso_seconds_ago(-60))
    assert expired["claimed_by"] == "dr-a"
    assert worklist.get("s1")["claimed_by"] is None


def test_a_row_keeps_its_reading_state_when_orthanc_says_more(worklist: Worklist) -> None:
    worklist.upsert(summary("s1", instance_count=1), arrived_at="2026-11-24T06:00:00.000+00:00")
    worklist.claim("s1", "dr-a", expired_before=iso_seconds_ago(600))
    worklist.set_priority("s1", Priority.STAT)
    worklist.upsert(summary("s1", instance_count=300, modalities=("CT", "XA"), stable=True))
    row = worklist.get("s1")
    assert (row["instance_count"], row["modalities"], row["priority"]) == (300, " CT XA ", 2)
    assert (row["claimed_by"], row["arrived_at"]) == ("dr-a", "2026-11-24T06:00:00.000+00:00")
    assert row["stable_at"] is not None

from __future__ import annotations

import pytest

from hounsfield.audit.access import AccessRecorder
from hounsfield.audit.trail import AuditEntry, AuditTrail
from hounsfield.db import Database, IntegrityError


@pytest.fixture
def trail(database: Database) -> AuditTrail:
    return AuditTrail(database)


def view(user: str, study: str) -> AuditEntry:
    return AuditEntry("study.view", "allowed", username=user, study_uid=study, ip="10.0.0.1")


def test_entries_chain_and_verify(trail: AuditTrail) -> None:
    for n in range(5):
        trail.append(AuditEntry("auth.login", "allowed", username=f"u{n}", detail={"n": n}))
    assert trail.verify()["valid"] is True
    entries, total = trail.query(
        filters={"username": "u3"}, since=None, until=None, limit=10, offset=0
    )
    assert total == 1 and entries[0]["detail"] == {"n": 3}


def test_the_log_is_append_only(trail: AuditTrail, database: Database) -> None:
    trail.append(AuditEntry("auth.login", "allowed", username="u"))
    for statement in ("UPDATE audit_log SET username = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(IntegrityError, match="append-only"):
            database.execute(statement)


def test_a_deleted_entry_breaks_the_chain(trail: AuditTrail, database: Database) -> None:
    for n in range(4):
        trail.append(AuditEntry("auth.login", "allowed", username=f"u{n}"))
    # Someone with the database's owner rights removes the guard, then an entry.
    if database.dialect.name == "sqlite":
        database.execute("DROP TRIGGER audit_log_no_delete")
    else:
        database.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_unchanged")
    database.execute("DELETE FROM audit_log WHERE id = 2")
    assert trail.verify() == {"valid": False, "entries": 1, "brokenAt": 3}


def test_views_are_written_once_per_session_and_study(trail: AuditTrail) -> None:
    recorder = AccessRecorder(trail)
    assert recorder.record(view("ann", "1.2"), session_id="s1")
    assert not recorder.record(view("ann", "1.2"), session_id="s1")
    assert recorder.record(view("ann", "1.3"), session_id="s1")
    assert recorder.record(view("ann", "1.2"), session_id="s2")
    assert trail.query(filters={}, since=None, until=None, limit=10, offset=0)[1] == 3


def test_other_repeats_are_written_once_per_window(trail: AuditTrail) -> None:
    recorder = AccessRecorder(trail, window_seconds=0.0)
    refusal = AuditEntry("access.denied", "denied", username="bob", resource="/patients")
    assert recorder.record(refusal) and recorder.record(refusal)
    patient = AccessRecorder(trail, window_seconds=60)
    assert patient.record(refusal) and not patient.record(refusal)

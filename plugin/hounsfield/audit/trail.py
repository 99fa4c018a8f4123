"""An append-only, tamper-evident log: each entry carries the hash of the previous one.

SQLite triggers refuse UPDATE and DELETE, and ``verify`` recomputes the chain, so an
entry edited or removed behind the application's back (with the file open in another
tool) shows as the first broken link.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from hounsfield.clock import now_iso
from hounsfield.db import Database, Migration, Schema

GENESIS = "0" * 64


def _create_audit_log(schema: Schema) -> None:
    schema.create_table(
        "audit_log",
        {
            "id": int,
            "at": str,
            "username": str,
            "role": str,
            "ip": str,
            "action": str,
            "resource": str,
            "study_uid": str,
            "outcome": str,
            "detail": str,
            "prev_hash": str,
            "hash": str,
        },
        pk="id",
        not_null={"at", "action", "outcome", "prev_hash", "hash"},
    )
    for column in ("username", "action", "study_uid", "at"):
        schema.create_index("audit_log", [column], name=f"audit_by_{column}")
    schema.forbid_changes("audit_log", "the audit log is append-only")


MIGRATIONS = [Migration("audit.0001.log", _create_audit_log)]


@dataclass(frozen=True)
class AuditEntry:
    action: str
    outcome: str
    username: str | None = None
    role: str | None = None
    ip: str | None = None
    resource: str | None = None
    study_uid: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _entry_hash(prev_hash: str, at: str, entry: AuditEntry) -> str:
    canonical = json.dumps({"at": at, **asdict(entry)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


class AuditTrail:
    def __init__(self, database: Database) -> None:
        self.db = database

    def append(self, entry: AuditEntry) -> int:
        # The chain's head cannot move under us: one appender at a time, on every instance.
        with self.db.transaction(exclusive="audit_log"):
            at = now_iso()
            head = self.db.query("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1")
            prev_hash = head[0][0] if head else GENESIS
            rows = self.db.execute(
                "INSERT INTO audit_log (at, username, role, ip, action, resource, study_uid,"
                " outcome, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " RETURNING id",
                (
                    at,
                    entry.username,
                    entry.role,
                    entry.ip,
                    entry.action,
                    entry.resource,
                    entry.study_uid,
                    entry.outcome,
                    json.dumps(entry.detail, sort_keys=True),
                    prev_hash,
                    _entry_hash(prev_hash, at, entry),
                ),
            )
            return rows[0][0]

    def query(
        self,
        *,
        filters: Mapping[str, str | Sequence[str]],
        since: str | None,
        until: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        """Entries newest first, and how many match; a filter given several values
        matches any of them."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in filters.items():
            values = [value] if isinstance(value, str) else list(value)
            clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
            params += values
        if since:
            clauses.append("at >= ?")
            params.append(since)
        if until:
            clauses.append("at < ?")
            params.append(until)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        total = self.db.query(f"SELECT count(*) FROM audit_log {where}", params)[0][0]
        rows = self.db.query(
            f"SELECT * FROM audit_log {where} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [_row_json(row) for row in rows], total

    def verify(self) -> dict[str, Any]:
        prev_hash, count = GENESIS, 0
        for row in self.db.query("SELECT * FROM audit_log ORDER BY id"):
            entry = AuditEntry(
                action=row["action"],
                outcome=row["outcome"],
                username=row["username"],
                role=row["role"],
                ip=row["ip"],
                resource=row["resource"],
                study_uid=row["study_uid"],
                detail=json.loads(row["detail"] or "{}"),
            )
            if row["prev_hash"] != prev_hash or row["hash"] != _entry_hash(
                prev_hash, row["at"], entry
            ):
                return {"valid": False, "entries": count, "brokenAt": row["id"]}
            prev_hash, count = row["hash"], count + 1
        return {"valid": True, "entries": count, "head": prev_hash}


def _row_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "at": row["at"],
        "username": row["username"],
        "role": row["role"],
        "ip": row["ip"],
        "action": row["action"],
        "resource": row["resource"],
        "studyInstanceUid": row["study_uid"],
        "outcome": row["outcome"],
        "detail": json.loads(row["detail"] or "{}"),
        "hash": row["hash"],
    }

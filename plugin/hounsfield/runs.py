"""Each run of Orthanc on this node, so that a start after a crash is known and counted.

A run is recorded when Orthanc starts and closed when it stops cleanly (Ctrl-C, SIGTERM,
``systemctl stop``). A run left open was ended by a crash, a ``kill -9`` or a power cut:
the next start counts it as an unclean stop, which health and the metrics show beside
the number of starts, so a supervisor restarting a crashing server does not go unseen.

Instances sharing one PostgreSQL see each other's runs: each open run carries a heartbeat,
so the others know who is alive (health lists them) and close the run of an instance that
fell silent, taking its running jobs back (``Application``'s tick).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hounsfield.clock import iso_seconds_ago, now_iso
from hounsfield.db import Database, Migration, Schema

if TYPE_CHECKING:
    from hounsfield.registry import Registry


def _create(schema: Schema) -> None:
    schema.create_table(
        "orthanc_runs",
        {"id": int, "node": str, "started_at": str, "stopped_at": str, "unclean": int},
        pk="id",
        not_null={"node", "started_at"},
    )
    schema.create_index("orthanc_runs", ["node", "id"], name="orthanc_runs_by_node")


def _add_heartbeats(schema: Schema) -> None:
    schema.add_column("orthanc_runs", "heartbeat_at", str)


MIGRATIONS = [
    Migration("runs.0001.create", _create),
    Migration("runs.0002.heartbeats", _add_heartbeats),
]


@dataclass(frozen=True)
class RunSummary:
    starts: int
    unclean_stops: int  # runs that ended without a clean stop: what a supervisor restarted
    started_at: str | None  # this run's start
    last_unclean_stop: str | None  # when the last run that ended that way had started

    def to_json(self) -> dict[str, object]:
        return {
            "starts": self.starts,
            "uncleanStops": self.unclean_stops,
            "startedAt": self.started_at,
            "lastUncleanRunStartedAt": self.last_unclean_stop,
        }


class RunLog:
    def __init__(self, database: Database, node: str) -> None:
        self.db = database
        self.node = node
        self.current: int | None = None

    def begin(self) -> int:
        """Record this run; runs of this node still open ended uncleanly (marked so)."""
        with self.db.transaction():
            self.db.execute(
                "UPDATE orthanc_runs SET unclean = 1 WHERE node = ? AND stopped_at IS NULL"
                " AND unclean IS NULL",
                (self.node,),
            )
            now = now_iso()
            self.current = self.db.execute(
                "INSERT INTO orthanc_runs (node, started_at, heartbeat_at) VALUES (?, ?, ?)"
                " RETURNING id",
                (self.node, now, now),
            )[0][0]
        return self.current

    def end(self) -> None:
        """A clean stop of this run."""
        if self.current is not None:
            self.db.execute(
                "UPDATE orthanc_runs SET stopped_at = ? WHERE id = ? AND stopped_at IS NULL",
                (now_iso(), self.current),
            )

    def heartbeat(self) -> None:
        self.db.execute(
            "UPDATE orthanc_runs SET heartbeat_at = ? WHERE id = ? AND stopped_at IS NULL",
            (now_iso(), self.current),
        )

    def close_silent(self, timeout_seconds: float) -> list[str]:
        """Close the open runs of other nodes silent for ``timeout_seconds`` (as unclean);
        returns those nodes. One statement: of instances sweeping together, one closes each.
        A run without any heartbeat is from before heartbeats (or a node renamed since, as
        node names became host:HttpPort): its jobs are taken back too."""
        rows = self.db.execute(
            "UPDATE orthanc_runs SET stopped_at = ?, unclean = 1 WHERE stopped_at IS NULL"
            " AND node <> ? AND (heartbeat_at < ? OR heartbeat_at IS NULL) RETURNING node",
            (now_iso(), self.node, iso_seconds_ago(timeout_seconds)),
        )
        return sorted({row[0] for row in rows})

    def peers(self, timeout_seconds: float) -> list[dict[str, str]]:
        """The nodes alive now (this one included): name, start, last heartbeat."""
        rows = self.db.query(
            "SELECT node, started_at, heartbeat_at FROM orthanc_runs WHERE stopped_at IS NULL"
            " AND heartbeat_at >= ? ORDER BY node",
            (iso_seconds_ago(timeout_seconds),),
        )
        return [
            {
                "node": row[0],
                "startedAt": row[1],
                "heartbeatAt": row[2],
                "self": row[0] == self.node,
            }
            for row in rows
        ]

    def summary(self) -> RunSummary:
        row = self.db.query(
            "SELECT COUNT(*) AS starts, COUNT(CASE WHEN unclean = 1 THEN 1 END) AS unclean,"
            " MAX(CASE WHEN unclean = 1 THEN started_at END) AS last_unclean,"
            " MAX(CASE WHEN id = ? THEN started_at END) AS current"
            " FROM orthanc_runs WHERE node = ?",
            (self.current, self.node),
        )[0]
        return RunSummary(row["starts"], row["unclean"], row["current"], row["last_unclean"])


def register(registry: Registry) -> None:
    """Core: the record of Orthanc's runs on this node."""
    registry.migration(*MIGRATIONS)

"""Each run of Orthanc on this node, so that a start after a crash is known and counted.

A run is recorded when Orthanc starts and closed when it stops cleanly (Ctrl-C, SIGTERM,
``systemctl stop``). A run left open was ended by a crash, a ``kill -9`` or a power cut:
the next start counts it as an unclean stop, which health and the metrics show beside
the number of starts, so a supervisor restarting a crashing server does not go unseen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hounsfield.clock import now_iso
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


MIGRATIONS = [Migration("runs.0001.create", _create)]


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
            self.current = self.db.execute(
                "INSERT INTO orthanc_runs (node, started_at) VALUES (?, ?) RETURNING id",
                (self.node, now_iso()),
            )[0][0]
        return self.current

    def end(self) -> None:
        """A clean stop of this run."""
        if self.current is not None:
            self.db.execute(
                "UPDATE orthanc_runs SET stopped_at = ? WHERE id = ? AND stopped_at IS NULL",
                (now_iso(), self.current),
            )

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

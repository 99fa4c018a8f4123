"""Studies still settling when Orthanc stopped get their stable event after a restart.

Orthanc keeps its list of unstable studies in memory: a study that received a series
less than ``StableAge`` before a crash never becomes stable after the restart, and the
extensions' handlers would never see it. So each study that receives a new
series is noted here and forgotten when Orthanc declares it stable; at start-up the
studies still noted, and not being tracked by Orthanc again, are declared stable by us.
"""

from __future__ import annotations

from hounsfield.clock import now_iso
from hounsfield.db import Database, Migration, Schema


def _create_unsettled_studies(schema: Schema) -> None:
    schema.create_table(
        "unsettled_studies", {"study_id": str, "since": str}, pk="study_id", not_null={"since"}
    )


MIGRATIONS = [Migration("events.0002.unsettled_studies", _create_unsettled_studies)]


class StabilityTracker:
    def __init__(self, database: Database) -> None:
        self.db = database

    def unsettled(self, study_id: str) -> None:
        self.db.execute(
            "INSERT INTO unsettled_studies (study_id, since) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (study_id, now_iso()),
        )

    def settled(self, study_id: str) -> None:
        self.db.execute("DELETE FROM unsettled_studies WHERE study_id = ?", (study_id,))

    def pending(self) -> list[str]:
        return [row[0] for row in self.db.query("SELECT study_id FROM unsettled_studies")]

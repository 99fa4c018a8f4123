"""The order book: patients and orders from every road in one place, and what came of them.

Each state change is one guarded statement: an order is placed once per (source, source
id), whatever the number of times its message is resent; only a scheduled order is
changed, cancelled or completed; a study completes at most one order. Patients are the
HIS's demographics (``his_patients``), which the worklist gives scanners and which
arriving studies are compared with; merges (``his_merges``) and demographic mismatches
(``his_mismatches``) are recorded for people to act on, never applied silently.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydicom.uid import generate_uid

from hounsfield.api import Migration, Schema
from hounsfield.clock import now_iso
from hounsfield.db import Database, IntegrityError, Row
from hounsfield.his.model import (
    CancelOrder,
    Command,
    MergePatients,
    Order,
    OrderStatus,
    Patient,
    PlaceOrder,
    Priority,
    Source,
    UpdatePatient,
)

PATIENTS = "his_patients"
ORDERS = "his_orders"
MERGES = "his_merges"
MISMATCHES = "his_mismatches"
# Study Instance UIDs handed to scanners: a root of our own, unique per order.
UID_PREFIX = "1.2.826.0.1.3680043.10.1529.3."


def _create(schema: Schema) -> None:
    schema.create_table(
        PATIENTS,
        {
            "patient_id": str,
            "name": str,
            "birth_date": str,
            "sex": str,
            "merged_into": str,  # set by an ADT^A40: this identifier is now that one
            "updated_at": str,
        },
        pk="patient_id",
        not_null={"name", "updated_at"},
    )
    schema.create_table(
        ORDERS,
        {
            "id": int,
            "source": str,
            "source_id": str,
            "patient_id": str,
            "accession": str,
            "modality": str,
            "procedure": str,
            "station_ae": str,
            "scheduled_at": str,  # ISO 8601, the department's local time, to the second
            "scheduled_date": str,  # YYYYMMDD, for the worklist's date matching
            "priority": str,
            "status": str,
            "study_uid": str,  # the Study Instance UID the scanner is told to use
            "study_id": str,  # Orthanc's study, once it arrived
            "created_at": str,
            "created_by": str,
            "updated_at": str,
        },
        pk="id",
        not_null={
            "source",
            "source_id",
            "patient_id",
            "accession",
            "modality",
            "station_ae",
            "scheduled_at",
            "scheduled_date",
            "priority",
            "status",
            "study_uid",
            "created_at",
            "updated_at",
        },
    )
    schema.create_index(ORDERS, ["source", "source_id"], name="his_order_once", unique=True)
    schema.create_index(ORDERS, ["accession"], name="his_order_accession", unique=True)
    schema.create_index(ORDERS, ["status", "scheduled_date"], name="his_orders_open")
    schema.create_index(ORDERS, ["patient_id"], name="his_orders_by_patient")
    schema.create_index(ORDERS, ["study_id"], name="his_orders_by_study")
    schema.create_table(
        MERGES,
        {
            "id": int,
            "prior_id": str,
            "patient_id": str,
            "message_id": str,
            "received_at": str,
            "acknowledged_by": str,
            "acknowledged_at": str,
        },
        pk="id",
        not_null={"prior_id", "patient_id", "received_at"},
    )
    schema.create_table(
        MISMATCHES,
        {
            "id": int,
            "study_id": str,
            "order_id": int,
            "patient_id": str,
            "differences": str,  # JSON: {"PatientName": {"study": ..., "his": ...}, ...}
            "status": str,  # open, correcting, corrected, dismissed
            "found_at": str,
            "decided_by": str,
            "decided_at": str,
            "orthanc_job": str,  # Orthanc's modify job while correcting
            "error": str,  # why the last correction failed
            "corrected_study_id": str,
        },
        pk="id",
        not_null={"study_id", "patient_id", "differences", "status", "found_at"},
    )
    schema.create_index(MISMATCHES, ["study_id"], name="his_mismatch_once", unique=True)
    schema.create_index(MISMATCHES, ["status"], name="his_mismatches_by_status")


MIGRATIONS = [Migration("his.0001.orders", _create)]


class OrderConflict(Exception):
    """The order cannot change as asked (its state or a duplicate accession number)."""


@dataclass(frozen=True)
class OrderRecord:
    """An order as stored, with its patient's current demographics."""

    id: int
    source: Source
    source_id: str
    order: Order
    status: OrderStatus
    study_uid: str
    study_id: str | None
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: Row) -> OrderRecord:
        patient = Patient(
            id=row["patient_id"],
            name=row["name"],
            birth_date=row["birth_date"] or "",
            sex=row["sex"] or "",
        )
        order = Order(
            patient=patient,
            accession_number=row["accession"],
            modality=row["modality"],
            requested_procedure=row["procedure"] or "",
            scheduled_station_ae=row["station_ae"],
            scheduled_time=datetime.fromisoformat(row["scheduled_at"]),
            priority=Priority(row["priority"]),
        )
        return cls(
            id=row["id"],
            source=Source(row["source"]),
            source_id=row["source_id"],
            order=order,
            status=OrderStatus(row["status"]),
            study_uid=row["study_uid"],
            study_id=row["study_id"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def to_json(self) -> dict[str, Any]:
        order = self.order
        return {
            "id": self.id,
            "source": self.source.value,
            "sourceId": self.source_id,
            "patient": {
                "id": order.patient.id,
                "name": order.patient.name,
                "birth_date": order.patient.birth_date,
                "sex": order.patient.sex,
            },
            "accession_number": order.accession_number,
            "modality": order.modality,
            "requested_procedure": order.requested_procedure,
            "scheduled_station_ae": order.scheduled_station_ae,
            "scheduled_time": order.scheduled_time.isoformat(),
            "priority": order.priority.value,
            "status": self.status.value,
            "studyInstanceUid": self.study_uid,
            "study": self.study_id,
            "created": self.created_at,
            "updated": self.updated_at,
        }


@dataclass(frozen=True)
class OrderFilter:
    """Every filter optional: the acquisition page's and the worklist's questions."""

    statuses: tuple[OrderStatus, ...] = ()
    date_from: str | None = None  # YYYYMMDD, the scheduled day
    date_to: str | None = None
    modality: str | None = None
    station_ae: str | None = None
    patient_id: str | None = None
    accession: str | None = None
    limit: int = 200


_SELECT = (
    f"SELECT o.*, p.name, p.birth_date, p.sex FROM {ORDERS} o"
    f" JOIN {PATIENTS} p ON p.patient_id = o.patient_id"
)


def _local_seconds(moment: datetime) -> str:
    """The department's wall clock: an offset is converted to local time, then dropped."""
    if moment.tzinfo is not None:
        moment = moment.astimezone().replace(tzinfo=None)
    return moment.replace(microsecond=0).isoformat()


def new_study_uid() -> str:
    return generate_uid(prefix=UID_PREFIX, entropy_srcs=[secrets.token_hex(16)])


class OrderBook:
    def __init__(self, database: Database) -> None:
        self.db = database

    # -- patients --------------------------------------------------------------------------

    def record_patient(self, patient: Patient) -> None:
        """The HIS's latest demographics for ``patient.id``."""
        self.db.execute(
            f"INSERT INTO {PATIENTS} (patient_id, name, birth_date, sex, updated_at)"
            " VALUES (:id, :name, :birth, :sex, :now) ON CONFLICT (patient_id) DO UPDATE"
            " SET name = excluded.name, birth_date = excluded.birth_date,"
            " sex = excluded.sex, updated_at = excluded.updated_at",
            {
                "id": patient.id,
                "name": patient.name,
                "birth": patient.birth_date,
                "sex": patient.sex,
                "now": now_iso(),
            },
        )

    def patient(self, patient_id: str) -> Patient | None:
        rows = self.db.query(f"SELECT * FROM {PATIENTS} WHERE patient_id = ?", (patient_id,))
        if not rows:
            return None
        row = rows[0]
        return Patient(
            id=row["patient_id"], name=row["name"], birth_date=row["birth_date"], sex=row["sex"]
        )

    # -- orders ----------------------------------------------------------------------------

    def place(self, command: PlaceOrder, *, by: str) -> OrderRecord:
        """Placed once per (source, source id); placed again, a scheduled order takes the
        new values (an HL7 change, a FHIR resource updated) and any other stays as it is.
        OrderConflict when another order holds the accession number."""
        order = command.order
        now = now_iso()
        try:
            # One transaction: a refused order leaves the patient's demographics as they were.
            with self.db.transaction():
                self.record_patient(order.patient)
                self._insert_or_change(command, now, by)
        except IntegrityError as error:
            raise OrderConflict(
                f"accession number {order.accession_number} belongs to another order"
            ) from error
        found = self._select("o.source = ? AND o.source_id = ?", command.source, command.source_id)
        return found[0]

    def _insert_or_change(self, command: PlaceOrder, now: str, by: str) -> None:
        order = command.order
        self.db.execute(
            f"INSERT INTO {ORDERS} (source, source_id, patient_id, accession, modality,"
            " procedure, station_ae, scheduled_at, scheduled_date, priority, status,"
            " study_uid, created_at, created_by, updated_at) VALUES (:source, :source_id,"
            " :patient, :accession, :modality, :procedure, :station, :at, :date,"
            " :priority, :scheduled, :uid, :now, :by, :now)"
            " ON CONFLICT (source, source_id) DO UPDATE SET"
            " patient_id = excluded.patient_id, accession = excluded.accession,"
            " modality = excluded.modality, procedure = excluded.procedure,"
            " station_ae = excluded.station_ae, scheduled_at = excluded.scheduled_at,"
            " scheduled_date = excluded.scheduled_date, priority = excluded.priority,"
            f" updated_at = excluded.updated_at WHERE {ORDERS}.status = :scheduled",
            {
                "source": command.source.value,
                "source_id": command.source_id,
                "patient": order.patient.id,
                "accession": order.accession_number,
                "modality": order.modality,
                "procedure": order.requested_procedure,
                "station": order.scheduled_station_ae,
                "at": _local_seconds(order.scheduled_time),
                "date": _local_seconds(order.scheduled_time)[:10].replace("-", ""),
                "priority": order.priority.value,
                "scheduled": OrderStatus.SCHEDULED.value,
                "uid": new_study_uid(),
                "now": now,
                "by": by,
            },
        )

    def cancel(self, order_id: int) -> OrderRecord:
        """Off the worklist; OrderConflict unless it was scheduled."""
        return self._move(order_id, OrderStatus.CANCELLED, study_id=None)

    def cancel_from(self, command: CancelOrder) -> OrderRecord | None:
        """A cancel message: None when no such order is known (nothing to do)."""
        found = self._select(
            "o.source = ? AND o.source_id = ?", command.source.value, command.source_id
        )
        return self.cancel(found[0].id) if found else None

    def complete(self, order_id: int, study_id: str) -> OrderRecord:
        """Its study arrived: off the worklist, linked to the study."""
        return self._move(order_id, OrderStatus.COMPLETED, study_id=study_id)

    def _move(self, order_id: int, status: OrderStatus, *, study_id: str | None) -> OrderRecord:
        rows = self.db.execute(
            f"UPDATE {ORDERS} SET status = ?, study_id = COALESCE(?, study_id), updated_at = ?"
            " WHERE id = ? AND status = ? RETURNING id",
            (status.value, study_id, now_iso(), order_id, OrderStatus.SCHEDULED.value),
        )
        record = self.get(order_id)
        if not rows:
            raise OrderConflict(f"order {order_id} is {record.status.value}, not scheduled")
        return record

    def get(self, order_id: int) -> OrderRecord:
        found = self._select("o.id = ?", order_id)
        if not found:
            raise KeyError(order_id)
        return found[0]

    def search(self, wanted: OrderFilter) -> list[OrderRecord]:
        conditions, params = ["1 = 1"], []
        if wanted.statuses:
            conditions.append(f"o.status IN ({', '.join('?' * len(wanted.statuses))})")
            params.extend(status.value for status in wanted.statuses)
        for column, value in (
            ("o.modality", wanted.modality),
            ("o.station_ae", wanted.station_ae),
            ("o.patient_id", wanted.patient_id),
            ("o.accession", wanted.accession),
        ):
            if value:
                conditions.append(f"{column} = ?")
                params.append(value)
        if wanted.date_from:
            conditions.append("o.scheduled_date >= ?")
            params.append(wanted.date_from)
        if wanted.date_to:
            conditions.append("o.scheduled_date <= ?")
            params.append(wanted.date_to)
        where = " AND ".join(conditions) + f" ORDER BY o.scheduled_at, o.id LIMIT {wanted.limit:d}"
        return self._select(where, *params)

    def for_study(self, study_id: str) -> OrderRecord | None:
        found = self._select("o.study_id = ?", study_id)
        return found[0] if found else None

    def relink(self, order_id: int, study_id: str) -> None:
        """The order's study is now ``study_id`` (a corrected copy of the one it had)."""
        self.db.execute(
            f"UPDATE {ORDERS} SET study_id = ?, updated_at = ? WHERE id = ?",
            (study_id, now_iso(), order_id),
        )

    def match(self, accession: str, patient_id: str, study_date: str) -> OrderRecord | None:
        """The order an arriving study belongs to: the one with its accession number
        (whatever its state: a corrected copy, a study for a cancelled order), else the
        patient's one order scheduled that day (two on one day: no guess)."""
        scheduled = OrderStatus.SCHEDULED.value
        if accession:
            found = self._select("o.accession = ?", accession)
            if found:
                return found[0]
        if patient_id and study_date:
            found = self._select(
                "o.patient_id = ? AND o.scheduled_date = ? AND o.status = ?",
                patient_id,
                study_date,
                scheduled,
            )
            if len(found) == 1:
                return found[0]
        return None

    def _select(self, where: str, *params: object) -> list[OrderRecord]:
        rows = self.db.query(f"{_SELECT} WHERE {where}", params)
        return [OrderRecord.from_row(row) for row in rows]

    # -- merges and mismatches --------------------------------------------------------------

    def merge(self, command: MergePatients, *, message_id: str) -> int:
        """Record the merge; the surviving patient's demographics are the HIS's, and the
        prior identifier's scheduled orders are moved to it (they have not been acquired:
        scanners must get the surviving identifier). Stored studies are left alone."""
        now = now_iso()
        with self.db.transaction():
            self.record_patient(command.patient)
            self.db.execute(
                f"UPDATE {PATIENTS} SET merged_into = ?, updated_at = ? WHERE patient_id = ?",
                (command.patient.id, now, command.prior_id),
            )
            self.db.execute(
                f"UPDATE {ORDERS} SET patient_id = ?, updated_at = ?"
                " WHERE patient_id = ? AND status = ?",
                (command.patient.id, now, command.prior_id, OrderStatus.SCHEDULED.value),
            )
            rows = self.db.execute(
                f"INSERT INTO {MERGES} (prior_id, patient_id, message_id, received_at)"
                " VALUES (?, ?, ?, ?) RETURNING id",
                (command.prior_id, command.patient.id, message_id, now),
            )
        return int(rows[0]["id"])

    def merges(self, *, unacknowledged: bool = False) -> list[Row]:
        where = " WHERE acknowledged_at IS NULL" if unacknowledged else ""
        return self.db.query(f"SELECT * FROM {MERGES}{where} ORDER BY id DESC LIMIT 500")

    def acknowledge_merge(self, merge_id: int, user: str) -> bool:
        return bool(
            self.db.execute(
                f"UPDATE {MERGES} SET acknowledged_by = ?, acknowledged_at = ?"
                " WHERE id = ? AND acknowledged_at IS NULL RETURNING id",
                (user, now_iso(), merge_id),
            )
        )

    def record_mismatch(
        self,
        study_id: str,
        patient_id: str,
        differences: Mapping[str, Mapping[str, str]],
        *,
        order_id: int | None,
    ) -> Row | None:
        """Once per study (a later arrival of the same study changes nothing)."""
        rows = self.db.execute(
            f"INSERT INTO {MISMATCHES} (study_id, order_id, patient_id, differences, status,"
            " found_at) VALUES (?, ?, ?, ?, 'open', ?) ON CONFLICT (study_id) DO NOTHING"
            " RETURNING *",
            (study_id, order_id, patient_id, json.dumps(differences), now_iso()),
        )
        return rows[0] if rows else None

    def mismatches(self, *, status: str | None = None) -> list[Row]:
        if status:
            return self.db.query(
                f"SELECT * FROM {MISMATCHES} WHERE status = ? ORDER BY id DESC LIMIT 500",
                (status,),
            )
        return self.db.query(f"SELECT * FROM {MISMATCHES} ORDER BY id DESC LIMIT 500")

    def mismatch(self, mismatch_id: int) -> Row:
        rows = self.db.query(f"SELECT * FROM {MISMATCHES} WHERE id = ?", (mismatch_id,))
        if not rows:
            raise KeyError(mismatch_id)
        return rows[0]

    def _decide(self, mismatch_id: int, was: str, sets: str, params: tuple[object, ...]) -> Row:
        rows = self.db.execute(
            f"UPDATE {MISMATCHES} SET {sets} WHERE id = ? AND status = ? RETURNING *",
            (*params, mismatch_id, was),
        )
        if not rows:
            current = self.mismatch(mismatch_id)
            raise OrderConflict(f"mismatch {mismatch_id} is {current['status']}, not {was}")
        return rows[0]

    def dismiss_mismatch(self, mismatch_id: int, user: str) -> Row:
        """The study is right as it is; OrderConflict unless open."""
        return self._decide(
            mismatch_id,
            "open",
            "status = 'dismissed', decided_by = ?, decided_at = ?",
            (user, now_iso()),
        )

    def start_correction(self, mismatch_id: int, user: str, orthanc_job: str) -> Row:
        """Confirmed by ``user``; Orthanc's modify job ``orthanc_job`` is applying it."""
        return self._decide(
            mismatch_id,
            "open",
            "status = 'correcting', decided_by = ?, decided_at = ?, orthanc_job = ?, error = NULL",
            (user, now_iso(), orthanc_job),
        )

    def corrections_under_way(self) -> list[Row]:
        return self.db.query(f"SELECT * FROM {MISMATCHES} WHERE status = 'correcting'")

    def corrected(self, mismatch_id: int, corrected_study_id: str) -> Row:
        return self._decide(
            mismatch_id,
            "correcting",
            "status = 'corrected', corrected_study_id = ?",
            (corrected_study_id,),
        )

    def correction_failed(self, mismatch_id: int, error: str) -> Row:
        """Open again, saying why (it can be confirmed again)."""
        return self._decide(
            mismatch_id, "correcting", "status = 'open', orthanc_job = NULL, error = ?", (error,)
        )

    # -- messages from the HIS ---------------------------------------------------------------

    def apply(self, command: Command, *, by: str, message_id: str = "") -> object:
        """One message's command, whatever its road."""
        if isinstance(command, PlaceOrder):
            return self.place(command, by=by)
        if isinstance(command, CancelOrder):
            return self.cancel_from(command)
        if isinstance(command, UpdatePatient):
            self.record_patient(command.patient)
            return command.patient
        return self.merge(command, message_id=message_id)

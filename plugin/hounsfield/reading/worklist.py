"""The reading worklist: one row per study, in our own indexed table, in step with Orthanc.

Orthanc's own search (``/tools/find``) reads its index and then each study's JSON; a
reading list filtered by status, claim and priority (our state, not Orthanc's) and sorted
by urgency needs all of that in one indexed table. A row is written from Orthanc's view of
the study (``StudySummary.read``) when its first instance arrives, again when it becomes
stable, and removed when it is deleted (``hounsfield.reading.sync``); the reading state
beside it (status, claim, priority, times) is ours.

Each move is one guarded UPDATE: it happens only from the states it is allowed in, and a
refusal is explained from the row as it is (``explain``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hounsfield.api import Migration, OrthancApi, get_if_found
from hounsfield.clock import now_iso
from hounsfield.db import Database, Row, Schema
from hounsfield.reading.model import OPEN, NotInWorklist, Priority, ReadingConflict, Status

TABLE = "reading_worklist"


def _create(schema: Schema) -> None:
    schema.create_table(
        TABLE,
        {
            "study_id": str,  # Orthanc's identifier
            "study_uid": str,
            "patient_name": str,
            "patient_key": str,  # the name folded for search (``fold``)
            "patient_id": str,
            "accession": str,
            "modalities": str,  # " CT SR " (spaces around each, for a LIKE on one)
            "description": str,
            "study_date": str,  # YYYYMMDD, as in DICOM
            "series_count": int,
            "instance_count": int,
            "priority": int,
            "status": str,
            "claimed_by": str,
            "claimed_at": str,
            "activity_at": str,
            "report_status": str,
            "ai_summary": str,
            "arrived_at": str,
            "stable_at": str,
            "first_opened_at": str,
            "signed_at": str,
        },
        pk="study_id",
        not_null={"study_uid", "priority", "status", "arrived_at"},
        defaults={"priority": 0, "status": Status.UNREAD.value, "ai_summary": ""},
    )
    schema.create_index(TABLE, ["priority", "arrived_at"], name="worklist_by_urgency")
    for column in ("patient_key", "patient_id", "accession", "study_date", "status"):
        schema.create_index(TABLE, [column], name=f"worklist_by_{column}")
    schema.create_index(TABLE, ["claimed_by", "activity_at"], name="worklist_by_claim")


def _indexes_for_the_usual_questions(schema: Schema) -> None:
    """Indexes that answer the usual questions from the index alone, measured on 100,000
    rows (bench/worklist.py): the default order (most urgent, then longest waiting) with
    mixed directions made SQLite sort every row; status or date filters with modality read
    every matching row from the table (60 ms) where a covering index counts them in 2 ms."""
    for name in ("worklist_by_urgency", "worklist_by_status", "worklist_by_study_date"):
        schema.execute(f"DROP INDEX {name}")
    keys = "priority DESC, arrived_at, study_id"
    schema.execute(f"CREATE INDEX worklist_by_urgency ON {TABLE} ({keys})")
    schema.execute(
        f"CREATE INDEX worklist_by_status ON {TABLE} (status, study_date, modalities, {keys})"
    )
    schema.execute(
        f"CREATE INDEX worklist_by_study_date ON {TABLE} (study_date, modalities, {keys})"
    )


def _add_birth_date_and_sex(schema: Schema) -> None:
    """A reading page names the patient by name, ID, birth date and sex (two identifiers
    at least, as patient-safety practice asks)."""
    schema.add_column(TABLE, "patient_birth_date", str)
    schema.add_column(TABLE, "patient_sex", str)


def _add_flag(schema: Schema) -> None:
    """A study flagged for attention (an analysis found something critical nobody has
    reviewed yet) shows so in its row until the flag is lowered."""
    schema.add_column(TABLE, "flagged", int)


def _add_order_and_replacement(schema: Schema) -> None:
    """What was ordered (an order linked on arrival names the procedure and brings its
    priority), and the corrected copy that replaces a study (a demographics correction
    keeps the original in Orthanc: it stays out of the worklist, in step with Orthanc)."""
    schema.add_column(TABLE, "requested_procedure", str)
    schema.add_column(TABLE, "replaced_by", str)


MIGRATIONS = [
    Migration("reading.0001.worklist", _create),
    Migration("reading.0003.query_indexes", _indexes_for_the_usual_questions),
    Migration("reading.0004.birth_date_and_sex", _add_birth_date_and_sex),
    Migration("reading.0005.flag", _add_flag),
    Migration("reading.0006.order_and_replacement", _add_order_and_replacement),
]


def fold(text: str) -> str:
    """A name as search compares it: accents dropped, case folded, DICOM's ``^`` between
    name parts read as a space ("Müller^Zoë" -> "muller zoe")."""
    decomposed = unicodedata.normalize("NFKD", text.replace("^", " "))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


def like_pattern(wildcard: str) -> str:
    """A ``*`` wildcard search (folded) as a LIKE pattern with ``\\`` as its escape."""
    escaped = fold(wildcard).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def modalities_of(series: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """The modalities of a study's series (Orthanc's ``/studies/{id}/series``), sorted."""
    return tuple(sorted({s["MainDicomTags"].get("Modality", "") for s in series} - {""}))


# Objects about the images rather than images: reports (DOC, SR), masks (SEG), key image
# notes (KO), presentation states (PR). A report's technique names what was imaged.
ABOUT_IMAGES = frozenset({"DOC", "SR", "SEG", "KO", "PR"})


def imaged_modalities(series: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    return tuple(m for m in modalities_of(series) if m not in ABOUT_IMAGES)


@dataclass(frozen=True)
class StudySummary:
    """What the worklist shows of a study, read from Orthanc."""

    study_id: str
    study_uid: str
    patient_name: str
    patient_id: str
    patient_birth_date: str
    patient_sex: str
    accession: str
    modalities: tuple[str, ...]
    description: str
    study_date: str
    series_count: int
    instance_count: int
    stable: bool
    last_update: str = ""  # Orthanc's LastUpdate

    @classmethod
    def from_orthanc(
        cls, study: Mapping[str, Any], series: Iterable[Mapping[str, Any]]
    ) -> StudySummary:
        """From ``/studies/{id}`` and ``/studies/{id}/series`` (expanded, as Orthanc gives it)."""
        tags, patient = study.get("MainDicomTags", {}), study.get("PatientMainDicomTags", {})
        series = list(series)
        modalities = modalities_of(series)
        return cls(
            study_id=study["ID"],
            study_uid=tags.get("StudyInstanceUID", ""),
            patient_name=patient.get("PatientName", ""),
            patient_id=patient.get("PatientID", ""),
            patient_birth_date=patient.get("PatientBirthDate", ""),
            patient_sex=patient.get("PatientSex", ""),
            accession=tags.get("AccessionNumber", ""),
            modalities=modalities,
            description=tags.get("StudyDescription", ""),
            study_date=tags.get("StudyDate", ""),
            series_count=len(series),
            instance_count=sum(len(s.get("Instances", ())) for s in series),
            stable=bool(study.get("IsStable")),
            last_update=study.get("LastUpdate", ""),
        )

    @classmethod
    def read(cls, orthanc: OrthancApi, study_id: str) -> StudySummary | None:
        """None when the study is gone (deleted between the event and now)."""
        study = get_if_found(orthanc, f"/studies/{study_id}")
        series = get_if_found(orthanc, f"/studies/{study_id}/series") if study else None
        if study is None or series is None:
            return None
        return cls.from_orthanc(study, series)


# Columns a client may sort on (API name -> SQL), and the default: most urgent first, then
# the longest waiting.
SORTABLE = {
    "priority": "priority",
    "arrival": "arrived_at",
    "patientName": "patient_key",
    "patientId": "patient_id",
    "accession": "accession",
    "modalities": "modalities",
    "description": "description",
    "studyDate": "study_date",
    "series": "series_count",
    "instances": "instance_count",
    "status": "status",
    "assignedTo": "claimed_by",
    "reportStatus": "report_status",
    "firstOpened": "first_opened_at",
    "signed": "signed_at",
}
DEFAULT_ORDER = "priority DESC, arrived_at ASC, study_id ASC"


@dataclass(frozen=True)
class WorklistFilter:
    """Every filter optional; lists mean "any of"."""

    statuses: tuple[Status, ...] = ()
    modality: str | None = None
    date_from: str | None = None  # YYYYMMDD
    date_to: str | None = None
    patient_name: str | None = None  # ``*`` wildcards, case and accents ignored
    patient_id: str | None = None
    accession: str | None = None
    assigned: str | None = None  # "me", "anyone", "none", or a user name
    priorities: tuple[Priority, ...] = ()
    sort: str | None = None  # a SORTABLE key, "-" in front for descending


def row_json(row: Row) -> dict[str, Any]:
    return {
        "id": row["study_id"],
        "studyInstanceUid": row["study_uid"],
        "patientName": row["patient_name"],
        "patientId": row["patient_id"],
        "patientBirthDate": row["patient_birth_date"],
        "patientSex": row["patient_sex"],
        "accession": row["accession"],
        "modalities": row["modalities"].split(),
        "description": row["description"],
        "studyDate": row["study_date"],
        "series": row["series_count"],
        "instances": row["instance_count"],
        "priority": Priority(row["priority"]).label,
        "status": row["status"],
        "assignedTo": row["claimed_by"],
        "reportStatus": row["report_status"],
        "aiSummary": row["ai_summary"],
        "flagged": bool(row["flagged"]),
        "requestedProcedure": row["requested_procedure"] or "",
        "arrival": row["arrived_at"],
        "stable": row["stable_at"],
        "firstOpened": row["first_opened_at"],
        "signed": row["signed_at"],
    }


class Worklist:
    def __init__(self, database: Database) -> None:
        self.db = database

    # -- in step with Orthanc ------------------------------------------------------------

    def upsert(self, summary: StudySummary, *, arrived_at: str | None = None) -> None:
        """Write what Orthanc says of the study; the reading state of an existing row stays."""
        now = now_iso()
        self.db.execute(
            f"INSERT INTO {TABLE} (study_id, study_uid, patient_name, patient_key, patient_id,"
            " patient_birth_date, patient_sex, accession, modalities, description, study_date,"
            " series_count, instance_count, arrived_at, stable_at) VALUES (:id, :uid, :name,"
            " :key, :pid, :birth, :sex, :acc, :mod, :desc, :date, :series, :instances,"
            " :arrived, :stable)"
            " ON CONFLICT (study_id) DO UPDATE SET study_uid = excluded.study_uid,"
            " patient_name = excluded.patient_name, patient_key = excluded.patient_key,"
            " patient_id = excluded.patient_id, accession = excluded.accession,"
            " patient_birth_date = excluded.patient_birth_date,"
            " patient_sex = excluded.patient_sex,"
            " modalities = excluded.modalities, description = excluded.description,"
            " study_date = excluded.study_date, series_count = excluded.series_count,"
            " instance_count = excluded.instance_count,"
            f" stable_at = COALESCE(excluded.stable_at, {TABLE}.stable_at)",
            {
                "id": summary.study_id,
                "uid": summary.study_uid,
                "name": summary.patient_name,
                "key": fold(summary.patient_name),
                "pid": summary.patient_id,
                "birth": summary.patient_birth_date,
                "sex": summary.patient_sex,
                "acc": summary.accession,
                "mod": f" {' '.join(summary.modalities)} " if summary.modalities else "",
                "desc": summary.description,
                "date": summary.study_date,
                "series": summary.series_count,
                "instances": summary.instance_count,
                "arrived": arrived_at or now,
                "stable": now if summary.stable else None,
            },
        )

    def remove(self, study_id: str) -> bool:
        return bool(
            self.db.execute(f"DELETE FROM {TABLE} WHERE study_id = ? RETURNING 1", (study_id,))
        )

    def study_ids(self) -> set[str]:
        return {row[0] for row in self.db.query(f"SELECT study_id FROM {TABLE}")}

    # -- reading ---------------------------------------------------------------------------

    def get(self, study_id: str) -> Row:
        rows = self.db.query(f"SELECT * FROM {TABLE} WHERE study_id = ?", (study_id,))
        if not rows:
            raise NotInWorklist(study_id)
        return rows[0]

    def search(
        self, wanted: WorklistFilter, *, user: str, limit: int, offset: int
    ) -> tuple[list[Row], int]:
        """One page of rows and how many match in all."""
        where, params = _conditions(wanted, user)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        total = self.db.query(f"SELECT count(*) FROM {TABLE}{clause}", params)[0][0]
        order = _order(wanted.sort)
        # The page's keys first (from an index, where one covers the filter), then only
        # its rows: sorting whole rows of every match cost 44 ms at 100,000 rows, 16 here.
        rows = self.db.query(
            f"SELECT {TABLE}.* FROM {TABLE} JOIN (SELECT study_id AS page_key FROM {TABLE}{clause}"
            f" ORDER BY {order} LIMIT :limit OFFSET :offset) AS page ON study_id = page_key"
            f" ORDER BY {order}",
            {**params, "limit": limit, "offset": offset},
        )
        return rows, total

    # -- moves -------------------------------------------------------------------------------

    def claim(self, study_id: str, user: str, *, expired_before: str) -> Row:
        """Take the study (again); a claim idle since ``expired_before`` no longer holds."""
        now = now_iso()
        rows = self.db.execute(
            f"UPDATE {TABLE} SET claimed_by = :user, claimed_at = :now, activity_at = :now,"
            " first_opened_at = COALESCE(first_opened_at, :now),"
            " status = CASE status WHEN 'unread' THEN 'in_progress' ELSE status END"
            f" WHERE study_id = :id AND status IN {_in(OPEN)}"
            " AND (claimed_by IS NULL OR claimed_by = :user OR activity_at < :expired)"
            " RETURNING *",
            {"user": user, "now": now, "id": study_id, "expired": expired_before},
        )
        if not rows:
            raise self.explain(study_id, user, expired_before, doing="claim")
        return rows[0]

    def assign(self, study_id: str, user: str) -> Row:
        """An admin gives the study to ``user``, whoever held it."""
        now = now_iso()
        rows = self.db.execute(
            f"UPDATE {TABLE} SET claimed_by = :user, claimed_at = :now, activity_at = :now,"
            " status = CASE status WHEN 'unread' THEN 'in_progress' ELSE status END"
            f" WHERE study_id = :id AND status IN {_in(OPEN)} RETURNING *",
            {"user": user, "now": now, "id": study_id},
        )
        if not rows:
            raise self.explain(study_id, user, now, doing="assign")
        return rows[0]

    def release(self, study_id: str, user: str, *, anyone: bool = False) -> Row:
        """Give the study back (``anyone``: whoever holds it, for admins)."""
        rows = self.db.execute(
            f"UPDATE {TABLE} SET claimed_by = NULL, claimed_at = NULL,"
            " status = CASE status WHEN 'in_progress' THEN 'unread' ELSE status END"
            " WHERE study_id = :id AND claimed_by IS NOT NULL"
            " AND (claimed_by = :user OR :anyone) RETURNING *",
            {"id": study_id, "user": user, "anyone": anyone},
        )
        if not rows:
            row = self.get(study_id)
            holder = row["claimed_by"]
            raise ReadingConflict(
                "the study is not claimed" if holder is None else f"the study is held by {holder}",
                holder=holder,
            )
        return rows[0]

    def release_expired(self, expired_before: str) -> list[Row]:
        """Release every claim idle since ``expired_before``; the rows as they were held
        (RETURNING would give the new values, without the holder)."""
        idle = "claimed_by IS NOT NULL AND activity_at < ?"
        with self.db.transaction():  # the rows held are locked until they are released
            held = self.db.query(
                f"SELECT study_id, study_uid, claimed_by FROM {TABLE} WHERE {idle}"
                f"{self.db.dialect.skip_locked}",
                (expired_before,),
            )
            if held:
                marks = ", ".join("?" for _ in held)
                self.db.execute(
                    f"UPDATE {TABLE} SET claimed_by = NULL, claimed_at = NULL,"
                    " status = CASE status WHEN 'in_progress' THEN 'unread' ELSE status END"
                    f" WHERE study_id IN ({marks})",
                    [row["study_id"] for row in held],
                )
        return held

    def set_priority(self, study_id: str, priority: Priority) -> Row:
        rows = self.db.execute(
            f"UPDATE {TABLE} SET priority = ? WHERE study_id = ? RETURNING *",
            (int(priority), study_id),
        )
        if not rows:
            raise NotInWorklist(study_id)
        return rows[0]

    def annotate(self, study_id: str, summary: str, *, flagged: bool) -> bool:
        """What an analysis says of the study, shown in its row. ``flagged`` (something
        critical awaits review) raises the study to stat, never lowers it: once reviewed,
        the flag goes and the priority stays what it is (a reader may lower it). False
        when the study is not in the worklist (yet, or any more)."""
        return bool(
            self.db.execute(
                f"UPDATE {TABLE} SET ai_summary = :summary, flagged = :flagged,"
                " priority = CASE WHEN :flagged = 1 AND priority < :stat THEN :stat"
                " ELSE priority END WHERE study_id = :id RETURNING 1",
                {
                    "summary": summary,
                    "flagged": int(flagged),
                    "stat": int(Priority.STAT),
                    "id": study_id,
                },
            )
        )

    def ordered(self, study_id: str, procedure: str, priority: Priority) -> bool:
        """The study's order was found: its procedure shown, its priority taken over unless
        the study is already more urgent. False when the study is not in the worklist."""
        return bool(
            self.db.execute(
                f"UPDATE {TABLE} SET requested_procedure = :procedure,"
                " priority = CASE WHEN priority < :priority THEN :priority ELSE priority END"
                " WHERE study_id = :id RETURNING 1",
                {"procedure": procedure, "priority": int(priority), "id": study_id},
            )
        )

    def replace(self, study_id: str, replacement_id: str) -> bool:
        """``replacement_id`` (a corrected copy) is read instead of ``study_id``, which
        Orthanc keeps: the original leaves the worklist and stays out of it."""
        return bool(
            self.db.execute(
                f"UPDATE {TABLE} SET replaced_by = ? WHERE study_id = ? RETURNING 1",
                (replacement_id, study_id),
            )
        )

    def write(self, study_id: str, user: str, *, expired_before: str) -> None:
        """The claim holder writes: the study is a draft, the claim stays alive."""
        rows = self.db.execute(
            f"UPDATE {TABLE} SET activity_at = :now, status = 'draft', report_status = 'draft'"
            " WHERE study_id = :id AND status IN ('in_progress', 'draft')"
            " AND claimed_by = :user AND activity_at >= :expired RETURNING 1",
            {"now": now_iso(), "id": study_id, "user": user, "expired": expired_before},
        )
        if not rows:
            raise self.explain(study_id, user, expired_before, doing="write the report of")

    def signed(self, study_id: str, user: str, status: Status, *, expired_before: str) -> None:
        """Signed (``final``) by the claim holder, or amended (no claim needed unless held
        by someone else); the claim ends either way."""
        now = now_iso()
        if status is Status.FINAL:
            guard = (
                "status IN ('in_progress', 'draft') AND claimed_by = :user"
                " AND activity_at >= :expired"
            )
        else:
            guard = (
                "status IN ('final', 'amended') AND (claimed_by IS NULL OR claimed_by = :user"
                " OR activity_at < :expired)"
            )
        rows = self.db.execute(
            f"UPDATE {TABLE} SET status = :status, report_status = :status, signed_at = :now,"
            " claimed_by = NULL, claimed_at = NULL, activity_at = :now"
            f" WHERE study_id = :id AND {guard} RETURNING 1",
            {
                "status": status.value,
                "now": now,
                "id": study_id,
                "user": user,
                "expired": expired_before,
            },
        )
        if not rows:
            doing = "sign" if status is Status.FINAL else "amend the report of"
            raise self.explain(study_id, user, expired_before, doing=doing)

    def explain(self, study_id: str, user: str, expired_before: str, *, doing: str) -> Exception:
        """Why ``user`` could not ``doing`` the study, from its row as it is now."""
        row = self.get(study_id)
        status, holder = Status(row["status"]), row["claimed_by"]
        live = holder is not None and (row["activity_at"] or "") >= expired_before
        if status in (Status.FINAL, Status.AMENDED) and doing != "amend the report of":
            return ReadingConflict(
                f"cannot {doing} the study: its report is signed (amend it instead)",
                studyStatus=status.value,
            )
        if status in OPEN and doing == "amend the report of":
            return ReadingConflict("only a signed report can be amended", status=status.value)
        if live and holder != user:
            return ReadingConflict(
                f"cannot {doing} the study: it is held by {holder}",
                holder=holder,
                studyStatus=status.value,
            )
        return ReadingConflict(
            f"cannot {doing} the study: claim it first", holder=None, studyStatus=status.value
        )


def _in(statuses: Iterable[Status]) -> str:
    return "(" + ", ".join(f"'{status.value}'" for status in statuses) + ")"


_COMPARISONS = (  # WorklistFilter field, its condition
    ("date_from", "study_date >= {}"),
    ("date_to", "study_date <= {}"),
    ("patient_id", "patient_id = {}"),
    ("accession", "accession = {}"),
)


def _conditions(wanted: WorklistFilter, user: str) -> tuple[list[str], dict[str, Any]]:
    where: list[str] = ["replaced_by IS NULL"]
    params: dict[str, Any] = {}
    if wanted.statuses:
        names = [f":status{i}" for i in range(len(wanted.statuses))]
        where.append(f"status IN ({', '.join(names)})")
        params.update({name[1:]: s.value for name, s in zip(names, wanted.statuses, strict=True)})
    if wanted.priorities:
        where.append(f"priority IN ({', '.join(str(int(p)) for p in wanted.priorities)})")
    if wanted.modality:
        where.append("modalities LIKE :modality")
        params["modality"] = f"% {wanted.modality.upper()} %"
    for name, condition in _COMPARISONS:
        value = getattr(wanted, name)
        if value:
            where.append(condition.format(f":{name}"))
            params[name] = value
    if wanted.patient_name:
        if "*" in wanted.patient_name:
            where.append("patient_key LIKE :name ESCAPE '\\'")
            params["name"] = like_pattern(wanted.patient_name)
        else:
            where.append("patient_key = :name")
            params["name"] = fold(wanted.patient_name)
    if wanted.assigned == "none":
        where.append("claimed_by IS NULL")
    elif wanted.assigned == "anyone":
        where.append("claimed_by IS NOT NULL")
    elif wanted.assigned:
        where.append("claimed_by = :assigned")
        params["assigned"] = user if wanted.assigned == "me" else wanted.assigned
    return where, params


def _order(sort: str | None) -> str:
    if not sort:
        return DEFAULT_ORDER
    descending = sort.startswith("-")
    column = SORTABLE[sort.lstrip("-")]  # checked by the route
    # Empty values (NULL) before the others ascending, after them descending, on both
    # backends (SQLite's own order; PostgreSQL's default is the reverse).
    direction = "DESC NULLS LAST" if descending else "ASC NULLS FIRST"
    return f"{column} {direction}, {DEFAULT_ORDER}"

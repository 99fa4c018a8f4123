"""``make backup`` / ``make restore``: a consistent copy of Orthanc's index, its storage files
and our database, taken while Orthanc runs, and put back into an empty data folder.

    python -m hounsfield.backup create  CONFIG BACKUP   (BACKUP: a new or empty folder)
    python -m hounsfield.backup restore BACKUP CONFIG

CONFIG is orthanc.json read as ``make run`` reads it (``ORTHANC__...`` variables applied,
paths relative to the file): it says where the index, the storage, our database are, or
where a restore puts them (``ORTHANC__STORAGE_DIRECTORY=/srv/new make restore ...``).
This is an offline command: it reads files and talks to PostgreSQL, never to Orthanc's
REST API, so it works alike whether Orthanc runs or not.

Exit status: 0 done; 1 failed while working (create: the backup folder is emptied again;
restore: the target may be partly written and must be emptied before another try; or the
restored audit chain does not verify); 2 refused, nothing written (arguments, configuration,
a non-empty backup folder or target, a damaged or incomplete backup).

Orthanc's SQLite index (measured on Orthanc 1.10.1, Debian's package, with our plugins): it
opens ``index`` with ``PRAGMA LOCKING_MODE=EXCLUSIVE`` and ``JOURNAL_MODE=WAL`` (strings in
/usr/sbin/Orthanc; no ``index-shm`` beside it) and sets no busy timeout (the binary imports
neither ``sqlite3_busy_timeout`` nor ``sqlite3_busy_handler``). From its start to its stop
it holds write locks on SQLite's lock bytes (/proc/locks), so another connection gets
"database is locked" after the whole of its busy timeout (3 s tried), every time: SQLite's
backup API cannot read a running Orthanc's index at all. The other way round, with a read
lock held by another process, Orthanc still starts and answers reads, but each C-STORE
fails in its index ("SQLite error code 5", "Store failure" in its log) while the modality
is answered Success (storescu -v) and the instance is not kept: a lost image.

So the index is copied as files, ``index`` and ``index-wal``, while nobody writes them, and
without ever locking it:
- Orthanc running (F_GETLK names the lock's holder): it is paused (SIGSTOP, until /proc
  shows each of its threads stopped), copied, resumed (SIGCONT). The pair is then what a
  ``kill -9`` at that instant leaves, which SQLite recovers by design (WAL frames count up
  to the last commit whose checksums hold). Measured during a burst of 300 C-STOREs: 23
  pauses of 4-12 ms (4 MB of WAL, 0.5 MB of index), no C-STORE failed or was lost, each
  copy passed ``PRAGMA integrity_check``; in the tests, 20-25 ms. Copying runs at ~1.4 GB/s
  from the page cache here: ~0.7 s of pause per GB of index, C-STOREs waiting meanwhile.
  A watchdog process resumes Orthanc after 10 s should this command die while it is
  paused. Pausing needs Orthanc's user (or root).
- Orthanc stopped: the files are copied as they are, and the copy kept only if still no
  one holds the lock afterwards: an Orthanc started during the copy holds it until it
  stops, so it is seen, and the copy is taken again with it paused.
The copy is checked (``PRAGMA quick_check``) and folded into one file.

Our database (SQLite, WAL, normal locking: a reader never blocks a writer) is copied with
``Connection.backup`` in one step, one read transaction, one consistent state; a stepped
backup starts over whenever another connection writes between steps, which a busy plugin
does all the time. Measured: 100 MB in 0.17-0.32 s while another process committed
continuously: its p99 commit went from 0.3-0.45 to 0.6-0.9 ms, its worst from 3-10 to
60-70 ms (two cores shared), never the copy's whole length. It is taken first: whatever
our tables say happened in Orthanc (a report's PDF stored) happened before Orthanc's
snapshot and is in it; what reached Orthanc after ours is what the plugin meets after any
outage (the reading worklist catches up).

PostgreSQL (Orthanc's index and our tables in one database): one ``pg_dump --format=custom``
run inside an exported snapshot (``pg_export_snapshot()`` in a REPEATABLE READ transaction
kept open while pg_dump runs with ``--snapshot``), and the files to copy are listed from
that very snapshot: Orthanc's tables and ours, one transaction.

Storage: the files the snapshot's index references (``AttachedFiles``: ``uuid`` is the
file ``<StorageDirectory>/uu/id/uuid``, compressed or not) are copied after the snapshot.
Orthanc writes a file before the index row naming it commits and never changes it, so each
is complete (the tests download every instance of a backup taken during a burst); files
added later are not referenced, hence not needed. Orthanc removes a file after the deletion
commits, so a referenced file can be gone by copy time: the backup is then taken again,
and a file still referenced by the new snapshot yet missing means the storage is damaged:
the backup fails (exit 1) with the count. Files already copied are kept from one round to
the next (immutable).

``manifest.json`` is written last (a folder without one is no backup): time, Orthanc's
version and index schema, backend, resource counts and our migrations from the snapshot,
files and bytes, the sha256 of each snapshot and of ``files.tsv`` (each storage file's size
and Orthanc's MD5). A restore checks all of them, and each file's size and MD5, before it
writes anything; after writing, it verifies the audit chain with the plugin's verifier.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from hounsfield.audit.trail import AuditTrail
from hounsfield.clock import now_iso
from hounsfield.config import ConfigError, DatabaseLocation, load_settings
from hounsfield.db import open_database
from hounsfield.db.cluster import BINARIES
from hounsfield.db.sqlite import BUSY_TIMEOUT_SECONDS
from hounsfield.launcher import DEFAULT_ORTHANC, effective_config

FORMAT = 1
MANIFEST = "manifest.json"
INDEX_SNAPSHOT = "orthanc-index.sqlite"
DATABASE_SNAPSHOT = "hounsfield.db"
DUMP = "database.pgdump"
FILE_LIST = "files.tsv"
STORAGE = "storage"
ROUNDS = 3  # snapshots taken when deletions race the copy of the files
FAILED, REFUSED = 1, 2
# SQLite's lock bytes (os_unix.c): readers hold a read lock on the shared range, a writer
# (Orthanc, for as long as it runs) a write lock on all of it.
SHARED_FIRST, SHARED_SIZE = 0x40000000 + 2, 510
WATCHDOG_SECONDS = 10
STOP_TIMEOUT_SECONDS = 5.0
WATCHDOG = (
    "import os, signal, sys, time; time.sleep(float(sys.argv[2]));"
    " os.kill(int(sys.argv[1]), signal.SIGCONT)"
)
LEVELS = ("patients", "studies", "series", "instances")


class Refused(Exception):
    """Nothing was written: the request cannot be carried out as given (exit 2)."""


class Failed(Exception):
    """Something went wrong while working (exit 1)."""


@dataclass(frozen=True)
class IndexDialect:
    """Orthanc's index tables as each backend has them (identifiers: any case in both)."""

    attachments: str
    # patients, studies, series, instances: Orthanc's own enumeration in SQLite, the
    # plugin SDK's (from 0) in the PostgreSQL plugin's tables (both read here).
    resource_types: tuple[int, int, int, int]


INDEX_DIALECTS = {
    "sqlite": IndexDialect(
        "SELECT uuid, compressedsize, compressedmd5 FROM attachedfiles", (1, 2, 3, 4)
    ),
    "postgresql": IndexDialect(
        "SELECT uuid, compressedsize, compressedhash FROM attachedfiles", (0, 1, 2, 3)
    ),
}


@dataclass(frozen=True)
class Layout:
    """Where one installation keeps its state, read from its configuration."""

    backend: str  # of Orthanc's index and our tables alike
    storage: Path
    index_directory: Path
    data_directory: Path
    database: DatabaseLocation

    @property
    def index(self) -> Path:
        return self.index_directory / "index"

    @property
    def targets(self) -> list[Path]:
        """The folders a restore fills: each must be empty or absent."""
        if self.backend == "postgresql":
            return [self.storage]
        return list(dict.fromkeys([self.storage, self.index_directory, self.data_directory]))


@dataclass(frozen=True)
class Attachment:
    uuid: str
    size: int
    md5: str  # of the file as stored; "" where Orthanc kept none (StoreMD5ForAttachments)

    @property
    def path(self) -> Path:
        return Path(self.uuid[0:2], self.uuid[2:4], self.uuid)


@dataclass
class Snapshot:
    """One consistent state: its files in the backup folder, and what it references."""

    files: list[str]
    attachments: dict[str, Attachment]
    resources: dict[str, int]
    migrations: list[str]
    index_schema: str


@dataclass
class Pause:
    pid: int
    command: str
    seconds: float = 0.0


class _Flock(ctypes.Structure):
    """``struct flock`` of Linux (64-bit ``off_t``), for F_GETLK."""

    _fields_ = (
        ("l_type", ctypes.c_short),
        ("l_whence", ctypes.c_short),
        ("l_start", ctypes.c_int64),
        ("l_len", ctypes.c_int64),
        ("l_pid", ctypes.c_int),
    )


def say(message: str) -> None:
    print(f"hounsfield backup: {message}", flush=True)


def read_layout(config_path: Path) -> Layout:
    """The installation ``config_path`` describes, as ``make run`` would start it. Only
    layouts one snapshot can cover: Orthanc's index and our tables on the same backend
    (PostgreSQL: in the same database), storage files in a folder."""
    try:
        config = effective_config(config_path, dict(os.environ))
        settings = load_settings(config)
    except (OSError, ValueError, ConfigError) as error:
        raise Refused(f"cannot read the configuration {config_path}: {error}") from error
    postgresql = config.get("PostgreSQL", {})
    backend = "postgresql" if postgresql.get("EnableIndex", False) else "sqlite"
    if postgresql.get("EnableStorage", False):
        raise Refused("PostgreSQL.EnableStorage: only a storage area of files is supported")
    location = settings.database
    if location.backend != backend or settings.plugin.database.url:
        raise Refused(
            f"Orthanc's index is in {backend} and our tables in {location.backend}"
            f"{' (Hounsfield.Database.Url)' if settings.plugin.database.url else ''}: one"
            " snapshot covers both only in one place (leave Hounsfield.Database unset)"
        )
    storage = settings.storage_directory
    return Layout(
        backend=backend,
        storage=storage,
        index_directory=Path(config.get("IndexDirectory", storage)).resolve(),
        data_directory=settings.data_directory,
        database=location,
    )


# -- create -------------------------------------------------------------------------------


def create(layout: Layout, folder: Path) -> dict[str, Any]:
    """Back ``layout`` up into ``folder`` (new or empty; as it was again if this fails)."""
    require_empty([folder])
    if layout.backend == "sqlite":
        for path in (layout.index, layout.database.path):
            if not path.is_file():
                raise Refused(f"no {path}: has Orthanc run with this configuration?")
    existed = folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return _create(layout, folder)
    except BaseException:
        for entry in folder.iterdir():  # it was empty: all of it is this attempt's
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        if not existed:
            folder.rmdir()
        raise


def _create(layout: Layout, folder: Path) -> dict[str, Any]:
    started = now_iso()
    copied: set[str] = set()
    missing: set[str] = set()
    seen: set[str] = set()  # referenced by any snapshot taken
    for _ in range(ROUNDS):
        snapshot = _snapshot(layout, folder)
        seen |= snapshot.attachments.keys()
        lost = missing & snapshot.attachments.keys()
        if lost:
            raise Failed(
                f"{len(lost)} file(s) referenced by Orthanc's index are missing from "
                f"{layout.storage}, and a second snapshot still references them: the storage "
                f"is damaged (e.g. {', '.join(sorted(lost)[:3])})"
            )
        missing = _copy_storage(snapshot.attachments, layout.storage, folder / STORAGE, copied)
        if not missing:
            break
        say(f"{len(missing)} file(s) gone since the snapshot: a new one tells whether deleted")
    else:
        raise Failed(f"files kept being deleted during {ROUNDS} attempts: try again")
    for uuid in copied - snapshot.attachments.keys():  # deleted in a later snapshot
        (folder / STORAGE / Attachment(uuid, 0, "").path).unlink()
    attachments = sorted(snapshot.attachments.values(), key=lambda item: item.uuid)
    deleted = len(seen - snapshot.attachments.keys())
    (folder / FILE_LIST).write_text(
        "".join(f"{item.uuid}\t{item.size}\t{item.md5}\n" for item in attachments)
    )
    manifest = {
        "format": FORMAT,
        "started": started,
        "finished": now_iso(),
        "orthanc": {"version": orthanc_version(), "indexSchema": snapshot.index_schema},
        "backend": layout.backend,
        "resources": snapshot.resources,
        "migrations": snapshot.migrations,
        "storage": {
            "files": len(attachments),
            "bytes": sum(item.size for item in attachments),
            "deletedDuringBackup": deleted,  # files of a snapshot, not of the last
        },
        "sha256": {name: sha256(folder / name) for name in [*snapshot.files, FILE_LIST]},
    }
    scratch = folder / f"{MANIFEST}.partial"
    scratch.write_text(json.dumps(manifest, indent=2) + "\n")
    scratch.replace(folder / MANIFEST)
    say(
        f"done: {_counts(manifest['resources'])}; {len(attachments)} files,"
        f" {_megabytes(manifest['storage']['bytes'])}"
        f"{f' ({deleted} deleted by Orthanc during the backup left out)' if deleted else ''};"
        f" in {folder}"
    )
    return manifest


def _snapshot(layout: Layout, folder: Path) -> Snapshot:
    if layout.backend == "postgresql":
        return _snapshot_postgresql(layout, folder)
    return _snapshot_sqlite(layout, folder)


def _snapshot_sqlite(layout: Layout, folder: Path) -> Snapshot:
    database = folder / DATABASE_SNAPSHOT
    _backup_database(layout.database.path, database)  # ours first (module docstring)
    index = folder / INDEX_SNAPSHOT
    _copy_index(layout.index, index)
    with _read_only(index) as conn:
        attachments, resources, schema = _read_index(conn, INDEX_DIALECTS["sqlite"])
    with _read_only(database) as conn:
        migrations = _migrations(conn, "_migrations")
    return Snapshot([INDEX_SNAPSHOT, DATABASE_SNAPSHOT], attachments, resources, migrations, schema)


def _backup_database(source: Path, target: Path) -> None:
    """Our SQLite database, in one step of SQLite's online backup (module docstring)."""
    started = time.monotonic()
    with (
        closing(
            sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS)
        ) as live,
        closing(sqlite3.connect(target, isolation_level=None)) as copy,
    ):
        live.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    say(
        f"our database: {_megabytes(target.stat().st_size)}"
        f" in {(time.monotonic() - started) * 1000:.0f} ms"
    )


def _copy_index(live: Path, target: Path) -> None:
    """Orthanc's index copied while nobody writes it (module docstring), checked, folded
    into one file at ``target``."""
    wal = live.with_name(live.name + "-wal")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".index-") as scratch:
        copy = Path(scratch) / "index"
        for _ in range(3):
            copy.with_name("index-wal").unlink(missing_ok=True)
            writer = _writer(live)
            try:
                with _paused(writer) if writer else nullcontext() as pause:
                    shutil.copyfile(live, copy)
                    if wal.exists():
                        shutil.copyfile(wal, copy.with_name("index-wal"))
            except ProcessLookupError:
                continue  # the writer ended before it was paused: look again
            if writer or not _writer(live):
                break
            # An Orthanc started during the copy (it holds the lock from start to stop).
        else:
            raise Failed("Orthanc kept starting or stopping during the copy: try again")
        if pause is None:
            say("Orthanc's index: Orthanc is not running")
        else:
            say(
                f"Orthanc's index: {pause.command} (pid {pause.pid}) paused for"
                f" {pause.seconds * 1000:.0f} ms while it was copied"
            )
        with closing(sqlite3.connect(copy, isolation_level=None)) as conn:
            verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise Failed(f"the copy of Orthanc's index fails SQLite's quick_check: {verdict}")
            conn.execute("PRAGMA journal_mode=DELETE")  # the WAL folded in
        copy.replace(target)


def _writer(index: Path) -> int:
    """The pid of the process with a write lock on ``index`` (Orthanc, from its start to its
    stop), or 0: asked with F_GETLK, without taking a lock (module docstring)."""
    descriptor = os.open(index, os.O_RDONLY)
    try:
        query = _Flock(fcntl.F_RDLCK, os.SEEK_SET, SHARED_FIRST, SHARED_SIZE, 0)
        answer = _Flock.from_buffer_copy(fcntl.fcntl(descriptor, fcntl.F_GETLK, bytes(query)))
    finally:
        os.close(descriptor)
    if answer.l_type == fcntl.F_UNLCK:
        return 0
    if answer.l_pid <= 0:
        raise Refused(
            f"a process this one cannot see (another container?) holds {index}: run the backup"
            " where Orthanc runs, or stop Orthanc"
        )
    return answer.l_pid


@contextmanager
def _paused(pid: int) -> Iterator[Pause]:
    """``pid`` stopped (each of its threads) until the block ends, then resumed; a watchdog
    resumes it should this process die in between."""
    try:
        os.kill(pid, 0)
    except PermissionError as error:
        raise Refused(
            f"process {pid} holds Orthanc's index; pausing it for the copy needs its user or"
            " root (or stop Orthanc for the backup)"
        ) from error
    pause = Pause(pid, _command(pid))
    watchdog = subprocess.Popen(
        [sys.executable, "-c", WATCHDOG, str(pid), str(WATCHDOG_SECONDS)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    started = time.monotonic()
    try:
        os.kill(pid, signal.SIGSTOP)
        _wait_stopped(pid)
        yield pause
    finally:
        os.kill(pid, signal.SIGCONT)
        pause.seconds = time.monotonic() - started
        watchdog.kill()
        watchdog.wait()


def _wait_stopped(pid: int) -> None:
    """SIGSTOP is delivered thread by thread, after kill() returns: wait until /proc shows
    each thread stopped (a write in progress finishes first)."""
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while not all(_state(task) in "TtZX" for task in Path(f"/proc/{pid}/task").iterdir()):
        if time.monotonic() > deadline:
            raise Failed(f"process {pid} did not stop within {STOP_TIMEOUT_SECONDS:g} s")
        time.sleep(0.001)


def _state(task: Path) -> str:
    try:
        return (task / "stat").read_text().rsplit(") ", 1)[1][0]
    except FileNotFoundError:
        return "X"  # the thread has ended


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def _snapshot_postgresql(layout: Layout, folder: Path) -> Snapshot:
    """One pg_dump in an exported snapshot; the files listed from that snapshot."""
    conninfo = layout.database.conninfo
    dialect = INDEX_DIALECTS["postgresql"]
    started = time.monotonic()
    with psycopg.connect(conninfo) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            exported = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            _pg_run(
                "pg_dump",
                conninfo,
                "--format=custom",
                f"--snapshot={exported}",
                f"--file={folder / DUMP}",
            )
            attachments, resources, schema = _read_index(conn, dialect)
            migrations = _migrations(conn, f"{layout.database.schema}._migrations")
    say(
        f"pg_dump: {_megabytes((folder / DUMP).stat().st_size)}"
        f" in {(time.monotonic() - started) * 1000:.0f} ms"
    )
    return Snapshot([DUMP], attachments, resources, migrations, schema)


def _read_index(
    conn: sqlite3.Connection | psycopg.Connection[Any], dialect: IndexDialect
) -> tuple[dict[str, Attachment], dict[str, int], str]:
    """Attachments, resource counts and schema version of an Orthanc index."""
    attachments = {
        uuid: Attachment(uuid, int(size), md5 or "")
        for uuid, size, md5 in conn.execute(dialect.attachments).fetchall()
    }
    counts = dict(
        conn.execute(
            "SELECT resourcetype, count(*) FROM resources GROUP BY resourcetype"
        ).fetchall()
    )
    resources = {
        level: counts.get(kind, 0)
        for level, kind in zip(LEVELS, dialect.resource_types, strict=True)
    }
    schema = conn.execute("SELECT value FROM globalproperties WHERE property = 1").fetchone()
    return attachments, resources, schema[0] if schema else ""


def _migrations(conn: sqlite3.Connection | psycopg.Connection[Any], table: str) -> list[str]:
    rows = conn.execute(f"SELECT name FROM {table} ORDER BY applied_at, name").fetchall()
    return [row[0] for row in rows]


def _copy_storage(
    attachments: dict[str, Attachment], source: Path, target: Path, copied: set[str]
) -> set[str]:
    """Copy the files not copied yet; returns the uuids whose file is gone."""
    missing = set()
    for uuid, attachment in attachments.items():
        if uuid in copied:
            continue
        destination = target / attachment.path
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(source / attachment.path, destination)
        except FileNotFoundError:
            missing.add(uuid)
        else:
            copied.add(uuid)
    return missing


def orthanc_version() -> str:
    """``Orthanc --version``'s version, or "" where no Orthanc is installed."""
    binary = os.environ.get("ORTHANC_BINARY", DEFAULT_ORTHANC)
    try:
        answer = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return ""
    words = answer.stdout.split("\n", 1)[0].split()  # "<argv[0]> 1.10.1"
    return words[-1] if len(words) == 2 else ""


# -- restore ------------------------------------------------------------------------------


def restore(folder: Path, layout: Layout) -> dict[str, Any]:
    """Restore the backup in ``folder`` into the empty installation ``layout`` describes;
    returns the audit chain's verdict."""
    manifest = _manifest(folder, layout)
    require_empty(layout.targets)
    if layout.backend == "postgresql":
        _require_empty_database(layout.database.conninfo)
    for name, expected in manifest["sha256"].items():
        if sha256(folder / name) != expected:
            raise Refused(f"{folder / name} does not match the manifest's sha256: damaged backup")
    attachments = _file_list(folder / FILE_LIST)
    _verify_storage(folder / STORAGE, attachments)
    say(
        f"backup of {manifest['started']} verified ({_counts(manifest['resources'])};"
        f" {len(attachments)} files; Orthanc {manifest['orthanc']['version'] or '?'},"
        f" index schema {manifest['orthanc']['indexSchema']})"
    )
    if layout.backend == "postgresql":
        _pg_run(
            "pg_restore",
            layout.database.conninfo,
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            str(folder / DUMP),
        )
    else:
        layout.index_directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / INDEX_SNAPSHOT, layout.index)
        layout.database.path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / DATABASE_SNAPSHOT, layout.database.path)
    for attachment in attachments:
        destination = layout.storage / attachment.path
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / STORAGE / attachment.path, destination)
    verdict = verify_audit(layout.database)
    if not verdict["valid"]:
        raise Failed(
            f"restored, but the audit chain breaks at entry {verdict['brokenAt']}"
            f" (after {verdict['entries']} good ones): do not trust this data"
        )
    say(f"restored into {layout.storage}; audit chain verified: {verdict['entries']} entries")
    return verdict


def _manifest(folder: Path, layout: Layout) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise Refused(f"{folder} has no {MANIFEST}: not a backup, or one that did not finish")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as error:
        raise Refused(f"{path} is not JSON: damaged backup ({error})") from error
    if manifest.get("format") != FORMAT:
        raise Refused(f"{path}: format {manifest.get('format')!r}, this command reads {FORMAT}")
    if manifest["backend"] != layout.backend:
        raise Refused(
            f"the backup is of a {manifest['backend']} installation; the configuration"
            f" uses {layout.backend}"
        )
    return manifest


def _file_list(path: Path) -> list[Attachment]:
    rows = (line.split("\t") for line in path.read_text().splitlines())
    return [Attachment(uuid, int(size), md5) for uuid, size, md5 in rows]


def _verify_storage(storage: Path, attachments: Iterable[Attachment]) -> None:
    """Each file of the backup has the size and MD5 Orthanc's index recorded for it."""
    bad = []
    for attachment in attachments:
        path = storage / attachment.path
        if not path.is_file() or path.stat().st_size != attachment.size:
            bad.append(attachment.uuid)
        elif attachment.md5:
            with path.open("rb") as stream:
                if hashlib.file_digest(stream, "md5").hexdigest() != attachment.md5:
                    bad.append(attachment.uuid)
    if bad:
        raise Refused(
            f"{len(bad)} storage file(s) of the backup are missing or differ from what"
            f" Orthanc's index recorded (size, MD5): damaged backup (e.g. {', '.join(bad[:3])})"
        )


def _require_empty_database(conninfo: str) -> None:
    try:
        with psycopg.connect(conninfo) as conn:
            relations = conn.execute(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
                " AND n.nspname NOT LIKE 'pg_toast%'"
            ).fetchone()[0]
            database = conn.info.dbname
    except psycopg.Error as error:
        raise Refused(
            f"cannot use the target database (create it first, empty): {error}"
        ) from error
    if relations:
        raise Refused(
            f"database {database!r} is not empty ({relations} relations): restore goes into an"
            " empty database only"
        )


def verify_audit(location: DatabaseLocation) -> dict[str, Any]:
    """The audit chain's verdict, by the plugin's own verifier."""
    database = open_database(location)
    try:
        return AuditTrail(database).verify()
    finally:
        database.close()


# -- shared -------------------------------------------------------------------------------


def require_empty(folders: Iterable[Path]) -> None:
    for folder in folders:
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise Refused(f"{folder} is not empty: this goes into an empty or new folder only")


def sha256(path: Path) -> str:
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A snapshot read without a byte written to it (its sha256 stays)."""
    with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True)) as conn:
        yield conn


def _pg_run(tool: str, conninfo: str, *arguments: str) -> None:
    """pg_dump or pg_restore of PostgreSQL 15 (else the PATH's) on ``conninfo``; the
    password goes through the environment, not the command line."""
    local = BINARIES / tool
    binary = str(local) if local.exists() else shutil.which(tool)
    if binary is None:
        raise Refused(f"{tool} is in neither {BINARIES} nor the PATH (postgresql-client-15)")
    parts = conninfo_to_dict(conninfo)
    password = parts.pop("password", None)
    env = {**os.environ, **({"PGPASSWORD": str(password)} if password else {})}
    done = subprocess.run(
        [binary, f"--dbname={make_conninfo(**parts)}", *arguments],
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode:
        raise Failed(f"{tool} failed ({done.returncode}): {done.stderr.strip()}")


def _counts(resources: dict[str, int]) -> str:
    return ", ".join(f"{resources[level]} {level}" for level in LEVELS)


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hounsfield.backup",
        description="Consistent backup of Orthanc's index and storage and the plugin's"
        " database, while Orthanc runs; restore into an empty data folder. Exit status:"
        " 0 done, 1 failed while working, 2 refused (nothing written).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create_parser = commands.add_parser("create", help="back an installation up")
    create_parser.add_argument("config", type=Path, help="its orthanc.json (as for make run)")
    create_parser.add_argument("backup", type=Path, help="a new or empty folder")
    restore_parser = commands.add_parser("restore", help="restore into an empty installation")
    restore_parser.add_argument("backup", type=Path, help="a folder made by create")
    restore_parser.add_argument(
        "config",
        type=Path,
        help="orthanc.json naming where to restore: its storage, index and data folders empty"
        " or absent (PostgreSQL: its database empty)",
    )
    args = parser.parse_args(argv)
    try:
        layout = read_layout(args.config)
        if args.command == "create":
            create(layout, args.backup.resolve())
        else:
            restore(args.backup.resolve(), layout)
    except Refused as error:
        print(f"hounsfield backup: refused: {error}", file=sys.stderr)
        return REFUSED
    except (Failed, OSError, sqlite3.Error, psycopg.Error) as error:
        print(f"hounsfield backup: failed: {error}", file=sys.stderr)
        return FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Backup and restore (``hounsfield.backup``): a backup taken during a C-STORE burst, restored
into a fresh folder and served by a fresh Orthanc, has the same studies, reports and users,
and its audit chain verifies. A stopped Orthanc is backed up whole; a study deleted between
the snapshot and the copy of its files is left out; a file missing from the storage fails
the backup. A restore refuses a folder that is not empty and a backup changed by one byte,
and fails when the audit chain breaks. On PostgreSQL: one pg_dump while the server runs,
restored into an empty database (a non-empty one refused).
"""

from __future__ import annotations

import copy
import io
import json
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from hounsfield import backup as backup_module
from hounsfield.backup import sha256
from hounsfield.db.cluster import ThrowawayCluster
from tests.support.reading import PASSWORD, REPORT, Department, stored_study
from tests.support.server import (
    PYTHON,
    REPOSITORY,
    OrthancServer,
    instance_settings,
    wait_for,
)

CONFIG = str(REPOSITORY / "orthanc.json")
RADIOLOGIST = "dr-backup"
BURST_STUDIES, BURST_SLICES = 10, 30
READING = {
    "stable_age": 1,
    "hounsfield__workers": 1,
    "hounsfield__extensions": ["hounsfield.reading"],
}


def backup(server: OrthancServer, *arguments: str) -> subprocess.CompletedProcess:
    """``python -m hounsfield.backup``, configured as ``server`` is (orthanc.json and its
    ORTHANC__ variables): the command ``make backup`` / ``make restore`` run."""
    return subprocess.run(
        [str(PYTHON), "-m", "hounsfield.backup", *arguments],
        env=server.env,
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=120,
    )


def ct_studies(folder: Path, studies: int, slices: int) -> list[Path]:
    """``studies`` new studies of ``slices`` small CT instances each (pydicom's CT_small)."""
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    folder.mkdir(parents=True)
    paths = []
    for study in range(studies):
        study_uid, series_uid = generate_uid(), generate_uid()
        for number in range(slices):
            ds = copy.deepcopy(template)
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.InstanceNumber = number + 1
            paths.append(folder / f"{study:02d}-{number:03d}.dcm")
            ds.save_as(paths[-1])
    return paths


def instance_count(server: OrthancServer) -> int:
    return server.get("/statistics").json()["CountInstances"]


@dataclass
class BackedUp:
    folder: Path  # taken during the burst
    manifest: dict
    studies_before: set[str]  # complete before the backup began
    studies_after: set[str]  # at the end of the burst
    instances_after: int
    report_study: str
    history: dict
    stopped: subprocess.CompletedProcess  # a backup of the source, stopped
    stopped_folder: Path
    source_data: Path


@pytest.fixture(scope="module")
def backed_up(
    tmp_path_factory: pytest.TempPathFactory, dicom_file: Callable[..., Path]
) -> BackedUp:
    """A department with a radiologist and a signed report; a backup taken while a burst of
    C-STOREs arrives; the source stopped, and backed up again."""
    root = tmp_path_factory.mktemp("backup")
    source = OrthancServer(root / "source", **READING).start()
    try:
        department = Department(source, dicom_file)
        path = dicom_file("CT_small.dcm", PatientName="Backup^Before")
        source.store(path)
        study, _ = stored_study(source, path)
        wait_for(lambda: department.row(study), 30, "the study's worklist row")
        department.hire(RADIOLOGIST, "radiologist")
        assert department.call(RADIOLOGIST, "POST", f"/api/studies/{study}/claim").ok
        assert department.call(RADIOLOGIST, "PUT", f"/api/studies/{study}/report", json=REPORT).ok
        signed = department.call(
            RADIOLOGIST, "POST", f"/api/studies/{study}/report/sign", json={"version": 1}
        )
        assert signed.ok, signed.text
        wait_for(  # the image, then the report as PDF and as SR
            lambda: len(source.get(f"/studies/{study}/instances").json()) == 3,
            60,
            "the signed report's PDF and SR in the study",
        )
        history = source.get(f"/api/studies/{study}/report/history").json()
        studies_before = set(source.get("/studies").json())
        instances_before = instance_count(source)

        burst = ct_studies(root / "burst", BURST_STUDIES, BURST_SLICES)
        storing = threading.Thread(target=source.store, args=burst)
        storing.start()
        wait_for(lambda: instance_count(source) >= instances_before + 20, 30, "the burst")
        created = backup(source, "create", CONFIG, str(root / "backup"))
        storing.join()
        assert created.returncode == 0, created.stderr
        assert "paused for" in created.stdout
        manifest = json.loads((root / "backup" / "manifest.json").read_text())
        # Taken during the burst: some of it in the backup, not all (else the burst was too
        # short for this machine: make it longer).
        total = instances_before + len(burst)
        assert instance_count(source) == total
        assert instances_before < manifest["resources"]["instances"] < total, created.stdout
        studies_after = set(source.get("/studies").json())
    finally:
        source.stop()
    stopped = backup(source, "create", CONFIG, str(root / "backup-stopped"))
    return BackedUp(
        root / "backup",
        manifest,
        studies_before,
        studies_after,
        total,
        study,
        history,
        stopped,
        root / "backup-stopped",
        source.workdir / "data",
    )


def test_a_backup_taken_during_a_burst_is_served_again_by_a_fresh_orthanc(
    backed_up: BackedUp, tmp_path: Path
) -> None:
    target = OrthancServer(tmp_path / "restored", **READING)
    restored = backup(target, "restore", str(backed_up.folder), CONFIG)
    assert restored.returncode == 0, restored.stderr
    assert "audit chain verified" in restored.stdout
    target.start()
    try:
        instances = target.get("/instances").json()
        assert len(instances) == backed_up.manifest["resources"]["instances"]
        for instance in instances:
            answer = target.get(f"/instances/{instance}/file")
            assert answer.status_code == 200, instance
            pydicom.dcmread(io.BytesIO(answer.content))
        studies = set(target.get("/studies").json())
        assert backed_up.studies_before <= studies <= backed_up.studies_after

        target.login(RADIOLOGIST, PASSWORD)  # the same user, the same password
        history = target.get(f"/api/studies/{backed_up.report_study}/report/history").json()
        assert history == backed_up.history
        verdict = target.get("/api/audit/verify").json()
        assert verdict["valid"] is True and verdict["entries"] > 0, verdict
    finally:
        target.stop()


def test_a_restore_refuses_a_folder_that_is_not_empty(backed_up: BackedUp, tmp_path: Path) -> None:
    target = OrthancServer(tmp_path / "occupied", **READING)
    storage = tmp_path / "occupied" / "data"
    storage.mkdir()
    (storage / "keep-me").write_text("someone's data")

    refused = backup(target, "restore", str(backed_up.folder), CONFIG)
    assert refused.returncode == 2
    assert f"refused: {storage} is not empty" in refused.stderr
    assert [path.name for path in storage.iterdir()] == ["keep-me"]


@pytest.mark.parametrize("damaged", ["orthanc-index.sqlite", "a storage file"])
def test_a_restore_refuses_a_backup_changed_by_one_byte(
    backed_up: BackedUp, tmp_path: Path, damaged: str
) -> None:
    folder = tmp_path / "backup"
    shutil.copytree(backed_up.folder, folder)
    victim = (
        folder / damaged
        if damaged.endswith(".sqlite")
        else next(path for path in (folder / "storage").rglob("*") if path.is_file())
    )
    content = bytearray(victim.read_bytes())
    content[len(content) // 2] ^= 0x01
    victim.write_bytes(content)
    target = OrthancServer(tmp_path / "target", **READING)

    refused = backup(target, "restore", str(folder), CONFIG)
    assert refused.returncode == 2
    assert "damaged backup" in refused.stderr
    assert not (tmp_path / "target" / "data").exists()


def test_a_backup_of_a_stopped_orthanc_has_all_of_it(backed_up: BackedUp) -> None:
    stopped = backed_up.stopped
    assert stopped.returncode == 0, stopped.stderr
    assert "Orthanc's index: Orthanc is not running" in stopped.stdout
    manifest = json.loads((backed_up.stopped_folder / "manifest.json").read_text())
    assert manifest["resources"]["instances"] == backed_up.instances_after
    assert manifest["resources"]["studies"] == len(backed_up.studies_after)


def test_a_file_missing_from_the_storage_fails_the_backup(
    backed_up: BackedUp, tmp_path: Path
) -> None:
    """Still referenced by a second snapshot: not a deletion racing the copy, a damaged
    storage."""
    damaged = OrthancServer(tmp_path / "damaged", **READING)
    shutil.copytree(backed_up.source_data, tmp_path / "damaged" / "data")
    index = sqlite3.connect(
        f"{(tmp_path / 'damaged' / 'data' / 'index').as_uri()}?mode=ro", uri=True
    )
    (uuid,) = index.execute("SELECT uuid FROM AttachedFiles LIMIT 1").fetchone()
    index.close()
    (tmp_path / "damaged" / "data" / uuid[:2] / uuid[2:4] / uuid).unlink()

    failed = backup(damaged, "create", CONFIG, str(tmp_path / "backup"))
    assert failed.returncode == 1
    assert (
        "1 file(s) referenced by Orthanc's index are missing from"
        f" {tmp_path / 'damaged' / 'data'}, and a second snapshot still references them:"
        f" the storage is damaged (e.g. {uuid})"
    ) in failed.stderr
    assert not (tmp_path / "backup").exists()


def test_a_study_deleted_during_the_backup_is_left_out(
    make_orthanc: Callable[..., OrthancServer],
    dicom_file: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Deleted between the snapshot and the copy of its files: a second snapshot no longer
    references them, and the backup is that one."""
    orthanc = make_orthanc().start()
    kept, doomed = dicom_file("CT_small.dcm"), dicom_file("MR_small.dcm")
    orthanc.store(kept, doomed)
    doomed_id, _ = stored_study(orthanc, doomed)
    for name, value in orthanc.env.items():
        if name.startswith("ORTHANC__"):
            monkeypatch.setenv(name, value)
    snapshots = []

    def racing(layout: backup_module.Layout, folder: Path) -> backup_module.Snapshot:
        snapshots.append(take_snapshot(layout, folder))
        if len(snapshots) == 1:
            assert orthanc.http.delete(orthanc.url(f"/studies/{doomed_id}"), timeout=10).ok
        return snapshots[-1]

    take_snapshot = backup_module._snapshot
    monkeypatch.setattr(backup_module, "_snapshot", racing)
    layout = backup_module.read_layout(Path(CONFIG))
    manifest = backup_module.create(layout, tmp_path / "backup")

    assert len(snapshots) == 2
    said = capsys.readouterr().out
    assert "1 file(s) gone since the snapshot" in said
    assert "(1 deleted by Orthanc during the backup left out)" in said
    assert manifest["resources"]["studies"] == 1
    assert (manifest["storage"]["files"], manifest["storage"]["deletedDuringBackup"]) == (1, 1)
    assert [path for path in (tmp_path / "backup" / "storage").rglob("*") if path.is_file()] == [
        tmp_path / "backup" / "storage" / attachment.path
        for attachment in snapshots[-1].attachments.values()
    ]


def test_a_restore_fails_when_the_audit_chain_breaks(backed_up: BackedUp, tmp_path: Path) -> None:
    """An entry rewritten in the backup's database, its checksum in the manifest rewritten
    too: the chain itself gives it away."""
    folder = tmp_path / "backup"
    shutil.copytree(backed_up.folder, folder)
    with sqlite3.connect(folder / "hounsfield.db") as conn:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("UPDATE audit_log SET username = 'mallory' WHERE id = 2")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["sha256"]["hounsfield.db"] = sha256(folder / "hounsfield.db")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    target = OrthancServer(tmp_path / "target", **READING)

    failed = backup(target, "restore", str(folder), CONFIG)
    assert failed.returncode == 1
    assert "the audit chain breaks at entry 2 (after 1 good ones)" in failed.stderr


def test_a_postgresql_installation_is_dumped_while_it_runs_and_restored_into_an_empty_database(
    postgres_cluster: ThrowawayCluster, tmp_path: Path, dicom_file: Callable[..., Path]
) -> None:
    names = ("backup_source", "backup_target")
    for name in names:
        postgres_cluster.create_database(name)
    source = OrthancServer(
        tmp_path / "a",
        **instance_settings(postgres_cluster, names[0], tmp_path / "sa", tmp_path / "a"),
    )
    target = OrthancServer(
        tmp_path / "b",
        **instance_settings(postgres_cluster, names[1], tmp_path / "sb", tmp_path / "b"),
    )
    try:
        source.start()
        source.store(dicom_file("CT_small.dcm"), dicom_file("MR_small.dcm"))
        body = {"username": RADIOLOGIST, "password": PASSWORD, "role": "radiologist"}
        assert source.post("/api/users", json=body).status_code == 201
        source.login(RADIOLOGIST, PASSWORD)
        created = backup(source, "create", CONFIG, str(tmp_path / "backup"))
        assert created.returncode == 0, created.stderr
        studies = sorted(source.get("/studies").json())

        restored = backup(target, "restore", str(tmp_path / "backup"), CONFIG)
        assert restored.returncode == 0, restored.stderr
        again = OrthancServer(
            tmp_path / "c",
            **instance_settings(postgres_cluster, names[1], tmp_path / "sc", tmp_path / "c"),
        )
        refused = backup(again, "restore", str(tmp_path / "backup"), CONFIG)
        assert refused.returncode == 2
        assert f"database '{names[1]}' is not empty" in refused.stderr

        target.start()
        assert sorted(target.get("/studies").json()) == studies
        for instance in target.get("/instances").json():
            assert target.get(f"/instances/{instance}/file").status_code == 200
        target.login(RADIOLOGIST, PASSWORD)
        verdict = target.get("/api/audit/verify").json()
        assert verdict["valid"] is True and verdict["entries"] > 0, verdict
    finally:
        source.stop()
        target.stop()
        for name in names:
            postgres_cluster.drop_database(name)

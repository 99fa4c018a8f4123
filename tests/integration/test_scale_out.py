"""Two Orthanc instances on one PostgreSQL and one storage folder: one department.

Each instance has its own data folder and node name; Orthanc's index and our tables are
shared (the topology of docker/compose.yaml, with processes instead of containers).
"""

from __future__ import annotations

import concurrent.futures
import io
import itertools
import signal
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pydicom
import pytest

from hounsfield.db.cluster import ThrowawayCluster
from tests.support.recon import (
    TALL_ACQUISITION,
    assert_one_whole_series,
    ct_series_of,
    reconstruction_of,
    shepp_logan_acquisition,
    start_and_wait_for_partial_series,
)
from tests.support.server import (
    ADMIN_PASSWORD,
    OrthancServer,
    instance_settings,
    process_alive,
    wait_for,
)

PASSWORD = "Scale-Out-Pass-42"
PEER_TIMEOUT = 5
_databases = itertools.count()

Department = Callable[..., list[OrthancServer]]


@contextmanager
def running_department(
    cluster: ThrowawayCluster, root: Path, count: int, **settings: object
) -> Iterator[list[OrthancServer]]:
    """``count`` instances on a fresh database, started one after the other (Orthanc makes
    its index tables once); stopped and the database dropped afterwards."""
    name = f"department_{next(_databases)}"
    cluster.create_database(name)
    servers: list[OrthancServer] = []
    try:
        for index in range(count):
            workdir = root / f"instance-{index}"
            server = OrthancServer(
                workdir,
                **instance_settings(cluster, name, root / "storage", workdir),
                hounsfield__peer_timeout_seconds=PEER_TIMEOUT,
                hounsfield__extensions=["tests.support.extension", "hounsfield.recon"],
                **settings,
            )
            servers.append(server)
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()
        cluster.drop_database(name)


@pytest.fixture(scope="module")
def pair(
    postgres_cluster: ThrowawayCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[OrthancServer]]:
    """Two instances shared by the tests that leave them running (one worker each)."""
    root = tmp_path_factory.mktemp("pair")
    with running_department(postgres_cluster, root, 2, hounsfield__workers=1) as servers:
        yield servers


@pytest.fixture
def department(postgres_cluster: ThrowawayCluster, tmp_path: Path) -> Iterator[Department]:
    """``department(n, **settings)``: a pair of the test's own (for kills, other settings)."""
    with ExitStack() as stack:
        yield lambda count=2, **settings: stack.enter_context(
            running_department(postgres_cluster, tmp_path, count, **settings)
        )


def node_of(job: dict) -> str:
    return job["worker"].rsplit("/", 2)[0]


def test_stored_through_one_read_and_searched_through_the_other(
    pair: list[OrthancServer], dicom_file
) -> None:
    a, b = pair
    path = dicom_file("CT_small.dcm", PatientID="SCALE-1")
    a.store(path)
    found = b.post("/tools/find", json={"Level": "Study", "Query": {"PatientID": "SCALE-1"}})
    (study_id,) = found.json()
    study = b.get(f"/studies/{study_id}").json()
    found = b.get("/dicom-web/studies", params={"PatientID": "SCALE-1"}).json()
    assert [item["0020000D"]["Value"][0] for item in found] == [
        study["MainDicomTags"]["StudyInstanceUID"]
    ]
    (instance,) = b.get(f"/studies/{study['ID']}/instances").json()
    kept = pydicom.dcmread(io.BytesIO(b.get(f"/instances/{instance['ID']}/file").content))
    sent = pydicom.dcmread(path)
    assert (kept.SOPInstanceUID, kept.PixelData) == (sent.SOPInstanceUID, sent.PixelData)
    health = a.health()["components"]
    assert health["database"]["backend"] == "postgresql"
    assert sorted(peer["node"] for peer in health["orthanc"]["peers"]) == sorted(
        server.health()["components"]["orthanc"]["node"] for server in (a, b)
    )


def test_a_sign_in_holds_on_every_instance_and_a_sign_out_everywhere(
    pair: list[OrthancServer],
) -> None:
    a, b = pair
    created = a.post(
        "/api/users", json={"username": "rad-1", "password": PASSWORD, "role": "radiologist"}
    )
    assert created.status_code == 201, created.text
    signed_in = a.client()
    answer = signed_in.post(
        a.url("/api/auth/login"), json={"username": "rad-1", "password": PASSWORD}, timeout=10
    )
    token = answer.json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (
        b.client().get(b.url("/api/auth/me"), headers=headers, timeout=10).json()["username"]
        == "rad-1"
    )
    logout = b.client().post(b.url("/api/auth/logout"), headers=headers, timeout=10)
    assert logout.status_code == 200, logout.text
    assert a.client().get(a.url("/api/auth/me"), headers=headers, timeout=10).status_code == 401
    # Lock-out counts are shared: failures through both instances add up.
    for server in itertools.islice(itertools.cycle((a, b)), 5):
        server.client().post(
            server.url("/api/auth/login"),
            json={"username": "rad-1", "password": "wrong"},
            timeout=10,
        )
    refused = b.client().post(
        b.url("/api/auth/login"), json={"username": "rad-1", "password": PASSWORD}, timeout=10
    )
    assert refused.status_code == 401 and "locked" in refused.text


def test_jobs_submitted_on_one_instance_run_on_both(pair: list[OrthancServer]) -> None:
    a, b = pair
    jobs = [a.submit("tests.sleep", seconds=1) for _ in range(4)]
    done = [a.wait_job(job["id"], timeout=60) for job in jobs]
    assert {job["state"] for job in done} == {"succeeded"}
    nodes = {server.health()["components"]["orthanc"]["node"] for server in (a, b)}
    assert {node_of(job) for job in done} == nodes


def test_audit_entries_written_through_both_instances_keep_one_chain(
    pair: list[OrthancServer],
) -> None:
    a, b = pair

    def sign_in(server: OrthancServer) -> int:
        return (
            server.client()
            .post(
                server.url("/api/auth/login"),
                json={"username": "admin", "password": ADMIN_PASSWORD},
                timeout=30,
            )
            .status_code
        )

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(sign_in, [a, b] * 20))
    assert codes == [200] * 40
    verified = b.get("/api/audit/verify").json()
    assert verified["valid"] is True and verified["entries"] >= 40


def test_a_study_split_across_instances_gets_one_reconstruction(
    pair: list[OrthancServer], dicom_file, tmp_path: Path
) -> None:
    a, b = pair
    projections = shepp_logan_acquisition({"PatientID": "SPLIT-1"}, "split study", "split")
    path = tmp_path / "projections.dcm"
    projections.save_as(path, enforce_file_format=True)
    scout = dicom_file(
        "CT_small.dcm", PatientID="SPLIT-1", StudyInstanceUID=projections.StudyInstanceUID
    )
    a.store(path)  # the projections through one instance...
    b.store(scout, path)  # ...another series and the projections again through the other
    found = a.post("/tools/lookup", data=projections.SeriesInstanceUID).json()
    series = next(item["ID"] for item in found if item["Type"] == "Series")
    done = reconstruction_of(b, series)
    assert done["state"] == "succeeded", done
    study = a.get(f"/series/{series}").json()["ParentStudy"]

    def settled_on_both() -> bool:  # each instance has seen the study stable, and told us
        return all(
            server.get(f"/studies/{study}").json()["IsStable"]
            and server.health()["components"]["events"]["pending"] == 0
            for server in (a, b)
        )

    wait_for(settled_on_both, 30, "the study to be stable on both instances")
    jobs = a.get("/api/jobs", params={"kind": "recon.reconstruct", "limit": 500}).json()["jobs"]
    assert [job["params"]["series"] for job in jobs].count(series) == 1
    assert len(ct_series_of(a, study, "CBCT")) == 1


def test_a_kill_9_of_one_instance_mid_reconstruction_is_finished_by_the_other(
    department: Department, tmp_path: Path
) -> None:
    # Automatic reconstruction off: the study's only reconstruction is the one killed.
    a, b = department(2, hounsfield__workers=1, hounsfield_recon__automatic=False)
    # A worker loads RTK's native code on its first job that uses it (about 15 s of CPU):
    # two simulations queued at once, one through each instance, have both workers load it
    # side by side, rather than b's only once it takes the killed reconstruction over.
    simulations = [
        server.post("/api/acquisitions/simulate", json=TALL_ACQUISITION).json() for server in (a, b)
    ]
    simulation, _ = (a.wait_job(job["id"], timeout=120) for job in simulations)
    series, study = simulation["result"]["series"], simulation["result"]["study"]
    node_a = a.health()["components"]["orthanc"]["node"]
    # Keep b's worker busy, so that a's takes the reconstruction.
    busy = occupy(a, node_of_server=b, tmp_path=tmp_path)
    running, pid, stored = start_and_wait_for_partial_series(a, study, series)
    assert node_of(running) == node_a
    a.stop(signal.SIGKILL)
    wait_for(lambda: not process_alive(pid), 10, "a's worker to die with it")
    b.post(f"/api/jobs/{busy['id']}/cancel")
    done = b.wait_job(running["id"], timeout=180)
    assert node_of(done) != node_a
    assert "fell silent" in (done["message"] or "") or done["attempts"] == 2
    assert_one_whole_series(b, study, done, stored)


def occupy(server: OrthancServer, *, node_of_server: OrthancServer, tmp_path: Path) -> dict:
    """A long sleep job running on ``node_of_server``'s worker (others cancelled)."""
    wanted = node_of_server.health()["components"]["orthanc"]["node"]
    submitted = []
    while True:
        job = server.submit("tests.sleep", seconds=120)
        submitted.append(job)
        running = wait_for(
            lambda job=job: (j := server.job(job["id"]))["state"] == "running" and j,
            30,
            "a sleep job to start",
        )
        if node_of(running) == wanted:
            for other in submitted[:-1]:
                server.post(f"/api/jobs/{other['id']}/cancel")
            return running

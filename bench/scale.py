"""Several Orthanc instances on one PostgreSQL: ingest, DICOMweb reads, jobs and CPU, side by side.

Three set-ups run at once (their rounds interleaved, so drift on the machine hits all alike):
(a) one instance on SQLite, the reference (OrthancServer's defaults, the test extension's logs
off); (b) one instance on PostgreSQL; (c) two instances on one PostgreSQL database and one storage
folder, each its own data folder. The PostgreSQL is a throwaway cluster (hounsfield.db.cluster),
one database for (b) and one for (c). For ingest, two references beside them: (r) and (s),
Orthanc alone (its DICOMweb plugin, not ours) on SQLite and on PostgreSQL: the part of the
difference that is Orthanc's own index.

1. C-STORE ingest: ``--associations`` dcmtk storescu processes at once, each sending its own
   series of ``--slices`` CT slices (in (c) the associations are split across both instances):
   instances/s, medians of ``--rounds``. Goals (issue): (b)/(a) >= 0.8; (c)/(b) >= 0.9 on this
   2-core machine, where two instances cannot be faster than one (the cores are the bottleneck).
2. DICOMweb reads through the gate (a radiologist's bearer token): WADO-RS frames and instance
   metadata from ``--threads`` threads (in (c) alternating between the instances): requests/s,
   p50/p95 latency.
3. Jobs: ``--jobs`` no-op jobs (``tests.sleep``, 0 s) submitted from ``--threads`` threads (in
   (c) alternating between the instances), drained by ``--workers`` worker(s) per instance:
   (a), (b), and (c) with both instances' workers; jobs/s from the first submission to the last
   job succeeded, and how many each instance ran.
4. CPU seconds of every process, per phase: each Orthanc (its threads and any child but its
   workers), its workers, PostgreSQL (the postmaster and its backends) and this client (with
   storescu, on the same cores): per 1000 instances stored (from the first C-STORE until settled:
   studies stable, their series metadata kept by the workers), per 1000 requests, per 1000 jobs,
   so that what a bigger machine needs can be estimated.
5. Load: ``--viewers`` viewer sessions (each its own user) for ``--minutes`` against (c), the
   sessions alternating between the instances, each in a loop: QIDO series search, series
   metadata, then every frame of the series. Total requests, errors (non-2xx and exceptions;
   goal 0), p50/p95 latency; the most PostgreSQL connections seen during the whole run. The
   series metadata is kept in each instance's own data folder: its first request on an instance
   is counted apart. (Each viewer signs in once: past 15 minutes, its token would expire.)

Run: .venv/bin/python bench/scale.py [--slices 300] [--associations 4] [--rounds 3]
     [--reads 1000] [--threads 4] [--jobs 500] [--workers 1] [--viewers 50] [--minutes 5]
     [--quick]  (a smoke run: 100 slices, 1 round, 200 reads, 100 jobs, 5 viewers, 20 s)
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pydicom
import requests
from common import NO_PYTHON_PLUGIN, make_ct_series, percentiles, print_table

from hounsfield.db.cluster import ThrowawayCluster
from tests.support.server import ADMIN_PASSWORD, OrthancServer, instance_settings, wait_for

PASSWORD = "Scale-Bench-Pass-42"
STORESCU = "/usr/bin/storescu"  # dcmtk's (the venv's bin holds pynetdicom's of the same name)
TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Series:
    study: str
    uid: str
    sops: list[str]  # in instance-number order, as a viewer stacks them
    files: list[Path]


@dataclass
class Setup:
    label: str
    servers: list[OrthancServer]
    postgres: bool
    plugin: bool = True  # False: Orthanc alone (ingest only, the reference for its own index)
    ingest: list[float] = field(default_factory=list)
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)  # phase -> process -> s
    work: collections.Counter = field(default_factory=collections.Counter)  # phase -> units

    def add_cpu(self, phase: str, used: dict[str, float]) -> None:
        total = self.cpu.setdefault(phase, collections.defaultdict(float))
        for name, seconds in used.items():
            total[name] += seconds


# --- CPU from /proc ----------------------------------------------------------------------------


def process_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds of the process and of its children it has reaped)."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stream:
                fields = stream.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        # After the name: state, ppid, ..., utime (14th field), stime, cutime, cstime.
        ticks = sum(int(value) for value in fields[11:15])
        table[int(entry.name)] = (int(fields[1]), ticks / TICK)
    return table


def tree_cpu(table: dict[int, tuple[int, float]], root: int, skip: set[int] = frozenset()) -> float:
    """CPU seconds of ``root`` and its live descendants (reaped ones included), but ``skip``'s."""
    children = collections.defaultdict(list)
    for pid, (parent, _) in table.items():
        children[parent].append(pid)
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        if pid in skip or pid not in table:
            continue
        total += table[pid][1]
        stack.extend(children[pid])
    return total


class CpuMeter:
    """CPU seconds used by a set-up's processes (and PostgreSQL's, this client's) over a phase."""

    def __init__(self, setup: Setup, postmaster: int) -> None:
        self.setup, self.postmaster = setup, postmaster

    def sample(self) -> dict[str, float]:
        table = process_table()
        used = {}
        for index, server in enumerate(self.setup.servers, 1):
            workers = set(self.workers[index - 1])
            used[f"orthanc-{index}"] = tree_cpu(table, server.process.pid, workers)
            used[f"workers-{index}"] = sum(tree_cpu(table, pid) for pid in workers)
        if self.setup.postgres:
            used["postgresql"] = tree_cpu(table, self.postmaster)
        own = resource.getrusage(resource.RUSAGE_SELF)
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)  # storescu
        used["client"] = own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime
        return used

    def __enter__(self) -> CpuMeter:
        self.workers = [
            server.worker_pids() if self.setup.plugin else [] for server in self.setup.servers
        ]
        self.before = self.sample()
        return self

    def __exit__(self, *exc: object) -> None:
        after = self.sample()
        self.used = {name: after[name] - self.before[name] for name in after}


def cpu_row(setup: Setup, phase: str, unit: str) -> tuple[str, str]:
    """CPU seconds per 1000 units of ``phase``'s work: Orthanc, workers, PostgreSQL, client."""
    used, units = setup.cpu[phase], setup.work[phase]
    per = 1000 / units

    def group(prefix: str) -> str:
        parts = [used[name] * per for name in sorted(used) if name.startswith(prefix)]
        joined = " + ".join(f"{value:.2f}" for value in parts)
        return joined if len(parts) == 1 else f"{sum(parts):.2f} ({joined})"

    postgres = f"{used['postgresql'] * per:.2f}" if setup.postgres else "-"
    figure = (
        f"Orthanc {group('orthanc-')}, workers {group('workers-')}, "
        f"PostgreSQL {postgres}, client {used['client'] * per:.2f} s"
    )
    return f"  CPU s per 1000 {unit}, {setup.label}", figure


# --- PostgreSQL connections --------------------------------------------------------------------


class ConnectionWatch(threading.Thread):
    """The most client connections PostgreSQL held at once, sampled every second."""

    def __init__(self, cluster: ThrowawayCluster) -> None:
        super().__init__(daemon=True)
        self.cluster, self.most, self.stopping = cluster, 0, threading.Event()

    def run(self) -> None:
        try:
            with psycopg.connect(self.cluster.conninfo(), autocommit=True) as conn:
                while not self.stopping.wait(1.0):
                    (count,) = conn.execute(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE backend_type = 'client backend'"
                    ).fetchone()
                    self.most = max(self.most, count)
        except psycopg.Error:  # the cluster stopped under it (a run cut short)
            pass


# --- the set-ups -------------------------------------------------------------------------------


def quiet(server: OrthancServer) -> OrthancServer:
    """No test logs: the test extension would then write every event to a file and queue a
    job for every stable study, work a department's server does not do."""
    server.env.pop("HOUNSFIELD_TEST_EVENTS_LOG")
    server.env.pop("HOUNSFIELD_TEST_LIFECYCLE_LOG")
    return server


def start_setups(
    root: Path, cluster: ThrowawayCluster, workers: int, started: list[OrthancServer]
) -> list[Setup]:
    """The three set-ups; each server is put in ``started`` before it starts (to be stopped)."""
    setups = []
    common = {"hounsfield__workers": workers}
    sqlite = quiet(OrthancServer(root / "a-sqlite", hounsfield__node_name="a1", **common))
    started.append(sqlite)
    sqlite.start(timeout=120)
    setups.append(Setup("(a) SQLite, 1 instance", [sqlite], postgres=False))
    for letter, count in (("b", 1), ("c", 2)):
        database = f"scale_{letter}"
        cluster.create_database(database)
        servers = []
        label = f"({letter}) PostgreSQL, {count} instance{'s' if count > 1 else ''}"
        setups.append(Setup(label, servers, postgres=True))
        for index in range(1, count + 1):
            workdir = root / f"{letter}-instance-{index}"
            server = OrthancServer(
                workdir,
                **instance_settings(cluster, database, root / f"{letter}-storage", workdir),
                hounsfield__node_name=f"{letter}{index}",
                **common,
            )
            servers.append(quiet(server))
            started.append(server)
            server.start(timeout=120)  # one after the other: Orthanc makes its tables once
    return setups


def start_references(
    root: Path, cluster: ThrowawayCluster, started: list[OrthancServer]
) -> list[Setup]:
    """Orthanc alone (its DICOMweb plugin, not ours) on SQLite and on PostgreSQL: how much of
    the difference in ingest is Orthanc's own index, whatever our plugin does."""
    references = []
    for letter, postgres in (("r", False), ("s", True)):
        workdir = root / f"{letter}-orthanc-alone"
        settings: dict[str, object] = {"plugins": NO_PYTHON_PLUGIN}
        if postgres:
            cluster.create_database(f"scale_{letter}")
            settings |= instance_settings(cluster, f"scale_{letter}", workdir / "data", workdir)
        server = OrthancServer(workdir, **settings)
        started.append(server)
        server.start(timeout=120, ready_path="/system")
        label = f"({letter}) Orthanc alone, {'PostgreSQL' if postgres else 'SQLite'}"
        references.append(Setup(label, [server], postgres=postgres, plugin=False))
    return references


def refresh_admin(setup: Setup) -> None:
    """A fresh admin token on every instance (tokens last 15 minutes; a full run is longer)."""
    for server in setup.servers:
        server.http.headers["Authorization"] = f"Bearer {server.login('admin', ADMIN_PASSWORD)}"


def add_user(server: OrthancServer, username: str) -> None:
    answer = server.post(
        "/api/users", json={"username": username, "password": PASSWORD, "role": "radiologist"}
    )
    assert answer.status_code == 201, answer.text


def signed_in(server: OrthancServer, username: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {server.login(username, PASSWORD)}"
    return session


# --- 1. ingest ---------------------------------------------------------------------------------


def instance_count(server: OrthancServer) -> int:
    return server.get("/statistics").json()["CountInstances"]


def ingest(setup: Setup, batch: list[Series]) -> float:
    """Every series of ``batch`` through its own storescu, all at once; instances/s."""
    servers = setup.servers
    before = instance_count(servers[0])
    env = {**os.environ, "TCP_NODELAY": "1"}  # as OrthancServer.store: no Nagle stalls
    start = time.perf_counter()
    processes = [
        subprocess.Popen(
            [STORESCU, "-aec", "HOUNSFIELD", "127.0.0.1", str(servers[i % len(servers)].dicom_port)]
            + [str(path) for path in series.files],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for i, series in enumerate(batch)
    ]
    outputs = [process.communicate(timeout=900)[0] for process in processes]
    elapsed = time.perf_counter() - start
    for process, output in zip(processes, outputs, strict=True):
        if process.returncode:
            raise RuntimeError(f"storescu failed ({process.returncode}): {output[-2000:]}")
    sent = sum(len(series.files) for series in batch)
    stored = instance_count(servers[0]) - before
    if stored != sent:
        raise RuntimeError(f"{setup.label}: {sent} instances sent, {stored} stored")
    return sent / elapsed


def settle(setup: Setup, batch: list[Series]) -> None:
    """Until the studies are stable and every instance's events and jobs are done."""
    servers = setup.servers
    for index, series in enumerate(batch):
        # Stability is each Orthanc's own: ask the one that received the series.
        server = servers[index % len(servers)]
        found = server.post("/tools/lookup", data=series.study).json()
        study = next(item["ID"] for item in found if item["Type"] == "Study")
        wait_for(
            lambda s=study, o=server: o.get(f"/studies/{s}").json()["IsStable"],
            300,
            "a stable study",
        )

    def idle(server: OrthancServer) -> bool:
        components = server.health()["components"]
        jobs = components["queue"]["jobs"]
        return components["events"]["pending"] == 0 and jobs["queued"] == jobs["running"] == 0

    wait_for(lambda: all(idle(server) for server in servers), 300, "events and jobs", 0.2)


# --- 2. DICOMweb reads -------------------------------------------------------------------------


@dataclass
class Samples:
    latencies: collections.defaultdict = field(
        default_factory=lambda: collections.defaultdict(list)
    )
    errors: int = 0
    first_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    seen: set = field(default_factory=set)  # (instance, series) whose metadata was asked

    def get(self, session: requests.Session, url: str, kind: str) -> None:
        start = time.perf_counter()
        try:
            answer = session.get(url, timeout=60)
            problem = None if answer.ok else f"{answer.status_code} {url}: {answer.text[:200]}"
        except requests.RequestException as error:
            problem = f"{type(error).__name__} {url}: {error}"
        elapsed = time.perf_counter() - start
        if problem:
            with self.lock:
                self.errors += 1
                if len(self.first_errors) < 5:
                    self.first_errors.append(problem)
        else:
            self.latencies[kind].append(elapsed)

    def all(self) -> list[float]:
        return [value for values in self.latencies.values() for value in values]


def figures(samples: list[float]) -> str:
    p50, p95 = percentiles(samples)
    return f"p50 {p50 * 1000:.1f} / p95 {p95 * 1000:.1f} ms"


READS = {
    "WADO-RS frame": "/frames/1",
    "WADO-RS instance metadata": "/metadata",
}


def reads(
    setup: Setup, sessions: list[requests.Session], suffix: str, catalog: list[Series], args
) -> tuple[float, list[float], int]:
    """``args.reads`` requests from ``args.threads`` threads; thread i reads through instance
    i mod n. (requests/s, latencies, errors)."""
    samples = Samples()
    servers = setup.servers
    instances = [(series, sop) for series in catalog for sop in series.sops]

    def path(series: Series, sop: str) -> str:
        return f"/dicom-web/studies/{series.study}/series/{series.uid}/instances/{sop}{suffix}"

    def thread(index: int) -> None:
        server, session = servers[index % len(servers)], sessions[index % len(servers)]
        for number in range(index, args.reads, args.threads):
            series, sop = instances[number * 7919 % len(instances)]  # spread, the same each run
            samples.get(session, server.url(path(series, sop)), "read")

    warm = Samples()
    for server, session in zip(servers, sessions, strict=True):
        for series, sop in random.sample(instances, 10):
            warm.get(session, server.url(path(series, sop)), "warm-up")
    start = time.perf_counter()
    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(thread, range(args.threads)))
    elapsed = time.perf_counter() - start
    done = samples.all()
    if samples.errors:
        print(f"{setup.label} {suffix}: errors, first: {samples.first_errors}", file=sys.stderr)
    return len(done) / elapsed, done, samples.errors + warm.errors


# --- 3. jobs -----------------------------------------------------------------------------------


def job_total(server: OrthancServer, state: str) -> int:
    answer = server.get("/api/jobs", params={"kind": "tests.sleep", "state": state, "limit": 1})
    return answer.json()["total"]


def drain(setup: Setup, count: int, threads: int) -> tuple[float, collections.Counter]:
    """``count`` no-op jobs submitted from ``threads`` threads (thread i through instance
    i mod n, as behind a load balancer: an instance wakes its own workers at once, the others'
    find the job within a second), until all succeeded; jobs/s, and how many each node ran."""
    servers, first = setup.servers, setup.servers[0]
    done_before, failed_before = job_total(first, "succeeded"), job_total(first, "failed")

    def submit(index: int) -> list[int]:
        server = servers[index % len(servers)]
        session = requests.Session()
        session.headers.update(server.http.headers)
        ids = []
        for _ in range(index, count, threads):
            answer = session.post(
                server.url("/api/jobs"),
                json={"kind": "tests.sleep", "params": {"seconds": 0}},
                timeout=30,
            )
            assert answer.status_code == 201, answer.text
            ids.append(answer.json()["id"])
        return ids

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        ids = {job for batch in pool.map(submit, range(threads)) for job in batch}

    def finished() -> bool:
        if job_total(first, "failed") > failed_before:
            raise RuntimeError(f"{setup.label}: a no-op job failed")
        return job_total(first, "succeeded") >= done_before + count

    wait_for(finished, 600, "the jobs to drain", 0.05)
    rate = count / (time.perf_counter() - start)
    nodes: collections.Counter = collections.Counter()
    for offset in range(0, count + done_before, 500):
        page = first.get(
            "/api/jobs",
            params={"kind": "tests.sleep", "state": "succeeded", "limit": 500, "offset": offset},
        ).json()["jobs"]
        for job in page:
            if job["id"] in ids:
                nodes[job["worker"].rsplit("/", 2)[0]] += 1
    return rate, nodes


# --- 5. load -----------------------------------------------------------------------------------


def viewer(
    server: OrthancServer,
    session: requests.Session,
    catalog: list[Series],
    deadline: float,
    samples: Samples,
) -> None:
    """One viewer session: search a study's series, its metadata, then every frame, again."""
    rng = random.Random()
    while time.perf_counter() < deadline:
        series = rng.choice(catalog)
        study = f"/dicom-web/studies/{series.study}"
        samples.get(session, server.url(f"{study}/series"), "QIDO series search")
        with samples.lock:  # the metadata is kept in each instance's own data folder
            first = (server.http_port, series.uid) not in samples.seen
            samples.seen.add((server.http_port, series.uid))
        kind = "series metadata, first asked of its instance" if first else "series metadata, again"
        samples.get(session, server.url(f"{study}/series/{series.uid}/metadata"), kind)
        for sop in series.sops:
            if time.perf_counter() >= deadline:
                break
            frame = f"{study}/series/{series.uid}/instances/{sop}/frames/1"
            samples.get(session, server.url(frame), "frame")


def load(
    setup: Setup, catalog: list[Series], viewers: int, seconds: float
) -> tuple[Samples, float]:
    servers = setup.servers
    names = [f"bench-viewer-{number:03d}" for number in range(viewers)]
    for name in names:
        add_user(servers[0], name)
    sessions = [signed_in(servers[i % len(servers)], name) for i, name in enumerate(names)]
    samples = Samples()
    start = time.perf_counter()
    deadline = start + seconds
    with ThreadPoolExecutor(viewers) as pool:
        futures = [
            pool.submit(viewer, servers[i % len(servers)], session, catalog, deadline, samples)
            for i, session in enumerate(sessions)
        ]
        for future in futures:
            future.result()
    return samples, time.perf_counter() - start


# --- the run -----------------------------------------------------------------------------------


def make_catalog(root: Path, args) -> list[list[Series]]:
    """``args.rounds`` batches of ``args.associations`` series of ``args.slices`` slices."""
    batches = []
    for round_number in range(args.rounds):
        batch = []
        for number in range(args.associations):
            files = make_ct_series(root / f"dicom-{round_number}-{number}", args.slices)
            headers = [pydicom.dcmread(path, stop_before_pixels=True) for path in files]
            batch.append(
                Series(
                    headers[0].StudyInstanceUID,
                    headers[0].SeriesInstanceUID,
                    [header.SOPInstanceUID for header in headers],
                    files,
                )
            )
        batches.append(batch)
    return batches


def run(args, root: Path, cluster: ThrowawayCluster, started: list[OrthancServer]) -> None:
    batches = make_catalog(root, args)
    catalog = [series for batch in batches for series in batch]
    setups = start_setups(root, cluster, args.workers, started)
    references = start_references(root, cluster, started)
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    watch = ConnectionWatch(cluster)
    watch.start()
    rows: list[tuple[str, str]] = []

    # 1. Ingest, rounds interleaved.
    for batch in batches:
        for setup in setups + references:
            if setup.plugin:
                refresh_admin(setup)
            with CpuMeter(setup, postmaster) as meter:
                setup.ingest.append(ingest(setup, batch))
                if setup.plugin:
                    settle(setup, batch)
            setup.add_cpu("ingest", meter.used)
            setup.work["ingest"] += sum(len(series.files) for series in batch)
    per_round = f"{args.associations} associations x {args.slices} slices"
    medians = {}
    for setup in setups + references:
        medians[setup.label] = statistics.median(setup.ingest)
        spread = ", ".join(f"{value:.0f}" for value in setup.ingest)
        rows.append(
            (
                f"C-STORE ingest ({per_round}), {setup.label}",
                f"{medians[setup.label]:.0f} instances/s ({spread})",
            )
        )
    a, b, c = (medians[setup.label] for setup in setups)
    rows.append(("ingest ratio (b)/(a) (goal >= 0.8)", f"{b / a:.2f}"))
    rows.append(("ingest ratio (c)/(b) (goal >= 0.9)", f"{c / b:.2f}"))
    alone_sqlite, alone_postgresql = (medians[setup.label] for setup in references)
    rows.append(
        (
            "ingest ratio (s)/(r), Orthanc alone: its own index's share",
            f"{alone_postgresql / alone_sqlite:.2f}",
        )
    )
    for setup in setups + references:
        rows.append(cpu_row(setup, "ingest", "instances stored"))

    # 2. DICOMweb reads through the gate, set-ups interleaved per kind.
    sessions = {}
    for setup in setups:
        refresh_admin(setup)
        add_user(setup.servers[0], "bench-reader")  # (c): one user, for both instances
        sessions[setup.label] = [signed_in(server, "bench-reader") for server in setup.servers]
    for kind, suffix in READS.items():
        for setup in setups:
            with CpuMeter(setup, postmaster) as meter:
                rate, samples, errors = reads(setup, sessions[setup.label], suffix, catalog, args)
            phase = f"reads {kind}"
            setup.add_cpu(phase, meter.used)
            setup.work[phase] += len(samples)
            failed = f", {errors} errors" if errors else ""
            rows.append(
                (
                    f"{kind}, {args.threads} threads, {setup.label}",
                    f"{rate:.0f} requests/s, {figures(samples)}{failed}",
                )
            )
        for setup in setups:
            rows.append(cpu_row(setup, f"reads {kind}", "requests"))

    # 3. Jobs.
    for setup in setups:
        refresh_admin(setup)
        with CpuMeter(setup, postmaster) as meter:
            rate, nodes = drain(setup, args.jobs, args.threads)
        setup.add_cpu("jobs", meter.used)
        setup.work["jobs"] += args.jobs
        ran = ", ".join(f"{node}: {count}" for node, count in sorted(nodes.items()))
        rows.append(
            (
                f"{args.jobs} no-op jobs, {args.workers} worker(s) per instance, {setup.label}",
                f"{rate:.0f} jobs/s (ran on {ran})",
            )
        )
    for setup in setups:
        rows.append(cpu_row(setup, "jobs", "jobs"))

    # 4. Load: viewer sessions on (c).
    two = setups[2]
    refresh_admin(two)
    with CpuMeter(two, postmaster) as meter:
        samples, elapsed = load(two, catalog, args.viewers, args.minutes * 60)
    two.add_cpu("load", meter.used)
    done = samples.all()
    two.work["load"] += len(done) + samples.errors
    watch.stopping.set()
    label = f"load, {args.viewers} viewers x {args.minutes * 60:.0f} s, {two.label}"
    rows.append(
        (
            label,
            f"{len(done) + samples.errors} requests ({len(done) / elapsed:.0f}/s), "
            f"{samples.errors} errors, {figures(done) if done else '-'}",
        )
    )
    for kind, latencies in samples.latencies.items():
        rows.append((f"  {kind} ({len(latencies)})", figures(latencies)))
    for problem in samples.first_errors:
        rows.append(("  error", problem))
    rows.append(cpu_row(two, "load", "requests"))
    rows.append(("PostgreSQL client connections, most at once", f"{watch.most} (max 300)"))

    print_table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--associations", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reads", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="a smoke run, everything shrunk")
    args = parser.parse_args()
    if args.quick:
        args.slices, args.rounds, args.reads, args.jobs = 100, 1, 200, 100
        args.viewers, args.minutes = 5, 20 / 60
    # SIGTERM (timeout, kill) unwinds like Ctrl-C, so the servers and the cluster are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    started: list[OrthancServer] = []
    cluster = ThrowawayCluster()
    try:
        with tempfile.TemporaryDirectory(prefix="hounsfield-scale-") as tmp:
            try:
                cluster.start()
                run(args, Path(tmp), cluster, started)
            finally:
                for server in started:
                    try:
                        server.stop()
                    except subprocess.TimeoutExpired:
                        server.process.kill()
                        server.process.wait()
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()

"""A real Orthanc with the plugin, started the way ``make run`` starts it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from hounsfield.db.cluster import USER, ThrowawayCluster

REPOSITORY = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "Test-Pass-9876-x"
PYTHON = REPOSITORY / ".venv" / "bin" / "python"


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports: held open together while chosen, so the kernel cannot
    hand the same one out twice (two calls in a row did, once: HTTP and DICOM collided)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class OrthancServer:
    def __init__(self, workdir: Path, **settings: Any) -> None:
        """``settings`` become ``ORTHANC__...`` variables: ``hounsfield__workers=2``."""
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.http_port, self.dicom_port = free_ports(2)
        self.events_log = workdir / "events.log"
        self.lifecycle_log = workdir / "lifecycle.log"
        self.log_path = workdir / "orthanc.log"
        self.env = dict(os.environ)
        self.env.update(
            {
                "PYTHONPATH": os.pathsep.join([str(REPOSITORY / "plugin"), str(REPOSITORY)]),
                "HOUNSFIELD_TEST_EVENTS_LOG": str(self.events_log),
                "HOUNSFIELD_TEST_LIFECYCLE_LOG": str(self.lifecycle_log),
                "HOUNSFIELD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            }
        )
        defaults = {
            "http_port": self.http_port,
            "dicom_port": self.dicom_port,
            "storage_directory": str(workdir / "data"),
            "stable_age": 2,
            "hounsfield__extensions": ["tests.support.extension"],
            "hounsfield__cancel_grace_seconds": 1,
        }
        for key, value in {**defaults, **settings}.items():
            self.env[f"ORTHANC__{key.upper()}"] = json.dumps(value)
        self.process: subprocess.Popen | None = None
        self.http = requests.Session()

    @property
    def stable_age(self) -> int:
        """Orthanc's StableAge for this server, in seconds."""
        return int(json.loads(self.env["ORTHANC__STABLE_AGE"]))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 60.0, ready_path: str = "/api/health") -> OrthancServer:
        """Start and wait until ``ready_path`` answers (``/system`` for Orthanc without us)."""
        return self.attach(
            self.launch(
                [str(PYTHON), "-m", "hounsfield.launcher", str(REPOSITORY / "orthanc.json")]
            ),
            timeout,
            ready_path,
        )

    def launch(self, command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        """Run ``command`` (Orthanc, or what execs it) with this server's settings and log."""
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                command, env=env or self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPOSITORY
            )

    def attach(
        self, process: subprocess.Popen, timeout: float = 60.0, ready_path: str = "/api/health"
    ) -> OrthancServer:
        """Follow ``process`` as this server: wait until it answers, then sign in."""
        self.process = process
        wait_for(lambda: self._answers(ready_path), timeout, f"Orthanc on port {self.http_port}")
        password = self.env.get("HOUNSFIELD_ADMIN_PASSWORD")
        if ready_path == "/api/health" and password and "Authorization" not in self.http.headers:
            self.http.headers["Authorization"] = f"Bearer {self.login('admin', password)}"
        return self

    def login(self, username: str, password: str, **extra: Any) -> str:
        """Sign in; returns the access token."""
        response = requests.post(
            self.url("/api/auth/login"),
            timeout=10,
            json={"username": username, "password": password, **extra},
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def client(self, token: str | None = None) -> requests.Session:
        """A separate HTTP session, signed in with ``token`` or anonymous."""
        session = requests.Session()
        if token:
            session.headers["Authorization"] = f"Bearer {token}"
        return session

    def _answers(self, path: str) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"Orthanc exited ({self.process.returncode}):\n{self.log_tail()}")
        try:
            return self.http.get(self.url(path), timeout=2).status_code in (200, 503)
        except requests.ConnectionError:
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig`` to Orthanc and wait for it to exit; returns its exit status."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(sig)
        return self.process.wait(timeout)

    def url(self, path: str) -> str:
        return self.base_url + path

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.http.get(self.url(path), timeout=10, **kwargs)

    def post(self, path: str, *, timeout: float = 10, **kwargs: Any) -> requests.Response:
        return self.http.post(self.url(path), timeout=timeout, **kwargs)

    def submit(self, kind: str, **params: Any) -> dict[str, Any]:
        response = self.post("/api/jobs", json={"kind": kind, "params": params})
        assert response.status_code == 201, response.text
        return response.json()

    def job(self, job_id: int) -> dict[str, Any]:
        return self.get(f"/api/jobs/{job_id}").json()

    def wait_job(
        self,
        job_id: int,
        states: tuple[str, ...] = ("succeeded", "failed", "cancelled"),
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        return wait_for(
            lambda: (j := self.job(job_id))["state"] in states and j,
            timeout,
            f"job {job_id} to reach {states}",
        )

    def health(self) -> dict[str, Any]:
        return self.get("/api/health").json()

    def worker_pids(self) -> list[int]:
        return [w["pid"] for w in self.health()["components"]["workers"]["workers"] if w["alive"]]

    def store(self, *paths: Path) -> subprocess.CompletedProcess:
        """Send DICOM files with dcmtk's storescu, as a modality would (one association)."""
        return subprocess.run(
            ["storescu", "-aec", "HOUNSFIELD", "127.0.0.1", str(self.dicom_port), *map(str, paths)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env={**os.environ, "TCP_NODELAY": "1"},  # DCMTK: no Nagle stalls per C-STORE
        )

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stream:
            return stream.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def instance_settings(
    cluster: ThrowawayCluster, database: str, storage: Path, workdir: Path
) -> dict[str, Any]:
    """``OrthancServer`` settings of one instance of several sharing ``database`` (Orthanc's
    index and our tables) and ``storage``, with a data folder of its own in ``workdir``."""
    return {
        "storage_directory": str(storage),
        "postgresql__enable_index": True,
        "postgresql__host": "127.0.0.1",
        "postgresql__port": cluster.port,
        "postgresql__database": database,
        "postgresql__username": USER,
        "hounsfield__data_directory": str(workdir / "state"),
    }

"""A long-lived worker process: claims jobs from the queue and runs their handlers.

Started and supervised by the plugin (``supervisor``). It pays its imports (a native
library's first use can cost seconds) once and then serves job after job. It never outlives
Orthanc: the kernel kills it when its parent dies, and an end of file on stdin
(the parent's end of the wake-up pipe closing) makes it leave while idle.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import logging
import os
import select
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path

from hounsfield.app import build_registry
from hounsfield.config import load_settings
from hounsfield.db import Database, open_database
from hounsfield.jobs.context import JobCancelled, JobContext
from hounsfield.jobs.model import Job
from hounsfield.jobs.queue import DatabaseJobQueue, JobQueue
from hounsfield.orthanc_http import URL_VARIABLE, OrthancHttpClient
from hounsfield.registry import Registry

log = logging.getLogger("hounsfield.worker")

IDLE_POLL_SECONDS = 1.0
PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to kill this process when its parent dies, then close the start-up race."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        sys.exit("hounsfield worker: parent already gone")


class Worker:
    def __init__(
        self,
        queue: JobQueue,
        registry: Registry,
        *,
        node: str,
        name: str,
        orthanc: OrthancHttpClient | None = None,
        database: Database | None = None,
    ) -> None:
        self.queue = queue
        self.database = database
        self.registry = registry
        self.node = node
        self.name = name
        self.orthanc = orthanc

    def run_one(self) -> Job | None:
        """Claim and run at most one job; returns the job as claimed, or None when idle."""
        job = self.queue.claim(node=self.node, worker=self.name, kinds=self.registry.job_kinds)
        if job is None:
            return None
        log.info("job %s (%s) attempt %s started", job.id, job.kind, job.attempts)
        context = JobContext(self.queue, job, self.name, self.orthanc, self.database)
        try:
            result = self.registry.job_kinds[job.kind](context)
        except JobCancelled:
            self.queue.mark_cancelled(job.id, self.name)
            log.info("job %s cancelled", job.id)
        except Exception as exc:
            traceback.print_exc()
            self.queue.fail(job.id, self.name, f"{type(exc).__name__}: {exc}")
            log.warning("job %s failed: %s", job.id, exc)
        else:
            self.queue.succeed(job.id, self.name, result)
            log.info("job %s succeeded", job.id)
        return job

    def serve(self, wake_fd: int) -> None:
        while True:
            if self.run_one() is not None:
                continue
            readable, _, _ = select.select([wake_fd], [], [], IDLE_POLL_SECONDS)
            if readable and not os.read(wake_fd, 4096):
                log.info("supervisor closed the wake-up pipe; leaving")
                return


def _when_idle(warm_up: Callable[[], None]) -> None:
    """Run ``warm_up`` on CPU time nothing else wants (Linux's SCHED_IDLE, this thread only).

    Workers start with Orthanc, which is when modalities reconnect and send: at normal
    priority, a warm-up loading a native library (1.8 s of CPU) slowed the first C-STORE
    ingest on two cores (bench/jobs.py)."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux: niceness still applies
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    warm_up()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--node", required=True)
    parser.add_argument("--slot", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--extension", action="append", default=[])
    parser.add_argument(
        "--configuration", required=True, help="Orthanc's configuration as JSON (a file)"
    )
    args = parser.parse_args(argv)

    die_with_parent(args.parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is Orthanc's to handle; it stops us
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s worker[{args.slot}/{os.getpid()}] %(levelname)s %(message)s",
    )
    configuration = json.loads(Path(args.configuration).read_text())
    registry = build_registry(args.extension, configuration)
    database = open_database(load_settings(configuration).database)
    queue = DatabaseJobQueue(database)
    orthanc = OrthancHttpClient.from_environment() if URL_VARIABLE in os.environ else None
    name = f"{args.node}/{args.slot}/{os.getpid()}"
    worker = Worker(queue, registry, node=args.node, name=name, orthanc=orthanc, database=database)
    for warm_up in registry.worker_startup:  # in the background: jobs needing it just wait
        threading.Thread(target=_when_idle, args=(warm_up,), name="warm-up", daemon=True).start()
    log.info("ready; job kinds: %s", ", ".join(sorted(registry.job_kinds)) or "none")
    worker.serve(sys.stdin.fileno())


if __name__ == "__main__":
    main()

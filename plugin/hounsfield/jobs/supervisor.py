"""The plugin side of the workers: start them, watch them, restart them, stop them.

One supervisor thread owns every worker process. It spawns them (so the kernel's
parent-death signal, tied to the spawning thread, fires exactly when the plugin
goes), reaps the dead and settles their jobs through the queue, restarts them with a
back-off when they crash on start, and enforces cancellations a handler ignores.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hounsfield.jobs.queue import JobQueue

log = logging.getLogger(__name__)

SpawnWorker = Callable[[int], subprocess.Popen]

SUPERVISE_INTERVAL_SECONDS = 0.25
QUICK_EXIT_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 60.0
CRASH_LOOP_EXITS = 3


@dataclass
class WorkerSlot:
    index: int
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    quick_exits: int = 0
    next_start: float = 0.0
    last_exit: str | None = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"worker killed by {signal.Signals(-returncode).name}"
    return f"worker exited with code {returncode}"


class WorkerPool:
    def __init__(
        self,
        queue: JobQueue,
        spawn: SpawnWorker,
        *,
        size: int,
        node: str,
        cancel_grace_seconds: float,
        tick: Callable[[], None] | None = None,
        tick_interval_seconds: float = 2.0,
    ) -> None:
        self.queue = queue
        self.node = node
        self._spawn_process = spawn
        self._cancel_grace = cancel_grace_seconds
        self._tick = tick
        self._tick_interval = tick_interval_seconds
        self._slots = [WorkerSlot(index) for index in range(size)]
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def size(self) -> int:
        return len(self._slots)

    def worker_name(self, slot: WorkerSlot) -> str:
        assert slot.process is not None
        return f"{self.node}/{slot.index}/{slot.process.pid}"

    def start(self) -> None:
        """Settle jobs left running by a previous run of this node, then start the workers."""
        recovered = self.queue.recover(
            node=self.node, reason="Orthanc restarted", count_attempt=True
        )
        for job in recovered:
            log.warning(
                "job %s (%s) was running when Orthanc stopped; queued again", job.id, job.kind
            )
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="hounsfield-workers", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every worker; jobs they were running go back to the queue, attempt refunded."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        """Tell idle workers a job is waiting (they would otherwise notice within a second)."""
        with self._lock:
            for slot in self._slots:
                if slot.alive():
                    try:
                        slot.process.stdin.write(b"\n")
                        slot.process.stdin.flush()
                    except OSError:
                        pass  # it died; the supervisor thread will reap it

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "slot": slot.index,
                    "pid": slot.process.pid if slot.alive() else None,
                    "alive": slot.alive(),
                    "restarts": slot.restarts,
                    "crashLooping": slot.quick_exits >= CRASH_LOOP_EXITS,
                    "lastExit": slot.last_exit,
                }
                for slot in self._slots
            ]

    def healthy(self) -> bool:
        return all(worker["alive"] and not worker["crashLooping"] for worker in self.status())

    def _run(self) -> None:
        next_tick = 0.0
        while not self._stopping.is_set():
            try:
                self._supervise_once()
                if self._tick is not None and time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self._tick_interval
                    self._tick()
            except Exception:
                log.exception("worker supervision failed; retrying")
            self._stopping.wait(SUPERVISE_INTERVAL_SECONDS)
        self._terminate_all()
        for job in self.queue.recover(
            node=self.node, reason="Orthanc stopped", count_attempt=False
        ):
            log.info("job %s (%s) interrupted by shutdown; will resume", job.id, job.kind)

    def _supervise_once(self) -> None:
        now = time.monotonic()
        with self._lock:
            for slot in self._slots:
                if slot.process is not None and slot.process.poll() is not None:
                    self._reap(slot, now)
                elif slot.alive() and now - slot.started_at >= QUICK_EXIT_SECONDS:
                    slot.quick_exits = 0  # it has stayed up: no longer crash-looping
                if slot.process is None and now >= slot.next_start:
                    self._spawn(slot, now)
        for job in self.queue.cancel_overdue(node=self.node, grace_seconds=self._cancel_grace):
            self._kill_worker_of(job.worker, f"job {job.id} ignored its cancellation")

    def _spawn(self, slot: WorkerSlot, now: float) -> None:
        try:
            slot.process = self._spawn_process(slot.index)
        except OSError as error:
            log.error("cannot start worker %s: %s", slot.index, error)
            slot.last_exit = f"cannot start: {error}"
            self._back_off(slot, now)
            return
        slot.started_at = now
        log.info("worker %s started (pid %s)", slot.index, slot.process.pid)

    def _reap(self, slot: WorkerSlot, now: float) -> None:
        reason = describe_exit(slot.process.returncode)
        for job in self.queue.recover(
            node=self.node, worker=self.worker_name(slot), reason=reason, count_attempt=True
        ):
            log.warning("job %s (%s): %s; queued again", job.id, job.kind, reason)
        log.warning("worker %s (pid %s): %s", slot.index, slot.process.pid, reason)
        slot.process.stdin.close()
        slot.process = None
        slot.restarts += 1
        slot.last_exit = reason
        if now - slot.started_at < QUICK_EXIT_SECONDS:
            self._back_off(slot, now)

    def _back_off(self, slot: WorkerSlot, now: float) -> None:
        slot.quick_exits += 1
        slot.next_start = now + min(MAX_BACKOFF_SECONDS, 0.5 * 2**slot.quick_exits)

    def _kill_worker_of(self, worker: str | None, why: str) -> None:
        with self._lock:
            for slot in self._slots:
                if slot.alive() and self.worker_name(slot) == worker:
                    log.warning("killing worker %s: %s", slot.index, why)
                    slot.process.kill()

    def _terminate_all(self, grace_seconds: float = 5.0) -> None:
        with self._lock:
            alive = [slot.process for slot in self._slots if slot.alive()]
            for process in alive:
                process.stdin.close()
                process.terminate()
            deadline = time.monotonic() + grace_seconds
            for process in alive:
                try:
                    process.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            for slot in self._slots:
                slot.process = None

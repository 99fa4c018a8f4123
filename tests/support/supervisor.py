"""What systemd does with systemd/hounsfield.service, reduced to what a crash exercises:
the unit's commands and environment, started again under its Restart=on-failure and
RestartSec. The unit itself is checked by systemd-analyze (there is no systemd to run it
in a test); what is tested here is that what it starts comes back whole."""

from __future__ import annotations

import configparser
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.server import REPOSITORY, OrthancServer

UNIT = REPOSITORY / "systemd" / "hounsfield.service"
# Restart=on-failure restarts on any exit but these (systemd.service(5)).
CLEAN_SIGNALS = {signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE}


def render_unit(target: Path) -> Path:
    """The unit as `make service` installs it, for this clone."""
    target.write_text(UNIT.read_text().replace("@REPOSITORY@", str(REPOSITORY)))
    return target


@dataclass(frozen=True)
class Unit:
    exec_start_pre: list[str]
    exec_start: list[str]
    environment: dict[str, str]
    restart: str
    restart_seconds: float

    @classmethod
    def read(cls, path: Path) -> Unit:
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.optionxform = str  # keys keep their case
        parser.read(path)
        service = parser["Service"]
        name, _, value = service["Environment"].partition("=")
        return cls(
            exec_start_pre=shlex.split(service["ExecStartPre"]),
            exec_start=shlex.split(service["ExecStart"]),
            environment={name: value},
            restart=service["Restart"],
            restart_seconds=float(service["RestartSec"]),
        )


class Supervisor:
    def __init__(self, unit: Unit, server: OrthancServer) -> None:
        assert unit.restart == "on-failure"
        self.unit = unit
        self.server = server
        self.starts = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._start_service()
        self.server.attach(self.server.process)
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _start_service(self) -> None:
        env = {**self.unit.environment, **self.server.env}  # the test's ports and folders
        subprocess.run(self.unit.exec_start_pre, env=env, check=True, capture_output=True)
        self.server.process = self.server.launch(self.unit.exec_start, env)
        self.starts += 1

    def _watch(self) -> None:
        while not self._stopping.is_set():
            code = self.server.process.wait()
            failed = code > 0 or (code < 0 and signal.Signals(-code) not in CLEAN_SIGNALS)
            if self._stopping.is_set() or not failed:
                return
            time.sleep(self.unit.restart_seconds)
            self._start_service()

    def stop(self) -> int:
        """systemctl stop: SIGTERM to the main process, then its exit status."""
        self._stopping.set()
        self.server.process.send_signal(signal.SIGTERM)
        code = self.server.process.wait(60)
        if self._thread is not None:
            self._thread.join(10)
        return code

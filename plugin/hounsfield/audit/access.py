"""Recording accesses without flooding the trail.

A viewer opening a study makes hundreds of DICOMweb requests; they become one
"study.view" entry per user, study and session. Other repeated events (the same search,
the same refusal) are written once per short window.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from hounsfield.audit.trail import AuditEntry, AuditTrail

MEMORY = 100_000
REPEAT_WINDOW_SECONDS = 10.0


class AccessRecorder:
    def __init__(self, trail: AuditTrail, window_seconds: float = REPEAT_WINDOW_SECONDS) -> None:
        self.trail = trail
        self._window = window_seconds
        self._seen: OrderedDict[tuple, float] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, entry: AuditEntry, *, session_id: str | None = None) -> bool:
        """Append ``entry`` unless it repeats a recent one; True when written."""
        if entry.action == "study.view" and entry.outcome == "allowed" and entry.study_uid:
            key: tuple = ("view", session_id or entry.ip, entry.username, entry.study_uid)
            window = float("inf")  # once per session
        else:
            key = (entry.action, entry.outcome, entry.username, entry.ip, entry.resource)
            window = self._window
        now = time.monotonic()
        with self._lock:
            last = self._seen.get(key)
            if last is not None and now - last < window:
                return False
            self._seen[key] = now
            self._seen.move_to_end(key)
            if len(self._seen) > MEMORY:
                self._seen.popitem(last=False)
        self.trail.append(entry)
        return True

"""The gate's decision on a request, carried from Orthanc's HTTP filter to what runs next
on the same HTTP thread: our route (which answers a refusal in JSON without deciding
again) or the storing of an object the request sent (audited under its user).

Keyed by OS thread id: the Python plugin gives each callback a fresh thread state, so
``threading.local()`` would forget between the filter and the route. One entry per
Orthanc HTTP thread, replaced by that thread's next request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from hounsfield.auth.gate import Decision


@dataclass(frozen=True)
class Handed:
    method: str
    path: str
    ip: str
    decision: Decision


class DecisionHandOff:
    def __init__(self) -> None:
        self._by_thread: dict[int, Handed] = {}

    def leave(self, method: str, path: str, ip: str, decision: Decision) -> None:
        self._by_thread[threading.get_ident()] = Handed(method, path, ip, decision)

    def take(self, method: str, path: str) -> Handed | None:
        """The decision the filter left for this very request, once."""
        handed = self._by_thread.pop(threading.get_ident(), None)
        if handed is None or (handed.method, handed.path) != (method, path):
            return None
        return handed

    def current(self) -> Handed | None:
        """The decision on the request this thread serves, if it serves one."""
        return self._by_thread.get(threading.get_ident())

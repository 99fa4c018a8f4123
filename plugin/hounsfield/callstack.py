"""Our callbacks run off Orthanc's 100 KiB C stacks, on threads with an ordinary stack.

Orthanc calls the plugin on its own HTTP and DICOM threads, whose C stacks are 100 KiB
(measured). Every parser of untrusted input is bounded (``hounsfield.untrusted``), but
any recursion in C that nobody foresaw would still end the whole server on such a
stack, where a thread with an ordinary 8 MiB stack raises ``RecursionError`` at Python's
limit and the request gets an error instead. So the adapter hands each callback to one
of these threads and waits for it: a hand-off costs tens of microseconds (bench/gate.py).

The SDK services our callbacks use (REST calls, lookups, logs, answers) need none of the
locks Orthanc holds while it runs a store callback, so calling them from here cannot
deadlock; a callback already running here runs its nested calls inline.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

Result = TypeVar("Result")
STACK_BYTES = 8 << 20


class FullStackThreads:
    def __init__(self, threads: int, *, stack_bytes: int = STACK_BYTES) -> None:
        self._tasks: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        self._idents: set[int] = set()
        previous = threading.stack_size(stack_bytes)  # for the threads started here only
        try:
            for number in range(threads):
                threading.Thread(
                    target=self._serve, name=f"hounsfield-call-{number}", daemon=True
                ).start()
        finally:
            threading.stack_size(previous)

    def call(self, function: Callable[..., Result], /, *args: Any, **kwargs: Any) -> Result:
        """``function(*args, **kwargs)`` on one of these threads; its result or exception."""
        if threading.get_ident() in self._idents:
            return function(*args, **kwargs)
        future: Future[Result] = Future()
        self._tasks.put((future, lambda: function(*args, **kwargs)))
        return future.result()

    def _serve(self) -> None:
        self._idents.add(threading.get_ident())
        while True:
            future, task = self._tasks.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(task())
            except BaseException as error:  # handed to the waiting Orthanc thread
                future.set_exception(error)

"""Running code as Orthanc runs our callbacks: on a thread with a 100 KiB C stack
(measured on Orthanc 1.10's HTTP threads), where a parser recursing in C crashes the
process instead of raising RecursionError."""

from __future__ import annotations

import threading
from collections.abc import Callable

ORTHANC_HTTP_STACK = 100 * 1024


def outcome_on_small_stack(function: Callable[[], object]) -> object:
    """What ``function()`` returns or raises (the exception is returned, not raised) when
    run on such a thread; the test process dies if it recurses too deep in C."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(function())
        except BaseException as error:  # handed back to the test thread
            outcome.append(error)

    previous = threading.stack_size(ORTHANC_HTTP_STACK)
    try:
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
    finally:
        threading.stack_size(previous)
    return outcome[0]

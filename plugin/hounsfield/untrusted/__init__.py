"""Parsers for what senders send, each bounded before it runs.

Our code runs on Orthanc's own threads, whose C stacks are 100 KiB (measured): a parser
that recurses in C once per nesting level (``json``, expat, a DICOM reader) kills the
whole server on input nested deep enough, long before Python's recursion limit would
raise. Each parser here first measures what it is about to parse (size, nesting) without
recursing, and refuses with ``InputRefused`` naming the configured limit.
"""

from __future__ import annotations


class InputRefused(ValueError):
    """Input that is malformed or over a limit; the message is safe to show the sender."""

    def __init__(self, message: str, *, limit: str | None = None, too_large: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.limit = limit  # the configuration key that bounds it, e.g. "Limits.JsonDepth"
        self.too_large = too_large  # a size limit (HTTP 413) rather than a malformed input (400)

"""Timestamps as stored and shown: ISO 8601 in UTC, millisecond precision."""

from datetime import UTC, datetime, timedelta


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def age_seconds(iso_timestamp: str) -> float:
    return (datetime.now(UTC) - datetime.fromisoformat(iso_timestamp)).total_seconds()


def iso_seconds_ago(seconds: float) -> str:
    """The timestamp ``seconds`` ago, comparable as text with ``now_iso`` values."""
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(timespec="milliseconds")

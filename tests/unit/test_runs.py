"""Runs of Orthanc: a clean stop closes one; a run left open counts as an unclean stop."""

from __future__ import annotations

from hounsfield.clock import iso_seconds_ago
from hounsfield.db import Database
from hounsfield.runs import RunLog


def test_only_runs_left_open_count_as_unclean_stops(database: Database) -> None:
    first = RunLog(database, "node-a")
    first.begin()
    first.end()  # Ctrl-C, SIGTERM
    crashed = RunLog(database, "node-a")
    crashed.begin()  # ...then SIGSEGV: never ended
    restarted = RunLog(database, "node-a")
    restarted.begin()
    summary = restarted.summary()
    assert (summary.starts, summary.unclean_stops) == (3, 1)
    assert summary.started_at is not None and summary.last_unclean_stop is not None
    restarted.end()
    again = RunLog(database, "node-a")
    again.begin()
    assert again.summary().unclean_stops == 1  # a clean stop adds nothing


def test_each_node_counts_its_own_runs(database: Database) -> None:
    RunLog(database, "node-a").begin()
    other = RunLog(database, "node-b")
    other.begin()
    assert (other.summary().starts, other.summary().unclean_stops) == (1, 0)


def test_a_silent_peer_is_closed_once_and_live_ones_are_listed(database: Database) -> None:
    a, b, c = (RunLog(database, name) for name in ("a", "b", "c"))
    for run in (a, b, c):
        run.begin()
    # b's last heartbeat was a minute ago; a and c beat now.
    database.execute(
        "UPDATE orthanc_runs SET heartbeat_at = ? WHERE node = 'b'", (iso_seconds_ago(60),)
    )
    a.heartbeat()
    assert [peer["node"] for peer in a.peers(30)] == ["a", "c"]
    assert a.close_silent(30) == ["b"]
    assert c.close_silent(30) == []  # already closed by a: one sweeper per silent node
    assert b.summary().unclean_stops == 1
    b.heartbeat()  # b wakes up: its closed run stays closed
    assert [peer["node"] for peer in c.peers(30)] == ["a", "c"]
    # A run left open before heartbeats existed (no heartbeat at all) is closed as well.
    database.execute(
        "INSERT INTO orthanc_runs (node, started_at) VALUES ('old-name', ?)", (iso_seconds_ago(9),)
    )
    assert c.close_silent(30) == ["old-name"]

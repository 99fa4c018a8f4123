"""Failed sends retried with doubling delays, then given up (``hounsfield.routing.retries``)."""

from __future__ import annotations

from typing import Any

from hounsfield.routing.retries import Retries, RetryPolicy


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def job(state: str, job_id: str = "j1", kind: str = "DicomModalityStore") -> dict[str, Any]:
    return {
        "ID": job_id,
        "Type": kind,
        "State": state,
        "ErrorDescription": "DicomAssociation - connection refused",
        "Content": {"RemoteAet": "PACS", "ParentResources": ["series-1"]},
    }


def run_down_destination(retries: Retries, clock: Clock, seconds: float) -> list[float]:
    """The destination refuses every attempt; the times (from 0) of each resubmission."""
    start, times = clock.now, []
    while clock.now - start < seconds:
        for due in retries.due([job("Failure")]):
            retries.resubmitted(due)
            times.append(clock.now - start)
        clock.now += 0.25
    return times


def test_delays_double_up_to_the_maximum_then_the_send_is_given_up() -> None:
    clock = Clock()
    retries = Retries(RetryPolicy(attempts=5, first_delay=1.0, max_delay=4.0), clock)
    times = run_down_destination(retries, clock, 60)
    # 1, 2, 4, 4, 4 s after each failure (failures are seen at the polls right after)
    assert [round(b - a, 2) for a, b in zip([0.0, *times], times, strict=False)] == [
        1.0,
        2.25,
        4.25,
        4.25,
        4.25,
    ]
    report = retries.report()
    assert not report["healthy"] and not report["retrying"]
    assert report["gaveUp"][0] | {"failures": 6} == report["gaveUp"][0]
    assert (
        report["gaveUp"][0]["destination"] == "PACS" and "refused" in report["gaveUp"][0]["error"]
    )
    assert "failed 6 times" in report["problem"]


def test_a_send_that_succeeds_is_forgotten_and_other_jobs_are_ignored() -> None:
    clock = Clock()
    retries = Retries(RetryPolicy(attempts=3, first_delay=1.0, max_delay=1.0), clock)
    assert retries.due([job("Failure"), job("Failure", "j2", kind="Archive")]) == []
    assert [r["job"] for r in retries.report()["retrying"]] == ["j1"]
    clock.now += 1
    assert retries.due([job("Failure")]) == ["j1"]
    retries.resubmitted("j1")
    retries.due([job("Running")])
    assert retries.report()["sending"] == 1 and retries.report()["retrying"]
    retries.due([job("Success")])
    assert retries.report() | {"policy": None} == {
        "healthy": True,
        "sending": 0,
        "retrying": [],
        "gaveUp": [],
        "policy": None,
    }


def test_a_given_up_send_resubmitted_by_hand_is_retried_again() -> None:
    clock = Clock()
    retries = Retries(RetryPolicy(attempts=1, first_delay=1.0, max_delay=1.0), clock)
    run_down_destination(retries, clock, 10)
    assert retries.report()["gaveUp"]
    retries.due([job("Pending")])  # an admin resubmitted it
    assert retries.report()["healthy"]
    assert retries.due([job("Failure")]) == []
    clock.now += 1
    assert retries.due([job("Failure")]) == ["j1"]


def test_a_job_gone_from_orthancs_history_is_forgotten() -> None:
    retries = Retries(RetryPolicy(attempts=1, first_delay=1.0, max_delay=1.0), Clock())
    retries.due([job("Failure")])
    retries.due([])
    assert retries.report()["retrying"] == [] and retries.report()["healthy"]

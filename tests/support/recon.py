"""Following reconstruction jobs from tests."""

from __future__ import annotations

from tests.support.server import OrthancServer, wait_for


def reconstruction_of(orthanc: OrthancServer, series_id: str, timeout: float = 120) -> dict:
    """The automatic reconstruction job of a projection series, once it has finished."""

    def find() -> dict | None:
        jobs = orthanc.get("/api/jobs", params={"kind": "recon.fdk", "limit": 500}).json()["jobs"]
        return next((job for job in jobs if job["params"]["series"] == series_id), None)

    job = wait_for(find, 30, f"a reconstruction job for series {series_id}")
    return orthanc.wait_job(job["id"], timeout=timeout)

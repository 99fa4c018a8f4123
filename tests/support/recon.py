"""Uploading acquisitions and following reconstruction jobs, for tests and benchmarks."""

from __future__ import annotations

import json

import requests
from urllib3 import encode_multipart_formdata

from tests.support.server import OrthancServer, wait_for

# A simulated acquisition small enough for a test: 90 projections of 64 x 48, reconstructed
# to 64 x 48 x 64 in well under a second.
SMALL_ACQUISITION = {
    "projections": 90,
    "detector_columns": 64,
    "detector_rows": 48,
    "pixel_spacing_mm": 1.0,
}


def upload_acquisition(
    orthanc: OrthancServer,
    files: list[bytes],
    geometry: dict | str | None,
    xml: bytes | None = None,
    *,
    timeout: float = 10,
) -> requests.Response:
    """POST /api/acquisitions: a multipart/mixed body whose parts are named as in a form."""
    fields: list[tuple[str, tuple[str, bytes | str, str]]] = [
        ("projections", (f"p{n}.tif", content, "image/tiff")) for n, content in enumerate(files)
    ]
    if geometry is not None:
        text = geometry if isinstance(geometry, str) else json.dumps(geometry)
        fields.append(("geometry", ("geometry.json", text, "application/json")))
    if xml is not None:
        fields.append(("rtk_geometry", ("geometry.xml", xml, "application/xml")))
    body, content_type = encode_multipart_formdata(fields)
    mixed = content_type.replace("multipart/form-data", "multipart/mixed")
    return orthanc.post(
        "/api/acquisitions", data=body, headers={"Content-Type": mixed}, timeout=timeout
    )


def reconstruction_of(orthanc: OrthancServer, series_id: str, timeout: float = 120) -> dict:
    """The automatic reconstruction job of a projection series, once it has finished."""

    def find() -> dict | None:
        jobs = orthanc.get("/api/jobs", params={"kind": "recon.reconstruct", "limit": 500}).json()[
            "jobs"
        ]
        return next((job for job in jobs if job["params"]["series"] == series_id), None)

    job = wait_for(find, 30, f"a reconstruction job for series {series_id}")
    return orthanc.wait_job(job["id"], timeout=timeout)

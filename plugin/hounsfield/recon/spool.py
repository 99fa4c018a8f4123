"""Uploads waiting for a worker: one directory per upload, under the plugin's data folder.

The REST callback only writes the parts it has checked; a worker decodes and archives
them. The directory is complete before its job exists (written under a temporary name,
then renamed), and the job removes it once the projections are in Orthanc.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

PROJECTION_PREFIX = "projection-"
GEOMETRY_FILE = "geometry.json"
RTK_GEOMETRY_FILE = "geometry.xml"


@dataclass(frozen=True)
class SpooledUpload:
    projections: list[bytes]
    geometry_json: bytes
    rtk_geometry: bytes | None


def spool(root: Path, upload: SpooledUpload) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    name = uuid.uuid4().hex
    partial = root / f".{name}.partial"
    partial.mkdir()
    for number, content in enumerate(upload.projections):
        (partial / f"{PROJECTION_PREFIX}{number:05d}.tif").write_bytes(content)
    (partial / GEOMETRY_FILE).write_bytes(upload.geometry_json)
    if upload.rtk_geometry is not None:
        (partial / RTK_GEOMETRY_FILE).write_bytes(upload.rtk_geometry)
    directory = root / name
    partial.rename(directory)
    return directory


def read(directory: Path) -> SpooledUpload:
    """FileNotFoundError when the upload is no longer (or was never) spooled."""
    rtk_file = directory / RTK_GEOMETRY_FILE
    return SpooledUpload(
        projections=[
            path.read_bytes() for path in sorted(directory.glob(f"{PROJECTION_PREFIX}*.tif"))
        ],
        geometry_json=(directory / GEOMETRY_FILE).read_bytes(),
        rtk_geometry=rtk_file.read_bytes() if rtk_file.exists() else None,
    )


def discard(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)

"""Uploads waiting for a worker: one directory per upload, under the plugin's data folder.

The REST callback only writes the parts it has checked; a worker decodes and archives
them. The directory is complete before its job exists (written under a temporary name,
then renamed), and the job removes it once the projections are in Orthanc.
"""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

PROJECTION_PREFIX = "projection-"
# Older than this and read by no waiting job: abandoned (its job crashed MaxAttempts times,
# or the write was cut short). Younger ones may belong to a request still submitting.
ABANDONED_AFTER_SECONDS = 3600
GEOMETRY_FILE = "geometry.json"


@dataclass(frozen=True)
class SpooledUpload:
    directory: Path
    projections: list[Path]  # TIFF files, in acquisition order
    geometry_json: bytes  # the checked parameters (an RTK XML orbit already folded in)


def spool(root: Path, projections: list[memoryview], geometry_json: bytes) -> SpooledUpload:
    """Write an upload's parts (the writes leave the GIL to Orthanc's other requests)."""
    root.mkdir(parents=True, exist_ok=True)
    name = uuid.uuid4().hex
    partial = root / f".{name}.partial"
    partial.mkdir()
    try:
        for number, content in enumerate(projections):
            with (partial / f"{PROJECTION_PREFIX}{number:05d}.tif").open("wb") as file:
                file.write(content)
        (partial / GEOMETRY_FILE).write_bytes(geometry_json)
    except OSError:
        discard(partial)  # a full disk leaves nothing half-written behind
        raise
    directory = root / name
    partial.rename(directory)
    return read(directory)


def read(directory: Path) -> SpooledUpload:
    """FileNotFoundError when the upload is no longer (or was never) spooled."""
    return SpooledUpload(
        directory=directory,
        projections=sorted(directory.glob(f"{PROJECTION_PREFIX}*.tif")),
        geometry_json=(directory / GEOMETRY_FILE).read_bytes(),
    )


def discard(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def prune_abandoned(root: Path, live: set[Path], now: float | None = None) -> list[Path]:
    """Remove spooled uploads no waiting job will read (``live``: those that one will)."""
    if not root.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - ABANDONED_AFTER_SECONDS
    pruned = [
        folder
        for folder in root.iterdir()
        if folder.is_dir() and folder not in live and folder.stat().st_mtime < cutoff
    ]
    for folder in pruned:
        discard(folder)
    return pruned

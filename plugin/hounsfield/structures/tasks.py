"""The ``structures.read`` job: an RTSTRUCT series read in a worker, kept in our table.

Each instance of the series is one structure set. Its referenced image series, when this
server holds it, gives the slice spacing and the pixels for each ROI's HU statistics; it
is loaded as one volume (``hounsfield.volume``: checked, sorted, in HU), capped at
``MaxVoxels``. Anything wrong with the references is said in the answer's ``images``, and
the volumes then come from the contours alone; anything wrong with an ROI is said on that
ROI (``rtstruct``): the series is never refused as a whole.
"""

from __future__ import annotations

import io
from typing import Any

import pydicom
from pydicom.dataset import Dataset

from hounsfield.api import JobContext, OrthancApi
from hounsfield.structures.rtstruct import Grid, read_structures
from hounsfield.structures.settings import StructuresSettings
from hounsfield.structures.store import StructureStore
from hounsfield.volume import Volume, VolumeError, load_series


def read(job: JobContext, settings: StructuresSettings) -> dict[str, Any]:
    series_id, study_id = job.params["series"], job.params["study"]
    series = job.orthanc.get_json(f"/series/{series_id}")
    sets = []
    for instance in series["Instances"]:
        ds = pydicom.dcmread(io.BytesIO(job.orthanc.get_bytes(f"/instances/{instance}/file")))
        images, volume = referenced_images(job.orthanc, ds, settings.max_voxels)
        grid = _grid(volume) if volume is not None else None
        voxels = volume.voxels if volume is not None else None
        structures = read_structures(ds, grid, voxels).to_json()
        sets.append({"instance": instance, **structures, "images": images})
        job.progress(100 * len(sets) / len(series["Instances"]))
    StructureStore(job.database).save(
        series_id, study_id, job.params["content"], {"structureSets": sets}
    )
    return {"series": series_id, "rois": sum(len(s["rois"]) for s in sets)}


def referenced_images(
    orthanc: OrthancApi, ds: Dataset, max_voxels: int
) -> tuple[dict[str, Any], Volume | None]:
    """What the structure set says of its images, and them as a volume when usable."""
    wanted = _referenced_series(ds)
    answer: dict[str, Any] = {"series": wanted, "present": None, "problem": None}
    for uid in wanted:
        found = orthanc.post_json(
            "/tools/find", {"Level": "Series", "Query": {"SeriesInstanceUID": uid}}
        )
        if not found:
            continue
        answer["present"] = found[0]
        try:
            volume = load_series(orthanc, found[0], max_voxels=max_voxels).volume
        except VolumeError as error:
            answer["problem"] = f"the referenced images cannot be used: {error}"
            return answer, None
        frames = {str(ds.get("FrameOfReferenceUID", ""))} | _frames(ds)
        if volume.frame_of_reference not in frames:
            answer["problem"] = (
                "the referenced images are in another frame of reference"
                f" ({volume.frame_of_reference})"
            )
            return answer, None
        return answer, volume
    answer["problem"] = (
        "the referenced images are not on this server: volumes from the contours' spacing,"
        " no HU statistics"
        if wanted
        else "the structure set names no image series"
    )
    return answer, None


def _referenced_series(ds: Dataset) -> list[str]:
    uids: list[str] = []
    for frame in ds.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                uid = str(series.get("SeriesInstanceUID", ""))
                if uid and uid not in uids:
                    uids.append(uid)
    return uids


def _frames(ds: Dataset) -> set[str]:
    return {
        str(frame.get("FrameOfReferenceUID", ""))
        for frame in ds.get("ReferencedFrameOfReferenceSequence", [])
    }


def _grid(volume: Volume) -> Grid:
    slices, rows, columns = volume.voxels.shape
    return Grid(volume.origin, volume.orientation, volume.spacing, (slices, rows, columns))

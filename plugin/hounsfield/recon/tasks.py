"""The job handlers of reconstruction, run in worker processes."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from hounsfield.dicom_objects import STUDY_ATTRIBUTES, encode
from hounsfield.jobs.context import JobContext
from hounsfield.recon import spool
from hounsfield.recon.candidates import header_in_orthanc
from hounsfield.recon.ct_series import SeriesInfo, ct_slices, to_hounsfield
from hounsfield.recon.geometry import CircularGeometry
from hounsfield.recon.methods import METHODS, Problem
from hounsfield.recon.params import (
    WATER_ATTENUATION_PER_MM,
    ReconstructionRequest,
    SimulationRequest,
)
from hounsfield.recon.projections import (
    ProjectionError,
    build_projection_dataset,
    coarsen,
    geometry_of,
    projection_instance_uid,
    read_acquisition,
)
from hounsfield.recon.qc import quality_figures
from hounsfield.recon.upload import GeometryParameters, acquisition_geometry, read_projections

OUTPUT_SERIES_NUMBER = 200
PREVIEW_VOXELS = 128
PREVIEW_PROJECTIONS = 120  # every 3 degrees of a full turn: enough to judge a preview


def _engine():
    from hounsfield.recon import engine  # ITK/RTK: loaded by the worker's warm-up

    return engine


def _preview_voxels(geometry: CircularGeometry, preview: bool) -> int | None:
    """A preview works at the binned detector's resolution, at most PREVIEW_VOXELS across."""
    if not preview:
        return None
    return max(16, min(PREVIEW_VOXELS, geometry.default_volume().size[0]))


def simulate(job: JobContext) -> dict[str, Any]:
    """Project the Shepp-Logan phantom and store the projections, as a scanner would."""
    request = SimulationRequest.model_validate(job.params)
    geometry = request.geometry()
    radius = request.phantom_radius_mm or 0.8 * geometry.field_of_view_radius()
    job.progress(10, "projecting the phantom")
    line_integrals = _engine().shepp_logan_projections(geometry, radius)
    expected = request.i0 * np.exp(-WATER_ATTENUATION_PER_MM * line_integrals)
    if request.noise:
        expected = np.random.default_rng(job.job.id).poisson(expected)
    counts = np.clip(np.rint(expected), 1, 65535).astype(np.uint16)
    now = datetime.now(UTC)
    study = {
        **request.order_attributes(),
        "PatientID": request.patient_id,
        "PatientName": request.patient_name,
        "StudyDescription": request.study_description,
        "StudyID": str(job.job.id),
        "StudyDate": now.strftime("%Y%m%d"),
        "StudyTime": now.strftime("%H%M%S"),
    }
    dataset = build_projection_dataset(
        counts,
        geometry,
        request.i0,
        study,
        uid_seed=f"simulation:{job.job.id}",
        series_description=f"CBCT projections, Shepp-Logan r={radius:.0f} mm"
        + (" (noisy)" if request.noise else ""),
    )
    job.progress(80, "storing the projections")
    stored = job.orthanc.store(encode(dataset))
    return {
        "study": stored["ParentStudy"],
        "series": stored["ParentSeries"],
        "instance": stored["ID"],
        "phantomRadiusMm": radius,
        "studyInstanceUid": dataset.StudyInstanceUID,
    }


def archive_upload(job: JobContext) -> dict[str, Any]:
    """Decode a spooled TIFF upload and store it as a DICOM projection series.

    UIDs derive from the job, so a retry after a crash stores the same object again
    (Orthanc keeps one); the spool goes once the object is in Orthanc.
    """
    directory = Path(job.params["spool"])
    uid_seed = f"upload:{job.job.id}"
    try:
        upload = spool.read(directory)
    except FileNotFoundError:
        return _already_archived(job, uid_seed)
    try:
        stored, geometry = _archive(job, upload, uid_seed)
    except Exception:
        # The job ends here (failed or cancelled): nothing will read the spool again. A
        # crash (no exception) keeps it for the retry.
        spool.discard(directory)
        raise
    spool.discard(directory)
    return _archived(stored, geometry)


def _archived(stored: dict[str, Any], geometry: CircularGeometry) -> dict[str, Any]:
    """The result of an archiving job, the same whichever attempt stored the object."""
    return {
        "study": stored["ParentStudy"],
        "series": stored["ParentSeries"],
        "instance": stored["ID"],
        "projections": len(geometry.angles),
        "detector": list(geometry.detector_size),
        "shortScan": geometry.short_scan,
    }


def _archive(
    job: JobContext, upload: spool.SpooledUpload, uid_seed: str
) -> tuple[dict[str, Any], CircularGeometry]:
    parameters = GeometryParameters.model_validate_json(upload.geometry_json)
    job.progress(10, "decoding projections")
    counts = read_projections(upload.projections)
    geometry = acquisition_geometry(parameters, counts.shape)
    study = {
        **parameters.order_attributes(),
        "PatientID": parameters.patient_id,
        "PatientName": parameters.patient_name,
        "StudyDescription": parameters.study_description,
    }
    dataset = build_projection_dataset(
        counts,
        geometry,
        parameters.i0,
        study,
        series_description="CBCT projections (uploaded)",
        uid_seed=uid_seed,
    )
    job.progress(60, "storing the projections")
    return job.orthanc.store(encode(dataset)), geometry


def _already_archived(job: JobContext, uid_seed: str) -> dict[str, Any]:
    """A retry after the object was stored and its spool removed: answer from Orthanc."""
    instance = job.orthanc.find_instance(projection_instance_uid(uid_seed))
    if instance is None:
        raise ProjectionError(f"upload {job.params['spool']} is no longer spooled")
    series = job.orthanc.get_json(f"/instances/{instance}")["ParentSeries"]
    study = job.orthanc.get_json(f"/series/{series}")["ParentStudy"]
    geometry, _ = geometry_of(header_in_orthanc(job.orthanc, instance))
    return _archived({"ID": instance, "ParentSeries": series, "ParentStudy": study}, geometry)


@dataclass(frozen=True)
class LoadedProjections:
    instance: str
    source: Dataset  # the header, without its pixels
    line_integrals: np.ndarray
    geometry: CircularGeometry


# The last projection series this worker read: tuning the same acquisition again and
# again (previews above all) then skips fetching and decoding hundreds of MB.
_last_loaded: LoadedProjections | None = None


def _load_projections(job: JobContext, series_id: str) -> LoadedProjections:
    global _last_loaded
    instance = job.orthanc.get_json(f"/series/{series_id}")["Instances"][0]
    if _last_loaded is not None and _last_loaded.instance == instance:
        return _last_loaded
    _last_loaded = None  # free the previous one before reading the next
    job.progress(2, "reading projections")
    source = pydicom.dcmread(io.BytesIO(job.orthanc.get_bytes(f"/instances/{instance}/file")))
    acquisition = read_acquisition(source)
    del source.PixelData
    _last_loaded = LoadedProjections(
        instance, source, acquisition.line_integrals(), acquisition.geometry
    )
    return _last_loaded


def reconstruct(job: JobContext) -> dict[str, Any]:
    """Reconstruct one projection series into a CT series of the same study."""
    request = ReconstructionRequest.model_validate(job.params)
    loaded = _load_projections(job, request.series)
    source, line_integrals, geometry = loaded.source, loaded.line_integrals, loaded.geometry
    if request.preview:
        line_integrals, geometry = coarsen(
            line_integrals, geometry, max_projections=PREVIEW_PROJECTIONS
        )
    grid = geometry.default_volume(request.voxels or _preview_voxels(geometry, request.preview))
    problem = Problem(request, line_integrals, geometry, grid, job.progress)
    result, method = METHODS[request.method](problem)
    nx, ny, nz = grid.size
    description = " ".join(
        part
        for part in (
            "PREVIEW" if request.preview else "",
            f"CBCT {method} {nx}x{ny}x{nz} {grid.spacing[0]:.2f}mm",
            "short-scan" if result.short_scan else "",
        )
        if part
    )
    info = SeriesInfo(
        description=description,
        number=OUTPUT_SERIES_NUMBER,
        source_sop_class=source.SOPClassUID,
        source_sop_instance=source.SOPInstanceUID,
        derivation=f"{method} (RTK) of series {source.SeriesInstanceUID}; "
        f"water {request.water_attenuation:g}/mm",
    )
    study = {name: source.get(name, "") for name in STUDY_ATTRIBUTES}
    hounsfield = to_hounsfield(result.volume, request.water_attenuation)
    stored_series = None
    for index, slice_dataset in enumerate(
        ct_slices(hounsfield, grid, study, info, uid_seed=f"reconstruction:{job.job.id}")
    ):
        stored_series = job.orthanc.store(encode(slice_dataset))["ParentSeries"]
        job.progress(90 + 10 * index / ny, "storing slices")
    return {
        "series": stored_series,
        "slices": ny,
        "grid": {"size": list(grid.size), "spacingMm": list(grid.spacing)},
        "method": request.method,
        "preview": request.preview,
        "shortScan": result.short_scan,
        "reconstructionSeconds": round(result.seconds, 3),
        "device": result.device,
        "viewer": f"/ohif/viewer?StudyInstanceUIDs={source.StudyInstanceUID}",
        "qc": quality_figures(hounsfield),
    }

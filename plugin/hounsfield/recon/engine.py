"""RTK at work: reconstructions and phantom simulation on numpy arrays.

Imported by worker processes only (loading ITK costs ~12 s and ~0.9 GB, once per
process). ITK's default TBB threader is slower than its Platform threader for
back-projection on few cores, so the Platform threader is selected on import (it
uses every core).

FDK runs on the GPU when RTK's CUDA build (``itk-rtk-cuda*``) is installed, a GPU
answers, and a small reconstruction on it agrees with the CPU's (checked once per
worker, see ``fdk_device``); otherwise on the CPU.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import itk
import numpy as np
from itk import RTK as rtk

from hounsfield.recon.geometry import CircularGeometry, VolumeGrid

itk.MultiThreaderBase.SetGlobalDefaultThreader(itk.MultiThreaderBaseEnums.Threader_Platform)

ImageType = itk.Image[itk.F, 3]
Progress = Callable[[float, str], None]
log = logging.getLogger(__name__)

# The GPU must reproduce the CPU's small check volume to this fraction of its range.
GPU_AGREEMENT = 0.01
_fdk_device: str | None = None  # "cuda" or "cpu", decided once per process
_fdk_device_lock = threading.Lock()  # the worker's warm-up and a first job may both ask


@dataclass(frozen=True)
class Reconstruction:
    volume: np.ndarray  # (z, y, x) attenuation per mm, RTK axes
    grid: VolumeGrid
    seconds: float
    short_scan: bool
    device: str = "cpu"


def rtk_geometry(geometry: CircularGeometry):
    result = rtk.ThreeDCircularProjectionGeometry.New()
    offset_u, offset_v = geometry.detector_offset
    for angle in geometry.angles:
        result.AddProjection(
            geometry.source_to_isocenter,
            geometry.source_to_detector,
            float(angle),
            offset_u,
            offset_v,
        )
    return result


def _constant(size, spacing, origin, image_type=ImageType):
    """A constant-zero image source; the caller must keep a reference while it is used."""
    source = rtk.ConstantImageSource[image_type].New()
    source.SetOrigin([float(v) for v in origin])
    source.SetSpacing([float(v) for v in spacing])
    source.SetSize([int(v) for v in size])
    source.SetConstant(0.0)
    return source


def _projection_source(geometry: CircularGeometry):
    columns, rows = geometry.detector_size
    du, dv = geometry.pixel_spacing
    return _constant(
        (columns, rows, len(geometry.angles)),
        (du, dv, 1.0),
        (-(columns - 1) * du / 2, -(rows - 1) * dv / 2, 0.0),
    )


def projections_image(line_integrals: np.ndarray, geometry: CircularGeometry):
    """Line integrals (projection, row, column) as an ITK image in detector coordinates."""
    image = itk.image_from_array(np.ascontiguousarray(line_integrals, dtype=np.float32))
    columns, rows = geometry.detector_size
    du, dv = geometry.pixel_spacing
    image.SetSpacing([du, dv, 1.0])
    image.SetOrigin([-(columns - 1) * du / 2, -(rows - 1) * dv / 2, 0.0])
    return image


def _reconstruct(
    line_integrals: np.ndarray,
    geometry: CircularGeometry,
    grid: VolumeGrid,
    build: Callable[[Any, Any, Any], list],
    message: str,
    progress: Progress | None,
) -> Reconstruction:
    """Run the pipeline ``build`` makes of (geometry, projections, empty volume), timed.

    ``build`` returns every filter it made, the output last: ITK's Python wrappers need
    a reference to each filter of a pipeline while it runs.
    """
    started = time.perf_counter()
    report = progress or (lambda percent, text: None)
    volume_source = _constant(grid.size, grid.spacing, grid.origin)
    pipeline = build(
        rtk_geometry(geometry),
        projections_image(line_integrals, geometry),
        volume_source.GetOutput(),
    )
    report(10, message)
    pipeline[-1].Update()
    volume = itk.array_from_image(pipeline[-1].GetOutput()).copy()
    report(90, "reconstructed")
    return Reconstruction(volume, grid, time.perf_counter() - started, geometry.short_scan)


def fdk(
    line_integrals: np.ndarray,
    geometry: CircularGeometry,
    grid: VolumeGrid,
    *,
    hann_cut: float = 1.0,
    progress: Progress | None = None,
    device: str | None = None,
) -> Reconstruction:
    """Feldkamp-Davis-Kress; displaced-detector and Parker short-scan weights as needed.

    ``device`` "cuda" or "cpu"; by default the one ``fdk_device`` chose. Should the GPU
    fail on this volume (its memory, say), the CPU does the work.
    """
    device = device or fdk_device()
    if device == "cuda":
        try:
            return _fdk(line_integrals, geometry, grid, hann_cut, progress, "cuda")
        except Exception:
            log.warning("FDK on the GPU failed; reconstructing on the CPU", exc_info=True)
    return _fdk(line_integrals, geometry, grid, hann_cut, progress, "cpu")


def _fdk(
    line_integrals: np.ndarray,
    geometry: CircularGeometry,
    grid: VolumeGrid,
    hann_cut: float,
    progress: Progress | None,
    device: str,
) -> Reconstruction:

    def build(rtk_geo, projections, empty_volume) -> list:
        weighted = rtk.DisplacedDetectorImageFilter[ImageType].New()
        weighted.SetInput(projections)
        weighted.SetGeometry(rtk_geo)
        pipeline = [weighted]
        if geometry.short_scan:
            parker = rtk.ParkerShortScanImageFilter[ImageType].New()
            parker.SetInput(weighted.GetOutput())
            parker.SetGeometry(rtk_geo)
            pipeline.append(parker)
        if device == "cuda":
            return [*pipeline, *_cuda_fdk(rtk_geo, pipeline[-1], grid, hann_cut)]
        reconstruction = rtk.FDKConeBeamReconstructionFilter[ImageType].New()
        reconstruction.SetInput(0, empty_volume)
        reconstruction.SetInput(1, pipeline[-1].GetOutput())
        reconstruction.SetGeometry(rtk_geo)
        reconstruction.GetRampFilter().SetHannCutFrequency(hann_cut)
        return [*pipeline, reconstruction]

    result = _reconstruct(
        line_integrals, geometry, grid, build, f"filtering and back-projecting ({device})", progress
    )
    return dataclasses.replace(result, device=device)


def _cuda_fdk(rtk_geo, weighted, grid: VolumeGrid, hann_cut: float) -> list:
    """Ramp filter and back-projection on the GPU (RTK's CUDA build).

    The weights stay on the CPU; their output is grafted into a CUDA image, as RTK's
    CUDA example does.
    """
    gpu_image = itk.CudaImage[itk.F, 3]
    weighted.Update()
    projections = gpu_image.New()
    projections.Graft(weighted.GetOutput())
    volume_source = _constant(grid.size, grid.spacing, grid.origin, gpu_image)
    reconstruction = rtk.CudaFDKConeBeamReconstructionFilter.New()
    reconstruction.SetInput(0, volume_source.GetOutput())
    reconstruction.SetInput(1, projections)
    reconstruction.SetGeometry(rtk_geo)
    reconstruction.GetRampFilter().SetHannCutFrequency(hann_cut)
    return [projections, volume_source, reconstruction, _CopiedToCpu(reconstruction)]


class _CopiedToCpu:
    """A GPU pipeline's end as ``_reconstruct`` uses it: Update, then a CPU image."""

    def __init__(self, reconstruction) -> None:
        self._reconstruction = reconstruction
        self._copy = itk.ImageDuplicator[ImageType].New()

    # ITK's method names, as on the filters it stands in for.
    def Update(self) -> None:
        self._reconstruction.Update()
        self._copy.SetInputImage(self._reconstruction.GetOutput())
        self._copy.Update()

    def GetOutput(self):
        return self._copy.GetOutput()


def cuda_fdk_available() -> bool:
    """RTK's CUDA build is installed (its classes exist; whether a GPU answers is not known)."""
    try:
        return rtk.CudaFDKConeBeamReconstructionFilter is not None
    except (AttributeError, ImportError):
        return False


def fdk_device() -> str:
    """Where FDK runs, decided once: "cuda" if the GPU works and agrees with the CPU, else "cpu".

    The check reconstructs a small phantom both ways, so a GPU path that fails or drifts
    (a driver, a build) is never used for patients: it is logged and the CPU is used.
    """
    global _fdk_device
    with _fdk_device_lock:
        if _fdk_device is None:
            _fdk_device = "cuda" if cuda_fdk_available() and _gpu_agrees_with_cpu() else "cpu"
            log.info("FDK runs on the %s", _fdk_device.upper())
        return _fdk_device


def disagreement(gpu: np.ndarray, cpu: np.ndarray) -> str | None:
    """Why a GPU volume may not stand for the CPU's, or None when it agrees: the same
    shape, finite everywhere, nowhere further than GPU_AGREEMENT of the CPU's range."""
    if gpu.shape != cpu.shape:
        return f"the GPU's volume is {gpu.shape}, the CPU's {cpu.shape}"
    if not np.isfinite(gpu).all():
        return "the GPU's volume holds NaN or infinite values"
    difference, allowed = float(np.abs(gpu - cpu).max()), GPU_AGREEMENT * float(np.ptp(cpu))
    if difference > allowed:
        return (
            f"the GPU's volume differs from the CPU's by {difference:.4g} (at most {allowed:.4g})"
        )
    return None


def _gpu_agrees_with_cpu() -> bool:
    geometry = CircularGeometry(
        500.0, 800.0, tuple(np.linspace(0, 360, 60, endpoint=False)), (2.0, 2.0), (32, 24)
    )
    grid = geometry.default_volume(24)
    line_integrals = shepp_logan_projections(geometry, 10.0)
    try:
        gpu = _fdk(line_integrals, geometry, grid, 1.0, None, "cuda").volume
    except Exception:
        log.warning("RTK's CUDA build is installed but FDK on the GPU failed", exc_info=True)
        return False
    problem = disagreement(gpu, _fdk(line_integrals, geometry, grid, 1.0, None, "cpu").volume)
    if problem is not None:
        log.warning("FDK on the GPU is not used: %s", problem)
    return problem is None


def sart(
    line_integrals: np.ndarray,
    geometry: CircularGeometry,
    grid: VolumeGrid,
    *,
    iterations: int = 5,
    projections_per_subset: int = 10,
    relaxation: float = 0.9,
    progress: Progress | None = None,
) -> Reconstruction:
    """(Ordered-subsets) SART: slower than FDK, steadier on few or short-scan projections."""

    def build(rtk_geo, projections, empty_volume) -> list:
        reconstruction = rtk.SARTConeBeamReconstructionFilter[ImageType, ImageType].New()
        reconstruction.SetInput(0, empty_volume)
        reconstruction.SetInput(1, projections)
        reconstruction.SetGeometry(rtk_geo)
        reconstruction.SetNumberOfIterations(iterations)
        reconstruction.SetNumberOfProjectionsPerSubset(projections_per_subset)
        reconstruction.SetLambda(relaxation)
        reconstruction.SetEnforcePositivity(True)
        return [reconstruction]

    return _reconstruct(
        line_integrals, geometry, grid, build, f"SART, {iterations} iteration(s)", progress
    )


def conjugate_gradient(
    line_integrals: np.ndarray,
    geometry: CircularGeometry,
    grid: VolumeGrid,
    *,
    iterations: int = 10,
    progress: Progress | None = None,
) -> Reconstruction:
    """Least squares by conjugate gradient (uniform weights, no regularisation).

    Semi-convergent: on the test phantom the error falls until ~10 iterations, then edge
    ringing grows again, hence the default.
    """
    columns, rows = geometry.detector_size
    du, dv = geometry.pixel_spacing
    weights = _constant(
        (columns, rows, len(geometry.angles)),
        (du, dv, 1.0),
        (-(columns - 1) * du / 2, -(rows - 1) * dv / 2, 0.0),
    )
    weights.SetConstant(1.0)

    def build(rtk_geo, projections, empty_volume) -> list:
        reconstruction = rtk.ConjugateGradientConeBeamReconstructionFilter[ImageType].New()
        reconstruction.SetInputVolume(empty_volume)
        reconstruction.SetInputProjectionStack(projections)
        reconstruction.SetInputWeights(weights.GetOutput())
        reconstruction.SetGeometry(rtk_geo)
        reconstruction.SetNumberOfIterations(iterations)
        return [weights, reconstruction]

    return _reconstruct(
        line_integrals,
        geometry,
        grid,
        build,
        f"conjugate gradient, {iterations} iteration(s)",
        progress,
    )


def admm_tv(
    line_integrals: np.ndarray,
    geometry: CircularGeometry,
    grid: VolumeGrid,
    *,
    alpha: float,
    beta: float,
    iterations: int = 10,
    cg_iterations: int = 3,
    progress: Progress | None = None,
) -> Reconstruction:
    """Least squares with a total-variation penalty, solved by ADMM (RTK's parameters).

    For noisy (low-dose) or few-view acquisitions: flat regions come out far smoother
    than FDK's. ``alpha`` weighs the TV term, ``beta`` the augmented Lagrangian;
    ``iterations`` are ADMM's outer ones, each solving by ``cg_iterations`` of CG.
    """

    def build(rtk_geo, projections, empty_volume) -> list:
        # The filter's internal displaced-detector step works in place: fed directly,
        # it would empty an input that nothing upstream can regenerate between iterations.
        regenerable = itk.CastImageFilter[ImageType, ImageType].New()
        regenerable.SetInput(projections)
        regenerable.InPlaceOff()
        reconstruction = rtk.ADMMTotalVariationConeBeamReconstructionFilter[ImageType].New()
        reconstruction.SetInput(0, empty_volume)
        reconstruction.SetInput(1, regenerable.GetOutput())
        reconstruction.SetGeometry(rtk_geo)
        reconstruction.SetAlpha(alpha)
        reconstruction.SetBeta(beta)
        reconstruction.SetAL_iterations(iterations)
        reconstruction.SetCG_iterations(cg_iterations)
        return [regenerable, reconstruction]

    return _reconstruct(
        line_integrals, geometry, grid, build, f"ADMM-TV, {iterations} iteration(s)", progress
    )


def shepp_logan_projections(geometry: CircularGeometry, radius_mm: float) -> np.ndarray:
    """Line integrals through RTK's 3D Shepp-Logan phantom (density: water = 1)."""
    source = _projection_source(geometry)
    phantom = rtk.SheppLoganPhantomFilter[ImageType, ImageType].New()
    phantom.SetInput(source.GetOutput())
    phantom.SetGeometry(rtk_geometry(geometry))
    phantom.SetPhantomScale(radius_mm)
    phantom.Update()
    return itk.array_from_image(phantom.GetOutput()).copy()


def shepp_logan_volume(grid: VolumeGrid, radius_mm: float) -> np.ndarray:
    """The analytic phantom voxelised on ``grid`` (z, y, x), for checking accuracy."""
    source = _constant(grid.size, grid.spacing, grid.origin)
    drawer = rtk.DrawSheppLoganFilter[ImageType, ImageType].New()
    drawer.SetInput(source.GetOutput())
    drawer.SetPhantomScale(radius_mm)
    drawer.Update()
    return itk.array_from_image(drawer.GetOutput()).copy()

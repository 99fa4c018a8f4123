"""Acquisitions uploaded by hand: 16-bit TIFF projections plus their geometry.

The geometry comes as RTK's geometry XML or as plain parameters; the projections as
one multi-page TIFF or one TIFF per projection, in acquisition order. Geometry and TIFF
headers are checked while the client waits (each refusal names the problem); decoding
and archiving run in a worker (see ``jobs.archive_upload``). RTK's XML is read once, in
the request and within Limits.XmlBytes and Limits.XmlDepth, into plain parameters: the
worker never parses XML. TIFF headers are read page by page up to MaxProjections.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from pydantic import ConfigDict, Field

from hounsfield.recon.geometry import CircularGeometry, GeometryError
from hounsfield.recon.params import OrderedPatient
from hounsfield.recon.projections import ProjectionError, rtk_gantry_angle
from hounsfield.untrusted import InputRefused
from hounsfield.untrusted.xmltext import parse_xml

TILT_ELEMENTS = ("OutOfPlaneAngle", "InPlaneAngle", "SourceOffsetX", "SourceOffsetY")


class GeometryParameters(OrderedPatient):
    """Plain parameters of a circular orbit (``angles`` or ``first_angle``+``arc``), the
    angles as a C-arm gives them (DICOM's PositionerPrimaryAngle: LAO positive)."""

    model_config = ConfigDict(extra="forbid")

    source_to_isocenter_mm: float | None = Field(None, gt=0)
    source_to_detector_mm: float | None = Field(None, gt=0)
    angles_degrees: list[float] | None = None
    first_angle_degrees: float = 0.0
    arc_degrees: float | None = Field(None, gt=0, le=400)
    pixel_spacing_mm: tuple[float, float] = Field(description="(columns, rows) at the detector")
    detector_offset_mm: tuple[float, float] = (0.0, 0.0)
    i0: float = Field(gt=0, le=65535, description="unattenuated detector counts")
    patient_id: str = Field(min_length=1, max_length=64)
    patient_name: str = Field("", max_length=64)
    study_description: str = Field("CBCT acquisition", max_length=64)

    def angles_for(self, count: int) -> tuple[float, ...]:
        if self.angles_degrees is not None:
            return tuple(self.angles_degrees)
        if self.arc_degrees is None:
            raise ProjectionError("geometry needs angles_degrees, arc_degrees or RTK XML")
        step = self.arc_degrees / count
        return tuple(self.first_angle_degrees + step * k for k in range(count))


class _Complaints(logging.Handler):
    """Collects what tifffile logs: a cut file is read up to the cut, with only a log line."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _tiff_pages(
    path: Path, number: int, *, decode: bool, max_pages: int | None = None
) -> list[Any]:
    """Each page's shape (its pixels when ``decode``); ProjectionError when unusable.

    Headers alone tell the size, the pixel type and where each page's data lies, so a
    cut or 8-bit file is refused without decoding anything. Pages are read one by one
    and no further than ``max_pages`` (each costs a few microseconds of Python).
    """
    complaints = _Complaints()
    tiff_log = logging.getLogger("tifffile")
    tiff_log.addHandler(complaints)
    try:
        size = path.stat().st_size
        with tifffile.TiffFile(path) as tiff:
            pages = []
            for page in tiff.pages:
                if max_pages is not None and len(pages) >= max_pages:
                    raise ProjectionError(
                        f"more than {max_pages} projections (HounsfieldRecon.MaxProjections)"
                    )
                pages.append(page)
            ends = [page.dataoffsets[-1] + page.databytecounts[-1] for page in pages]
            for page in pages:
                if page.dtype != np.uint16:
                    raise ProjectionError(
                        f"TIFF file {number} holds {page.dtype} pixels; 16-bit unsigned are needed"
                    )
                if page.ndim != 2:
                    raise ProjectionError(f"TIFF file {number} is not a grey-level image")
            if complaints.messages or any(end > size for end in ends):
                raise ValueError("; ".join(complaints.messages) or "data past the end of file")
            return [page.asarray() if decode else page.shape for page in pages]
    except ProjectionError:
        raise
    except Exception as error:
        raise ProjectionError(f"TIFF file {number} is truncated or unreadable: {error}") from error
    finally:
        tiff_log.removeHandler(complaints)


def _same_size(shapes: list[tuple[int, ...]]) -> tuple[int, int]:
    if not shapes:
        raise ProjectionError("no projection was uploaded")
    if len(set(shapes)) > 1:
        raise ProjectionError(f"projections differ in size: {sorted(set(shapes))}")
    rows, columns = shapes[0]
    return rows, columns


def inspect_projections(files: list[Path], max_projections: int) -> tuple[int, int, int]:
    """(projections, rows, columns) of one multi-page TIFF or one TIFF each, from headers."""
    shapes: list[tuple[int, ...]] = []
    for number, path in enumerate(files, start=1):
        left = max_projections - len(shapes)
        shapes += [
            tuple(shape) for shape in _tiff_pages(path, number, decode=False, max_pages=left)
        ]
    return (len(shapes), *_same_size(shapes))


def read_projections(files: list[Path]) -> np.ndarray:
    """(projection, row, column) uint16 from one multi-page TIFF or one TIFF each (in a
    worker, from a spool whose headers the request checked)."""
    frames = [
        frame
        for number, path in enumerate(files, start=1)
        for frame in _tiff_pages(path, number, decode=True)
    ]
    _same_size([frame.shape for frame in frames])
    return np.stack(frames)


def parse_rtk_geometry(xml: bytes, *, max_bytes: int, max_depth: int) -> dict[str, Any]:
    """SID, SDD, angles and offsets from RTK's geometry XML (circular orbits only)."""
    try:
        root = parse_xml(xml, max_bytes=max_bytes, max_depth=max_depth)
    except InputRefused as refusal:
        raise ProjectionError(f"geometry XML: {refusal.message}") from refusal
    if root.tag != "RTKThreeDCircularGeometry":
        raise ProjectionError("geometry XML is not RTKThreeDCircularGeometry")

    def values(name: str, default: float | None) -> list[float]:
        found = []
        for projection in root.iter("Projection"):
            element = projection.find(name)
            element = element if element is not None else root.find(name)
            if element is None:
                if default is None:
                    raise ProjectionError(f"geometry XML lacks {name}")
                found.append(default)
            else:
                try:
                    found.append(float(element.text or ""))
                except ValueError:
                    raise ProjectionError(f"geometry XML: {name} is not a number") from None
        return found

    def constant(name: str, default: float | None) -> float:
        distinct = set(values(name, default))
        if len(distinct) > 1:
            raise ProjectionError(f"{name} varies between projections; a circular orbit is needed")
        return distinct.pop()

    if not list(root.iter("Projection")):
        raise ProjectionError("geometry XML has no Projection")
    for name in TILT_ELEMENTS:
        if any(value != 0 for value in values(name, 0.0)):
            raise ProjectionError(f"geometry XML has a non-zero {name}: not supported")
    return {
        "source_to_isocenter": constant("SourceToIsocenterDistance", None),
        "source_to_detector": constant("SourceToDetectorDistance", None),
        "angles": tuple(values("GantryAngle", None)),
        "detector_offset": (constant("ProjectionOffsetX", 0.0), constant("ProjectionOffsetY", 0.0)),
    }


def with_rtk_geometry(
    parameters: GeometryParameters, xml: bytes, *, max_bytes: int, max_depth: int
) -> GeometryParameters:
    """``parameters`` with the orbit RTK's geometry XML describes (it takes precedence)."""
    described = parse_rtk_geometry(xml, max_bytes=max_bytes, max_depth=max_depth)
    return parameters.model_copy(
        update={
            "source_to_isocenter_mm": described["source_to_isocenter"],
            "source_to_detector_mm": described["source_to_detector"],
            "angles_degrees": [rtk_gantry_angle(angle) for angle in described["angles"]],
            "detector_offset_mm": described["detector_offset"],
        }
    )


def acquisition_geometry(
    parameters: GeometryParameters, shape: tuple[int, int, int]
) -> CircularGeometry:
    """The orbit of ``shape`` = (projections, rows, columns); ProjectionError if unusable."""
    count, rows, columns = shape
    if parameters.source_to_isocenter_mm is None or parameters.source_to_detector_mm is None:
        raise ProjectionError(
            "geometry needs source_to_isocenter_mm and source_to_detector_mm (or RTK XML)"
        )
    described = {
        "source_to_isocenter": parameters.source_to_isocenter_mm,
        "source_to_detector": parameters.source_to_detector_mm,
        "angles": tuple(rtk_gantry_angle(angle) for angle in parameters.angles_for(count)),
        "detector_offset": parameters.detector_offset_mm,
    }
    if len(described["angles"]) != count:
        raise ProjectionError(
            f"{count} projections but {len(described['angles'])} angles in the geometry"
        )
    try:
        return CircularGeometry(
            described["source_to_isocenter"],
            described["source_to_detector"],
            described["angles"],
            parameters.pixel_spacing_mm,
            (columns, rows),
            described["detector_offset"],
        )
    except GeometryError as error:
        raise ProjectionError(str(error)) from error

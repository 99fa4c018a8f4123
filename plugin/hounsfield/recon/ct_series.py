"""A reconstructed volume as a CT series: one file per slice, in Hounsfield units.

Slices are perpendicular to RTK's rotation axis (y). Patient coordinates follow
(X, Y, Z) = (x, z, -y), so viewers (and ITK/GDCM) read the series back with an
identity direction. HU = 1000 * (mu / mu_water - 1), stored unsigned with
RescaleIntercept -1024.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from hounsfield.dicom_objects import new_instance, set_unsigned_pixels
from hounsfield.recon.geometry import VolumeGrid

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
INTERCEPT = -1024
HU_MAX = 65535 + INTERCEPT


@dataclass(frozen=True)
class SeriesInfo:
    description: str
    number: int
    source_sop_class: str
    source_sop_instance: str
    derivation: str


def to_hounsfield(volume: np.ndarray, water_attenuation: float) -> np.ndarray:
    return 1000.0 * (volume / water_attenuation - 1.0)


def ct_slices(
    hounsfield: np.ndarray,
    grid: VolumeGrid,
    study: Mapping[str, Any],
    info: SeriesInfo,
    *,
    uid_seed: str,
) -> Iterator[Dataset]:
    """Yield one CT dataset per slice of ``hounsfield`` (z, y, x), in slice order.

    UIDs derive from ``uid_seed``: a job that runs again after a crash writes the very
    same series (Orthanc keeps one copy), never a second one.
    """
    stored = np.clip(np.rint(hounsfield) - INTERCEPT, 0, HU_MAX - INTERCEPT).astype(np.uint16)
    series_uid = generate_uid(entropy_srcs=[uid_seed, "series"])
    frame_of_reference = generate_uid(entropy_srcs=[uid_seed, "frame-of-reference"])
    now = datetime.now(UTC)
    (ox, oy, oz), (sx, sy, sz) = grid.origin, grid.spacing
    ny = stored.shape[1]
    for j in range(ny):
        ds = new_instance(CT_STORAGE, generate_uid(entropy_srcs=[uid_seed, str(j)]), study)
        ds.Modality = "CT"
        ds.Laterality = ""  # type 2C: unknown for a cone-beam volume
        ds.PatientPosition = ""
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = info.number
        ds.SeriesDescription = info.description[:64]
        ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
        ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
        ds.Manufacturer = "Hounsfield"
        ds.FrameOfReferenceUID = frame_of_reference
        ds.PositionReferenceIndicator = ""
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.DerivationDescription = info.derivation[:1024]
        source = Dataset()
        source.ReferencedSOPClassUID = info.source_sop_class
        source.ReferencedSOPInstanceUID = info.source_sop_instance
        ds.SourceImageSequence = Sequence([source])
        ds.InstanceNumber = j + 1
        ds.AcquisitionNumber = 1
        ds.KVP = ""
        location = -(oy + j * sy)
        ds.ImagePositionPatient = [f"{ox:.4f}", f"{oz:.4f}", f"{location:.4f}"]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.SliceLocation = f"{location:.4f}"
        ds.PixelSpacing = [f"{sz:.6g}", f"{sx:.6g}"]  # between rows, between columns
        ds.SliceThickness = f"{sy:.6g}"
        ds.RescaleIntercept = str(INTERCEPT)
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.WindowCenter, ds.WindowWidth = "40", "400"
        set_unsigned_pixels(ds, stored[:, j, :])
        yield ds

"""Rotational angiography runs as a C-arm sends them, written with pydicom alone (none of
the plugin's code), and checked with dciodvfy: the objects every road must store."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from tests.support.scanner import xa_object


def angiography_run(
    seed: str,
    *,
    bits: int = 8,
    frames: int = 12,
    source_to_patient: bool = True,
    patient_id: str = "ANGIO-1",
) -> Dataset:
    """A multi-frame XA run sweeping 200 degrees: the attributes that make the plugin see a
    CBCT candidate (frames, DistanceSourceToDetector, PositionerPrimaryAngleIncrement),
    with ``bits`` per pixel and, optionally, DistanceSourceToPatient left out."""
    rows, columns = 48, 64
    ds = xa_object(seed)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = (
        "Run^Angio",
        patient_id,
        "",
        "",
    )
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20261124", "101500", "7", ""
    ds.ReferringPhysicianName = ""
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "XA", 3, 1
    ds.SeriesDescription = f"Rotational angiography {bits}-bit"
    ds.Manufacturer, ds.Laterality, ds.PatientOrientation = "Test C-arm", "", ""
    ds.ImageType = ["ORIGINAL", "PRIMARY", "SINGLE PLANE"]
    ds.KVP, ds.XRayTubeCurrent, ds.ExposureTime, ds.Exposure = "80", "300", "8", "2"
    ds.RadiationSetting, ds.PixelIntensityRelationship = "GR", "LIN"
    ds.DistanceSourceToDetector = "1195"
    if source_to_patient:
        ds.DistanceSourceToPatient = "785"
    ds.ImagerPixelSpacing = ["0.616", "0.616"]
    ds.PositionerMotion = "DYNAMIC"
    ds.PositionerPrimaryAngle, ds.PositionerSecondaryAngle = "-100", "0"
    step = 200 / (frames - 1)
    ds.PositionerPrimaryAngleIncrement = [f"{n * step:.4g}" for n in range(frames)]
    ds.PositionerSecondaryAngleIncrement = ["0"] * frames
    ds.NumberOfFrames, ds.FrameTime = frames, "33.3"
    ds.FrameIncrementPointer = 0x00181063  # FrameTime
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, columns, 1
    ds.PhotometricInterpretation, ds.PixelRepresentation = "MONOCHROME2", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    pixels = np.random.default_rng(len(seed)).integers(0, 2**bits, (frames, rows, columns))
    ds.PixelData = pixels.astype(np.uint8 if bits == 8 else np.uint16).tobytes()
    return ds


def dciodvfy_errors(path: Path) -> list[str]:
    checked = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    output = checked.stdout + checked.stderr
    return [line for line in output.splitlines() if line.startswith("Error")]

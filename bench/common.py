"""What the benchmarks share: import paths, a synthetic CT series, figures."""

from __future__ import annotations

import copy
import statistics
import sys
from pathlib import Path

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPOSITORY), str(REPOSITORY / "plugin")]
# Orthanc with its DICOMweb plugin and not ours: the figures "without the plugin".
NO_PYTHON_PLUGIN = ["/usr/share/orthanc/plugins/libOrthancDicomWeb.so"]


def make_ct_series(folder: Path, count: int) -> list[Path]:
    """``count`` slices of one new study and series, cloned from pydicom's CT_small."""
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    study, series = generate_uid(), generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        ds = copy.deepcopy(template)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = number + 1
        path = folder / f"{number:05d}.dcm"
        ds.save_as(path)
        paths.append(path)
    return paths


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p95) of ``samples``."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(0.95 * (len(ordered) - 1))]


def print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")

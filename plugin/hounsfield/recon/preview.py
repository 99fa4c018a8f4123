"""A reconstruction at a glance: its central slices in three planes, windowed, as PNG.

What a technician checks before the patient leaves the room: is the object centred and
whole, are there rings or streaks. The planes are read from Orthanc one slice at a time
(``/instances/{id}/numpy``, rescaled to HU, in the order of ``/series/{id}/ordered-slices``)
keeping only the centre row and column of each, so a 512 x 512 x 300 series costs three
planes of memory, not a volume; they are kept for the series as it is (its LastUpdate).
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from PIL import Image

from hounsfield.api import OrthancApi, OrthancError


class Plane(StrEnum):
    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"


# Window presets (level, width) in HU, as CT consoles name them.
WINDOWS = {"soft": (40.0, 400.0), "bone": (400.0, 1800.0), "wide": (0.0, 3000.0)}
MAX_SLICES = 2000


class PreviewError(ValueError):
    """The series cannot be shown as planes (not a volume of single-frame slices)."""


@dataclass(frozen=True)
class Planes:
    axial: np.ndarray  # rows x columns, HU
    coronal: np.ndarray  # slices x columns (first slice at the bottom once drawn)
    sagittal: np.ndarray  # slices x rows
    pixel_mm: float  # in-plane spacing (rows)
    slice_mm: float  # between slice centres

    def image(self, plane: Plane, window: str) -> bytes:
        """``plane`` windowed to 8 bits, in true proportions, superior up, as a PNG."""
        level, width = WINDOWS[window]
        values = {"axial": self.axial, "coronal": self.coronal, "sagittal": self.sagittal}[plane]
        if plane is not Plane.AXIAL:
            values = values[::-1]  # slices run from the first (inferior) up: draw it upright
        scaled = np.clip((values - (level - width / 2)) / width, 0.0, 1.0) * 255.0
        image = Image.fromarray(np.rint(scaled).astype(np.uint8), mode="L")
        if plane is not Plane.AXIAL and self.pixel_mm > 0:
            height = max(1, round(image.height * self.slice_mm / self.pixel_mm))
            image = image.resize((image.width, height), Image.Resampling.BILINEAR)
        out = io.BytesIO()
        image.save(out, format="PNG")
        return out.getvalue()


def _spacing(orthanc: OrthancApi, first: str, second: str | None) -> tuple[float, float]:
    tags = orthanc.get_json(f"/instances/{first}/simplified-tags")
    pixel = float(str(tags.get("PixelSpacing", "0")).split("\\")[0] or 0)
    if second is None:
        return pixel, float(tags.get("SliceThickness") or pixel or 1)
    other = orthanc.get_json(f"/instances/{second}/simplified-tags")
    try:
        a = np.array([float(v) for v in tags["ImagePositionPatient"].split("\\")])
        b = np.array([float(v) for v in other["ImagePositionPatient"].split("\\")])
    except (KeyError, ValueError):
        return pixel, float(tags.get("SliceThickness") or pixel or 1)
    return pixel, float(np.linalg.norm(b - a)) or pixel


def _slice(orthanc: OrthancApi, instance: str) -> np.ndarray:
    try:
        answer = orthanc.get_bytes(f"/instances/{instance}/numpy")
    except OrthancError as error:  # no pixels (a report), or pixels Orthanc cannot decode
        raise PreviewError("the series' images cannot be decoded") from error
    array = np.load(io.BytesIO(answer))
    if array.ndim == 4:  # (frames, rows, columns, channels)
        if array.shape[0] != 1 or array.shape[3] != 1:
            raise PreviewError("only single-frame greyscale slices can be shown as planes")
        array = array[0, :, :, 0]
    if array.ndim != 2:
        raise PreviewError("only single-frame greyscale slices can be shown as planes")
    return array.astype(np.float32)


def read_planes(orthanc: OrthancApi, series_id: str) -> Planes:
    ordered = orthanc.get_json(f"/series/{series_id}/ordered-slices")
    instances = [entry[0] for entry in ordered.get("SlicesShort", [])]
    if not instances:
        raise PreviewError("the series has no slices")
    if len(instances) > MAX_SLICES:
        raise PreviewError(f"the series has more than {MAX_SLICES} slices")
    middle = len(instances) // 2
    coronal, sagittal, axial = [], [], None
    for index, instance in enumerate(instances):
        pixels = _slice(orthanc, instance)
        if coronal and pixels.shape[1] != len(coronal[0]):
            raise PreviewError("the slices differ in size")
        coronal.append(pixels[pixels.shape[0] // 2])
        sagittal.append(pixels[:, pixels.shape[1] // 2])
        if index == middle:
            axial = pixels
    assert axial is not None
    pixel_mm, slice_mm = _spacing(orthanc, instances[0], instances[1] if middle else None)
    return Planes(axial, np.array(coronal), np.array(sagittal), pixel_mm, slice_mm)


class PlaneCache:
    """The planes of the last few series looked at, each for the series as it is now."""

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._lock = threading.Lock()  # one reading at a time: a page asks for three planes
        self._planes: OrderedDict[tuple[str, str], Planes] = OrderedDict()

    def planes(self, orthanc: OrthancApi, series_id: str) -> Planes:
        key = (series_id, orthanc.get_json(f"/series/{series_id}").get("LastUpdate", ""))
        with self._lock:
            if key not in self._planes:
                self._planes[key] = read_planes(orthanc, series_id)
                while len(self._planes) > self._size:
                    self._planes.popitem(last=False)
            self._planes.move_to_end(key)
            return self._planes[key]


PLANES = PlaneCache()

"""The QC planes as a technician sees them: windowed as CT consoles do, upright, in true
proportions."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from hounsfield.recon.preview import Plane, Planes


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def test_a_window_maps_its_level_to_grey_and_clips_beyond() -> None:
    axial = np.array([[-1000.0, -160.0, 40.0, 240.0, 3000.0]], np.float32)  # soft: 40/400
    planes = Planes(axial, axial, axial, pixel_mm=1.0, slice_mm=1.0)
    assert pixels(planes.image(Plane.AXIAL, "soft")).tolist() == [[0, 0, 128, 255, 255]]
    bone = pixels(planes.image(Plane.AXIAL, "bone"))  # 400/1800: -500 to 1300
    assert bone[0, 1] == round((-160 + 500) / 1800 * 255)


def test_coronal_and_sagittal_stand_upright_in_true_proportions() -> None:
    # Three slices, 2 mm apart, of 0.5 mm pixels; the first (inferior) slice is the darkest.
    coronal = np.array([[-1000.0] * 4, [0.0] * 4, [1000.0] * 4], np.float32)
    planes = Planes(np.zeros((4, 4), np.float32), coronal, coronal, pixel_mm=0.5, slice_mm=2.0)
    image = pixels(planes.image(Plane.CORONAL, "wide"))
    assert image.shape == (12, 4)  # 3 slices x 2 mm / 0.5 mm per pixel
    assert image[0, 0] > image[-1, 0]  # superior (the last slice) at the top

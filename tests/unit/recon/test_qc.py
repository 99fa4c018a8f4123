from __future__ import annotations

import numpy as np

from hounsfield.recon.qc import quality_figures, ring_index


def cylinder(noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """A water cylinder (0 HU) in air, axis along y, as a volume (z, y, x)."""
    z, x = np.indices((64, 64)) - 31.5
    image = np.where(np.hypot(z, x) < 28, 0.0, -1000.0)
    volume = np.repeat(image[:, None, :], 16, axis=1)
    return volume + np.random.default_rng(seed).normal(0, noise, volume.shape)


def test_a_clean_uniform_phantom_scores_zero() -> None:
    figures = quality_figures(cylinder())
    assert figures["centreMeanHu"] == 0 and figures["noiseHu"] == 0
    assert figures["uniformityHu"] == 0


def test_noise_is_measured() -> None:
    figures = quality_figures(cylinder(noise=10.0))
    assert 7 < figures["noiseHu"] < 13
    assert abs(figures["centreMeanHu"]) < 5


def test_cupping_shows_as_non_uniformity() -> None:
    volume = cylinder()
    z, x = np.indices((64, 64)) - 31.5
    volume += (np.hypot(z, x) * 2.0)[:, None, :]  # brighter towards the edge
    assert quality_figures(volume)["uniformityHu"] > 20


def test_rings_raise_the_ring_index() -> None:
    z, x = np.indices((64, 64)) - 31.5
    plain = np.where(np.hypot(z, x) < 28, 0.0, -1000.0)
    ringed = plain + 30.0 * (np.round(np.hypot(z, x)).astype(int) % 4 == 0)
    assert ring_index(plain) < 1.0
    assert ring_index(ringed) > 5.0

"""Feldkamp-Davis-Kress filtered back-projection: one pass, the default."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hounsfield.recon.engine import Reconstruction
    from hounsfield.recon.methods import Problem

NAME = "fdk"


def run(problem: Problem) -> tuple[Reconstruction, str]:
    from hounsfield.recon import engine

    hann_cut = problem.request.hann_cut
    result = engine.fdk(
        problem.line_integrals,
        problem.geometry,
        problem.grid,
        hann_cut=hann_cut,
        progress=problem.progress,
    )
    return result, f"FDK hann {hann_cut:g}"

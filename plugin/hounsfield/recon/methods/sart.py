"""Simultaneous algebraic reconstruction with ordered subsets: fewer streaks from few views."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hounsfield.recon.engine import Reconstruction
    from hounsfield.recon.methods import Problem

NAME = "sart"
ITERATIONS = 5


def run(problem: Problem) -> tuple[Reconstruction, str]:
    from hounsfield.recon import engine

    request = problem.request
    iterations = request.iterations or ITERATIONS
    result = engine.sart(
        problem.line_integrals,
        problem.geometry,
        problem.grid,
        iterations=iterations,
        projections_per_subset=request.projections_per_subset,
        relaxation=request.relaxation,
        progress=problem.progress,
    )
    subsets = request.projections_per_subset
    return result, f"SART {iterations}it {subsets}/subset lambda {request.relaxation:g}"

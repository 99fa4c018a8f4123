"""Conjugate gradient on the least-squares problem: iterative, without regularisation."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hounsfield.recon.engine import Reconstruction
    from hounsfield.recon.methods import Problem

NAME = "cg"
ITERATIONS = 10


def run(problem: Problem) -> tuple[Reconstruction, str]:
    from hounsfield.recon import engine

    iterations = problem.request.iterations or ITERATIONS
    result = engine.conjugate_gradient(
        problem.line_integrals,
        problem.geometry,
        problem.grid,
        iterations=iterations,
        progress=problem.progress,
    )
    return result, f"CG {iterations}it"

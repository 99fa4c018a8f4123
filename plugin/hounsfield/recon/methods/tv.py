"""ADMM with a total-variation penalty: smooth regions, sharp edges, from noisy data."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hounsfield.recon.params import tv_penalties

if TYPE_CHECKING:
    from hounsfield.recon.engine import Reconstruction
    from hounsfield.recon.methods import Problem

NAME = "tv"
ITERATIONS = 10


def run(problem: Problem) -> tuple[Reconstruction, str]:
    from hounsfield.recon import engine

    request = problem.request
    iterations = request.iterations or ITERATIONS
    alpha, beta = tv_penalties(
        request.tv_strength,
        problem.line_integrals.size,
        problem.grid.voxel_count,
        request.water_attenuation,
    )
    result = engine.admm_tv(
        problem.line_integrals,
        problem.geometry,
        problem.grid,
        alpha=alpha,
        beta=beta,
        iterations=iterations,
        progress=problem.progress,
    )
    return result, f"ADMM-TV {iterations}it strength {request.tv_strength:g}"

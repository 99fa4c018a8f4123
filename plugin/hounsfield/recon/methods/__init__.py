"""Reconstruction methods, one module each: a new method is one new file here.

Each module names itself (``NAME``, what ``POST /api/reconstructions`` takes as "method")
and reconstructs a ``Problem`` with ``run(problem)``, returning the volume and a label for
the SeriesDescription. Modules import RTK (``engine``) inside ``run`` only: the plugin
process reads this table to validate requests, and must not load RTK to do it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from hounsfield.recon.engine import Progress, Reconstruction
    from hounsfield.recon.geometry import CircularGeometry, VolumeGrid
    from hounsfield.recon.params import ReconstructionRequest


@dataclass(frozen=True)
class Problem:
    """What every method reconstructs from, and where it reports its progress."""

    request: ReconstructionRequest
    line_integrals: np.ndarray
    geometry: CircularGeometry
    grid: VolumeGrid
    progress: Progress


Method = Callable[[Problem], "tuple[Reconstruction, str]"]


def _discover() -> dict[str, Method]:
    table: dict[str, Method] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        table[module.NAME] = module.run
    return table


METHODS: dict[str, Method] = _discover()

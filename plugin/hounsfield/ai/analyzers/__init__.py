"""The built-in analyzers: offline, numpy and scipy only, one instance each by name.

- ``lung``: lung segmentation, lung volumes and the emphysema index LAA%-950 (chest CT);
- ``metal``: metal and high-density foreign bodies (CT and CBCT);
- ``intracranial``: hyperdense intracranial regions, a screening aid (head CT);
- ``quality``: noise, uniformity, rings, metal streaks, truncation (CT and CBCT).

What they share: ``regions`` (connected regions measured on the volume's grid, bounding
boxes) and ``grid`` (the coarser analysis grid, the per-slice morphology).
"""

from __future__ import annotations

from hounsfield.ai.analyzers.intracranial import IntracranialAnalyzer
from hounsfield.ai.analyzers.lung import LungAnalyzer
from hounsfield.ai.analyzers.metal import MetalAnalyzer
from hounsfield.ai.analyzers.quality import QualityAnalyzer
from hounsfield.ai.model import Analyzer

BUILT_IN: dict[str, Analyzer] = {
    analyzer.name: analyzer
    for analyzer in (LungAnalyzer(), MetalAnalyzer(), IntracranialAnalyzer(), QualityAnalyzer())
}

__all__ = [
    "BUILT_IN",
    "IntracranialAnalyzer",
    "LungAnalyzer",
    "MetalAnalyzer",
    "QualityAnalyzer",
]

"""Which analyzers this server offers, by name, and how each is built.

Names are known without loading anything (the plugin process checks the names a request
gives with ``analyzer_names``); ``build_analyzer`` imports what the analyzer needs (scipy,
onnxruntime...) and runs in workers only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hounsfield.ai.model import AnalysisError

if TYPE_CHECKING:
    from hounsfield.ai.model import Analyzer
    from hounsfield.ai.settings import AiSettings

ANALYZE = "ai.analyze"  # the job kind
BUILT_IN = ("lung", "metal", "intracranial", "quality")
REMOTE = "remote"
ONNX = "onnx:"  # + the model's folder name


def installed_models(folder: Path) -> list[str]:
    """The analyzer names (``onnx:<name>``) of the model folders an admin installed under
    ``folder``, without reading any: a broken one is listed too, and says why when run."""
    if not folder.is_dir():
        return []
    return [
        ONNX + path.name
        for path in sorted(folder.iterdir())
        if path.is_dir() and not path.name.startswith(".")
    ]


def analyzer_names(settings: AiSettings) -> list[str]:
    names = list(BUILT_IN)
    if settings.models:
        names += installed_models(Path(settings.models))
    if settings.remote is not None:
        names.append(REMOTE)
    return names


def build_analyzer(settings: AiSettings, name: str) -> Analyzer:
    if name in BUILT_IN:
        from hounsfield.ai import analyzers

        if name == "metal":
            return analyzers.MetalAnalyzer(threshold_hu=settings.metal_threshold_hu)
        return analyzers.BUILT_IN[name]
    if name == REMOTE and settings.remote is not None:
        from hounsfield.ai import remote

        return remote.RemoteAnalyzer(settings.remote)
    if name.startswith(ONNX) and settings.models:
        from hounsfield.ai import onnx

        return onnx.load_model(Path(settings.models), name.removeprefix(ONNX))
    known = ", ".join(analyzer_names(settings))
    raise AnalysisError(f"no analyzer {name!r} on this server; known: {known}")

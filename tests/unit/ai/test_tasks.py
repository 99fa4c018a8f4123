"""The ``ai.analyze`` job on a series that is not one volume: it fails saying why, as an
``AnalysisError`` (the worker reports "AnalysisError: why"), the loader's reason word for word."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from hounsfield.ai import tasks
from hounsfield.ai.model import AnalysisError
from hounsfield.ai.settings import AiSettings
from hounsfield.volume import VolumeError
from tests.support.ai import ct_slices
from tests.unit.test_volume import SPACING, FakeOrthanc


@pytest.mark.parametrize(
    ("modality", "count", "reason"),
    [
        ("SR", 6, "a SR series holds no images to analyse"),
        ("CT", 1, "a single image is not a volume: at least two slices are needed"),
    ],
)
def test_a_series_that_is_not_one_volume_fails_the_job_saying_why(
    modality: str, count: int, reason: str
) -> None:
    hu = np.zeros((6, 10, 12), np.float32)
    job = SimpleNamespace(
        params={"study": "st", "series": "s", "analyzer": "metal"},
        orthanc=FakeOrthanc(modality, list(ct_slices(hu, SPACING))[:count]),
        progress=lambda percent, message: None,
    )
    with pytest.raises(AnalysisError) as caught:
        tasks.analyze(job, AiSettings())  # type: ignore[arg-type]
    assert isinstance(caught.value, VolumeError)
    assert f"{type(caught.value).__name__}: {caught.value}" == f"AnalysisError: {reason}"

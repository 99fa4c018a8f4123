"""The AI extension's input roads, fuzzed: what a remote model answers, what an admin
writes into a model's descriptor, and slice headers a modality sends. Each ends in an
AnalysisError (a VolumeError, for the slices) naming the problem, or in a result that stays
inside the volume: never another exception (a worker would report a traceback instead of a
reason)."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hounsfield.ai.model import Analysis, AnalysisError, Volume
from hounsfield.ai.onnx import load_model
from hounsfield.ai.remote import RemoteAnalyzer, RemoteSettings
from hounsfield.volume import VolumeError, assemble
from tests.fuzz.strategies import json_bodies, json_values
from tests.support.ai import ct_slices
from tests.support.vlm import FakeServer, serving
from tests.unit.ai.test_onnx import install, threshold_model

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SHAPE = (6, 16, 16)
HU = np.random.default_rng(5).normal(0, 50, SHAPE).astype(np.float32)
SLICES = [pydicom.dcmread(io.BytesIO(data)) for data in ct_slices(HU, (2.0, 1.0, 1.0))]
VOLUME = assemble(copy.deepcopy(SLICES)).volume


def inside(analysis: Analysis, volume: Volume) -> bool:
    return all(
        finding.centroid is None
        or all(0 <= v <= n - 1 for v, n in zip(finding.centroid, volume.voxels.shape, strict=True))
        for finding in analysis.findings
    )


@pytest.fixture(scope="module")
def vlm() -> Iterator[FakeServer]:
    with serving() as fake:
        yield fake


finding_values = st.fixed_dictionaries(
    {},
    optional={
        "category": json_values,
        "description": json_values,
        "severity": st.sampled_from(["normal", "minor", "critical", "deadly"]) | json_values,
        "confidence": st.floats(-1, 2) | json_values,
        "image": st.integers(-2, 5) | json_values,
        "x": st.floats(-10, 40) | json_values,
        "y": st.floats(-10, 40) | json_values,
        "size_mm": st.floats(-1, 3000) | json_values,
    },
)
answers = (
    st.builds(lambda f: json.dumps({"findings": f}), st.lists(finding_values, max_size=3))
    | json_bodies.map(lambda body: body.decode("utf-8", "replace"))
    | st.text(max_size=200)
)


@SETTINGS
@given(content=answers, fenced=st.booleans())
def test_whatever_a_remote_model_answers(vlm: FakeServer, content: str, fenced: bool) -> None:
    vlm.reply(f"```json\n{content}\n```" if fenced else content)
    analyzer = RemoteAnalyzer(
        RemoteSettings.model_validate({"BaseUrl": vlm.url, "Model": "m", "TimeoutSeconds": 5})
    )
    try:
        analysis = analyzer.analyze(VOLUME)
    except AnalysisError:
        return
    assert inside(analysis, VOLUME)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


descriptors = (
    st.dictionaries(
        st.sampled_from(["Version", "Input", "Segmentation", "Classification", "Modalities"]),
        json_values,
        max_size=5,
    ).map(lambda d: json.dumps(d).encode())
    | json_bodies
)


@SETTINGS
@given(descriptor=descriptors)
def test_whatever_an_admin_writes_into_a_descriptor(models: Path, descriptor: bytes) -> None:
    folder = models / "fuzzed"
    if not folder.exists():
        install(models, "fuzzed", threshold_model([1, 1, "D", "H", "W"]), "{}")
    (folder / "descriptor.json").write_bytes(descriptor)
    try:
        analysis = load_model(models, "fuzzed").analyze(VOLUME)
    except AnalysisError:
        return
    assert inside(analysis, VOLUME)


ATTRIBUTES = [
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "Rows",
    "Columns",
    "BitsAllocated",
    "SamplesPerPixel",
    "NumberOfFrames",
    "RescaleSlope",
    "RescaleIntercept",
    "FrameOfReferenceUID",
    "PixelData",
]
values = (
    st.none()
    | st.integers(-(2**31), 2**31)
    | st.floats(allow_nan=True)
    | st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=7)
    | st.text(max_size=12)
    | st.binary(max_size=64)
)


@SETTINGS
@given(
    changes=st.lists(
        st.tuples(st.integers(0, SHAPE[0] - 1), st.sampled_from(ATTRIBUTES), values), max_size=3
    )
)
def test_whatever_slice_headers_say(changes: list[tuple[int, str, object]]) -> None:
    slices = copy.deepcopy(SLICES)
    for index, name, value in changes:
        try:
            if value is None:
                delattr(slices[index], name)
            else:
                setattr(slices[index], name, value)
        except (AttributeError, TypeError, ValueError, OverflowError):
            return  # pydicom refuses to hold it: no such file reaches us
    try:
        volume = assemble(slices).volume
    except VolumeError:
        return
    assert volume.voxels.shape[0] == SHAPE[0] and np.isfinite(volume.spacing).all()

"""Installed ONNX models: tiny models built here with ``onnx``, whose answers are known from
the phantom they see, and broken installations that must fail with their reason."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from hounsfield.ai.catalogue import installed_models
from hounsfield.ai.model import AnalysisError, Severity, Volume
from hounsfield.ai.onnx import OnnxAnalyzer, load_model, load_models

Dims = list[int | str]


def make_volume(
    voxels: np.ndarray, spacing: tuple[float, float, float], modality: str = "CT"
) -> Volume:
    count = voxels.shape[0]
    return Volume(
        voxels=voxels.astype(np.float32),
        spacing=spacing,
        origin=(0.0, 0.0, 0.0),
        orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
        instances=tuple(f"1.2.826.0.1.3680043.10.1.{k}" for k in range(count)),
        sop_class="1.2.840.10008.5.1.4.1.1.2",
        series_uid="1.2.826.0.1.3680043.10.2",
        study_uid="1.2.826.0.1.3680043.10.3",
        frame_of_reference="1.2.826.0.1.3680043.10.4",
        tags={"Modality": modality},
    )


def sphere(
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    centre: tuple[float, float, float],
    radius_mm: float,
) -> np.ndarray:
    """A ball in physical space (mm), on a grid with anisotropic voxels."""
    k, r, c = np.indices(shape, dtype=np.float64)
    distance = (
        ((k - centre[0]) * spacing[0]) ** 2
        + ((r - centre[1]) * spacing[1]) ** 2
        + ((c - centre[2]) * spacing[2]) ** 2
    )
    return distance <= radius_mm**2


def model_bytes(
    nodes: list[onnx.NodeProto],
    x: Dims,
    y: Dims,
    consts: dict[str, float],
    extra: tuple[onnx.TensorProto, ...] = (),
) -> bytes:
    initializers = [helper.make_tensor(n, TensorProto.FLOAT, [], [v]) for n, v in consts.items()]
    initializers += extra
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y)],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def brightness_model(x: Dims, axes: list[int], batch: int | str) -> bytes:
    """sigmoid(10 * (mean input - 0.5)): near 1 for a bright (windowed) image."""
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m"], axes=axes, keepdims=0),
        helper.make_node("Sub", ["m", "half"], ["d"]),
        helper.make_node("Mul", ["d", "ten"], ["s"]),
        helper.make_node("Sigmoid", ["s"], ["p"]),
        helper.make_node("Reshape", ["p", "shape"], ["y"]),
    ]
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [-1, 1])
    return model_bytes(nodes, x, [batch, 1], {"half": 0.5, "ten": 10.0}, (shape,))


def threshold_model(channels: Dims) -> bytes:
    """Two classes: background, and voxels above 100 (the input is raw HU)."""
    nodes = [
        helper.make_node("Greater", ["x", "t"], ["g"]),
        helper.make_node("Cast", ["g"], ["c1"], to=TensorProto.FLOAT),
        helper.make_node("Not", ["g"], ["ng"]),
        helper.make_node("Cast", ["ng"], ["c0"], to=TensorProto.FLOAT),
        helper.make_node("Concat", ["c0", "c1"], ["y"], axis=1),
    ]
    return model_bytes(nodes, channels, [1, 2, "D", "H", "W"], {"t": 100.0})


def install(root: Path, name: str, model: bytes, descriptor: dict[str, object] | str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(model)
    text = descriptor if isinstance(descriptor, str) else json.dumps(descriptor)
    (folder / "descriptor.json").write_text(text)
    return folder


CLASSIFIER: dict[str, object] = {
    "Version": "1.0",
    "Modalities": ["CT"],
    "Input": {
        "Shape": [1, 1, 16, 32, 32],
        "Spacing": [2.0, 1.0, 1.0],
        "Window": {"Centre": 0, "Width": 2000},
    },
    "Classification": {"Labels": [{"Name": "bright", "Threshold": 0.5, "Severity": "minor"}]},
}

SEGMENTER: dict[str, object] = {
    "Version": "2",
    "Input": {
        "Shape": [1, 1, 36, 48, 48],
        "Spacing": [1.0, 1.0, 1.0],
        "Normalisation": {"Mean": 0, "Std": 1},
    },
    "Segmentation": {
        "Classes": [
            {
                "Name": "lesion",
                "Code": "52988006",
                "Meaning": "Lesion",
                "Severity": "moderate",
                "Abnormal": True,
                "Findings": "component",
            }
        ]
    },
}


def windowed_truth(voxels: np.ndarray) -> float:
    mean = float(np.clip((voxels + 1000.0) / 2000.0, 0.0, 1.0).mean())
    return 1.0 / (1.0 + np.exp(-10.0 * (mean - 0.5)))


@pytest.fixture
def classifier(tmp_path: Path) -> OnnxAnalyzer:
    model = brightness_model([1, 1, 16, 32, 32], [0, 1, 2, 3, 4], 1)
    install(tmp_path, "bright", model, CLASSIFIER)
    analyzer = load_model(tmp_path, "bright")
    assert isinstance(analyzer, OnnxAnalyzer)
    return analyzer


def test_classification_follows_the_image(classifier: OnnxAnalyzer) -> None:
    rng = np.random.default_rng(1)
    shape, spacing = (16, 32, 32), (2.0, 1.0, 1.0)  # the model's own grid: nothing resampled
    ball = sphere(shape, spacing, (8, 16, 16), 10)
    bright = np.where(ball, 900.0, 500.0) + rng.normal(0, 20, shape)
    dark = np.where(ball, 200.0, -800.0) + rng.normal(0, 20, shape)

    high = classifier.analyze(make_volume(bright, spacing))
    truth = windowed_truth(bright)
    assert truth > 0.9
    assert high.analyzer == "onnx:bright"
    [finding] = high.findings
    assert (finding.key, finding.category, finding.severity) == ("bright", "bright", Severity.MINOR)
    assert finding.confidence == pytest.approx(truth, abs=1e-4)
    assert high.measurements[0].value == pytest.approx(truth * 100, abs=0.01)

    low = classifier.analyze(make_volume(dark, spacing))
    assert windowed_truth(dark) < 0.1
    assert low.findings == ()
    assert low.measurements[0].value == pytest.approx(windowed_truth(dark) * 100, abs=0.01)


def test_version_follows_the_model_file(tmp_path: Path, classifier: OnnxAnalyzer) -> None:
    digest = hashlib.sha256((tmp_path / "bright" / "model.onnx").read_bytes()).hexdigest()
    assert classifier.version == f"1.0+{digest[:12]}"
    assert load_model(tmp_path, "bright") is classifier  # one session per process
    (tmp_path / "bright" / "model.onnx").write_bytes(
        brightness_model([1, 1, 16, 32, 32], [2, 3, 4, 1, 0], 1)
    )
    replaced = load_model(tmp_path, "bright")
    assert replaced is not classifier
    assert replaced.version.startswith("1.0+") and replaced.version != classifier.version


def test_per_slice_classification_names_the_slice(tmp_path: Path) -> None:
    model = brightness_model(["N", 1, 32, 32], [1, 2, 3], "N")  # dynamic batch: several at once
    descriptor = json.loads(json.dumps(CLASSIFIER))
    descriptor["Input"] = {"Shape": [1, 1, 32, 32], "Window": {"Centre": 0, "Width": 2000}}
    install(tmp_path, "slices", model, descriptor)
    voxels = np.full((12, 40, 40), -900.0)
    voxels[7] = 800.0  # stretched from 40x40 to the model's 32x32: still uniform
    analysis = load_model(tmp_path, "slices").analyze(make_volume(voxels, (2.5, 0.7, 0.7)))
    [finding] = analysis.findings
    assert finding.centroid is not None and finding.centroid[0] == 7
    assert finding.extent == ((7.0, 0.0, 0.0), (7.0, 39.0, 39.0))
    assert finding.confidence == pytest.approx(windowed_truth(voxels[7]), abs=1e-4)


def test_segmentation_resampled_back_to_the_volume(tmp_path: Path) -> None:
    install(tmp_path, "lesions", threshold_model([1, 1, "D", "H", "W"]), SEGMENTER)
    # 2 x 0.8 x 0.8 mm voxels, resampled to the model's 1 mm grid: 40 x 38 x 38, then cropped
    # to 36 slices and padded to 48 x 48; both undone on the way back
    shape, spacing = (20, 48, 48), (2.0, 0.8, 0.8)
    big = sphere(shape, spacing, (9, 20, 27), 8.0)
    small = sphere(shape, spacing, (15, 36, 12), 4.0)
    # 200 HU in 0: the model's 100 HU threshold lies halfway, where interpolation puts the edge
    voxels = np.where(big | small, 200.0, 0.0)
    volume = make_volume(voxels, spacing)

    analysis = load_model(tmp_path, "lesions").analyze(volume)

    [segmentation] = analysis.segmentations
    assert segmentation.mask.shape == shape and segmentation.mask.dtype == bool
    assert segmentation.structure == ("52988006", "Lesion") and segmentation.abnormal
    truth_ml = int((big | small).sum()) * volume.voxel_ml
    assert int(segmentation.mask.sum()) * volume.voxel_ml == pytest.approx(truth_ml, rel=0.1)
    assert [f.key for f in analysis.findings] == ["lesion-1", "lesion-2"]  # largest first
    for finding, ball in zip(analysis.findings, (big, small), strict=True):
        assert finding.segment == "lesion" and finding.severity == Severity.MODERATE
        assert finding.volume_ml == pytest.approx(int(ball.sum()) * volume.voxel_ml, rel=0.1)
        assert finding.centroid is not None
        assert np.allclose(finding.centroid, np.argwhere(ball).mean(axis=0), atol=2.0)
        assert finding.confidence == 1.0
    assert analysis.findings[0].size_mm == pytest.approx(16.0, abs=2.0)
    assert analysis.findings[0].volume_ml == pytest.approx(4 / 3 * np.pi * 8**3 / 1000, rel=0.1)
    [measurement] = analysis.measurements
    assert (measurement.unit, measurement.segment) == ("ml", "lesion")


def test_not_an_onnx_file_breaks_only_itself(tmp_path: Path) -> None:
    install(tmp_path, "garbage", b"this is not a model, just some text", CLASSIFIER)
    install(tmp_path, "good", brightness_model([1, 1, 16, 32, 32], [0, 1, 2, 3, 4], 1), CLASSIFIER)
    models = load_models(tmp_path)
    assert sorted(models) == ["onnx:garbage", "onnx:good"] == installed_models(tmp_path)
    volume = make_volume(np.full((16, 32, 32), 500.0), (2.0, 1.0, 1.0))
    with pytest.raises(AnalysisError, match="not an ONNX model"):
        models["onnx:garbage"].analyze(volume)
    with pytest.raises(AnalysisError, match="not an ONNX model"):  # remembered, not retried
        models["onnx:garbage"].analyze(volume)
    assert len(models["onnx:good"].analyze(volume).findings) == 1


def test_descriptor_with_the_wrong_input_rank(tmp_path: Path) -> None:
    descriptor = json.loads(json.dumps(CLASSIFIER))
    descriptor["Input"]["Shape"] = [1, 1, 32, 32]
    descriptor["Input"]["Spacing"] = [1.0, 1.0]
    install(tmp_path, "rank", brightness_model([1, 1, 16, 32, 32], [0, 1, 2, 3, 4], 1), descriptor)
    analyzer = load_model(tmp_path, "rank")
    assert isinstance(analyzer, OnnxAnalyzer)
    assert "rank 4" in (analyzer.check() or "")
    with pytest.raises(AnalysisError, match="input has rank 4"):
        analyzer.analyze(make_volume(np.zeros((16, 32, 32)), (2.0, 1.0, 1.0)))


def test_descriptor_with_the_wrong_input_size(tmp_path: Path) -> None:
    descriptor = json.loads(json.dumps(CLASSIFIER))
    descriptor["Input"]["Shape"] = [1, 1, 16, 64, 64]
    install(tmp_path, "size", brightness_model([1, 1, 16, 32, 32], [0, 1, 2, 3, 4], 1), descriptor)
    with pytest.raises(AnalysisError, match="input dimension 3 is 64 in the descriptor, 32"):
        load_model(tmp_path, "size").analyze(make_volume(np.zeros((16, 32, 32)), (2, 1, 1)))


def test_descriptor_with_the_wrong_number_of_classes(tmp_path: Path) -> None:
    descriptor = json.loads(json.dumps(SEGMENTER))
    classes = descriptor["Segmentation"]["Classes"]
    classes.append({**classes[0], "Name": "other"})  # 3 channels expected, the model has 2
    install(tmp_path, "classes", threshold_model([1, 1, "D", "H", "W"]), descriptor)
    with pytest.raises(AnalysisError, match="output dimension 1 is 3 in the descriptor, 2"):
        load_model(tmp_path, "classes").analyze(make_volume(np.zeros((20, 40, 40)), (1, 1, 1)))


def test_descriptor_that_is_not_json(tmp_path: Path) -> None:
    install(tmp_path, "json", threshold_model([1, 1, "D", "H", "W"]), '{"Version": "1",')
    analyzer = load_model(tmp_path, "json")
    assert isinstance(analyzer, OnnxAnalyzer)
    assert analyzer.version.startswith("invalid+")
    with pytest.raises(AnalysisError, match=r"descriptor\.json is not valid JSON"):
        analyzer.analyze(make_volume(np.zeros((20, 40, 40)), (1, 1, 1)))


def test_descriptor_that_does_not_validate(tmp_path: Path) -> None:
    descriptor = json.loads(json.dumps(SEGMENTER))
    descriptor["Input"]["Window"] = {"Centre": 40, "Width": -5}
    descriptor["Colour"] = "red"
    install(tmp_path, "invalid", threshold_model([1, 1, "D", "H", "W"]), descriptor)
    with pytest.raises(AnalysisError, match=r"invalid descriptor.json: .*Width.*Colour"):
        load_model(tmp_path, "invalid").analyze(make_volume(np.zeros((20, 40, 40)), (1, 1, 1)))


def test_volume_of_the_wrong_kind(classifier: OnnxAnalyzer) -> None:
    with pytest.raises(AnalysisError, match="reads CT, not MR"):
        classifier.analyze(make_volume(np.zeros((16, 32, 32)), (2, 1, 1), modality="MR"))
    flat = make_volume(np.zeros((16, 32, 32)), (2, 1, 1))
    flat = Volume(**{**flat.__dict__, "voxels": np.zeros((32, 32), np.float32)})
    with pytest.raises(AnalysisError, match="needs a 3D volume"):
        classifier.analyze(flat)


def test_unknown_model_names(tmp_path: Path) -> None:
    install(tmp_path, "good", threshold_model([1, 1, "D", "H", "W"]), SEGMENTER)
    for name in ("missing", "../good", ".hidden", ""):
        with pytest.raises(AnalysisError, match="no ONNX model"):
            load_model(tmp_path, name)
    assert load_models(tmp_path / "absent") == {}

"""Models an admin installs: an ONNX file and a descriptor, run on the CPU.

Each model is a folder ``<models dir>/<name>/`` holding ``model.onnx`` and
``descriptor.json``; it becomes the analyzer ``onnx:<name>``. The descriptor says what the
model expects and what its output means, with PascalCase keys like the rest of Hounsfield's
configuration::

    {
      "Version": "2.1",
      "Description": "Intracranial haemorrhage, whole head",
      "Modalities": ["CT"], "BodyParts": ["HEAD"],
      "Input": {"Shape": [1, 1, 64, 128, 128], "Spacing": [3.0, 1.5, 1.5],
                "Window": {"Centre": 40, "Width": 80}},
      "Segmentation": {
        "Activation": "softmax",
        "Classes": [{"Name": "haemorrhage", "Code": "50960005", "Meaning": "Hemorrhage",
                     "Severity": "critical", "Abnormal": true, "Findings": "component",
                     "MinimumVolumeMl": 0.1}]}
    }

``Input.Shape`` is ``[1, 1, D, H, W]`` (the whole volume at once) or ``[1, 1, H, W]`` (one
axial slice at a time), with fixed numbers; where the model's own input has a dynamic
dimension any number is accepted, where it has a fixed one they must agree. The volume is
resampled to ``Input.Spacing`` (mm: slice, row, column; row, column for a slice model;
linear interpolation), then centre-cropped or padded with ``Input.Padding`` HU (air) to the
shape, so the model sees the middle of the field of view at its own scale. Without
``Spacing`` the volume is stretched to the shape instead. Intensities are either windowed
(``Window``: Centre/Width in HU, mapped to 0..1 and clipped) or standardised
(``Normalisation``: (HU - Mean) / Std); exactly one of the two.

The output is one of:

- ``Classification``: ``Labels`` (Name, Threshold, Severity, Description), the output
  being ``(1, labels)`` probabilities, or logits with ``"Activation": "softmax"`` or
  ``"sigmoid"``. A label whose probability exceeds its threshold becomes a Finding (key and
  category = the label, confidence = the probability); a slice model reports the slice with
  the highest probability. Every label's probability is recorded as a Measurement.
- ``Segmentation``: ``Classes`` (Name, SNOMED CT Code and Meaning, Severity, Abnormal,
  Findings "class" or "component", MinimumVolumeMl), the output being per-voxel scores
  ``(1, 1 + classes, ...)`` on the input's grid, channel 0 background; the argmax is taken.
  Each class with voxels becomes a Segmentation on the volume's grid (nearest neighbour)
  and one Finding for the class, or one per connected component.

``Modalities`` is enforced when both it and the volume's Modality are known (a CT model fed
MR intensities answers nonsense); ``BodyParts`` is informational (BodyPartExamined is too
unreliable to refuse on). ``OutputName`` picks one of several outputs (default: the first).

A broken model (not ONNX, a descriptor that is invalid or does not match the model) still
becomes an analyzer, one that raises ``AnalysisError`` saying why when run: the other
models and analyzers run as usual, and the reason reaches the job's error where the admin
sees it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_pascal
from scipy import ndimage

from hounsfield.ai.catalogue import ONNX, installed_models
from hounsfield.ai.model import (
    Analysis,
    AnalysisError,
    Analyzer,
    Finding,
    Measurement,
    Segmentation,
    Severity,
    Volume,
    Voxel,
)
from hounsfield.untrusted import InputRefused
from hounsfield.untrusted.jsontext import parse_json

log = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
DESCRIPTOR_FILE = "descriptor.json"
MAX_DESCRIPTOR = 1 << 20  # bytes
MAX_DEPTH = 16  # a descriptor nests 5 levels
THREADS = 2  # per session: analyses run beside Orthanc and other jobs, not alone on the host
_MAX_DIMENSION = 4096
# onnxruntime's element types we feed (the volume is cast to the model's)
_INPUT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
}


class _Spec(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, extra="forbid", frozen=True)


class Window(_Spec):
    """HU from Centre - Width/2 to Centre + Width/2 mapped to 0..1 (clipped)."""

    centre: float
    width: float = Field(gt=0)


class Normalisation(_Spec):
    """(HU - Mean) / Std, unclipped."""

    mean: float = 0.0
    std: float = Field(1.0, gt=0)


class InputSpec(_Spec):
    shape: tuple[int, ...]
    spacing: tuple[float, ...] | None = None
    window: Window | None = None
    normalisation: Normalisation | None = None
    padding: float = -1024.0  # HU outside the scanned field: air

    @model_validator(mode="after")
    def _consistent(self) -> InputSpec:
        if len(self.shape) not in (4, 5):
            raise ValueError("Shape must be [1, 1, D, H, W] or [1, 1, H, W]")
        if self.shape[0] != 1 or self.shape[1] != 1:
            raise ValueError("Shape must start with batch 1 and channel 1")
        if not all(1 <= n <= _MAX_DIMENSION for n in self.shape):
            raise ValueError(f"Shape's dimensions must lie between 1 and {_MAX_DIMENSION}")
        if self.spacing is not None:
            if len(self.spacing) != len(self.shape) - 2:
                raise ValueError("Spacing needs one value (mm) per spatial dimension of Shape")
            if not all(0 < s < 100 for s in self.spacing):
                raise ValueError("Spacing values must be positive mm below 100")
        if (self.window is None) == (self.normalisation is None):
            raise ValueError("give exactly one of Window and Normalisation")
        return self

    @property
    def spatial(self) -> tuple[int, ...]:
        return self.shape[2:]


Activation = Literal["none", "softmax", "sigmoid"]


class Label(_Spec):
    name: str = Field(min_length=1, max_length=64)
    threshold: float = Field(0.5, ge=0, le=1)
    severity: Severity = Severity.MODERATE
    description: str = ""


class ClassificationSpec(_Spec):
    activation: Activation = "none"
    labels: tuple[Label, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> ClassificationSpec:
        names = [label.name for label in self.labels]
        if len(set(names)) != len(names):
            raise ValueError("label names must be unique")
        return self


class SegmentClass(_Spec):
    name: str = Field(min_length=1, max_length=64)
    code: str = Field(min_length=1, max_length=32)  # SNOMED CT
    meaning: str = ""  # SNOMED CT's meaning; the name if absent
    severity: Severity = Severity.NORMAL
    abnormal: bool = False
    findings: Literal["class", "component"] = "class"
    minimum_volume_ml: float = Field(0.0, ge=0)


class SegmentationSpec(_Spec):
    activation: Activation = "none"
    classes: tuple[SegmentClass, ...] = Field(min_length=1)  # channel 0 is background

    @model_validator(mode="after")
    def _unique(self) -> SegmentationSpec:
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ValueError("class names must be unique")
        return self


class Descriptor(_Spec):
    version: str = Field(min_length=1, max_length=64)
    description: str = ""
    input: InputSpec
    output_name: str | None = None
    modalities: frozenset[str] = frozenset()
    body_parts: frozenset[str] = frozenset()
    classification: ClassificationSpec | None = None
    segmentation: SegmentationSpec | None = None

    @model_validator(mode="after")
    def _one_output(self) -> Descriptor:
        if (self.classification is None) == (self.segmentation is None):
            raise ValueError("give exactly one of Classification and Segmentation")
        return self

    def expected_output(self) -> tuple[int, ...]:
        """The output shape the model must produce for one input of ``Input.Shape``."""
        if self.classification is not None:
            return (1, len(self.classification.labels))
        assert self.segmentation is not None
        return (1, 1 + len(self.segmentation.classes), *self.input.spatial)


class _NodeArg(Protocol):
    """What onnxruntime says about one of a model's inputs or outputs."""

    @property
    def name(self) -> str: ...
    @property
    def shape(self) -> Sequence[int | str | None]: ...
    @property
    def type(self) -> str: ...


class _Session(Protocol):
    """The part of ``onnxruntime.InferenceSession`` used here."""

    def get_inputs(self) -> Sequence[_NodeArg]: ...
    def get_outputs(self) -> Sequence[_NodeArg]: ...
    def run(
        self, output_names: list[str] | None, input_feed: dict[str, np.ndarray]
    ) -> Sequence[np.ndarray]: ...


def _summarise(error: ValidationError) -> str:
    """Pydantic's report in one line: where and what, for the first few problems."""
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "descriptor"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def read_descriptor(path: Path) -> Descriptor:
    """The descriptor at ``path``, or AnalysisError saying what is wrong with it."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise AnalysisError(f"no {DESCRIPTOR_FILE} in {path.parent}") from None
    except OSError as exc:
        raise AnalysisError(f"cannot read {path}: {exc}") from None
    try:
        data = parse_json(raw, max_bytes=MAX_DESCRIPTOR, max_depth=MAX_DEPTH)
    except InputRefused as exc:
        raise AnalysisError(f"{DESCRIPTOR_FILE} is not valid JSON: {exc}") from None
    try:
        return Descriptor.model_validate(data)
    except ValidationError as exc:
        raise AnalysisError(f"invalid {DESCRIPTOR_FILE}: {_summarise(exc)}") from None


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def _match(what: str, model: Sequence[int | str | None], expected: Sequence[int]) -> None:
    """Fixed dimensions of the model must equal the descriptor's; dynamic ones (a name,
    None or a negative number in onnxruntime's report) take whatever comes."""
    if len(model) != len(expected):
        raise AnalysisError(
            f"the descriptor's {what} has rank {len(expected)} {list(expected)}, "
            f"the model's has rank {len(model)} {list(model)}"
        )
    for axis, (have, want) in enumerate(zip(model, expected, strict=True)):
        if isinstance(have, int) and have >= 0 and have != want:
            raise AnalysisError(
                f"{what} dimension {axis} is {want} in the descriptor, {have} in the model "
                f"(model {list(model)}, descriptor {list(expected)})"
            )


class _Loaded:
    """A session whose input and output agree with the descriptor."""

    def __init__(self, session: _Session, descriptor: Descriptor) -> None:
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise AnalysisError(f"the model has {len(inputs)} inputs; one image input is supported")
        source = inputs[0]
        if source.type not in _INPUT_TYPES:
            raise AnalysisError(f"the model's input is {source.type}; a float tensor is needed")
        _match("input", source.shape, descriptor.input.shape)
        outputs = session.get_outputs()
        names = [o.name for o in outputs]
        if not names:
            raise AnalysisError("the model has no output")
        wanted = descriptor.output_name or names[0]
        if wanted not in names:
            raise AnalysisError(f"the model has no output {wanted!r} (it has {names})")
        target = outputs[names.index(wanted)]
        _match("output", target.shape, descriptor.expected_output())
        self.session = session
        self.input_name = source.name
        self.input_type = _INPUT_TYPES[source.type]
        self.output_name = wanted
        batch = source.shape[0]
        # a slice model whose batch is dynamic takes several slices per call
        self.batch = 1 if isinstance(batch, int) and batch > 0 else 8

    def run(self, batch: np.ndarray) -> np.ndarray:
        try:
            result = self.session.run(
                [self.output_name], {self.input_name: batch.astype(self.input_type)}
            )[0]
        except Exception as exc:  # onnxruntime's own exception classes, not importable here
            raise AnalysisError(f"the model failed: {exc}") from None
        return np.asarray(result, dtype=np.float32)


def _open_session(path: Path, threads: int) -> _Session:
    """An onnxruntime CPU session; its errors become AnalysisError with the reason."""
    import onnxruntime  # heavy, and only needed where models are installed

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors reach us as exceptions; no console chatter
    try:
        session: _Session = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises pybind classes (InvalidProtobuf, Fail...)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if type(exc).__name__ in ("InvalidProtobuf", "InvalidArgument"):
            raise AnalysisError(f"not an ONNX model: {reason}") from None
        raise AnalysisError(f"the ONNX model cannot be loaded: {reason}") from None
    return session


class _Placement:
    """How an array was centre-cropped or padded to a shape, to put results back."""

    def __init__(self, size: Sequence[int], shape: Sequence[int]) -> None:
        self.size = tuple(size)
        self.source: list[slice] = []
        self.target: list[slice] = []
        for have, want in zip(size, shape, strict=True):
            length = min(have, want)
            start_have = (have - length) // 2
            start_want = (want - length) // 2
            self.source.append(slice(start_have, start_have + length))
            self.target.append(slice(start_want, start_want + length))
        self.shape = tuple(shape)

    def fit(self, array: np.ndarray, fill: float) -> np.ndarray:
        out = np.full(self.shape, fill, dtype=array.dtype)
        out[tuple(self.target)] = array[tuple(self.source)]
        return out

    def unfit(self, array: np.ndarray) -> np.ndarray:
        out = np.zeros(self.size, dtype=array.dtype)
        out[tuple(self.source)] = array[tuple(self.target)]
        return out


def _resize(array: np.ndarray, shape: Sequence[int], order: int) -> np.ndarray:
    """``array`` resampled to exactly ``shape`` (voxel edges aligned, so voxels keep their
    physical size); the guard absorbs a rounding difference of one voxel."""
    if tuple(array.shape) == tuple(shape):
        return array
    factors = [want / have for want, have in zip(shape, array.shape, strict=True)]
    out = ndimage.zoom(array, factors, order=order, mode="nearest", grid_mode=True)
    if out.shape != tuple(shape):
        out = _Placement(out.shape, shape).fit(out, 0)
    return out


def _activate(scores: np.ndarray, activation: Activation, axis: int) -> np.ndarray:
    if activation == "softmax":
        shifted = scores - scores.max(axis=axis, keepdims=True)
        exp = np.exp(shifted)
        return exp / exp.sum(axis=axis, keepdims=True)
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-scores))
    return scores


class _Grid:
    """The volume as the model wants it, and the way back to the volume's grid."""

    def __init__(self, volume: Volume, spec: InputSpec) -> None:
        self.slices = len(spec.shape) == 4
        size = volume.voxels.shape
        if self.slices:
            plane: tuple[int, ...] = spec.spatial
            if spec.spacing is not None:
                plane = tuple(
                    max(1, round(n * have / want))
                    for n, have, want in zip(
                        size[1:], volume.spacing[1:], spec.spacing, strict=True
                    )
                )
            self.resampled = (size[0], *plane)
            shape = (size[0], *spec.spatial)
        else:
            resampled: tuple[int, ...] = spec.spatial
            if spec.spacing is not None:
                resampled = tuple(
                    max(1, round(n * have / want))
                    for n, have, want in zip(size, volume.spacing, spec.spacing, strict=True)
                )
            self.resampled = resampled
            shape = spec.spatial
        self.size = size
        self.placement = _Placement(self.resampled, shape)

    def forward(self, voxels: np.ndarray, padding: float) -> np.ndarray:
        return self.placement.fit(_resize(voxels, self.resampled, order=1), padding)

    def back(self, labels: np.ndarray) -> np.ndarray:
        return _resize(self.placement.unfit(labels), self.size, order=0)


def _normalise(voxels: np.ndarray, spec: InputSpec) -> np.ndarray:
    if spec.window is not None:
        low = spec.window.centre - spec.window.width / 2
        return np.clip((voxels - low) / spec.window.width, 0.0, 1.0)
    assert spec.normalisation is not None
    return (voxels - spec.normalisation.mean) / spec.normalisation.std


class OnnxAnalyzer:
    """One installed model. The descriptor and the model's checksum are read at once (the
    version must be known to decide whether results are current); the onnxruntime session
    is created on the first analysis, once per process, and checked against the descriptor
    then. A problem found on the way is kept and raised as AnalysisError on every run."""

    def __init__(self, folder: Path, threads: int = THREADS) -> None:
        self.folder = folder
        self.name = ONNX + folder.name
        self.threads = threads
        self.descriptor: Descriptor | None = None
        self._problem: str | None = None
        self._loaded: _Loaded | None = None
        self._lock = threading.Lock()
        model = folder / MODEL_FILE
        digest = "missing"
        try:
            digest = _digest(model)[:12]
        except FileNotFoundError:
            self._problem = f"no {MODEL_FILE} in {folder}"
        except OSError as exc:
            self._problem = f"cannot read {model}: {exc}"
        try:
            self.descriptor = read_descriptor(folder / DESCRIPTOR_FILE)
        except AnalysisError as exc:
            self._problem = self._problem or str(exc)
        version = self.descriptor.version if self.descriptor else "invalid"
        # a replaced model file gives new results even when the admin forgot the version
        self.version = f"{version}+{digest}"

    @property
    def problem(self) -> str | None:
        """Why this model cannot run, as far as known without loading it."""
        return self._problem

    def check(self) -> str | None:
        """Load the model now (admin tools, start-up): None when it is usable, else why not."""
        try:
            self._load()
        except AnalysisError as exc:
            return str(exc)
        return None

    def _load(self) -> tuple[Descriptor, _Loaded]:
        with self._lock:
            if self._problem is None and self._loaded is None:
                assert self.descriptor is not None
                try:
                    session = _open_session(self.folder / MODEL_FILE, self.threads)
                    self._loaded = _Loaded(session, self.descriptor)
                except AnalysisError as exc:
                    self._problem = str(exc)
            if self._problem is not None:
                raise AnalysisError(f"{self.name}: {self._problem}")
            assert self.descriptor is not None and self._loaded is not None
            return self.descriptor, self._loaded

    def analyze(self, volume: Volume) -> Analysis:
        descriptor, loaded = self._load()
        self._accept(volume, descriptor)
        grid = _Grid(volume, descriptor.input)
        voxels = grid.forward(np.asarray(volume.voxels, dtype=np.float32), descriptor.input.padding)
        voxels = _normalise(voxels, descriptor.input)
        scores = self._infer(loaded, voxels, grid.slices, descriptor.expected_output())
        if descriptor.classification is not None:
            return self._classify(volume, descriptor.classification, scores, grid.slices)
        assert descriptor.segmentation is not None
        return self._segment(volume, descriptor.segmentation, scores, grid)

    def _accept(self, volume: Volume, descriptor: Descriptor) -> None:
        voxels = volume.voxels
        if voxels.ndim != 3 or voxels.size == 0:
            raise AnalysisError(f"{self.name}: needs a 3D volume, got shape {voxels.shape}")
        if not np.issubdtype(voxels.dtype, np.number):
            raise AnalysisError(f"{self.name}: the volume's voxels are not numbers")
        if not all(np.isfinite(s) and s > 0 for s in volume.spacing):
            raise AnalysisError(f"{self.name}: the volume's spacing {volume.spacing} is unusable")
        modality = volume.tags.get("Modality")
        if descriptor.modalities and modality and modality not in descriptor.modalities:
            accepted = ", ".join(sorted(descriptor.modalities))
            raise AnalysisError(f"{self.name}: the model reads {accepted}, not {modality}")

    def _infer(
        self, loaded: _Loaded, voxels: np.ndarray, slices: bool, expected: tuple[int, ...]
    ) -> np.ndarray:
        """Scores without the batch axis: (labels,) or (classes, D, H, W) for a volume model,
        (slices, labels) or (classes, slices, H, W) for a slice model."""
        if not np.isfinite(voxels).all():
            raise AnalysisError(f"{self.name}: the volume holds non-finite values")
        if not slices:
            out = loaded.run(voxels[None, None])
            self._expect(out, expected)
            return out[0]
        parts = []
        for start in range(0, len(voxels), loaded.batch):
            chunk = voxels[start : start + loaded.batch, None]
            out = loaded.run(chunk)
            self._expect(out, (len(chunk), *expected[1:]))
            parts.append(out)
        stacked = np.concatenate(parts)
        # segmentation: (slices, classes, H, W) -> (classes, slices, H, W)
        return stacked if stacked.ndim == 2 else np.moveaxis(stacked, 1, 0)

    def _expect(self, out: np.ndarray, shape: tuple[int, ...]) -> None:
        """A model with dynamic dimensions is only checked when it answers."""
        if out.shape != shape:
            raise AnalysisError(
                f"{self.name}: the model answered shape {list(out.shape)}, "
                f"the descriptor expects {list(shape)}"
            )

    def _classify(
        self, volume: Volume, spec: ClassificationSpec, scores: np.ndarray, slices: bool
    ) -> Analysis:
        probabilities = _activate(scores, spec.activation, axis=-1)
        findings: list[Finding] = []
        measurements: list[Measurement] = []
        rows, columns = volume.voxels.shape[1:]
        for index, label in enumerate(spec.labels):
            per_slice = probabilities[..., index].reshape(-1)
            best = int(np.argmax(per_slice))
            p = float(np.clip(per_slice[best], 0.0, 1.0))
            measurements.append(Measurement(f"{label.name} probability", round(p * 100, 2), "%"))
            if p <= label.threshold:
                continue
            centroid: Voxel | None = None
            extent: tuple[Voxel, Voxel] | None = None
            where = ""
            if slices:
                # the whole slice: the model says which slice, not where in it
                above = np.flatnonzero(per_slice > label.threshold)
                centroid = (float(best), (rows - 1) / 2, (columns - 1) / 2)
                extent = (
                    (float(above[0]), 0.0, 0.0),
                    (float(above[-1]), float(rows - 1), float(columns - 1)),
                )
                where = f", most on slice {best + 1}"
            text = label.description or f"{label.name} (probability {p:.2f}{where})"
            findings.append(
                Finding(
                    key=label.name,
                    category=label.name,
                    description=text,
                    severity=label.severity,
                    confidence=p,
                    centroid=centroid,
                    extent=extent,
                )
            )
        return Analysis(self.name, self.version, tuple(findings), tuple(measurements))

    def _segment(
        self, volume: Volume, spec: SegmentationSpec, scores: np.ndarray, grid: _Grid
    ) -> Analysis:
        probabilities = _activate(scores, spec.activation, axis=0)
        winners = np.argmax(probabilities, axis=0).astype(np.uint8)
        labels = grid.back(winners)
        findings: list[Finding] = []
        measurements: list[Measurement] = []
        segmentations: list[Segmentation] = []
        for channel, cls in enumerate(spec.classes, start=1):
            mask = labels == channel
            if not mask.any():
                continue
            confidence = float(np.clip(probabilities[channel][winners == channel].mean(), 0, 1))
            meaning = cls.meaning or cls.name
            single = cls.findings == "class"
            if single:
                parts = mask.astype(np.int32)
            else:
                parts, _ = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
            sizes = np.bincount(parts.ravel())
            ids = [
                int(i)
                for i in np.argsort(-sizes[1:], kind="stable") + 1
                if sizes[i] * volume.voxel_ml >= cls.minimum_volume_ml
            ]
            if not ids:
                continue
            if len(ids) < len(sizes) - 1:  # small components dropped from the mask too
                mask = np.isin(parts, ids)
            segmentations.append(Segmentation(cls.name, mask, (cls.code, meaning), cls.abnormal))
            total = int(mask.sum()) * volume.voxel_ml
            measurements.append(Measurement(f"{cls.name} volume", round(total, 3), "ml", cls.name))
            boxes = ndimage.find_objects(parts)
            centres = ndimage.center_of_mass(mask, parts, ids)
            for number, (part, centre) in enumerate(zip(ids, centres, strict=True), start=1):
                box = boxes[part - 1]
                assert box is not None
                first = tuple(float(b.start) for b in box)
                last = tuple(float(b.stop - 1) for b in box)
                size = max((b.stop - b.start) * s for b, s in zip(box, volume.spacing, strict=True))
                ml = int(sizes[part]) * volume.voxel_ml
                findings.append(
                    Finding(
                        key=cls.name if single else f"{cls.name}-{number}",
                        category=cls.name,
                        description=(
                            f"{meaning}: {ml:.1f} ml"
                            if single
                            else f"{meaning} {number}: {ml:.1f} ml, {size:.0f} mm"
                        ),
                        severity=cls.severity,
                        confidence=confidence,
                        centroid=(float(centre[0]), float(centre[1]), float(centre[2])),
                        extent=((first[0], first[1], first[2]), (last[0], last[1], last[2])),
                        size_mm=round(float(size), 1),
                        volume_ml=round(ml, 3),
                        segment=cls.name,
                    )
                )
        return Analysis(
            self.name, self.version, tuple(findings), tuple(measurements), tuple(segmentations)
        )


def _stamp(folder: Path) -> tuple[tuple[int, int] | None, ...]:
    stamps = []
    for name in (MODEL_FILE, DESCRIPTOR_FILE):
        try:
            info = (folder / name).stat()
            stamps.append((info.st_mtime_ns, info.st_size))
        except OSError:
            stamps.append(None)
    return tuple(stamps)


_cache: dict[Path, tuple[tuple[tuple[int, int] | None, ...], OnnxAnalyzer]] = {}
_cache_lock = threading.Lock()


def load_model(folder: Path, name: str, threads: int = THREADS) -> Analyzer:
    """The model ``name`` (without the prefix) under ``folder``. Analyzers are kept for the
    process (one onnxruntime session each, created on first use) until the admin replaces
    the model's files; a broken model comes back too, raising AnalysisError when run."""
    path = folder / name
    if not name or name.startswith(".") or path.name != name or not path.is_dir():
        raise AnalysisError(f"no ONNX model {name!r} in {folder}")
    stamp = _stamp(path)
    with _cache_lock:
        cached = _cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        analyzer = OnnxAnalyzer(path, threads)
        if analyzer.problem:
            log.warning("ONNX model %s is broken: %s", analyzer.name, analyzer.problem)
        _cache[path] = (stamp, analyzer)
        return analyzer


def load_models(folder: Path, threads: int = THREADS) -> dict[str, Analyzer]:
    """Every model folder under ``folder`` as ``onnx:<name>``, broken ones included (they
    raise AnalysisError with the reason when run, and are logged here). A missing folder
    means no models installed."""
    return {
        name: load_model(folder, name.removeprefix(ONNX), threads)
        for name in installed_models(folder)
    }

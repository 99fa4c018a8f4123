"""A remote vision-language model over an OpenAI-compatible chat-completions API.

Hosted services and local servers (vLLM, Ollama, llama.cpp's server) speak the same request
(``POST .../v1/chat/completions`` with text and ``image_url`` parts), so one client covers
them. The section, under ``HounsfieldAI``::

    "Remote": {"BaseUrl": "http://localhost:11434", "Model": "qwen2.5vl:7b",
               "ApiKey": "", "TimeoutSeconds": 60, "MaxImages": 3,
               "Window": {"Centre": 40, "Width": 400}, "JsonMode": true}

The endpoint is derived from ``BaseUrl``: one ending in ``/chat/completions`` is used as it
is, one ending in ``/v1`` gets ``/chat/completions``, any other gets
``/v1/chat/completions`` (so ``http://host:8000`` and ``http://host:8000/v1`` both work).

What leaves the hospital: a few slices (evenly spaced through the middle 80 % of the
volume), windowed to 8-bit grey PNGs made of pixels only (no text, no metadata chunks),
the modality, the body part, the slice count and the spacing. Never a name, an ID, a date,
an accession number, an institution or a UID: the prompt is built from a whitelist, not by
removing what looks identifying.

The model answers findings as JSON (``SCHEMA``), validated strictly. A remote model is a
second opinion, not a measurement: anything but a well-formed answer (HTTP error, timeout,
refusal, prose, schema mismatch) is an ``AnalysisError`` saying why, and no finding is
made up from it. Its severities are kept as given, critical included: a radiologist reviews
every finding, and a critical one is the one that must not wait.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import re
import urllib.error
import urllib.request
from collections.abc import Sequence

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic.alias_generators import to_pascal

from hounsfield.ai.model import Analysis, AnalysisError, Finding, Severity, Volume, Voxel
from hounsfield.untrusted import InputRefused
from hounsfield.untrusted.jsontext import parse_json

NAME = "remote"
PROMPT_VERSION = "1"  # part of the analyzer's version: a new prompt gives new results
MAX_ANSWER = 4 << 20  # bytes read from the server
MAX_DEPTH = 16  # the schema nests 3 levels
CHEST = ("CHEST", "THORAX", "LUNG")


class _Settings(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, extra="forbid", frozen=True)


class Window(_Settings):
    centre: float
    width: float = Field(gt=0)


LUNG_WINDOW = Window.model_validate({"Centre": -600, "Width": 1500})
SOFT_TISSUE_WINDOW = Window.model_validate({"Centre": 40, "Width": 400})


class RemoteSettings(_Settings):
    base_url: str = Field(pattern=r"^https?://\S+$")
    model: str = Field(min_length=1, max_length=200)
    api_key: SecretStr | None = None  # sent as "Authorization: Bearer ..."; never logged
    timeout_seconds: float = Field(60.0, gt=0, le=600)
    max_images: int = Field(3, ge=1, le=16)
    # None: by modality (CT: lung window for the chest, soft tissue otherwise; other
    # modalities: the 1st to 99th percentile of the slices sent)
    window: Window | None = None
    # response_format json_object: vLLM, Ollama and hosted services accept it; a server
    # that rejects it (HTTP 400) needs JsonMode false, the prompt asks for JSON anyway
    json_mode: bool = True
    max_tokens: int = Field(1024, ge=64, le=32768)
    max_image_size: int = Field(1024, ge=64, le=4096)  # pixels; larger slices are scaled down

    @property
    def endpoint(self) -> str:
        base = self.base_url.rstrip("/")
        if base.endswith("/chat/completions"):
            return base
        if base.endswith("/v1"):
            return base + "/chat/completions"
        return base + "/v1/chat/completions"


# The answer's schema, strictly: a finding the model cannot place on an image it was sent,
# or with a severity or confidence out of range, is not a finding.
class RemoteFinding(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    category: str = Field(min_length=1, max_length=100)
    description: str = Field(max_length=2000)
    severity: Severity
    confidence: float = Field(ge=0, le=1)
    image: int = Field(ge=0)
    x: float | None = Field(None, ge=0)  # column of the image, from its left edge
    y: float | None = Field(None, ge=0)  # row, from the top
    size_mm: float | None = Field(None, gt=0, le=2000)

    @model_validator(mode="after")
    def _both(self) -> RemoteFinding:
        if (self.x is None) != (self.y is None):
            raise ValueError("give both x and y, or neither")
        return self


class RemoteAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    findings: list[RemoteFinding] = Field(max_length=100)


SCHEMA = (
    '{"findings": [{"category": string (a short name, e.g. "pneumothorax"), '
    '"description": string (one sentence), '
    '"severity": "normal" | "minor" | "moderate" | "critical", '
    '"confidence": number from 0 to 1, '
    '"image": integer (0-based index of the image showing it), '
    '"x": number (optional: pixel column in that image, from the left), '
    '"y": number (optional: pixel row, from the top; with x), '
    '"size_mm": number (optional: largest diameter in mm)}]}'
)


# The envelope: only what we read, the rest ignored (servers add their own fields).
class _Part(BaseModel):
    type: str = "text"
    text: str = ""


class _Message(BaseModel):
    content: str | list[_Part] | None = None
    refusal: str | None = None


class _Choice(BaseModel):
    message: _Message
    finish_reason: str | None = None


class _Completion(BaseModel):
    choices: list[_Choice] = Field(min_length=1)


def _summarise(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "answer"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def key_slices(count: int, wanted: int) -> list[int]:
    """Evenly spaced through the middle 80 % of ``count`` slices: the ends of a scan are
    mostly outside the organ of interest (neck, upper abdomen)."""
    wanted = min(wanted, count)
    if wanted <= 1:
        return [count // 2]
    positions = np.linspace(0.1 * (count - 1), 0.9 * (count - 1), wanted)
    return sorted(set(np.rint(positions).astype(int).tolist()))


def _clean(value: str) -> str:
    """A tag value for the prompt: letters, digits, spaces; short. Modality and body part
    are codes, this keeps stray text out of what leaves."""
    return re.sub(r"[^A-Za-z0-9 _-]", "", value)[:32].strip()


def _bounds(volume: Volume, window: Window | None, pixels: np.ndarray) -> tuple[float, float]:
    if window is None:
        modality = volume.tags.get("Modality", "")
        if modality == "CT":
            part = volume.tags.get("BodyPartExamined", "").upper()
            window = LUNG_WINDOW if part in CHEST else SOFT_TISSUE_WINDOW
        else:  # not Hounsfield units: whatever the slices hold
            low, high = (float(v) for v in np.percentile(pixels, [1, 99]))
            return low, max(high, low + 1.0)
    return window.centre - window.width / 2, window.centre + window.width / 2


def _plane(volume: Volume) -> str:
    """Axial, coronal or sagittal: the patient axis the slices' normal runs along most."""
    axis = int(np.argmax(np.abs(volume.normal)))
    return ("sagittal", "coronal", "axial")[axis]


def render(pixels: np.ndarray, low: float, high: float, max_size: int) -> tuple[bytes, float]:
    """One slice as an 8-bit grey PNG, and the scale from slice pixels to image pixels.
    Pixels only: PIL writes no text chunk unless asked to."""
    grey = np.clip((pixels.astype(np.float32) - low) / (high - low), 0.0, 1.0)
    image = Image.fromarray(np.round(grey * 255).astype(np.uint8))
    scale = 1.0
    rows, columns = pixels.shape
    if max(rows, columns) > max_size:
        scale = max_size / max(rows, columns)
        size = (max(1, round(columns * scale)), max(1, round(rows * scale)))
        image = image.resize(size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue(), scale


def _fenced(text: str) -> str:
    """The JSON in an answer that may wrap it in ```json fences."""
    match = re.search(r"```(?:json|JSON)?\s*\n?(.*?)```", text, re.DOTALL)
    return (match.group(1) if match else text).strip()


class RemoteAnalyzer:
    """Key images to a remote model, its findings back as ``Finding`` objects."""

    name = NAME

    def __init__(self, settings: RemoteSettings) -> None:
        self.settings = settings
        self.version = f"p{PROMPT_VERSION}+{settings.model}"

    def analyze(self, volume: Volume) -> Analysis:
        voxels = volume.voxels
        if voxels.ndim != 3 or voxels.size == 0 or min(voxels.shape[1:]) < 8:
            raise AnalysisError(f"{self.name}: needs a volume of images, got {voxels.shape}")
        slices = key_slices(voxels.shape[0], self.settings.max_images)
        chosen = np.asarray(voxels[slices], dtype=np.float32)
        low, high = _bounds(volume, self.settings.window, chosen)
        images = [render(s, low, high, self.settings.max_image_size) for s in chosen]
        body = self.request(volume, slices, images)
        answer = self._send(body)
        return Analysis(self.name, self.version, self._findings(volume, slices, images, answer))

    def prompt(self, volume: Volume, slices: Sequence[int], scale: float) -> str:
        """What the model is told: the images' place in the series and their scale, the
        task and the schema. Built from a whitelist of facts, never from the tags at large."""
        modality = _clean(volume.tags.get("Modality", "")) or "unknown modality"
        part = _clean(volume.tags.get("BodyPartExamined", "")) or "unknown body part"
        count = volume.voxels.shape[0]
        slice_mm, row_mm, column_mm = volume.spacing
        plane = _plane(volume)
        where = "; ".join(f"image {i} is slice {k + 1} of {count}" for i, k in enumerate(slices))
        return (
            "You assist a radiologist, who reviews everything you report. "
            f"The {len(slices)} images are {plane} slices of a {modality} series "
            f"({part}), {slice_mm:.2f} mm apart; {where}. One image pixel is "
            f"{row_mm / scale:.2f} mm (rows) by {column_mm / scale:.2f} mm (columns).\n"
            "Report the abnormal findings visible in these images. Answer with one JSON "
            f"object and nothing else, of this form:\n{SCHEMA}\n"
            "Use no other keys. Give x and y (the centre of the finding, in pixels of the "
            "image it is on, from the top-left corner) when you can place it. If nothing "
            'abnormal is visible, answer {"findings": []}. Leave out what you cannot see '
            "in the images; do not guess."
        )

    def request(
        self,
        volume: Volume,
        slices: Sequence[int],
        images: Sequence[tuple[bytes, float]],
    ) -> dict[str, object]:
        """The chat-completions body: the prompt, then the images in order."""
        content: list[dict[str, object]] = [
            {"type": "text", "text": self.prompt(volume, slices, images[0][1])}
        ]
        for png, _ in images:
            url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
            content.append({"type": "image_url", "image_url": {"url": url}})
        body: dict[str, object] = {
            "model": self.settings.model,
            "messages": [{"role": "user", "content": content}],
            "temperature": 0,
            "max_tokens": self.settings.max_tokens,
        }
        if self.settings.json_mode:
            body["response_format"] = {"type": "json_object"}
        return body

    def _send(self, body: dict[str, object]) -> str:
        """The answer's text, or AnalysisError saying why there is none."""
        url = self.settings.endpoint
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.settings.api_key is not None and self.settings.api_key.get_secret_value():
            headers["Authorization"] = "Bearer " + self.settings.api_key.get_secret_value()
        data = json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        timeout = self.settings.timeout_seconds
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read(MAX_ANSWER)
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode("utf-8", "replace").strip()
            raise AnalysisError(f"{self.name}: {url} answered HTTP {exc.code}: {detail}") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise AnalysisError(f"{self.name}: no answer from {url} in {timeout:g} s") from None
            raise AnalysisError(f"{self.name}: cannot reach {url}: {exc.reason}") from None
        except TimeoutError:
            raise AnalysisError(f"{self.name}: no answer from {url} in {timeout:g} s") from None
        except (http.client.HTTPException, OSError) as exc:
            raise AnalysisError(f"{self.name}: the connection to {url} failed: {exc}") from None
        try:
            completion = _Completion.model_validate_json(raw)
        except ValidationError as exc:
            raise AnalysisError(
                f"{self.name}: not a chat-completions answer: {_summarise(exc)}"
            ) from None
        choice = completion.choices[0]
        if choice.finish_reason == "content_filter":
            raise AnalysisError(f"{self.name}: the model refused (content filter)")
        if choice.message.refusal:
            raise AnalysisError(f"{self.name}: the model refused: {choice.message.refusal[:200]}")
        if choice.finish_reason == "length":
            raise AnalysisError(f"{self.name}: the answer was cut off at MaxTokens")
        content = choice.message.content
        if isinstance(content, list):
            content = "".join(part.text for part in content if part.type == "text")
        if not content or not content.strip():
            raise AnalysisError(f"{self.name}: the model gave an empty answer (a refusal?)")
        return content

    def _findings(
        self,
        volume: Volume,
        slices: Sequence[int],
        images: Sequence[tuple[bytes, float]],
        content: str,
    ) -> tuple[Finding, ...]:
        text = _fenced(content)
        if not text.startswith(("{", "[")):
            raise AnalysisError(
                f"{self.name}: the model answered no JSON (a refusal?): {text[:200]!r}"
            )
        try:  # bounded first: a hostile or broken server may nest without end
            parse_json(text.encode("utf-8"), max_bytes=MAX_ANSWER, max_depth=MAX_DEPTH)
        except InputRefused as exc:
            raise AnalysisError(f"{self.name}: the answer is not usable JSON: {exc}") from None
        try:  # strict JSON-mode validation: "critical" is a Severity, "0.5" no number
            answer = RemoteAnswer.model_validate_json(text)
        except ValidationError as exc:
            raise AnalysisError(
                f"{self.name}: the answer does not match the schema: {_summarise(exc)}"
            ) from None
        rows, columns = volume.voxels.shape[1:]
        findings = []
        for number, item in enumerate(answer.findings, start=1):
            if item.image >= len(slices):
                raise AnalysisError(
                    f"{self.name}: finding {number} is on image {item.image}, "
                    f"but {len(slices)} images were sent"
                )
            k = float(slices[item.image])
            scale = images[item.image][1]
            extent: tuple[Voxel, Voxel] | None = None
            if item.x is not None and item.y is not None:
                row, column = item.y / scale, item.x / scale
                if row > rows or column > columns:
                    raise AnalysisError(
                        f"{self.name}: finding {number} lies outside its image "
                        f"(x {item.x:g}, y {item.y:g})"
                    )
                centroid: Voxel = (k, min(row, rows - 1.0), min(column, columns - 1.0))
            else:  # the slice, not a place in it
                centroid = (k, (rows - 1) / 2, (columns - 1) / 2)
                extent = ((k, 0.0, 0.0), (k, rows - 1.0, columns - 1.0))
            findings.append(
                Finding(
                    key=f"remote-{number}",
                    category=item.category.strip(),
                    description=item.description.strip() or item.category.strip(),
                    severity=item.severity,
                    confidence=item.confidence,
                    centroid=centroid,
                    extent=extent,
                    size_mm=item.size_mm,
                )
            )
        return tuple(findings)

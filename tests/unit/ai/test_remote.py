"""The remote vision-language model, against a small chat-completions server run here: the
findings it answers land on the right voxels, nothing identifying leaves, and every way the
answer can go wrong is an AnalysisError, never a made-up finding."""

from __future__ import annotations

import base64
import io
import json
import socket
import time
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from hounsfield.ai.model import AnalysisError, Severity, Volume
from hounsfield.ai.remote import RemoteAnalyzer, RemoteSettings
from tests.support.vlm import FakeServer, serving

LOW, HIGH = -160.0, 240.0  # the soft-tissue window (W400 L40) a CT abdomen is rendered with
IDENTIFIERS = {
    "PatientName": "Quorra^Zyxwvut",
    "PatientID": "PID-98765-XYZ",
    "AccessionNumber": "ACC-55555-QQ",
    "PatientBirthDate": "19450317",
    "InstitutionName": "Ringwood General Infirmary",
    "StudyInstanceUID": "1.2.826.0.1.3680043.99.7777.1",
    "SeriesInstanceUID": "1.2.826.0.1.3680043.99.7777.2",
}


def slice_value(k: int) -> float:
    """Each slice is one HU value, so that its image says which slice it is."""
    return -150.0 + 30.0 * k


def make_volume(rows: int = 64, columns: int = 48, count: int = 10) -> Volume:
    voxels = np.stack([np.full((rows, columns), slice_value(k)) for k in range(count)])
    return Volume(
        voxels=voxels.astype(np.float32),
        spacing=(2.5, 0.7, 0.7),
        origin=(0.0, 0.0, 0.0),
        orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
        instances=tuple(f"1.2.826.0.1.3680043.99.7777.3.{k}" for k in range(count)),
        sop_class="1.2.840.10008.5.1.4.1.1.2",
        series_uid=IDENTIFIERS["SeriesInstanceUID"],
        study_uid=IDENTIFIERS["StudyInstanceUID"],
        frame_of_reference="1.2.826.0.1.3680043.99.7777.4",
        tags={"Modality": "CT", "BodyPartExamined": "ABDOMEN", **IDENTIFIERS},
    )


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with serving() as fake:
        yield fake


def analyzer(url: str, **settings: object) -> RemoteAnalyzer:
    return RemoteAnalyzer(
        RemoteSettings.model_validate({"BaseUrl": url, "Model": "vlm-test", **settings})
    )


def images_sent(server: FakeServer) -> list[Image.Image]:
    [message] = server.body["messages"]  # type: ignore[misc]
    parts = message["content"]
    assert parts[0]["type"] == "text"
    images = []
    for part in parts[1:]:
        assert part["type"] == "image_url"
        url: str = part["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        image.load()
        images.append(image)
    return images


def slice_of(image: Image.Image) -> int:
    """Which slice an image shows, from its grey level."""
    hu = LOW + float(np.asarray(image).mean()) / 255.0 * (HIGH - LOW)
    return round((hu - slice_value(0)) / 30.0)


GOOD = {
    "findings": [
        {
            "category": "liver lesion",
            "description": "Hypodense lesion in the right lobe.",
            "severity": "moderate",
            "confidence": 0.7,
            "image": 1,
            "x": 30,
            "y": 40,
            "size_mm": 12.5,
        },
        {
            "category": "free air",
            "description": "Free intraperitoneal air.",
            "severity": "critical",
            "confidence": 0.9,
            "image": 2,
        },
    ]
}


def test_findings_land_on_their_slice_and_pixel(server: FakeServer) -> None:
    server.reply("```json\n" + json.dumps(GOOD) + "\n```")
    analysis = analyzer(server.url).analyze(make_volume())

    images = images_sent(server)
    slices = [slice_of(image) for image in images]
    assert len(images) == 3 and slices == sorted(set(slices))
    assert all(1 <= k <= 8 for k in slices)  # the middle 80 % of 10 slices

    assert analysis.analyzer == "remote" and "vlm-test" in analysis.version
    lesion, air = analysis.findings
    assert (lesion.key, lesion.category, lesion.severity) == (
        "remote-1",
        "liver lesion",
        "moderate",
    )
    assert lesion.centroid == (slices[1], 40.0, 30.0)  # y is the row, x the column
    assert (lesion.confidence, lesion.size_mm, lesion.extent) == (0.7, 12.5, None)
    assert (air.key, air.severity, air.confidence) == ("remote-2", Severity.CRITICAL, 0.9)
    assert air.centroid == (slices[2], 31.5, 23.5)  # no pixel: the slice as a whole
    assert air.extent == ((slices[2], 0.0, 0.0), (slices[2], 63.0, 47.0))


def test_nothing_identifying_leaves_and_images_are_pixels(server: FakeServer) -> None:
    server.reply(json.dumps({"findings": []}))
    volume = make_volume()
    assert analyzer(server.url).analyze(volume).findings == ()

    raw = server.requests[0].body
    for value in (*IDENTIFIERS.values(), "Quorra", "Zyxwvut", "Ringwood", "3680043.99.7777"):
        assert value.encode() not in raw, value
    body = server.body
    assert body["model"] == "vlm-test" and body["temperature"] == 0
    assert body["response_format"] == {"type": "json_object"}
    assert set(body) == {"model", "messages", "temperature", "max_tokens", "response_format"}
    for image in images_sent(server):
        assert (image.format, image.mode, image.size) == ("PNG", "L", (48, 64))
        assert getattr(image, "text", {}) == {}  # no tEXt/iTXt/zTXt chunks
        assert len(np.unique(np.asarray(image))) == 1  # the slice, and nothing drawn on it


def test_large_slices_are_scaled_down_and_mapped_back(server: FakeServer) -> None:
    answer = {"findings": [{**GOOD["findings"][0], "image": 0, "x": 30, "y": 40}]}
    server.reply(json.dumps(answer))
    volume = make_volume(rows=256, columns=192)
    [finding] = analyzer(server.url, MaxImageSize=128).analyze(volume).findings
    image = images_sent(server)[0]
    assert image.size == (96, 128)
    assert finding.centroid == (slice_of(image), 80.0, 60.0)


@pytest.mark.parametrize(
    "content",
    [
        '{"findings": [{"category": "nodule", "severity": ',
        '{"findings": [{"category": "nodule",}]}',
    ],
)
def test_malformed_json(server: FakeServer, content: str) -> None:
    server.reply(content)
    with pytest.raises(AnalysisError, match="malformed JSON"):
        analyzer(server.url).analyze(make_volume())


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"severity": "deadly", "confidence": 2}, r"severity.*confidence"),
        ({"confidence": "0.5"}, "confidence"),
        ({"image": 1.5}, "image"),
        ({"x": 10, "y": None}, "both x and y"),
        ({"patient": "Doe"}, "patient"),
        ({"image": 3}, "on image 3, but 3 images were sent"),
        ({"x": 480, "y": 10}, "outside its image"),
    ],
)
def test_answers_off_the_schema(server: FakeServer, change: dict[str, object], reason: str) -> None:
    server.reply(json.dumps({"findings": [{**GOOD["findings"][0], **change}]}))
    with pytest.raises(AnalysisError, match=reason):
        analyzer(server.url).analyze(make_volume())


def test_answer_without_findings_key(server: FakeServer) -> None:
    server.reply(json.dumps({"result": "normal"}))
    with pytest.raises(AnalysisError, match="does not match the schema"):
        analyzer(server.url).analyze(make_volume())


def test_http_error(server: FakeServer) -> None:
    server.status, server.answer = 500, b'{"error": {"message": "model crashed"}}'
    with pytest.raises(AnalysisError, match=r"HTTP 500.*model crashed"):
        analyzer(server.url).analyze(make_volume())


def test_not_a_completion(server: FakeServer) -> None:
    server.answer = b"<html>gateway</html>"
    with pytest.raises(AnalysisError, match="not a chat-completions answer"):
        analyzer(server.url).analyze(make_volume())


@pytest.mark.parametrize(
    ("content", "finish", "refusal", "reason"),
    [
        ("I'm sorry, but I can't help with medical images.", "stop", None, "no JSON"),
        (None, "content_filter", None, "content filter"),
        (None, "stop", "I cannot assist with that.", "refused: I cannot assist"),
        ("", "stop", None, "empty answer"),
        ('{"findings": [', "length", None, "cut off"),
    ],
)
def test_refusals(
    server: FakeServer, content: str | None, finish: str, refusal: str | None, reason: str
) -> None:
    server.reply(content, finish, refusal)
    with pytest.raises(AnalysisError, match=reason):
        analyzer(server.url).analyze(make_volume())


def test_timeout(server: FakeServer) -> None:
    server.hang = True
    started = time.monotonic()
    with pytest.raises(AnalysisError, match=r"no answer .* in 0.5 s"):
        analyzer(server.url, TimeoutSeconds=0.5).analyze(make_volume())
    assert time.monotonic() - started < 3


def test_connection_refused() -> None:
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(AnalysisError, match="cannot reach"):
        analyzer(f"http://127.0.0.1:{port}", TimeoutSeconds=2).analyze(make_volume())


def test_api_key_as_bearer_token(server: FakeServer) -> None:
    server.reply('{"findings": []}')
    analyzer(server.url, ApiKey="sk-test-4242").analyze(make_volume())
    analyzer(server.url).analyze(make_volume())
    assert [r.authorization for r in server.requests] == ["Bearer sk-test-4242", None]
    assert "sk-test-4242" not in repr(
        RemoteSettings.model_validate(
            {"BaseUrl": server.url, "Model": "m", "ApiKey": "sk-test-4242"}
        )
    )


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/", "/v1/chat/completions"])
def test_endpoint_from_base_url(server: FakeServer, suffix: str) -> None:
    server.reply('{"findings": []}')
    analyzer(server.url + suffix, JsonMode=False).analyze(make_volume())
    assert server.requests[0].path == "/v1/chat/completions"
    assert "response_format" not in server.body


def test_chest_ct_gets_a_lung_window(server: FakeServer) -> None:
    server.reply('{"findings": []}')
    volume = make_volume()
    chest = Volume(**{**volume.__dict__, "tags": {"Modality": "CT", "BodyPartExamined": "CHEST"}})
    chest = Volume(**{**chest.__dict__, "voxels": np.full_like(volume.voxels, -600.0)})
    analyzer(server.url).analyze(chest)
    for image in images_sent(server):
        assert np.asarray(image).mean() == pytest.approx(127.5, abs=1)  # the window's centre


def test_not_a_volume(server: FakeServer) -> None:
    volume = make_volume()
    flat = Volume(**{**volume.__dict__, "voxels": volume.voxels[0]})
    with pytest.raises(AnalysisError, match="needs a volume"):
        analyzer(server.url).analyze(flat)
    assert server.requests == []  # nothing sent

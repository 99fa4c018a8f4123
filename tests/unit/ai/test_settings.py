"""Which analyzers the rules choose, and the extension's registration."""

from __future__ import annotations

import pytest

from hounsfield.ai.catalogue import analyzer_names, installed_models
from hounsfield.ai.settings import AiSettings
from hounsfield.app import build_registry
from hounsfield.registry import ExtensionError


def tags(modality: str, body_part: str = "", description: str = "") -> dict[str, str]:
    return {"Modality": modality, "BodyPartExamined": body_part, "SeriesDescription": description}


@pytest.mark.parametrize(
    ("series", "chosen"),
    [
        (tags("CT", "CHEST"), ["lung", "metal", "quality"]),
        (tags("CT", "", "Thorax 1.0 B70f"), ["lung", "metal", "quality"]),
        (tags("CT", "head"), ["intracranial", "metal", "quality"]),
        (tags("CT", "", "BRAIN routine"), ["intracranial", "metal", "quality"]),
        (tags("CT", "ABDOMEN"), ["metal", "quality"]),
        (tags("MR", "HEAD"), []),
        (tags("SR"), []),
    ],
)
def test_the_default_rules(series: dict[str, str], chosen: list[str]) -> None:
    assert AiSettings().analyzers_for(series) == chosen


def test_a_rule_holds_when_every_condition_it_gives_holds() -> None:
    settings = AiSettings.model_validate(
        {
            "Rules": [
                {"Analyzers": ["remote"], "Modalities": ["CR", "DX"], "Descriptions": ["*chest*"]},
                {"Analyzers": ["metal"], "BodyParts": ["KNEE"]},
            ]
        }
    )
    assert settings.analyzers_for(tags("DX", "", "PA Chest")) == ["remote"]
    assert settings.analyzers_for(tags("DX", "", "Hand")) == []
    assert settings.analyzers_for(tags("CT", "CHEST", "chest")) == []
    assert settings.analyzers_for(tags("MR", "knee")) == ["metal"]


def test_a_wrong_configuration_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="Analyzers"):
        AiSettings.model_validate({"Rules": [{"Modalities": ["CT"]}]})
    with pytest.raises(ValueError, match="Remote"):
        AiSettings.model_validate({"Remote": {"BaseUrl": "ftp://x", "Model": "m"}})


def test_models_an_admin_installs_are_offered_by_folder(tmp_path) -> None:
    for name in ("chest-nodules", ".hidden", "brain"):
        (tmp_path / name).mkdir()
    (tmp_path / "notes.txt").write_text("not a model folder")
    assert installed_models(tmp_path) == ["onnx:brain", "onnx:chest-nodules"]
    settings = AiSettings.model_validate(
        {"Models": str(tmp_path), "Remote": {"BaseUrl": "http://localhost:1", "Model": "m"}}
    )
    assert analyzer_names(settings) == [
        "lung",
        "metal",
        "intracranial",
        "quality",
        "onnx:brain",
        "onnx:chest-nodules",
        "remote",
    ]


def test_the_extension_needs_the_reading_worklist() -> None:
    with pytest.raises(ExtensionError, match=r"hounsfield\.reading"):
        build_registry(["hounsfield.ai"], {})
    registry = build_registry(["hounsfield.reading", "hounsfield.ai"], {})
    assert "ai.analyze" in registry.internal_job_kinds
    assert any(m.name == "ai.0001.findings" for m in registry.migrations)

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from hounsfield.config import ConfigError, load_settings
from hounsfield.launcher import DEFAULT_CONFIG, effective_config, write_effective_config


def test_the_default_config_resolves_paths_against_the_repository() -> None:
    config = effective_config(DEFAULT_CONFIG, {})
    repository = DEFAULT_CONFIG.parent
    assert config["StorageDirectory"] == str(repository / "data")
    assert config["PythonScript"] == str(repository / "plugin" / "entry.py")
    assert "IndexDirectory" not in config  # Orthanc then keeps its index beside the storage
    settings = load_settings(config)
    assert settings.data_directory == repository / "data" / "hounsfield"
    assert settings.plugin.workers == 1


def test_environment_overrides_reach_orthanc_and_our_section(tmp_path: Path) -> None:
    config = effective_config(
        DEFAULT_CONFIG,
        {
            "ORTHANC__STORAGE_DIRECTORY": str(tmp_path / "store"),
            "ORTHANC__HOUNSFIELD__WORKERS": "3",
            "ORTHANC__HOUNSFIELD__DATA_DIRECTORY": str(tmp_path / "plugin-data"),
        },
    )
    settings = load_settings(config)
    assert settings.storage_directory == tmp_path / "store"
    assert settings.data_directory == tmp_path / "plugin-data"
    assert settings.plugin.workers == 3


def test_the_effective_config_is_private_to_its_owner(tmp_path: Path) -> None:
    config = effective_config(DEFAULT_CONFIG, {"ORTHANC__STORAGE_DIRECTORY": str(tmp_path)})
    written = write_effective_config(config)
    assert written == tmp_path / "hounsfield" / "orthanc.effective.json"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert json.loads(written.read_text()) == config


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"Workerz": 2}, "Hounsfield.Workerz: Extra inputs are not permitted"),
        ({"Workers": -1}, "Hounsfield.Workers: Input should be greater than or equal to 0"),
        ({"Extensions": "a.b"}, "Hounsfield.Extensions: Input should be a valid list"),
    ],
)
def test_bad_settings_stop_start_up_naming_the_key(section: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_settings({"StorageDirectory": "/tmp", "Hounsfield": section})

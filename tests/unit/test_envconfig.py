from __future__ import annotations

import pytest

from hounsfield.envconfig import EnvConfigError, apply_env_overrides


def test_top_level_keys_follow_the_docker_convention() -> None:
    config = {"HttpPort": 8042}
    applied = apply_env_overrides(
        config,
        {"ORTHANC__HTTP_PORT": "8043", "ORTHANC__DICOM_AET": "CBCTLAB", "PATH": "/usr/bin"},
    )
    assert config == {"HttpPort": 8043, "DicomAet": "CBCTLAB"}
    assert applied == ["DicomAet", "HttpPort"]


def test_sections_descend_and_match_existing_keys_ignoring_case() -> None:
    config = {"Hounsfield": {"MinimumFreeSpaceMB": 500, "Workers": 1}}
    apply_env_overrides(
        config,
        {
            "ORTHANC__HOUNSFIELD__MINIMUM_FREE_SPACE_MB": "10",
            "ORTHANC__HOUNSFIELD__EXTENSIONS": '["a.b", "c"]',
            "ORTHANC__DICOM_WEB__ENABLE": "false",
        },
    )
    assert config["Hounsfield"] == {
        "MinimumFreeSpaceMB": 10,
        "Workers": 1,
        "Extensions": ["a.b", "c"],
    }
    assert config["DicomWeb"] == {"Enable": False}


def test_values_that_are_not_json_stay_text() -> None:
    config: dict = {}
    apply_env_overrides(
        config, {"ORTHANC__NAME": "Lab {1}", "ORTHANC__STORAGE_DIRECTORY": "/srv/x"}
    )
    assert config == {"Name": "Lab {1}", "StorageDirectory": "/srv/x"}


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ORTHANC__HTTP_PORT__X": "1"}, "HttpPort is not a section"),
        ({"ORTHANC____X": "1"}, "empty segment"),
    ],
)
def test_impossible_overrides_are_refused(environ: dict, message: str) -> None:
    with pytest.raises(EnvConfigError, match=message):
        apply_env_overrides({"HttpPort": 8042}, environ)

"""The effective configuration as admins see it: every secret masked, nothing else."""

from __future__ import annotations

from hounsfield.admin.routes import MASK, masked


def test_secrets_are_masked_wherever_they_sit_and_the_rest_is_kept() -> None:
    configuration = {
        "Name": "PACS",
        "HttpPort": 8042,
        "RegisteredUsers": {"alice": "alice-password", "bob": "bob-password"},
        "PostgreSQL": {"Host": "db", "Password": "pg-secret", "EnableIndex": True},
        "DicomModalities": {"ct": ["CT1", "10.0.0.5", 104]},
        "Hounsfield": {
            "Auth": {"TokenKeyFile": "/etc/key", "MinPasswordLength": 12},
            "Peers": [{"Url": "https://b", "Username": "u", "ApiKey": "k-123"}],
        },
        "HounsfieldHIS": {"Fhir": {"Token": "", "Username": "his", "ClientSecret": "s"}},
        "HounsfieldAI": {"Remote": {"ApiKey": None}},
    }
    shown = masked(configuration)
    assert shown["RegisteredUsers"] == {"alice": MASK, "bob": MASK}
    assert shown["PostgreSQL"] == {"Host": "db", "Password": MASK, "EnableIndex": True}
    assert shown["Hounsfield"]["Peers"] == [{"Url": "https://b", "Username": "u", "ApiKey": MASK}]
    assert shown["HounsfieldHIS"]["Fhir"] == {"Token": "", "Username": "his", "ClientSecret": MASK}
    assert shown["HounsfieldAI"]["Remote"]["ApiKey"] is None  # nothing there, nothing hidden
    assert shown["DicomModalities"] == configuration["DicomModalities"]
    assert shown["Hounsfield"]["Auth"]["MinPasswordLength"] == 12
    for secret in ("alice-password", "pg-secret", "k-123"):
        assert secret not in repr(shown)

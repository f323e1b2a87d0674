"""The service's settings (serving/settings.py): defaults, parsing, errors naming the variable."""

from __future__ import annotations

import pytest

from serving.settings import ServingSettings, SettingsError


def test_defaults_when_nothing_is_set():
    assert ServingSettings.from_env({}) == ServingSettings()
    settings = ServingSettings()
    assert settings.model_tag == "bone-metastasis-risk:latest"
    assert settings.cors_origins == ()
    assert settings.api_token is None
    assert settings.max_body_bytes == 10 * 1024 * 1024
    assert settings.body_timeout_seconds == 30.0
    assert settings.reload_seconds == 10.0


def test_values_are_read_and_empty_counts_as_unset():
    env = {
        "BONEMET_BENTO_MODEL": "bone-metastasis-risk:v3",
        "BONEMET_CORS_ORIGINS": " https://a.example , ,https://b.example",
        "BONEMET_FOLLOW_ALIAS": "champion",
        "MLFLOW_TRACKING_URI": "http://registry:5000",
        "BONEMET_RELOAD_SECONDS": "1",
        "BONEMET_API_TOKEN": "",
        "BONEMET_MAX_BODY_BYTES": "100000",
        "BONEMET_BODY_TIMEOUT_SECONDS": "2.5",
    }
    assert ServingSettings.from_env(env) == ServingSettings(
        model_tag="bone-metastasis-risk:v3",
        cors_origins=("https://a.example", "https://b.example"),
        follow_alias="champion",
        tracking_uri="http://registry:5000",
        reload_seconds=1.0,
        api_token=None,
        max_body_bytes=100000,
        body_timeout_seconds=2.5,
    )


@pytest.mark.parametrize(
    ("name", "value", "kind"),
    [
        ("BONEMET_MAX_BODY_BYTES", "10MB", "a positive integer"),
        ("BONEMET_MAX_BODY_BYTES", "0", "a positive integer"),
        ("BONEMET_BODY_TIMEOUT_SECONDS", "-1", "a positive number"),
        ("BONEMET_RELOAD_SECONDS", "nan", "a positive number"),
        ("BONEMET_RELOAD_SECONDS", "soon", "a positive number"),
    ],
)
def test_an_unusable_number_names_its_variable(name, value, kind):
    with pytest.raises(SettingsError, match=f"^{name} must be {kind}, got '{value}'$"):
        ServingSettings.from_env({name: value})


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        ServingSettings().api_token = "x"  # type: ignore[misc]

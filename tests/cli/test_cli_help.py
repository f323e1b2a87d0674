"""The command line explains itself (issue 9, point 7): version, endpoints, defaults, values."""

from __future__ import annotations

import re
from importlib import metadata

from typer.testing import CliRunner

from training.cli import app
from training.config import FAMILY_NAMES

RUNNER = CliRunner()


def _help(*args: str) -> str:
    # --verbose: the quiet mode of a real command would change this process's warning filters.
    out = RUNNER.invoke(
        app, ["--verbose", *args, "--help"], env={"COLUMNS": "200"}, terminal_width=200
    )
    assert out.exit_code == 0, out.output
    return re.sub(r"\s+", " ", out.output)


def test_version():
    out = RUNNER.invoke(app, ["--version"])
    assert out.exit_code == 0
    assert out.output.strip() == f"bonemet {metadata.version('bonemet')}"


def test_serve_help_lists_every_endpoint():
    text = _help("serve")
    for endpoint in (
        "POST /predict",
        "POST /explain",
        "GET /model",
        "GET /healthz",
        "GET /livez",
        "GET /readyz",
        "GET /metrics",
        "GET /docs.json",
        "GET /clinician",
    ):
        assert endpoint in text
    assert "default: 3000" in text


def test_option_help_shows_defaults_and_valid_values():
    text = _help("train")
    flat = " ".join(text.replace("│", " ").split())
    assert ", ".join(FAMILY_NAMES) in flat and "(default: all but stacked_ensemble)" in flat
    assert "default: 42" in text and "default: bone-metastasis" in text
    assert "--json" in text
    predict = _help("predict")
    assert "--prediction-day" in predict and "default: at enrollment" in predict
    assert "models:/bone-metastasis-risk@champion" in predict
    assert "--json" in _help("compare") and "--json" in _help("evaluate")


def test_family_names_are_the_family_registry():
    from training.config import TrainConfig
    from training.models.catalog import FAMILIES
    from training.models.names import DEFAULT_FAMILIES

    assert set(FAMILY_NAMES) == set(FAMILIES) and set(DEFAULT_FAMILIES) < set(FAMILY_NAMES)
    assert TrainConfig().families == DEFAULT_FAMILIES
    assert TrainConfig(families=("stacked_ensemble",)).families == ("stacked_ensemble",)

"""The stacked ensemble through the command line (issue 12, point 5): named in ``--families``,
trained with nested CV, registered as its own version, scored in batch with death probabilities.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import cli_env, run_cli

pytestmark = pytest.mark.slow


def test_stacked_ensemble_is_registered_and_scores(tmp_path, small_cohort):
    env = {**cli_env(tmp_path / "data"), "BONEMET_MAX_GRID": "1", "BONEMET_N_BOOTSTRAP": "0"}
    data = ["--patients", str(small_cohort / "patients.csv")]
    data += ["--measurements", str(small_cohort / "oc_measurements.csv")]
    train = run_cli(
        ["train", *data, "--families", "stacked_ensemble", "--experiment", "ens", "--json"],
        env,
        tmp_path,
    )
    summary = json.loads(train.stdout)
    (candidate,) = summary["candidates"]
    assert candidate["family"] == "stacked_ensemble"
    version = summary["challenger_version"]
    out = tmp_path / "scores.csv"
    run_cli(
        ["predict", *data, "--model-uri", f"models:/bone-metastasis-risk/{version}"]
        + ["--out", str(out)],
        env,
        tmp_path,
    )
    scores = pd.read_csv(out)
    scored = scores.dropna(subset=["p_bone_met_24m"])
    assert len(scored) > 0.5 * len(scores)
    assert scored["p_bone_met_24m"].between(0, 1).all()
    assert (scored["p_bone_met_24m"] + scored["p_death_24m"]).le(1 + 1e-9).all()
    assert (scored["p_bone_met_36m"] >= scored["p_bone_met_24m"] - 1e-12).all()

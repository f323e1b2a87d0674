"""The ``bonemet`` commands end to end on a small cohort, as a user runs them."""

from __future__ import annotations

import filecmp
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.cli.schemas import assert_schema
from tests.conftest import CONTRACT_FILES, cli_env, run_cli
from training.config import SELECTION_METRIC

pytestmark = pytest.mark.slow
GOOD = CONTRACT_FILES / "good"
BAD = CONTRACT_FILES / "bad"


def test_console_script_is_installed():
    exe = Path(sys.executable).with_name("bonemet")
    assert exe.exists(), "pip install -e . must install the bonemet command"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for command in ("validate", "simulate", "train", "promote", "predict", "serve"):
        assert command in out.stdout


def test_simulate_same_seed_same_files(tmp_path):
    env = cli_env(tmp_path / "data")
    for name in ("a", "b"):
        run_cli(
            ["simulate", "--n-patients", "150", "--seed", "3", "--out", str(tmp_path / name)],
            env,
            tmp_path,
        )
    for f in ("patients.csv", "oc_measurements.csv", "truth.csv"):
        assert filecmp.cmp(tmp_path / "a" / f, tmp_path / "b" / f, shallow=False)


def test_simulate_world_option(tmp_path):
    env = cli_env(tmp_path / "data")
    args = ["simulate", "--n-patients", "120", "--seed", "3"]
    run_cli([*args, "--world", "mixture", "--out", str(tmp_path / "m")], env, tmp_path)
    run_cli([*args, "--out", str(tmp_path / "b")], env, tmp_path)
    truth_m = pd.read_csv(tmp_path / "m" / "truth.csv")
    truth_b = pd.read_csv(tmp_path / "b" / "truth.csv")
    assert list(truth_m.columns) == list(truth_b.columns)
    assert not truth_m.equals(truth_b)
    bad = run_cli(
        [*args, "--world", "linear", "--out", str(tmp_path / "x")], env, tmp_path, check=False
    )
    assert bad.returncode == 2
    assert "unknown world 'linear'" in bad.stderr
    assert not (tmp_path / "x").exists()


def test_validate_good_and_bad(tmp_path):
    env = cli_env(tmp_path / "data")
    ok = run_cli(
        [
            "validate",
            "--patients",
            str(GOOD / "patients.csv"),
            "--measurements",
            str(GOOD / "oc_measurements.csv"),
        ],
        env,
        tmp_path,
    )
    assert ok.stdout.startswith("valid: ")
    bad = run_cli(
        ["validate", "--patients", str(BAD / "patients_out_of_range.csv")],
        env,
        tmp_path,
        check=False,
    )
    assert bad.returncode == 2
    assert "cohort breaks data contract v1.2" in bad.stderr
    assert "must be 18-100" in bad.stderr


def test_train_on_invalid_cohort_writes_nothing(tmp_path):
    env = cli_env(tmp_path / "data")
    out = run_cli(
        ["train", "--patients", str(BAD / "patients_out_of_range.csv")], env, tmp_path, check=False
    )
    assert out.returncode == 2
    assert "must be 18-100" in out.stderr
    assert not (tmp_path / "data").exists()
    assert not (tmp_path / "mlruns").exists()


def test_train_on_scoring_cohort_is_refused(tmp_path, small_cohort):
    env = cli_env(tmp_path / "data")
    frame = pd.read_csv(small_cohort / "patients.csv").drop(columns=["time_days", "event"])
    frame.to_csv(tmp_path / "to_score.csv", index=False)
    out = run_cli(
        ["train", "--patients", str(tmp_path / "to_score.csv")], env, tmp_path, check=False
    )
    assert out.returncode == 2
    assert "cannot train: the cohort has no outcomes" in out.stderr
    assert not (tmp_path / "data").exists()


def test_train_reports_candidates_and_challenger(trained_store):
    text = trained_store["train"].stdout
    assert f"candidates (selected by {SELECTION_METRIC})" in text
    assert "cox_ridge" in text and "logistic_ipcw" in text and "* challenger" in text
    assert "gates" in text and "Uno C" in text and "[" in text  # verdicts, intervals
    assert "next: bonemet promote" in text or "next: bonemet compare" in text
    # Every patient trains; why the challenger was chosen is said in words (issue 19).
    assert "eligible patients; metrics (test_*) on the out-of-fold predictions" in text
    assert "why: rule: " in text and "one paired standard error" in text
    # Quiet: no MLflow event log or third-party warning in normal output (issue 9, point 7).
    noise = ("Created version", "Add type hints", "Validating input example", "Warning")
    for line in text.splitlines() + trained_store["train"].stderr.splitlines():
        assert not any(n in line for n in noise), line
    assert "champion: version" in trained_store["promote"].stdout
    # Artifacts sit beside the SQLite store, not in ./mlruns of the working directory.
    assert (trained_store["dir"] / "data" / "mlflow.db").exists()
    assert (trained_store["dir"] / "data" / "mlartifacts").is_dir()
    assert not (trained_store["dir"] / "mlruns").exists()


def test_predict_writes_the_batch_layout(trained_store, tmp_path):
    cohort = trained_store["cohort"]
    out = tmp_path / "pred.csv"
    run_cli(
        [
            "predict",
            "--patients",
            str(cohort / "patients.csv"),
            "--measurements",
            str(cohort / "oc_measurements.csv"),
            "--out",
            str(out),
        ],
        trained_store["env"],
        trained_store["dir"],
    )
    frame = pd.read_csv(out)
    horizons = ("12m", "24m", "36m", "60m")
    points = {e: [f"p_{e}_{h}" for h in horizons] for e in ("bone_met", "death")}
    bounded = [f"{c}{b}" for e in points for c in points[e] for b in ("", "_low", "_high")]
    assert list(frame.columns) == ["patient_id", "risk_score", "risk_group", *bounded, "warnings"]
    patients = pd.read_csv(cohort / "patients.csv")
    assert frame["patient_id"].tolist() == patients["patient_id"].tolist()
    free = ~patients["bone_metastasis_at_enrollment"].astype(str).str.lower().eq("true")
    for event, columns in points.items():
        probs = frame.loc[free, columns].to_numpy()
        assert ((probs >= 0) & (probs <= 1)).all() and (probs[:, 1:] >= probs[:, :-1]).all()
        low = frame.loc[free, [f"{c}_low" for c in columns]].to_numpy()
        high = frame.loc[free, [f"{c}_high" for c in columns]].to_numpy()
        assert (low <= probs).all() and (probs <= high).all() and (high > low).any()
    both = frame.loc[free, "p_bone_met_60m"] + frame.loc[free, "p_death_60m"]
    assert (both <= 1 + 1e-12).all()
    assert frame.loc[~free, ["p_bone_met_24m", "p_death_24m"]].isna().all().all()
    assert all("bone metastasis present" in w for w in frame.loc[~free, "warnings"])


def test_predict_with_unknown_model_fails_clearly(trained_store, tmp_path):
    out = run_cli(
        [
            "predict",
            "--patients",
            str(trained_store["cohort"] / "patients.csv"),
            "--model-uri",
            "models:/bone-metastasis-risk/99",
            "--out",
            str(tmp_path / "x.csv"),
        ],
        trained_store["env"],
        trained_store["dir"],
        check=False,
    )
    assert out.returncode == 2
    assert "cannot predict: cannot load model models:/bone-metastasis-risk/99" in out.stderr
    assert not (tmp_path / "x.csv").exists()


def _client(store):
    import mlflow

    uri = f"sqlite:///{store['dir'] / 'data' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.MlflowClient()


def _record_metrics(client, name: str, version: str, values: dict[str, str]) -> None:
    """Change the headline values recorded on a version (its ``facts`` tag), as by hand."""
    import json

    facts = json.loads(client.get_model_version(name, version).tags["facts"])
    facts["metrics"].update({k: float(v) for k, v in values.items()})
    client.set_model_version_tag(name, version, "facts", json.dumps(facts))


def test_promote_gates_both_ways_and_force_with_reason(trained_store):
    from training.registry.versions import promotion_record, version_facts

    env, cwd = trained_store["env"], trained_store["dir"]
    client = _client(trained_store)
    name = "bone-metastasis-risk"
    champion = client.get_model_version_by_alias(name, "champion").version
    other = "1" if str(champion) == "2" else "2"
    saved = dict(client.get_model_version(name, other).tags)
    saved_champion = dict(client.get_model_version(name, champion).tags)
    good = {
        "test_uno_c": str(
            version_facts(client.get_model_version(name, champion).tags)["metrics"].get(
                "test_uno_c", 0.7
            )
            - 0.005
        ),
        **{f"test_calibration_slope_{h}m": "1.05" for h in (12, 24, 36)},
        **{f"test_calibration_in_the_large_{h}m": "0.01" for h in (12, 24, 36)},
    }
    try:
        missing = run_cli(["promote", "--version", "99"], env, cwd, check=False)
        assert missing.returncode == 2
        assert "cannot promote: bone-metastasis-risk has no version 99" in missing.stderr

        _record_metrics(client, name, other, {**good, "test_calibration_slope_24m": "0.55"})
        refused = run_cli(["promote", "--version", other], env, cwd, check=False)
        assert refused.returncode == 2
        # Judged with the run's interval when it holds the estimate, on the point otherwise.
        assert "test_calibration_slope_24m 0.550" in refused.stderr
        assert "outside [0.8, 1.2]" in refused.stderr
        assert "gate calibration_slope_24m: FAIL" in refused.stdout  # every gate printed
        assert client.get_model_version_by_alias(name, "champion").version == champion

        no_reason = run_cli(["promote", "--version", other, "--force"], env, cwd, check=False)
        assert no_reason.returncode == 2
        assert "--force requires --reason" in no_reason.stderr

        forced = run_cli(
            ["promote", "--version", other, "--force", "--reason", "clinical review 2026-11"],
            env,
            cwd,
        )
        assert f"champion: version {other}" in forced.stdout
        tags = client.get_model_version(name, other).tags
        assert promotion_record(tags)["forced_promotion_reason"] == "clinical review 2026-11"

        # Back to the old champion with passing gates: a C-index within the margin passes.
        _record_metrics(client, name, champion, good)
        _record_metrics(client, name, other, {"test_uno_c": float(good["test_uno_c"]) + 0.005})
        back = run_cli(["promote", "--version", str(champion)], env, cwd)
        assert "gate discrimination: pass" in back.stdout
        assert "gate calibration_slope_24m: pass" in back.stdout
        assert f"champion: version {champion} (was {other})" in back.stdout
    finally:
        for k in list(client.get_model_version(name, other).tags):
            client.delete_model_version_tag(name, other, k)
        for k, v in saved.items():
            client.set_model_version_tag(name, other, k, v)
        # The shared store's versions keep the tags training gave them (other tests read them).
        for k in list(client.get_model_version(name, champion).tags):
            if k not in saved_champion and not k.startswith(("promot", "forced")):
                client.delete_model_version_tag(name, champion, k)
        for k, v in saved_champion.items():
            client.set_model_version_tag(name, champion, k, v)
        client.set_registered_model_alias(name, "champion", str(champion))


def test_compare_prints_versions_side_by_side(trained_store):
    env = {**trained_store["env"], "COLUMNS": "60"}
    out = run_cli(["compare"], env, trained_store["dir"])
    lines = out.stdout.splitlines()
    assert max(len(line) for line in lines) <= 60  # fits the terminal's width
    labels = [line.split()[0] for line in lines if line.strip()]
    for label in ("version", "family", "alias", "state", "selection", "gates", "uno"):
        assert label in labels
    assert "champion" in out.stdout and f"({SELECTION_METRIC})" in out.stdout
    assert "complete" in out.stdout and "incomplete" not in out.stdout
    # The training run that registered the versions, finished (wide enough to read it).
    wide_text = run_cli(["compare"], {**env, "COLUMNS": "200"}, trained_store["dir"]).stdout
    assert "training runs (newest first)" in wide_text and "FINISHED" in wide_text
    assert "[" in out.stdout  # intervals
    wide = run_cli(["compare", "--json"], trained_store["env"], trained_store["dir"])
    document = json.loads(wide.stdout)
    rows = document["versions"]
    assert [r["status"] for r in document["training_runs"]] == ["FINISHED"]
    # The two families trained and the run's stack of them, each a complete version.
    assert sorted(r["family"] for r in rows) == ["cox_ridge", "logistic_ipcw", "stacked_oof"]
    assert all(r["state"] == "complete" for r in rows)
    assert_schema(document, "compare")
    champion = document["champion_version"]
    assert champion in {r["version"] for r in rows}
    for row in rows:  # numbers as numbers, intervals as objects, gates as fields
        uno = row["metrics"]["test_uno_c"]
        assert isinstance(uno["estimate"], float) and uno["low"] <= uno["estimate"] <= uno["high"]
        assert isinstance(row["selection"]["value"], float)
        gates = row["gates"]
        assert gates["champion_version"] == champion and gates["passed"] == (not gates["failed"])
        slope = row["metrics"]["test_calibration_slope_24m"]  # flagged for its horizon only
        failing = {v["metric"] for v in gates["verdicts"] if not v["passed"]}
        assert ("test_calibration_slope_24m" in failing) == slope["outside_gate"]
    assert f"gates vs champion v{champion} now" in wide_text.replace("\n", " ")
    bad = run_cli(
        ["compare", "--versions", "7"], trained_store["env"], trained_store["dir"], check=False
    )
    assert bad.returncode == 2 and "has no version(s) 7" in bad.stderr


def test_promote_without_any_model_explains(tmp_path):
    out = run_cli(["promote"], cli_env(tmp_path / "data"), tmp_path, check=False)
    assert out.returncode == 2
    assert "alias 'challenger'" in out.stderr


def test_ui_command_points_at_the_same_store(tmp_path):
    out = run_cli(["ui-command"], cli_env(tmp_path / "data"), tmp_path)
    assert f"sqlite:///{tmp_path / 'data' / 'mlflow.db'}" in out.stdout
    assert shutil.which("mlflow", path=str(Path(sys.executable).parent))

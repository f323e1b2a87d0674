"""What a data scientist finds in MLflow after `bonemet train`, `evaluate` and `mlflow run`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import CONTRACT_FILES, run_cli
from training.config import SELECTION_METRIC
from training.evaluation.names import LABELS, METRICS_TABLE, parse
from training.registry.versions import run_metrics, version_facts

pytestmark = pytest.mark.slow
FIGURES = {
    "calibration.png",
    "incidence_by_risk_group.png",
    "auc_over_time.png",
    "decision_curve_24m.png",
    "feature_importance.png",
}


@pytest.fixture(scope="module")
def client(trained_store):
    import mlflow

    uri = f"sqlite:///{trained_store['dir'] / 'data' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.MlflowClient()


def test_parent_child_and_trial_runs_with_lab_notebook_content(client):
    exp = client.get_experiment_by_name("tests")
    # MLflow 3's UI opens the training runs, not its GenAI view (issue 9, point 5).
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.info.run_name.startswith("train · ")]
    assert len(parents) == 1
    parent = parents[0]
    for tag in ("git_commit", "dataset_digest", "seed", "contract_version"):
        assert parent.data.tags.get(tag)
    assert parent.inputs.dataset_inputs[0].dataset.digest == parent.data.tags["dataset_digest"]
    assert "marker_lr_p_value" in parent.data.metrics
    children = {
        r.data.tags["family"]: r
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    }
    # Each family, and the run's stack of them (issue 19: no search, no fit of its own).
    assert set(children) == {"cox_ridge", "logistic_ipcw", "stacked_oof"}
    for name, child in children.items():
        trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == child.info.run_id]
        stack = name == "stacked_oof"
        assert len(trials) == (0 if stack else 2)  # max_grid 2 in the test environment
        assert sum(r.data.tags["selected"] == "true" for r in trials) == (0 if stack else 1)
        assert all("inner_cv_brier_headline_mean" in r.data.metrics for r in trials)
        # The run's MLflow metrics are the headline set under readable names; every metric
        # is in its table (issue 23: a compare view and a runs table a person can read).
        top = child.data.metrics
        assert set(top) <= {
            f"headline/{label}{w}" for label in LABELS.values() for w in ("", " low", " high")
        }
        assert {"headline/Uno C", "headline/Uno C low", "headline/CV Brier 12-36m"} <= set(top)
        assert child.data.tags["metrics_table"] == METRICS_TABLE
        m = run_metrics(child.info.run_id, client)
        for key in (
            "test_harrell_c",
            "test_harrell_c_lo",
            "test_harrell_c_hi",
            "test_uno_c",
            "test_td_auc_24m",
            "test_brier_24m",
            "test_integrated_brier",
            "test_calibration_slope_24m",
            "test_ici_24m",
            "cv_uno_c_mean",
            "cv_uno_c_sd",
            "cv_brier_headline_mean",
            "test_brier_headline",
            *(
                ("stack_weight_cox_ridge", "stack_weight_logistic_ipcw")
                if stack
                else ("delta_uno_c_marker", "delta_uno_c_marker_lo", "clinical_test_uno_c")
            ),
        ):
            assert key in m, (name, key)
        if stack:  # weights on the simplex
            weights = [m["stack_weight_cox_ridge"], m["stack_weight_logistic_ipcw"]]
            assert min(weights) >= 0 and abs(sum(weights) - 1) < 1e-3
        assert m["test_harrell_c_lo"] <= m["test_harrell_c"] <= m["test_harrell_c_hi"]
        # Every metric the suite logs is in the Metric table (counts and the marker's test aside).
        # (and the paired comparison with the champion and the recalibration's own numbers).
        other = re.compile(
            r"headline/.*|marker_lr_\w+|test_landmark_[\d.]+_(n|bone_met_events)"
            r"|paired_\w+|recalibration_\w+|stack_weight_\w+"
        )
        assert not [k for k in m if parse(k) is None and not other.fullmatch(k)], name
        # The headline metrics under readable names in their own group, equal to their keys;
        # every metric rounded to 4 significant digits.
        for key, label in LABELS.items():
            if stack and key.startswith("delta_"):
                continue  # the stack has no marker increment of its own
            assert m[f"headline/{label}"] == m[key], (name, key)
        assert m["headline/Uno C low"] == m["test_uno_c_lo"]
        assert all(float(f"{v:.4g}") == v for v in m.values()), name
        assert all(float(f"{v:.4g}") == v for v in top.values()), name
        assert child.info.run_name.startswith(f"{name} · 600 patients · data ")
        files = {f.path for f in client.list_artifacts(child.info.run_id, "figures")}
        assert {Path(f).name for f in files} == FIGURES
        names = {f.path for f in client.list_artifacts(child.info.run_id)}
        assert "model_card.md" in names
        tables = {Path(f.path).name for f in client.list_artifacts(child.info.run_id, "tables")}
        assert {
            "metrics.json",
            "calibration_24m.json",
            "subgroups.json",
            "decision_curve_24m.json",
        } | (set() if stack else {"trials.json"}) <= tables


def test_versions_carry_headline_tags_a_summary_and_a_model_card(client):
    """A registry a person can read (issues 9 and 23): two tags per version (a one-line
    summary, the facts as one JSON object), the rest (intervals included) in the run; a
    summary paragraph, then the card."""
    registered = client.get_registered_model("bone-metastasis-risk")
    assert registered.description.startswith("Cumulative incidence of a first bone metastasis")
    for mv in client.search_model_versions("name='bone-metastasis-risk'"):
        assert set(mv.tags) == {"summary", "facts"}, sorted(mv.tags)
        assert " · Uno C 0." in mv.tags["summary"] and " · data " in mv.tags["summary"]
        assert len(mv.tags["summary"]) <= 80
        tags = version_facts(mv.tags)
        assert tags["family"] in {"cox_ridge", "logistic_ipcw", "stacked_oof"}
        assert tags["landmark_days"] == "none" and tags["selection_metric"] == SELECTION_METRIC
        for key in ("dataset_digest", "run_id", "training_run_id"):
            assert tags[key]
        assert {SELECTION_METRIC, "test_uno_c"} <= set(tags["metrics"])
        run = run_metrics(tags["run_id"], client)
        assert run["test_uno_c_lo"] <= tags["metrics"]["test_uno_c"] <= run["test_uno_c_hi"]
        summary, _, card = mv.description.partition("\n\n")
        assert summary.startswith(f"**{tags['family']}** candidate") and "Uno's C" in summary
        assert not summary.startswith("#") and card.startswith("# Model card")
        for section in (
            "## Model details",
            "## Outcome and horizons",
            "## Missing data",
            "## Sample size and events",
            "## Subgroups",
            "## Incremental value of the osteocalcin marker",
        ):
            assert section in mv.description
        assert f"version {mv.version}" in mv.description
        if tags["family"] == "stacked_oof":  # the card says what the version is
            assert "This version is the stack of the run's families" in mv.description
            assert "cox_ridge (weight 0." in mv.description or "logistic_ipcw (weight 1" in (
                mv.description
            )


def test_evaluate_command_logs_an_external_validation_run(trained_store, tmp_path, client):
    from features.simulate import simulate_cohort, write_cohort

    write_cohort(simulate_cohort(400, seed=123), tmp_path)
    out = run_cli(
        ["evaluate", "--patients", str(tmp_path / "patients.csv"), "--n-bootstrap", "20"],
        trained_store["env"],
        trained_store["dir"],
    )
    assert "uno_c" in out.stdout and "[" in out.stdout  # a table with intervals
    exp = client.get_experiment_by_name("bone-metastasis-evaluation")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.data.tags["model_uri"] == "models:/bone-metastasis-risk@champion"
    assert "headline/slope 24m" in run.data.metrics and "n_eval" in run.data.metrics
    assert not any(k.startswith("eval_") for k in run.data.metrics)
    assert "eval_calibration_slope_24m_lo" in run_metrics(run.info.run_id, client)
    bad = run_cli(
        [
            "evaluate",
            "--patients",
            str(tmp_path / "patients.csv"),
            "--model-uri",
            "models:/bone-metastasis-risk/42",
        ],
        trained_store["env"],
        trained_store["dir"],
        check=False,
    )
    assert bad.returncode == 2 and "cannot evaluate" in bad.stderr


def test_mlflow_run_entry_points(trained_store, tmp_path):
    env = dict(trained_store["env"])
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env["BONEMET_DATA_DIR"] = str(tmp_path / "data")
    env["BONEMET_MAX_GRID"] = "1"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    project = Path(__file__).resolve().parents[2] / "mlproject"
    cohort = trained_store["cohort"]

    def mlflow_run(entry: str, *params: str) -> subprocess.CompletedProcess:
        args = [
            sys.executable,
            "-m",
            "mlflow",
            "run",
            str(project),
            "-e",
            entry,
            "--env-manager",
            "local",
            "--experiment-name",
            "mlproject",
        ]
        for p in params:
            args += ["-P", p]
        return subprocess.run(
            args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
        )

    ok = mlflow_run("validate", f"patients={cohort / 'patients.csv'}")
    assert ok.returncode == 0, ok.stderr
    bad_file = CONTRACT_FILES / "bad" / "patients_out_of_range.csv"
    bad = mlflow_run("validate", f"patients={bad_file}")
    assert bad.returncode != 0 and "must be 18-100" in bad.stdout + bad.stderr
    trained = mlflow_run(
        "train",
        f"patients={cohort / 'patients.csv'}",
        f"measurements={cohort / 'oc_measurements.csv'}",
        "families=cox_ridge",
        "seed=3",
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "next: bonemet " in trained.stdout and "version 1" in trained.stdout
    promoted = mlflow_run("promote", "version=1")
    assert promoted.returncode == 0 or "fails the promotion gates" in promoted.stderr
    model_uri = "model_uri=models:/bone-metastasis-risk/1"
    # The same patients, from three sites and two labs (provenance columns of contract 1.2).
    sited = tmp_path / "sited"
    sited.mkdir()
    patients = pd.read_csv(cohort / "patients.csv")
    patients["site_id"] = [f"S{i % 3}" for i in range(len(patients))]
    patients["lab_id"] = [f"L{i % 2}" for i in range(len(patients))]
    patients.to_csv(sited / "patients.csv", index=False)
    shutil.copy(cohort / "oc_measurements.csv", sited / "oc_measurements.csv")
    by_site = mlflow_run(
        "evaluate", f"patients={sited / 'patients.csv'}", model_uri, "by=site_id",
        f"out={tmp_path / 'by-site'}",
    )
    assert by_site.returncode == 0, by_site.stderr[-3000:]
    assert (tmp_path / "by-site" / "by_site.csv").is_file()
    assert (tmp_path / "by-site" / "pooled.json").is_file()
    watched = mlflow_run(
        "monitor", f"reference={sited}", f"current={sited}", model_uri, "by=lab_id",
        f"out={tmp_path / 'monitor'}",
    )
    # The same cohort twice: nothing drifted, so no alarm (exit 4 would fail the run).
    assert watched.returncode == 0, watched.stderr[-3000:]
    assert (tmp_path / "monitor" / "monitor.json").is_file()

    import mlflow

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    exp = mlflow.get_experiment_by_name("mlproject")
    runs = mlflow.search_runs([exp.experiment_id])
    names = {name.split(" · ")[0] for name in runs["tags.mlflow.runName"]}
    assert {"train", "cox_ridge"} <= names  # the family child sits under the project run
    # The experiment `mlflow run` created is marked as holding training runs, like ours.
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"

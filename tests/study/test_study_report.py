"""The study report end to end: ``bonemet study`` on a small simulated cohort, bad input, and
cohorts too small or too plain for a part (the report says why instead of crashing)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys

import mlflow
import numpy as np
import pandas as pd
import pytest

from features.contract import validate_cohort
from features.simulate import SimulationConfig, simulate_cohort
from tests.conftest import CONTRACT_FILES, cli_env, run_cli
from training.study.report.build import build_study, write_study
from training.study.report.config import StudyConfig
from training.study.report.render import render_html

BAD = str(CONTRACT_FILES / "bad" / "patients_out_of_range.csv")
FAST = StudyConfig(n_boot=50, n_perm=199)


def _cohort(n: int, seed: int, **config):
    sim = simulate_cohort(n, seed=seed, config=SimulationConfig(**config) if config else None)
    return validate_cohort(sim.patients, sim.measurements)


@pytest.mark.slow
def test_bonemet_study_end_to_end(tmp_path, small_cohort):
    env = cli_env(tmp_path / "data")
    out = tmp_path / "report"
    proc = run_cli(
        [
            "study",
            "--patients",
            str(small_cohort / "patients.csv"),
            "--measurements",
            str(small_cohort / "oc_measurements.csv"),
            "--out",
            str(out),
            "--n-boot",
            "100",
            "--n-perm",
            "299",
        ],
        env,
        tmp_path,
    )
    assert "report:" in proc.stdout and "not computed" not in proc.stdout
    page = (out / "report.html").read_text(encoding="utf-8")
    for part in ('id="aim1"', 'id="aim2"', 'id="monitoring"', 'id="limits"'):
        assert part in page
    assert page.count("data:image/png;base64,") >= 7  # self-contained figures
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "not computed" not in page

    numbers = json.loads((out / "study.json").read_text())
    cohort = numbers["cohort"]
    assert cohort["n_patients"] == 600
    aim1 = numbers["aim1"]
    counts = aim1["counts"]
    assert (
        counts["n_with_bone_metastasis"]
        + counts["n_without_bone_metastasis"]
        + counts["n_missing_marker"]
        == cohort["n_metastatic"]
    )
    # The simulator raises the marker 1.8-fold with bone metastasis (docs/simulator.md).
    assert 0.5 < aim1["roc"]["auc"] < 1.0
    assert aim1["rank_test"]["shift"] > 0
    adj = aim1["regression_adjusted"]["terms"]["bone_metastasis"]
    assert adj["lo"] < np.log2(1.8) < adj["hi"]
    cut = aim1["cutoff"]
    assert cut["lo"] <= cut["cutoff"] <= cut["hi"] and 0.001 < cut["cutoff"] < 1

    aim2 = numbers["aim2"]
    assert aim2["counts"]["n"] + aim2["counts"]["n_missing_marker"] == (cohort["n_with_outcome"])
    hr = aim2["cox_unadjusted"]["terms"]["log2_marker"]
    assert hr["coef"] > 0 and hr["lo"] > 0  # the simulated marker carries risk
    assert aim2["cox_adjusted"]["n"] + aim2["cox_adjusted"]["n_dropped"] == aim2["counts"]["n"]
    assert 0 < aim2["gray_test_tertiles"]["p_value"] <= 1
    for row in aim2["incidence_tertiles"]:
        assert row["n"] > 0

    landmarks = numbers["monitoring"]["landmarks"]
    assert list(landmarks) == ["3m", "6m", "12m"]
    at_risk = [landmarks[k]["n_at_risk"] for k in ("3m", "6m", "12m")]
    assert at_risk[0] >= at_risk[1] >= at_risk[2] > 0
    assert [landmarks[k]["landmark_day"] for k in landmarks] == [91, 183, 365]
    assert "oc_change_log2" in landmarks["6m"]["cox_change"]["terms"]

    # The MLflow run is in the project's store with the report and numbers as artifacts.
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'data' / 'mlflow.db'}")
    try:
        exp = mlflow.get_experiment_by_name("bone-metastasis-study")
        runs = mlflow.search_runs([exp.experiment_id], output_format="list")
        assert len(runs) == 1
        run = runs[0]
        assert run.info.run_id in proc.stdout
        assert run.data.metrics["aim1_auc"] == pytest.approx(aim1["roc"]["auc"])
        artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
        assert {"report.html", "study.json", "figures"} <= artifacts
        assert exp.artifact_location.startswith((tmp_path / "data").as_uri())
    finally:
        mlflow.set_tracking_uri(None)


def test_bad_input_writes_nothing(tmp_path):
    env = cli_env(tmp_path / "data")
    out = tmp_path / "report"
    proc = run_cli(["study", "--patients", BAD, "--out", str(out)], env, tmp_path, check=False)
    assert proc.returncode == 2
    assert "must be 18-100" in proc.stderr
    assert not out.exists() and not (tmp_path / "data").exists()


def test_out_must_be_a_folder(tmp_path):
    env = cli_env(tmp_path / "data")
    (tmp_path / "file").write_text("x")
    proc = run_cli(
        ["study", "--patients", BAD, "--out", str(tmp_path / "file")], env, tmp_path, check=False
    )
    assert proc.returncode == 2 and "is a file, not a folder" in proc.stderr


def test_report_without_measurements_says_why(tmp_path):
    c = _cohort(300, 3)
    study = build_study(validate_cohort(c.patients, None), FAST)
    numbers = study.numbers
    assert "Monitoring" in numbers["monitoring"]["not_computed"]
    assert "oc_measurements" in numbers["monitoring"]["not_computed"]["Monitoring"]
    assert numbers["aim1"]["roc"]["auc"] > 0  # the other parts still run
    assert numbers["aim2"]["cox_unadjusted"]["n_events"] > 0
    paths = write_study(study, tmp_path / "out")
    page = paths["report"].read_text(encoding="utf-8")
    assert "Monitoring: not computed." in page
    json.loads(paths["numbers"].read_text())  # valid JSON (no NaN)


def test_report_on_early_disease_only_says_why():
    # No metastatic patients: Aim 1 cannot be computed; Aim 2 falls back to the fixed cut-off.
    c = _cohort(200, 4, metastatic_share=0.0)
    numbers = build_study(c, FAST).numbers
    assert "needs at least 3 metastatic patients" in numbers["aim1"]["not_computed"]["Aim 1"]
    assert numbers["aim2"]["cutoff_percent"] == 0.045
    assert "incidence_cutoff" in numbers["aim2"]


def test_report_on_tiny_and_scoring_cohorts_never_crashes():
    c = _cohort(200, 6)
    tiny = validate_cohort(c.patients.iloc[:8].reset_index(drop=True), None)
    study = build_study(tiny, FAST)
    reasons = " ".join(
        r for part in ("aim1", "aim2", "monitoring") for r in study.numbers[part]["not_computed"]
    )
    assert reasons  # something could not be computed, and the report says it
    html = render_html(study)
    assert html.count("not computed.") >= 2
    # A cohort to score: no outcomes at all.
    scoring = c.patients.drop(columns=["time_days", "event"])
    scoring = scoring[scoring["bone_metastasis_at_enrollment"] == 0.0]
    study = build_study(validate_cohort(scoring.reset_index(drop=True), None), FAST)
    assert "no outcomes" in study.numbers["aim2"]["not_computed"]["Aim 2"]
    assert "Aim 1" in study.numbers["aim1"]["not_computed"]


def test_report_numbers_behind_every_figure_and_key_findings_first():
    c = _cohort(400, 8)
    study = build_study(c, FAST)
    n_figures = 0
    for part in study.parts:
        for block in part.blocks:
            if block.startswith("<figure>"):
                caption = block.split("<figcaption>")[1]
                # Patients and events behind the figure, and how many were left out.
                assert re.search(r"\d+ (bone metastases|with|patients)", caption), caption
                assert re.search(r"\d+ [^.;]*left out", caption), caption
                n_figures += 1
    assert n_figures >= 7
    assert pd.Series([p.key for p in study.parts]).tolist() == [
        "findings",
        "cohort",
        "aim1",
        "aim2",
        "monitoring",
        "limits",
    ]
    # No label runs off a figure: every figure's outer border is blank.
    from matplotlib.image import imread

    for part in study.parts:
        for name, png in part.figures.items():
            pixels = imread(io.BytesIO(png))[..., :3]
            border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
            assert (border > 0.99).all(), name

    # The report opens with its key findings and ends with its settings.
    page = render_html(study)
    order = [page.index(f'<section id="{k}">') for k in ("findings", "aim1", "aim2", "limits")]
    assert order == sorted(order) and page.index('<section id="settings">') > order[-1]
    assert "Settings:" not in page.split('<section id="findings">')[0]  # not in the header
    findings = study.numbers["findings"]["findings"]
    sections = {row["section"] for row in findings}
    assert sections == {"aim1", "aim2"}
    for row in findings:  # each with its interval (or said not computed) and its section
        assert "95 % CI" in row["estimate"] or "not computed" in row["estimate"], row
        assert f'<a href="#{row["section"]}">' in page
    cutoff = next(r for r in findings if r["finding"].startswith("Youden cut-off"))
    assert "published" in cutoff["estimate"] and "0.045 %" in cutoff["estimate"]
    aim1 = next(part for part in study.parts if part.key == "aim1")
    shown = float(cutoff["estimate"].split(" %")[0])
    assert aim1.numbers["cutoff"].cutoff == pytest.approx(shown, abs=1e-4)


def test_statistics_and_report_builder_import_no_mlflow(tmp_path):
    # MLflow belongs to training.runs.study only: a fresh interpreter that imports the statistics
    # and the report builder has no mlflow module loaded, and importing does no work (no files).
    code = (
        "import sys\n"
        "import training.study.report.build, training.study.stats.comparisons\n"
        "import training.study.stats.competing, training.study.stats.regression\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mlflow'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
    assert list(tmp_path.iterdir()) == []

"""``bonemet monitor`` end to end: the session's champion scores both cohorts, the run writes
monitor.json, report.html and an MLflow run, and the exit code tells a scheduler what to do."""

from __future__ import annotations

import json

from features.simulate.drift import (
    monitoring_scenario,
    qc_results,
    shift_marker,
    split_at,
    truth_predictions,
    write_tables,
)
from tests.conftest import run_cli

SPLIT = "2025-01-01"


def _folders(scn, root):
    rp, rm, cp, cm = split_at(scn, SPLIT)
    write_tables(rp, rm, root / "reference")
    write_tables(cp, cm, root / "current")
    return root / "reference", root / "current"


def test_monitor_with_the_champion_raises_the_shifted_lot(trained_store, tmp_path):
    # Small cohorts keep the suite fast: a larger shift than the x1.3 of test_known_answers.
    scn = monitoring_scenario(1200, seed=0, n_labs=2, lot_days=365)
    p = scn.patients
    start = str(p.loc[p["reagent_lot"] == "L2-LOT03", "enrollment_date"].min())
    scn = shift_marker(scn, 1.8, start, "L2", "L2-LOT03")
    ref, cur = _folders(scn, tmp_path)
    qc_results(scn, every_days=7, since=start).query("date < '2025-09-01'").to_csv(
        tmp_path / "qc.csv", index=False
    )
    out = tmp_path / "out"
    proc = run_cli(
        [
            "monitor",
            "--reference",
            str(ref),
            "--current",
            str(cur),
            "--qc",
            str(tmp_path / "qc.csv"),
            "--out",
            str(out),
            "--n-boot",
            "20",
        ],
        trained_store["env"],
        trained_store["dir"],
        check=False,
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "L2-LOT03" in proc.stdout and "ALARM" in proc.stdout
    numbers = json.loads((out / "monitor.json").read_text())
    assert numbers["alarm"] is True and numbers["contract_version"] == "1.2"
    kinds = {(a["kind"], a.get("lab_id"), a.get("reagent_lot")) for a in numbers["alarms"]}
    assert ("marker_shift", "L2", "L2-LOT03") in kinds and ("westgard", "L2", "L2-LOT03") in kinds
    assert not any(k[0] == "marker_shift" and k[2] != "L2-LOT03" for k in kinds)
    # The model's predictions were checked too (drift, O/E, windows, CUSUM computed).
    assert {"prediction_drift", "observed_expected", "cusum"} <= set(numbers)
    assert numbers["cusum"]["limit"] > 0
    # The lot read higher moves its lab's predicted risk (the model uses the marker), the
    # other lab's not: the drift table shows it (its test at alpha 0.01 needs more patients
    # than this small cohort has to raise an alarm).
    drift = {r["lab_id"]: r for r in numbers["prediction_drift"]["lab_id"]}
    assert drift["L2"]["current_value"] > 1.3 * drift["L2"]["reference_value"]
    assert 0.9 < drift["L1"]["current_value"] / drift["L1"]["reference_value"] < 1.1
    page = (out / "report.html").read_text()
    assert "L2-LOT03" in page and "data:image/png;base64," in page
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{trained_store['dir'] / 'data' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["bone-metastasis-monitoring"], output_format="list")
    assert runs and runs[0].data.tags["alarm"] == "yes"
    assert runs[0].data.metrics["alarms_marker_shift"] == 1.0


def test_monitor_with_prediction_files_and_no_alarm(trained_store, tmp_path):
    scn = monitoring_scenario(1200, seed=0, n_labs=2, lot_days=365)
    ref, cur = _folders(scn, tmp_path)
    rp, _, cp, _ = split_at(scn, SPLIT)
    truth_predictions(scn, rp["patient_id"]).to_csv(tmp_path / "ref_pred.csv", index=False)
    truth_predictions(scn, cp["patient_id"]).to_csv(tmp_path / "cur_pred.csv", index=False)
    proc = run_cli(
        [
            "monitor",
            "--reference",
            str(ref),
            "--current",
            str(cur),
            "--reference-predictions",
            str(tmp_path / "ref_pred.csv"),
            "--current-predictions",
            str(tmp_path / "cur_pred.csv"),
            "--out",
            str(tmp_path / "out"),
            "--n-boot",
            "20",
            "--json",
        ],
        trained_store["env"],
        trained_store["dir"],
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["alarm"] is False and answer["run_id"]
    assert set(answer["not_computed"]) == {"westgard"}

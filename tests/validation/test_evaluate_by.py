"""``bonemet evaluate --by``: a site with doubled baseline risk is flagged, the others are not;
small sites get a clear row; bad ``--by`` columns get a clear error and change nothing.

Runs the real command on the session's trained store (tests/conftest.py) and a simulated
multi-site cohort (features.simulate.sites).
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import run_cli
from training.registry import versions as registry

SITES_ARGS = ["--n-bootstrap", "50", "--experiment", "tests-validation"]


@pytest.fixture(scope="module")
def validated(trained_store, tmp_path_factory):
    from features.simulate.sites import Lab, Site, simulate_sites, write_sites

    folder = tmp_path_factory.mktemp("sites")
    sites = (
        Site("A", share=450),
        Site("B", share=450),
        Site("C", share=450),
        Site("DOUBLED", share=450, hr_bone_metastasis=2.0),
        Site("NO_EVENTS", share=25, hr_bone_metastasis=1e-6),
        Site("ONE", share=1, metastatic_share=0.0),
    )
    write_sites(simulate_sites(1826, 11, sites, (Lab("L1"), Lab("L2", 1.3))), folder)
    out = folder / "validation"
    proc = run_cli(
        ["evaluate", "--patients", str(folder / "patients.csv"), "--measurements",
         str(folder / "oc_measurements.csv"), "--by", "site_id", "--out", str(out), *SITES_ARGS],
        trained_store["env"],
        trained_store["dir"],
    )
    return {"out": out, "stdout": proc.stdout, "folder": folder, "store": trained_store}


def test_the_doubled_site_is_flagged(validated):
    """The session's model is trained on 600 patients and is itself miscalibrated in places
    (test_groups.py checks that a calibrated model flags only the doubled site); the doubled
    site has the highest O/E and is flagged."""
    table = pd.read_csv(validated["out"] / "by_site.csv", keep_default_na=False)
    flagged = table.loc[table["flagged"].astype(str) == "True", "site_id"].tolist()
    assert "DOUBLED" in flagged
    doubled = table.set_index("site_id").loc["DOUBLED"]
    assert float(doubled["oe_ratio_24m_low"]) > 1
    assert table.loc[table["oe_ratio_24m"].astype(float).idxmax(), "site_id"] == "DOUBLED"
    for column in (
        "site_id", "n_patients", "n_bone_metastasis", "n_death", "c_index", "c_index_low",
        "c_index_high", "oe_ratio_24m", "oe_ratio_24m_low", "oe_ratio_24m_high",
        "calibration_slope_24m", "calibration_intercept_24m", "ici_24m", "flagged",
        "oe_ratio_12m", "oe_ratio_36m",
    ):
        assert column in table.columns
    assert "flagged: " in validated["stdout"] and "DOUBLED" in validated["stdout"]


def test_small_sites_get_a_clear_row(validated):
    table = pd.read_csv(validated["out"] / "by_site.csv").set_index("site_id")
    assert list(table.index) == ["A", "B", "C", "DOUBLED", "NO_EVENTS", "ONE"]
    none = table.loc["NO_EVENTS"]
    assert none["n_bone_metastasis"] == 0 and pd.isna(none["c_index"])
    assert "no bone metastasis" in none["note"]
    one = table.loc["ONE"]
    assert one["n_patients"] == 1 and "a single patient" in one["note"]
    assert not bool(none["flagged"]) and not bool(one["flagged"])
    pooled = json.loads((validated["out"] / "pooled.json").read_text())
    c = pooled["metrics"]["c_index"]
    assert {e["site_id"] for e in c["excluded"]} == {"NO_EVENTS", "ONE"}
    assert c["k"] == 4 and c["ci_low"] < c["estimate"] < c["ci_high"]
    assert c["pi_low"] <= c["ci_low"] and c["pi_high"] >= c["ci_high"]
    oe = pooled["metrics"]["oe_ratio_24m"]
    assert oe["scale"] == "log" and oe["tau2"] > 0 and 0 <= oe["i2_percent"] <= 100
    assert "DOUBLED" in pooled["flagged"] and pooled["method"] == "REML"


def test_report_and_mlflow_run_hold_it_all(validated):
    import mlflow

    report = (validated["out"] / "report.html").read_text()
    assert report.count("<img") >= 2 + 4  # two forest plots, calibration of the sites with events
    assert "prediction interval" in report and "DOUBLED" in report
    store = validated["store"]
    uri = f"sqlite:///{store['dir'] / 'data' / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.get_experiment_by_name("tests-validation")
    (run,) = client.search_runs([exp.experiment_id], "tags.validation_by = 'site_id'")
    assert "DOUBLED" in run.data.tags["flagged_groups"].split(",")
    assert run.data.tags["model_version"]
    assert "pooled_c_index_estimate" in run.data.metrics
    names = {a.path for a in client.list_artifacts(run.info.run_id, "validation")}
    assert {"validation/by_site.csv", "validation/pooled.json", "validation/report.html"} <= names
    mv = client.get_model_version("bone-metastasis-risk", run.data.tags["model_version"])
    # Recorded in the version's facts: its registry row stays two tags.
    assert not [k for k in mv.tags if k.startswith("validation_by")]
    assert registry.version_validations(mv.tags) == {"site_id": run.info.run_id}


def test_bad_by_is_refused_and_writes_nothing(validated, tmp_path):
    """Every refusal's wording is tested on check_group_column (test_groups.py); here the
    command's answer: exit 2, the message, nothing written (a name that is no contract column,
    and a column none of the session cohort's patients has)."""
    cohort = validated["store"]["cohort"]
    for by, message in (
        ("hospital", "--by hospital: not a column of the data contract's patients table; "
         "use one of"),
        ("lab_id", "no patient free of bone metastasis at enrollment has a lab_id"),
    ):
        out = tmp_path / by
        proc = run_cli(
            ["evaluate", "--patients", str(cohort / "patients.csv"), "--by", by, "--out",
             str(out)],
            validated["store"]["env"],
            validated["store"]["dir"],
            check=False,
        )
        assert proc.returncode == 2, proc.stderr
        assert message in " ".join(proc.stderr.split())
        assert not out.exists()

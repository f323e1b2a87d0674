"""``bonemet predict`` (local engine) in chunks answers as on the whole cohort, or writes nothing.

The reference is the same command with one chunk holding every patient: the whole cohort
validated at once and scored by one ``predict_patients`` call, the engine's former path.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contract import ContractError, load_cohort, read_table
from tests.conftest import run_cli
from tests.scoring.rules import assert_prediction_day_rule

pytestmark = pytest.mark.slow

TEXT_COLUMNS = ("patient_id", "risk_group", "warnings")


def _predict(store, out, *extra, check=True):
    cohort = store["cohort"]
    args = ["predict", "--patients", str(cohort / "patients.csv")]
    args += ["--measurements", str(cohort / "oc_measurements.csv"), "--out", str(out)]
    return run_cli([*args, *extra], store["env"], store["dir"], check=check)


def _assert_same_output(chunked_path, whole_path):
    chunked = pd.read_csv(chunked_path, dtype={c: str for c in TEXT_COLUMNS})
    whole = pd.read_csv(whole_path, dtype={c: str for c in TEXT_COLUMNS})
    assert list(chunked.columns) == list(whole.columns)
    assert len(chunked) == len(whole) == 600
    for column in whole.columns:
        if column in TEXT_COLUMNS:
            assert chunked[column].fillna("").tolist() == whole[column].fillna("").tolist()
        else:
            # Same values; a cumulative incidence summed over batches of another size may
            # differ in its last place (docs/scoring-at-scale.md).
            np.testing.assert_allclose(
                chunked[column].to_numpy(dtype=float),
                whole[column].to_numpy(dtype=float),
                rtol=1e-12,
                atol=0,
            )


@pytest.mark.parametrize("day", [None, "90"], ids=["enrollment", "day-90"])
def test_chunks_of_seven_answer_as_one_chunk(trained_store, tmp_path, day):
    extra = [] if day is None else ["--prediction-day", day]
    whole, chunked = tmp_path / "whole.csv", tmp_path / "chunked.csv"
    _predict(trained_store, whole, *extra, "--chunk-size", "1000000")
    done = _predict(trained_store, chunked, *extra, "--chunk-size", "7")
    assert "wrote 600 predictions" in done.stdout
    _assert_same_output(chunked, whole)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chunked.csv", "whole.csv"]


def test_landmark_model_from_a_prediction_day_in_chunks(landmark_store, tmp_path):
    extra = ["--prediction-day", "183", "--model-uri", "models:/bone-metastasis-risk/1"]
    whole, chunked = tmp_path / "whole.csv", tmp_path / "chunked.csv"
    _predict(landmark_store, whole, *extra, "--chunk-size", "1000000")
    _predict(landmark_store, chunked, *extra, "--chunk-size", "7")
    _assert_same_output(chunked, whole)


def test_a_bad_row_in_a_late_chunk_writes_nothing(trained_store, tmp_path):
    cohort = trained_store["cohort"]
    patients = read_table(cohort / "patients.csv")
    patients.loc[560, "age_years"] = "abc"  # file row 561: chunk 81 of 7 rows
    bad = tmp_path / "patients.csv"
    patients.to_csv(bad, index=False)
    with pytest.raises(ContractError) as whole:
        load_cohort(bad, cohort / "oc_measurements.csv")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "scores.csv"
    out.write_text("previous scores\n")
    args = ["predict", "--patients", str(bad), "--measurements"]
    args += [str(cohort / "oc_measurements.csv"), "--out", str(out), "--chunk-size", "7"]
    done = run_cli(args, trained_store["env"], trained_store["dir"], check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == str(whole.value)
    pid = patients.loc[560, "patient_id"]
    assert f"patients row 561 (patient_id {pid}), column age_years, value 'abc'" in done.stderr
    assert out.read_text() == "previous scores\n"
    assert [p.name for p in out_dir.iterdir()] == ["scores.csv"]


def test_partial_outputs_are_removed_after_a_kill_and_on_sigterm(trained_store, tmp_path):
    # Issue 20.9: a killed predict leaves a partial file of patient predictions; the next run
    # removes it (its process is gone), and SIGTERM no longer leaves one behind.
    import os
    import signal
    import subprocess

    import psutil

    from tests.conftest import BONEMET
    from tests.tracking.conftest import wait_for

    cohort = trained_store["cohort"]
    patients = read_table(cohort / "patients.csv")
    many = pd.concat(
        [patients.assign(patient_id=patients["patient_id"] + f"x{k}") for k in range(20)]
    )
    big = tmp_path / "patients.csv"
    many.to_csv(big, index=False)  # 12,000 patients: scored in 1,200 chunks below
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "scores.csv"
    dead = next(p for p in range(4_000_000, 3_000_000, -1) if not psutil.pid_exists(p))
    stale = out_dir / f".scores.csv.{dead}.partial"
    stale.write_text("patient_id,risk_score\nP0001,0.3\n")
    alive = out_dir / f".scores.csv.{os.getppid()}.partial"  # a live process's: kept
    alive.write_text("in progress\n")

    args = ["predict", "--patients", str(big), "--out", str(out), "--chunk-size", "10"]
    proc = subprocess.Popen(
        BONEMET + args,
        env=trained_store["env"],
        cwd=trained_store["dir"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        mine = out_dir / f".scores.csv.{proc.pid}.partial"
        wait_for(lambda: mine.exists() or proc.poll() is not None, every=0.05, what="scoring")
        assert proc.poll() is None, proc.communicate()
        assert not stale.exists() and alive.exists()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert sorted(p.name for p in out_dir.iterdir()) == [alive.name]


def test_prediction_day_leaves_out_patients_whose_outcome_came_by_then(trained_store, tmp_path):
    """From day 365 a patient whose bone metastasis or death the table records on or before it
    gets no prediction and a warning saying why; one censored by then is scored with a warning;
    the others are scored as usual (the API's rule: horizons count from a day the patient is
    still free of bone metastasis)."""
    out = tmp_path / "day365.csv"
    _predict(trained_store, out, "--prediction-day", "365", "--chunk-size", "100")
    scored = pd.read_csv(out, dtype={c: str for c in TEXT_COLUMNS})
    assert_prediction_day_rule(scored, trained_store["cohort"] / "patients.csv", 365)

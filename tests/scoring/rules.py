"""Checks shared by the scoring tests of both engines (local, Spark)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def assert_prediction_day_rule(scored: pd.DataFrame, patients_csv: Path, day: float) -> None:
    """From ``day`` a patient whose bone metastasis or death the table records on or before it
    gets no prediction and a warning saying why; one censored by then is scored with a warning;
    the others are scored as usual (the API's rule: horizons count from a day the patient is
    still free of bone metastasis). The cohort must hold both kinds by ``day``."""
    patients = pd.read_csv(patients_csv, dtype={"patient_id": str})
    scored = scored.assign(
        warnings=scored["warnings"].fillna("").astype(str),
        risk_group=scored["risk_group"].where(scored["risk_group"].astype(str) != "", None),
    )
    merged = scored.merge(patients[["patient_id", "time_days", "event"]], on="patient_id")
    assert len(merged) == len(scored) == len(patients)
    by_then = merged["time_days"] <= day
    ended = by_then & merged["event"].isin(["bone_metastasis", "death"])
    censored = by_then & (merged["event"] == "censored")
    assert ended.sum() > 0 and censored.sum() > 0  # the cohort has both kinds
    columns = ["risk_score", "p_bone_met_12m", "p_death_12m"]
    assert merged.loc[ended, columns].astype(float).isna().all().all()
    assert merged.loc[ended, "risk_group"].isna().all()
    for _, row in merged[ended].iterrows():
        said = f"recorded on day {row['time_days']:g}, on or before prediction_day {day:g}"
        assert said in row["warnings"], row["warnings"]
        assert "no longer at risk, no prediction" in row["warnings"]
    assert merged.loc[censored, "p_bone_met_12m"].notna().all()
    assert merged.loc[censored, "warnings"].str.contains("follow-up ended on day").all()
    at_risk = merged["time_days"] > day  # (no time_days: bone metastasis at enrollment)
    assert merged.loc[at_risk, "p_bone_met_12m"].notna().all()
    assert not merged.loc[at_risk, "warnings"].str.contains("on or before prediction_day").any()

"""Landmark models (issue 5): stacked training rows, grouped folds, serving rows = training rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contract import validate_cohort
from features.draws import enrollment_view, trajectory_at
from features.landmark import TRAJECTORY_FEATURES, landmark_dataset
from features.simulate import simulate_cohort
from features.transformers import TrajectoryFeatures, make_feature_pipeline
from training.config import ConfigError, TrainConfig, load_config
from training.fitting.data import split, time_to_event_rows
from training.fitting.landmarks import landmark_rows
from training.fitting.search import folds

LANDMARKS = (0.0, 91.0, 183.0, 365.0)


@pytest.fixture(scope="module")
def cohort():
    sim = simulate_cohort(400, seed=11)
    return validate_cohort(sim.patients, sim.measurements)


def test_serving_rows_equal_training_rows(cohort):
    """trajectory_at on a request's values gives the landmark_dataset row's features."""
    m = cohort.measurements
    for day in LANDMARKS[1:]:
        rows = landmark_dataset(cohort.patients, m, day)
        assert len(rows) > 50
        patients = cohort.patients.set_index("patient_id")
        checked = 0
        for _, row in rows.iterrows():
            pid = row["patient_id"]
            p = patients.loc[pid]
            # The service never sees draws after the outcome: a request is made before it.
            d = m.loc[(m["patient_id"] == pid) & (m["day"] < p["time_days"])]
            values = trajectory_at(
                tuple(
                    float(p[c])
                    for c in ("oc_positive_percent", "oc_positive_events", "pbmc_events")
                ),
                tuple(
                    d[c].to_numpy(dtype=float)
                    for c in ("day", "oc_positive_percent", "oc_positive_events", "pbmc_events")
                ),
                day,
            )
            expected = row[list(TRAJECTORY_FEATURES)].to_numpy(dtype=float)
            np.testing.assert_allclose(values, expected, rtol=0, atol=1e-12, err_msg=pid)
            checked += 1
        assert checked == len(rows)


def test_landmark_rows_split_by_patient_and_use_residual_time(cohort):
    rows, _ = time_to_event_rows(cohort)
    cfg = TrainConfig(landmark_days=LANDMARKS, holdout=0.25)
    X_train, X_test, y_train, y_test = split(rows, cfg)
    S_train, t_train = landmark_rows(X_train, cohort.measurements, LANDMARKS)
    S_test, _ = landmark_rows(X_test, cohort.measurements, LANDMARKS)
    assert set(S_train["patient_id"]).isdisjoint(S_test["patient_id"])
    assert sorted(S_train["landmark_day"].unique()) == list(LANDMARKS)
    assert len(S_train) > len(X_train)  # patients at risk at several landmarks
    original = X_train.set_index("patient_id")["time_days"]
    residual = original.reindex(S_train["patient_id"]).to_numpy() - S_train["landmark_day"]
    np.testing.assert_allclose(S_train["time_days"], residual)
    assert np.all(t_train["time"] > 0)
    at0 = S_train["landmark_day"] == 0
    assert at0.sum() == len(X_train)


def test_folds_keep_each_patients_landmark_rows_together(cohort):
    rows, _ = time_to_event_rows(cohort)
    stacked, _ = landmark_rows(rows, cohort.measurements, LANDMARKS)
    ids = stacked["patient_id"].to_numpy()
    for train_idx, test_idx in folds(stacked, 3, seed=1):
        assert set(ids[train_idx]).isdisjoint(ids[test_idx])
    # Without repeated ids the folds are the plain stratified ones (every row once).
    test_rows = np.concatenate([te for _, te in folds(rows, 3, seed=1)])
    assert sorted(test_rows) == list(range(len(rows)))


def test_remembered_folds_are_the_splitters_own(cohort):
    # folds() remembers its splits by what determines them (rows' strata and patients, k,
    # seed): a second call gives scikit-learn's splits again, and changing the rows, the seed
    # or k is a different split, never a remembered one.
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    from training.fitting.search import strata

    rows, _ = time_to_event_rows(cohort)
    stacked, _ = landmark_rows(rows, cohort.measurements, LANDMARKS)
    for frame, splitter in ((stacked, StratifiedGroupKFold), (rows, StratifiedKFold)):
        for k, seed in ((3, 1), (3, 2), (4, 1)):
            groups = {"groups": frame["patient_id"].to_numpy()} if frame is stacked else {}
            fresh = list(
                splitter(n_splits=k, shuffle=True, random_state=seed).split(
                    np.zeros(len(frame)), strata(frame), **groups
                )
            )
            for _ in range(2):  # the first call may split, the second remembers
                found = folds(frame, k, seed)
                assert len(found) == k
                for (tr, te), (tr0, te0) in zip(found, fresh, strict=True):
                    np.testing.assert_array_equal(tr, tr0)
                    np.testing.assert_array_equal(te, te0)
                found[0][1][:] = -1  # a caller changing its copy changes nothing remembered
    fewer = stacked.iloc[10:]  # other rows: their own split, over their own positions
    assert sorted(np.concatenate([te for _, te in folds(fewer, 3, 1)])) == list(range(len(fewer)))


def test_trajectory_features_and_pipeline(cohort):
    rows, _ = time_to_event_rows(cohort)
    stacked, _ = landmark_rows(rows, cohort.measurements, LANDMARKS)
    t = TrajectoryFeatures(max_slope=2.0).fit(stacked)
    out = t.transform(stacked)
    names = list(t.get_feature_names_out())
    assert names[:3] == ["landmark_years", "oc_change_log2", "oc_slope_log2_per_year"]
    assert "missing_oc_slope_log2_per_year" in names  # one draw at landmark 0: no slope
    np.testing.assert_allclose(out[:, 0], stacked["landmark_day"] / 365.25)
    slope = out[:, 2]
    assert np.nanmax(np.abs(slope)) <= 2.0
    pipe = make_feature_pipeline(include_marker=True, include_trajectory=True).fit(stacked)
    assert "oc_change_log2" in pipe.get_feature_names_out()
    with pytest.raises(ValueError, match="max_slope"):
        TrajectoryFeatures(max_slope=0).fit(stacked)
    with pytest.raises(KeyError, match="landmark_day"):
        TrajectoryFeatures().fit(rows)


@pytest.mark.parametrize(
    "value", ["91,183", "0,183,91", "0,-5", "0,5000", "0,abc"], ids=lambda v: v
)
def test_landmark_days_config_is_checked(value):
    with pytest.raises(ConfigError, match="landmark_days"):
        load_config(landmark_days=value)


def test_landmark_days_config_parses():
    assert load_config(landmark_days="0, 91,183").landmark_days == (0.0, 91.0, 183.0)
    assert load_config().landmark_days == ()
    assert TrainConfig(landmark_days=LANDMARKS).to_params()["landmark_days"] == "0,91,183,365"


def test_enrollment_view_is_landmark_zero(cohort):
    """A landmark model's rows at day 0 carry the enrollment marker, as the enrollment view."""
    view = enrollment_view(cohort.patients, cohort.measurements)
    rows = landmark_dataset(view, cohort.measurements, 0.0)
    ids = rows["patient_id"]
    enrolled = view.set_index("patient_id").loc[ids, "oc_positive_percent"].to_numpy()
    given = rows["oc_positive_percent"].to_numpy()
    both = ~np.isnan(enrolled) & ~np.isnan(given)
    np.testing.assert_allclose(given[both], enrolled[both])
    assert isinstance(rows, pd.DataFrame)


def test_landmark_model_explains_the_trend_and_the_prediction_day(cohort):
    from training.artifact.explain import explain
    from training.fitting.family_run import fit_risk_model

    rows, _ = time_to_event_rows(cohort)
    stacked, y = landmark_rows(rows, cohort.measurements, LANDMARKS)
    model = fit_risk_model("cox_ridge", {}, TrainConfig(landmark_days=LANDMARKS), stacked, y)
    assert model.landmark_days == LANDMARKS and model.uses_trajectory
    later = stacked.loc[stacked["landmark_day"] == 183.0].head(5).reset_index(drop=True)
    entries = explain(model, later, top=40)
    for row, patient in zip(entries, later.itertuples(), strict=True):
        by_input = {e["input"]: e for e in row}
        trend = by_input["oc_trend"]
        assert trend["text"].startswith(
            f"osteocalcin-positive cells x{2.0**patient.oc_change_log2:.2f} since the first draw"
        )
        assert by_input["prediction_day"]["value"] == "day 183 after enrollment"
    # Plain rows (no landmark columns) are predictions at enrollment.
    plain = rows.drop(columns=["time_days", "event"]).head(3)
    at0 = stacked.loc[stacked["landmark_day"] == 0.0].head(3)
    np.testing.assert_allclose(
        model.predict_batch(plain).risk_score, model.predict_batch(at0).risk_score, atol=1e-12
    )


def test_landmark_metrics_per_prediction_time(cohort):
    from training.evaluation.concordance import harrell_c
    from training.fitting.landmarks import landmark_metrics

    rows, _ = time_to_event_rows(cohort)
    stacked, y = landmark_rows(rows, cohort.measurements, LANDMARKS)
    risk = np.log2(np.maximum(stacked["oc_positive_percent"].fillna(0.03).to_numpy(), 1e-4))
    metrics = landmark_metrics(stacked, y, risk)
    for day in LANDMARKS:
        at = stacked["landmark_day"].to_numpy() == day
        key = f"test_landmark_{day:g}"
        assert metrics[f"{key}_n"] == at.sum()
        assert metrics[f"{key}_bone_met_events"] == np.sum(y["cause"][at] == 1)
        assert metrics[f"{key}_harrell_c"] == harrell_c(y[at], risk[at])
    assert landmark_metrics(rows, y[: len(rows)], risk[: len(rows)]) == {}

"""Same seed, same metrics: a training run is reproducible end to end."""

from __future__ import annotations

import pytest

from features.contract import load_cohort
from training.config import Settings, TrainConfig
from training.runs.train import train

pytestmark = pytest.mark.slow


def test_same_seed_same_metrics(small_cohort, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cohort = load_cohort(small_cohort / "patients.csv", small_cohort / "oc_measurements.csv")
    config = TrainConfig(
        families=("cox_ridge", "rsf", "xgb_ipcw"),
        outer_folds=2,
        inner_folds=2,
        max_grid=1,
        n_bootstrap=20,
        n_jobs=1,
        seed=11,
    )
    results = [
        train(cohort, config, Settings(data_dir=tmp_path / f"s{k}"), source="t") for k in range(2)
    ]
    for a, b in zip(results[0].candidates, results[1].candidates, strict=True):
        assert a.family == b.family
        assert a.metrics == b.metrics
    other = train(
        cohort,
        TrainConfig(**{**config.__dict__, "seed": 12}),
        Settings(data_dir=tmp_path / "s2"),
        source="t",
    )
    assert other.candidates[0].metrics != results[0].candidates[0].metrics

"""The discrimination gate paired with the champion on the same patients when it can be, and
saying which design it used (``docs/modeling.md``, promotion gates)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.models.data import known_cohort
from tests.tracking.gate_values import GOOD
from training.registry.gates import (
    PAIRED_DELTA,
    PAIRED_VERSION,
    PromotionPolicy,
    champion_pairing,
    check_gates,
    paired_discrimination,
)

NAME = PAIRED_DELTA.format(metric="test_uno_c")


def discrimination(candidate: dict, champion: dict):
    return next(g for g in check_gates(candidate, champion, PromotionPolicy()) if g.name == "discrimination")


def test_a_clearly_better_champion_on_the_same_patients_refuses_the_candidate():
    # The champion ranks by the true risk, the candidate by a noisy copy: on the same 1,500
    # patients the paired interval of the difference excludes 0 and the candidate is refused.
    y, truth = known_cohort(1500, seed=21)
    rng = np.random.default_rng(0)
    champion_risk = truth[24]
    noisy = truth[24] * np.exp(rng.normal(0, 1.5, len(y)))
    paired = paired_discrimination(("4", champion_risk), y, noisy, n_boot=100, seed=0)
    assert paired[PAIRED_VERSION] == 4.0
    assert paired[f"{NAME}_hi"] < 0 < paired[f"{NAME}_hi"] - paired[NAME] < 0.05
    candidate = {**GOOD, **{k: str(v) for k, v in paired.items()}}
    candidate.update(test_uno_c="0.60", test_uno_c_lo="0.57", test_uno_c_hi="0.63")
    champion = {**GOOD, "test_uno_c": str(0.60 - paired[NAME]), "model_version": "4"}
    gate = discrimination(candidate, champion)
    assert not gate.passed
    assert "paired: both versions' out-of-fold predictions" in gate.detail
    assert gate.lo == paired[f"{NAME}_lo"]
    # Measured against another champion version: not paired with this one, said so.
    gate = discrimination(candidate, {**champion, "model_version": "5"})
    assert "unpaired: the two versions' intervals combined as independent" in gate.detail
    assert gate.lo == pytest.approx(0.60 - float(champion["test_uno_c"]) - 0.03)


def test_the_same_model_against_itself_is_a_difference_of_zero():
    y, truth = known_cohort(600, seed=22)
    paired = paired_discrimination(("1", truth[24]), y, truth[24], n_boot=50, seed=0)
    assert paired[NAME] == 0.0 and paired[f"{NAME}_lo"] == 0.0 == paired[f"{NAME}_hi"]


@pytest.mark.slow
def test_a_training_on_the_champions_cohort_finds_its_out_of_fold_risk(trained_store):
    import mlflow

    from training.registry import versions as registry

    uri = f"sqlite:///{trained_store['dir'] / 'data' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    champion = registry.alias_version("champion")
    version = registry.mlflow_client().get_model_version(registry.MODEL_NAME, champion)
    digest = registry.version_facts(version.tags)["dataset_digest"]
    run = registry.mlflow_client().get_run(version.run_id)
    n = int(run.data.metrics["test_n"]) if "test_n" in run.data.metrics else None
    risk = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/oof_risk_24m.json")["risk_24m"]
    assert n is None or len(risk) == n
    found = champion_pairing(digest, "nested_cv_oof", len(risk))
    assert found is not None and found[0] == champion
    np.testing.assert_array_equal(found[1], risk)
    # Another cohort or another design: no pairing.
    assert champion_pairing("other-digest", "nested_cv_oof", len(risk)) is None
    assert champion_pairing(digest, "holdout", len(risk)) is None

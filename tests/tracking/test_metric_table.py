"""The Metric table (issue 21.2) and what versions and runs record (issue 23.1): three tags
per version, one promotion tag, every metric of a run in one table; earlier releases' layouts
read alike. Pure functions: no store."""

from __future__ import annotations

import json
import math

import pytest

from training.cli.output import gate_label
from training.config import SELECTION_METRIC, ConfigError, TrainConfig
from training.evaluation import names
from training.registry import versions as registry
from training.registry.gates import PromotionPolicy, check_gates

METRICS = {
    "cv_brier_headline_mean": 0.06123,
    "test_uno_c": 0.7734,
    "test_uno_c_lo": 0.737,
    "test_uno_c_hi": 0.818,
    "test_td_auc_24m": 0.8012,
    "test_brier_24m": 0.06112,
    "test_calibration_slope_24m": 1.02,
    "test_calibration_in_the_large_24m": -0.004,
    "test_ici_24m": 0.011,
    "delta_uno_c_marker": 0.03,
    "test_landmark_0_n": 600.0,
    "clinical_test_brier_12m": float("nan"),
}


def test_the_table_names_direction_horizons_and_label_of_every_key():
    assert names.lower_is_better("cv_brier_headline_mean") and names.lower_is_better("test_ici_24m")
    assert not names.lower_is_better("cv_uno_c_mean")
    assert not names.lower_is_better("test_scaled_brier_24m")
    assert names.metric_of("test_calibration_slope_36m_lo").ideal == 1.0
    assert names.label("test_td_auc_24m") == "AUC 24m"
    assert names.label("delta_uno_c_marker") == "marker gain in Uno C"
    assert names.label("n_train") == "n_train" and names.parse("test_landmark_90_n") is None
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        names.metric_of("auc")
    with pytest.raises(ConfigError, match="selection_metric: unknown metric 'c_index'"):
        TrainConfig(selection_metric="c_index")
    assert TrainConfig().selection_metric == SELECTION_METRIC == names.SELECTION
    # Every per-horizon metric is reported at its horizons under one spelling.
    for metric in names.METRICS.values():
        for h in metric.horizons:
            key = names.key(metric.name, "test_", h)
            assert names.parse(key).metric is metric and names.parse(key).horizon == h
    # The gates read the same keys, and are named by the table's labels in tables.
    policy = PromotionPolicy()
    assert policy.discrimination_metric == "test_uno_c"
    assert policy.slope_metric.format(h=12) == "test_calibration_slope_12m"
    gates = check_gates({k: str(v) for k, v in METRICS.items()}, None, policy)
    assert {gate_label(g.name) for g in gates} >= {"C vs champion", "slope 12m", "CITL 36m"}


def _legacy_tags() -> dict[str, str]:
    """A version's tags as bonemet 0.1 registered and promoted it."""
    return {
        "family": "cox_ridge",
        "selection_metric": "cv_brier_headline_mean",
        "dataset_digest": "1a2b3c4d5e6f",
        "landmark_days": "none",
        "run_id": "r1",
        "training_run_id": "p1",
        "cv_brier_headline_mean": "0.0612",
        "test_uno_c": "0.7734",
        "test_td_auc_24m": "0.8012",
        "test_brier_24m": "0.0611",
        "test_calibration_slope_24m": "1.0200",
        "test_calibration_in_the_large_24m": "-0.0040",
        "promoted_by": "alice",
        "promoted_at": "2026-01-01T00:00:00+00:00",
        "promotion_reason": "promotion gates passed",
        "promoted_from": "none",
        "promotion_gates": "discrimination: pass (...)",
    }


def test_three_tags_per_version_and_the_old_layout_read_alike():
    tags = registry.version_tags(
        "cox_ridge", METRICS, "1a2b3c4d5e6f", "r1", SELECTION_METRIC, training_run_id="p1"
    )
    assert set(tags) == {"summary", "facts"}
    assert tags["summary"] == (
        "cox_ridge · Uno C 0.773 · AUC 24m 0.801 · Brier 24m 0.061 · data 1a2b3c4d"
    )
    new, old = registry.version_facts(tags), registry.version_facts(_legacy_tags())
    assert {k: v for k, v in new.items() if k != "metrics"} == {
        k: v for k, v in old.items() if k != "metrics"
    }
    assert set(new["metrics"]) == set(old["metrics"]) == {SELECTION_METRIC, *names.HEADLINE_TEST}
    for key, value in new["metrics"].items():
        assert old["metrics"][key] == pytest.approx(value, abs=1e-4)
    # A facts tag edited into something else reads as no facts: the version is incomplete.
    broken = registry.version_facts({**tags, "facts": "not json"})
    assert broken == {"metrics": {}}


def test_the_promotion_is_in_the_facts_and_the_old_layout_reads_alike():
    tags = registry.version_tags("cox_ridge", METRICS, "1a2b3c4d5e6f", "r1", SELECTION_METRIC)
    record = {"promoted_by": "bob", "promotion_reason": "x", "forced_promotion_reason": None}
    writes = registry.promotion_tags(tags, record)
    assert set(writes) == {"facts"}  # the row stays two tags
    promoted = {**tags, **writes}
    assert registry.promotion_record(promoted) == {"promoted_by": "bob", "promotion_reason": "x"}
    assert registry.version_facts(promoted) == registry.version_facts(tags)
    old = registry.promotion_record(_legacy_tags())
    assert old["promoted_by"] == "alice" and "forced_promotion_reason" not in old
    assert registry.promotion_record({"facts": "[1]"}) == {}
    # A 0.1 version promoted again moves to the two tags: facts first, then the old deleted.
    legacy = {**_legacy_tags(), "validation_by_site_id_run_id": "v1"}
    writes = registry.promotion_tags(legacy, record)
    assert list(writes)[:2] == ["facts", "summary"]
    assert writes["summary"].startswith("cox_ridge · Uno C 0.773")
    after = {k: v for k, v in {**legacy, **writes}.items() if v is not None}
    assert set(after) == {"facts", "summary"}  # the validation moved into the facts
    assert registry.version_validations(after) == {"site_id": "v1"}
    assert registry.version_facts(after) == registry.version_facts(_legacy_tags())
    assert registry.promotion_record(after) == {"promoted_by": "bob", "promotion_reason": "x"}
    # A validation recorded later joins the others in the facts, the promotion kept.
    validated = {**after, **registry.validation_tags(after, "lab_id", "v2")}
    assert set(validated) == {"facts", "summary"}
    assert registry.version_validations(validated) == {"site_id": "v1", "lab_id": "v2"}
    assert registry.promotion_record(validated) == registry.promotion_record(after)
    assert registry.version_facts(validated) == registry.version_facts(after)


def test_the_metrics_table_holds_every_metric_with_its_interval():
    table = registry.metrics_table(METRICS)
    assert list(table.columns) == ["metric", "estimate", "low", "high"]
    uno = table.set_index("metric").loc["test_uno_c"]
    assert (uno["estimate"], uno["low"], uno["high"]) == (0.7734, 0.737, 0.818)
    logged = json.loads(table.to_json(orient="split", index=False))
    back = registry.metrics_from_table(logged)
    assert back == {k: v for k, v in METRICS.items() if math.isfinite(v)}


def test_the_served_model_page_reads_both_layouts():
    """``/model``'s headline metrics and data digest (serving reads tags without importing
    the registry)."""
    from serving.service import version_record

    tags = registry.version_tags("cox_ridge", METRICS, "1a2b3c4d5e6f", "r1", SELECTION_METRIC)
    new, old = version_record(tags), version_record(_legacy_tags())
    assert new[1] == old[1] == "1a2b3c4d5e6f"
    assert set(new[0]) == set(old[0]) == {SELECTION_METRIC, *names.HEADLINE_TEST}
    assert version_record({"facts": "{"}) == ({}, None)

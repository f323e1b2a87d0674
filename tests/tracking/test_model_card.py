"""The model card: its TRIPOD+AI sections, interval formatting, units from the data contract and
"not available" for facts training did not supply."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.schema import PATIENT_SPECS
from training.evaluation.bootstrap import Interval
from training.evaluation.subgroups import subgroup_metrics
from training.models.competing import DAYS_PER_MONTH, make_target
from training.registry.card import (
    NOT_AVAILABLE,
    SECTION_HEADINGS,
    ModelCardFacts,
    format_ci,
    render_model_card,
)


@pytest.fixture(scope="module")
def cohort():
    """400 patients, exponential competing hazards, bone metastasis rising with the score x:
    the target, the true 24-month incidence, x and tertile risk groups."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=400)
    hazards = np.column_stack([6e-4 * np.exp(x), np.full(x.size, 3e-4)])
    times = np.column_stack([rng.exponential(1 / hazards), rng.uniform(300, 2500, x.size)])
    first = times.argmin(axis=1)
    events = np.array(["bone_metastasis", "death", "censored"])[first]
    total = hazards.sum(axis=1)
    p24 = hazards[:, 0] / total * (1 - np.exp(-total * 24 * DAYS_PER_MONTH))
    cut = np.quantile(x, [1 / 3, 2 / 3])
    groups = np.array(["low", "intermediate", "high"], dtype=object)[np.searchsorted(cut, x)]
    return make_target(events, times.min(axis=1)), {24: p24}, x, groups


def full_facts(cohort, **overrides) -> ModelCardFacts:
    y, p, x, groups = cohort
    subgroups = subgroup_metrics(
        y, x, {24: p[24]}, {"risk_group": groups, "tiny": np.where(x > 2.2, "top", None)}
    )
    facts = {
        "model_name": "bone-metastasis-risk",
        "family": "cox_ridge",
        "model_version": "3",
        "run_id": "abc123",
        "git_commit": "dbe9208",
        "training_date": "2025-01-31",
        "data_digest": "sha256:0f1e",
        "contract_version": 1,
        "data_source": "bonemet simulator (seed 7)",
        "simulated": True,
        "setting": "early and metastatic breast cancer",
        "n_patients": 580,
        "n_excluded_bone_met_at_enrollment": 20,
        "median_follow_up_months": 41.26,
        "engineered_features": ("oc_log2_percent", "age_years", "missing_ki67_percent"),
        "missing_share": {"ki67_percent": 0.125, "age_years": 0.0},
        "split_counts": {
            "train": {"n": 435, "bone_metastasis": 60, "death": 50, "censored": 325},
            "test": {"n": 145, "bone_metastasis": 20, "death": 17, "censored": 108},
        },
        "hyperparameter_search": "grid search on Uno's C",
        "search_space": {"alpha": (0.1, 1.0, 10.0)},
        "selected_params": {"alpha": 1.0},
        "cv_scheme": "nested CV: 5 outer x 3 inner folds",
        "evaluation": "held-out test split (25 %)",
        "risk_cutoffs": (-0.31, 0.42),
        "performance": pd.DataFrame(
            {
                "metric": ["harrell_c", "brier_24m"],
                "cv_mean": [0.70, 0.061],
                "cv_sd": [0.03, 0.004],
                "estimate": [0.712, 0.058],
                "lo": [0.664, 0.049],
                "hi": [0.758, 0.067],
            }
        ),
        "subgroups": subgroups,
        "marker_increment": {
            "ΔC (Harrell)": Interval(0.042, 0.011, 0.074, 200),
            "ΔAUC 24 months": (0.03, -0.01, 0.07),
        },
        "marker_lr_test": {"statistic": 14.2, "df": 1, "p_value": 0.00016},
        "marker_method": "paired bootstrap (200 resamples) on the test split",
    }
    facts.update(overrides)
    return ModelCardFacts(**facts)


def test_card_has_every_tripod_section_in_order(cohort):
    card = render_model_card(full_facts(cohort))
    positions = [card.index(f"\n## {h}\n") for h in SECTION_HEADINGS]
    assert positions == sorted(positions)
    assert card.startswith("# Model card: bone-metastasis-risk version 3 (cox_ridge)")
    assert "None" not in card and "nan" not in card


def test_card_formats_estimates_with_intervals(cohort):
    assert format_ci(0.712, 0.664, 0.758) == "0.71 [0.66, 0.76]"
    assert format_ci(0.058, 0.049, 0.067) == "0.058 [0.049, 0.067]"
    assert format_ci(0.71, np.nan, 0.76) == f"0.71 [{NOT_AVAILABLE}]"
    assert format_ci(None, 0.1, 0.2) == NOT_AVAILABLE
    card = render_model_card(full_facts(cohort))
    # Each metric by its label, logged name and direction (the Metric table).
    assert "| Harrell C (harrell_c) | higher | 0.70 ± 0.03 | 0.71 [0.66, 0.76] |" in card
    assert "| Brier 24m (brier_24m) | lower | 0.061 ± 0.004 | 0.058 [0.049, 0.067] |" in card
    assert "| ΔC (Harrell) | 0.042 [0.011, 0.074] | yes |" in card
    assert "| ΔAUC 24 months | 0.030 [-0.010, 0.070] | no |" in card
    assert "chi2 = 14.20, df = 1, p < 0.001" in card
    assert "Method: paired bootstrap (200 resamples) on the test split." in card
    assert "test estimate [95 % CI]" in card


def test_card_puts_contract_units_into_the_predictor_table(cohort):
    card = render_model_card(full_facts(cohort))
    for name in ("age_years", "tumor_size_mm", "alkaline_phosphatase_u_per_l"):
        spec = PATIENT_SPECS[name]
        assert f"| {name} | {spec.unit} | {spec.description} |" in card
    assert "| oc_positive_percent | % of PBMC events |" in card
    assert "| menopausal_status | category: pre, peri, post |" in card
    assert "| oc_log2_percent | log2(% of PBMC events) |" in card
    assert "| missing_ki67_percent | 0/1 | indicator: ki67_percent was missing" in card
    # Identifier, eligibility flag and outcome are not predictors.
    for name in ("patient_id", "bone_metastasis_at_enrollment", "time_days", "event"):
        assert f"| {name} |" not in card


def test_card_reports_data_events_missingness_and_subgroups(cohort):
    card = render_model_card(full_facts(cohort))
    assert "**Excluded: bone metastasis at enrollment**: 20" in card
    assert "| train | 435 | 60 | 50 | 325 |" in card
    assert "Events per model feature in training: 20.0 (60 bone metastasis events / 3" in card
    assert "| ki67_percent | 12.5 % |" in card
    assert "| alpha | 0.1, 1.0, 10.0 | 1.0 |" in card
    assert "**Median follow-up**: 41.3 months" in card
    assert "12, 24, 36, 60 months" in card
    assert "**Trained and evaluated on simulated data**" in card
    assert "Not a medical device" in card
    # The tiny subgroup has too few events: its metrics are not available, with the reason.
    tiny = next(line for line in card.splitlines() if line.startswith("| tiny | top |"))
    assert NOT_AVAILABLE in tiny and "fewer than 5 bone metastasis events" in tiny
    assert any(line.startswith("| risk_group | high |") for line in card.splitlines())


def test_card_with_only_required_facts_says_not_available():
    card = render_model_card(ModelCardFacts(model_name="bone-metastasis-risk", family="cox_ridge"))
    for heading in SECTION_HEADINGS:
        assert f"## {heading}" in card
    for fact in (
        "**Version**: not available",
        "**MLflow run id**: not available",
        "**Training-data digest**: not available",
        "**Patients used (eligible)**: not available",
        "Share missing: not available.",
        "Counts per split: not available.",
        "Performance: not available.",
        "Subgroup performance: not available.",
        "Differences: not available.",
        "Method: not available.",
        "Likelihood-ratio test: not available.",
        "Whether the data are simulated: not available.",
    ):
        assert fact in card
    assert "None" not in card and "nan" not in card
    # The inputs table still comes from the contract.
    assert "| age_years | years | age at enrollment |" in card


def test_card_tables_are_well_formed(cohort):
    card = render_model_card(full_facts(cohort))
    lines = card.splitlines()
    for k, line in enumerate(lines):
        if line.startswith("|---"):
            width = lines[k - 1].count(" | ")
            body = lines[k + 1 :]
            rows = body[: next((i for i, r in enumerate(body) if not r.startswith("|")), None)]
            assert all(r.replace("\\|", "").count(" | ") == width for r in rows), lines[k - 1]


def test_card_facts_fail_loudly_on_wrong_input():
    with pytest.raises(ValueError, match="input_columns not in the data contract: tumour_size"):
        ModelCardFacts(model_name="m", family="cox_ridge", input_columns=("tumour_size",))
    with pytest.raises(ValueError, match=r"missing_share\['age_years'\] = 1.5 is not a share"):
        ModelCardFacts(model_name="m", family="cox_ridge", missing_share={"age_years": 1.5})
    with pytest.raises(ValueError, match=r"split_counts\['test'\] lacks key\(s\) censored"):
        ModelCardFacts(
            model_name="m",
            family="cox_ridge",
            split_counts={"test": {"n": 1, "bone_metastasis": 0, "death": 0}},
        )
    with pytest.raises(ValueError, match=r"performance lacks column\(s\) estimate"):
        ModelCardFacts(
            model_name="m", family="cox_ridge", performance=pd.DataFrame({"metric": ["c"]})
        )


def test_the_card_says_when_the_probabilities_are_recalibrated():
    from training.artifact.recalibration import Recalibration
    from training.runs.card_facts import recalibration_text

    assert recalibration_text(None) == ""
    text = recalibration_text(Recalibration(intercept=-0.25, slope=0.8, n_rows=900))
    assert "recalibrated, logit p' = -0.250 + 0.800 logit p" in text
    assert "out-of-fold" in text

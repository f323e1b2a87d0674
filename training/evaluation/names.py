"""The names of the metrics that tables, tags and model cards show: defined once, here.

Pure data. A metric's name is its logged MLflow key (or the key without its ``test_``,
``cv_``, ``eval_`` prefix): never rename one, runs and registered versions already hold them.
Names at the headline horizon are built from :data:`features.schema.HEADLINE_HORIZON_MONTHS`
(24 months, so ``td_auc_24m``).
"""

from __future__ import annotations

from features.schema import HEADLINE_HORIZON_MONTHS

#: Suffix of the metrics at the headline horizon: ``"24m"``.
HEADLINE_SUFFIX = f"{HEADLINE_HORIZON_MONTHS}m"

#: Point metrics of one split that get bootstrap confidence intervals (unprefixed).
HEADLINE = (
    "harrell_c",
    "uno_c",
    f"td_auc_{HEADLINE_SUFFIX}",
    f"ipcw_auc_{HEADLINE_SUFFIX}",
    f"brier_{HEADLINE_SUFFIX}",
    f"calibration_slope_{HEADLINE_SUFFIX}",
    f"calibration_in_the_large_{HEADLINE_SUFFIX}",
)

#: Calibration and accuracy metrics reported at every horizon (``<name>_<h>m``), e.g. in the
#: model card's performance table beside :data:`HEADLINE`.
PER_HORIZON = ("calibration_slope", "ici", "calibration_in_the_large", "brier")

#: What a person scanning the registry or a training run's candidates needs, on the held-out
#: test split: the metrics tagged on each version and the columns of ``bonemet train``'s table.
HEADLINE_TEST = (
    "test_uno_c",
    f"test_td_auc_{HEADLINE_SUFFIX}",
    f"test_brier_{HEADLINE_SUFFIX}",
    f"test_calibration_slope_{HEADLINE_SUFFIX}",
    f"test_calibration_in_the_large_{HEADLINE_SUFFIX}",
)

#: Versions side by side (``bonemet compare``): Harrell's C, the headline test metrics and
#: the marker's increment.
COMPARE = ("test_harrell_c", *HEADLINE_TEST, "delta_uno_c_marker")

#: The candidates table of a training run (``tables/candidates.json`` of the parent run).
CANDIDATES = (
    "cv_brier_headline_mean",
    "cv_uno_c_mean",
    "test_harrell_c",
    "test_uno_c",
    f"test_td_auc_{HEADLINE_SUFFIX}",
    f"test_brier_{HEADLINE_SUFFIX}",
    f"test_calibration_slope_{HEADLINE_SUFFIX}",
    "delta_uno_c_marker",
)

#: An external evaluation's headline (``bonemet evaluate``; logged with the ``eval_`` prefix).
EVALUATION = (
    "harrell_c",
    "uno_c",
    f"td_auc_{HEADLINE_SUFFIX}",
    f"brier_{HEADLINE_SUFFIX}",
    f"calibration_slope_{HEADLINE_SUFFIX}",
    f"calibration_in_the_large_{HEADLINE_SUFFIX}",
)

#: Columns of an evaluation at each landmark (``eval_landmark_<day>_<name>``).
PER_LANDMARK = (
    "n",
    "bone_met_events",
    "harrell_c",
    "uno_c",
    f"td_auc_{HEADLINE_SUFFIX}",
    f"brier_{HEADLINE_SUFFIX}",
    f"calibration_slope_{HEADLINE_SUFFIX}",
)

#: Readable labels of the headline metrics, for tables and the MLflow UI (one spelling each).
LABELS = {
    "cv_brier_headline_mean": "CV Brier 12-36m",
    "test_harrell_c": "Harrell C",
    "test_uno_c": "Uno C",
    f"test_td_auc_{HEADLINE_SUFFIX}": f"AUC {HEADLINE_SUFFIX}",
    f"test_brier_{HEADLINE_SUFFIX}": f"Brier {HEADLINE_SUFFIX}",
    f"test_calibration_slope_{HEADLINE_SUFFIX}": f"slope {HEADLINE_SUFFIX}",
    f"test_calibration_in_the_large_{HEADLINE_SUFFIX}": f"CITL {HEADLINE_SUFFIX}",
    "delta_uno_c_marker": "marker gain in Uno C",
}

#: Prefix of the headline metrics logged under their :data:`LABELS` in each family's run:
#: the MLflow UI groups them (``headline/Uno C``, ...) apart from the run's other metrics.
UI_GROUP = "headline"

#: Significant digits of the metrics logged to MLflow.
LOGGED_DIGITS = 4

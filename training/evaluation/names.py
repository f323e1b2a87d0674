"""The metrics: one table (:data:`METRICS`) of what each is, and the lists built from it.

Pure data. Each :class:`Metric` says its name, whether lower or higher is better (or that a
value is judged by its distance to an ideal, as a calibration slope near 1), the horizons it
is reported at and its label. The evaluation suite, the promotion gates, the selection of the
challenger, ``bonemet compare``, the command line's tables and the model card read it (by
:func:`key`, :func:`metric_of`, :func:`label`, :func:`lower_is_better`).

A logged key is ``<split prefix><name>[_<h>m][_<statistic>]`` (``test_uno_c``,
``test_brier_24m``, ``cv_brier_headline_mean``, ``delta_uno_c_marker``, ``test_uno_c_lo``):
never rename one, runs and registered versions already hold them. Names at the headline
horizon are built from :data:`features.schema.HEADLINE_HORIZON_MONTHS` (24 months, so
``td_auc_24m``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from features.schema import DEFAULT_HORIZONS_MONTHS, HEADLINE_HORIZON_MONTHS

HIGHER, LOWER, IDEAL, NEITHER = "higher", "lower", "ideal", "neither"


@dataclass(frozen=True)
class Metric:
    """One metric of the evaluation suite.

    Parameters
    ----------
    name : str
        Its name in logged keys, without split prefix, horizon or statistic (``uno_c``).
    direction : str
        ``"higher"`` or ``"lower"`` is better, or ``"ideal"``: the closer to :attr:`ideal`
        the better (calibration slope 1, calibration-in-the-large 0); ``"neither"`` for a
        description (observed incidence).
    horizons : tuple of int
        The horizons (months) it is reported at by default (``<name>_<h>m``); empty for a
        metric of the whole follow-up (``uno_c``).
    label : str
        Short readable name for tables and the MLflow UI (``Uno C``; a horizon is appended:
        ``AUC 24m``).
    ideal : float or None
        The best value when ``direction`` is ``"ideal"``.
    """

    name: str
    direction: str
    horizons: tuple[int, ...]
    label: str
    ideal: float | None = None

    @property
    def lower_is_better(self) -> bool:
        return self.direction == LOWER


_H = DEFAULT_HORIZONS_MONTHS
#: Every metric the suite computes (:func:`training.evaluation.suite.evaluate_predictions`).
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("harrell_c", HIGHER, (), "Harrell C"),
        Metric("uno_c", HIGHER, (), "Uno C"),
        Metric("td_auc", HIGHER, _H, "AUC"),
        Metric("ipcw_auc", HIGHER, _H, "IPCW AUC"),
        Metric("brier", LOWER, _H, "Brier"),
        Metric("scaled_brier", HIGHER, _H, "scaled Brier"),
        Metric("integrated_brier", LOWER, (), "integrated Brier"),
        Metric("brier_headline", LOWER, (), "Brier 12-36m"),
        Metric("calibration_slope", IDEAL, _H, "slope", ideal=1.0),
        Metric("calibration_intercept", IDEAL, _H, "intercept", ideal=0.0),
        Metric("calibration_in_the_large", IDEAL, _H, "CITL", ideal=0.0),
        Metric("ici", LOWER, _H, "ICI"),
        Metric("observed_incidence", NEITHER, _H, "observed incidence"),
        Metric("mean_predicted", NEITHER, _H, "mean predicted"),
    )
}

#: Split prefixes of logged keys and the words their labels start with.
PREFIXES = {
    "clinical_test_": "clinical-only ",
    "inner_cv_": "inner CV ",
    "test_": "",
    "cv_": "CV ",
    "eval_": "",
    "delta_": "marker gain in ",
}
#: Statistic suffixes: the bounds of the 95 % interval, the mean and SD over folds, the
#: marker's increment (``delta_<name>_marker``).
STATISTICS = ("_lo", "_hi", "_mean", "_sd", "_marker")
_LANDMARK = re.compile(r"^landmark_\d+(?:\.\d+)?_")
_HORIZON = re.compile(r"^(.*)_(\d+)m$")


@dataclass(frozen=True)
class Key:
    """A logged key read back (:func:`parse`)."""

    prefix: str
    metric: Metric
    horizon: int | None
    statistics: tuple[str, ...]


def _base(rest: str) -> tuple[Metric, int | None] | None:
    if rest in METRICS:
        return METRICS[rest], None
    match = _HORIZON.match(rest)
    if match and match.group(1) in METRICS:
        return METRICS[match.group(1)], int(match.group(2))
    return None


def parse(key: str) -> Key | None:
    """What ``key`` measures (``test_brier_24m_lo``: the interval's bound of the Brier score
    at 24 months on the test split), or None when it names no metric of :data:`METRICS`
    (counts, landmark sizes)."""
    prefix = next((p for p in PREFIXES if key.startswith(p)), "")
    rest = _LANDMARK.sub("", key[len(prefix) :])
    statistics: list[str] = []
    while (found := _base(rest)) is None:
        suffix = next((s for s in STATISTICS if rest.endswith(s)), None)
        if suffix is None:
            return None
        rest = rest[: -len(suffix)]
        statistics.insert(0, suffix)
    return Key(prefix, found[0], found[1], tuple(statistics))


def metric_of(key: str) -> Metric:
    """The :class:`Metric` a logged key measures; ``ValueError`` naming it when none."""
    parsed = parse(key)
    if parsed is None:
        raise ValueError(
            f"unknown metric {key!r}: expected a key of the evaluation suite such as "
            f"'cv_brier_headline_mean' or 'test_uno_c' (metrics: {', '.join(METRICS)})"
        )
    return parsed.metric


def lower_is_better(key: str) -> bool:
    """Whether a smaller value of the metric ``key`` measures is better (Brier, ICI)."""
    return metric_of(key).lower_is_better


def key(name: str, prefix: str = "", horizon: int | None = None, statistic: str = "") -> str:
    """The logged key of metric ``name`` (a :data:`METRICS` entry) with a split prefix, at a
    horizon, with a statistic: ``key("brier", "test_", 24) == "test_brier_24m"``."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r} (metrics: {', '.join(METRICS)})")
    return f"{prefix}{name}" + (f"_{horizon}m" if horizon is not None else "") + statistic


def label(key_: str) -> str:
    """The readable label of a logged key: ``Uno C``, ``AUC 24m``, ``CV Brier 12-36m``,
    ``marker gain in Uno C``; the key itself when it names no metric."""
    parsed = parse(key_)
    if parsed is None:
        return key_
    text = PREFIXES.get(parsed.prefix, "") + parsed.metric.label
    return text + (f" {parsed.horizon}m" if parsed.horizon is not None else "")


#: Suffix of the metrics at the headline horizon: ``"24m"``.
HEADLINE_SUFFIX = f"{HEADLINE_HORIZON_MONTHS}m"
_HH = HEADLINE_HORIZON_MONTHS

#: Point metrics of one split that get bootstrap confidence intervals (unprefixed).
HEADLINE = (
    key("harrell_c"),
    key("uno_c"),
    key("td_auc", horizon=_HH),
    key("ipcw_auc", horizon=_HH),
    key("brier", horizon=_HH),
    key("calibration_slope", horizon=_HH),
    key("calibration_in_the_large", horizon=_HH),
)

#: Calibration and accuracy metrics reported at every horizon (``<name>_<h>m``), e.g. in the
#: model card's performance table beside :data:`HEADLINE`.
PER_HORIZON = ("calibration_slope", "ici", "calibration_in_the_large", "brier")

#: What a person scanning the registry or a training run's candidates needs, on the held-out
#: test split: the version's summary and the columns of ``bonemet train``'s table.
HEADLINE_TEST = tuple(
    key(n, "test_", h)
    for n, h in (
        ("uno_c", None),
        ("td_auc", _HH),
        ("brier", _HH),
        ("calibration_slope", _HH),
        ("calibration_in_the_large", _HH),
    )
)

#: The marker's increment in Uno's C (``delta_uno_c_marker``).
MARKER_GAIN = key("uno_c", "delta_", statistic="_marker")

#: Versions side by side (``bonemet compare``): Harrell's C, the headline test metrics and
#: the marker's increment.
COMPARE = (key("harrell_c", "test_"), *HEADLINE_TEST, MARKER_GAIN)

#: The selection metric of the challenger by default (mean over the outer folds).
SELECTION = key("brier_headline", "cv_", statistic="_mean")

#: The candidates table of a training run (``tables/candidates.json`` of the parent run).
CANDIDATES = (
    SELECTION,
    key("uno_c", "cv_", statistic="_mean"),
    key("harrell_c", "test_"),
    *HEADLINE_TEST[:4],
    MARKER_GAIN,
)

#: An external evaluation's headline (``bonemet evaluate``; logged with the ``eval_`` prefix).
EVALUATION = tuple(k for k in HEADLINE if not k.startswith("ipcw_auc"))

#: Columns of an evaluation at each landmark (``eval_landmark_<day>_<name>``).
PER_LANDMARK = ("n", "bone_met_events", *EVALUATION[:5])

#: The headline set: the metrics each family's run logs at its top level (under readable
#: names, :data:`UI_GROUP`), the rest going to its :data:`METRICS_TABLE`.
HEADLINE_SET = (SELECTION, key("harrell_c", "test_"), *HEADLINE_TEST, MARKER_GAIN)

#: Readable labels of the headline set, for tables and the MLflow UI (one spelling each).
LABELS = {k: label(k) for k in HEADLINE_SET}

#: Prefix of the headline metrics logged under their :data:`LABELS` in each family's run:
#: the MLflow UI groups them (``headline/Uno C``, ...).
UI_GROUP = "headline"

#: Every metric of a run (family run, evaluation), as a table artifact of the run: one row
#: per metric key with its estimate and 95 % interval (``metric``, ``estimate``, ``low``,
#: ``high``). Only the headline set is logged as MLflow metrics.
METRICS_TABLE = "tables/metrics.json"

#: Significant digits of the metrics logged to MLflow.
LOGGED_DIGITS = 4

"""Metrics within the levels of subgroup variables (disease setting, menopausal status, ...).

Each level is evaluated on its own patients with the same metric names as a whole split
(``harrell_c``, ``ipcw_auc_24m``, ``brier_24m``, ``observed_incidence_24m``,
``mean_predicted_24m``); the observed incidence is the Aalen-Johansen estimate
(:func:`training.evaluation.incidence.observed_incidence`), as everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from training.evaluation.accuracy import brier_score, ipcw_auc
from training.evaluation.concordance import fast_harrell_c
from training.evaluation.incidence import observed_incidence
from training.evaluation.inputs import check_prob, check_y
from training.models.competing import BONE_METASTASIS

__all__ = ["MetricFn", "default_metric_fns", "subgroup_metrics"]

#: A subgroup metric: ``fn(y, risk, p_by_horizon) -> float``.
MetricFn = Callable[[np.ndarray, np.ndarray, Mapping[float, np.ndarray]], float]


def _c_metric(y: np.ndarray, risk: np.ndarray, p: Mapping[float, np.ndarray]) -> float:
    return fast_harrell_c(y, risk)


@dataclass(frozen=True)
class _AtHorizon:
    """A metric of the predicted incidence at one horizon, as a picklable callable."""

    fn: Callable[[np.ndarray, np.ndarray, float], float]
    months: float

    def __call__(self, y: np.ndarray, risk: np.ndarray, p: Mapping[float, np.ndarray]) -> float:
        return self.fn(y, p[self.months], self.months)


def _observed(y: np.ndarray, p: np.ndarray, months: float) -> float:
    return observed_incidence(y, months)


def _mean_predicted(y: np.ndarray, p: np.ndarray, months: float) -> float:
    return float(np.mean(p))


def default_metric_fns(horizons_months: Sequence[float]) -> dict[str, MetricFn]:
    """Harrell's C and, per horizon, IPCW AUC, Brier score, observed and mean predicted incidence.

    Names follow :func:`training.evaluation.suite.point_metrics` (``ipcw_auc_24m``,
    ``brier_24m``, ...);
    ``observed_incidence_<h>m`` is the Aalen-Johansen estimate.

    Parameters
    ----------
    horizons_months : sequence of float
        Keys of the ``p_by_horizon`` mapping given to :func:`subgroup_metrics`.

    Returns
    -------
    dict
        Metric name to ``fn(y, risk, p_by_horizon) -> float``.
    """
    fns: dict[str, MetricFn] = {"harrell_c": _c_metric}
    for h in horizons_months:
        fns[f"ipcw_auc_{h}m"] = _AtHorizon(ipcw_auc, h)
        fns[f"brier_{h}m"] = _AtHorizon(brier_score, h)
        fns[f"observed_incidence_{h}m"] = _AtHorizon(_observed, h)
        fns[f"mean_predicted_{h}m"] = _AtHorizon(_mean_predicted, h)
    return fns


def subgroup_metrics(
    y: np.ndarray,
    risk: np.ndarray,
    p_by_horizon: Mapping[float, np.ndarray],
    groups: Mapping[str, np.ndarray],
    metric_fns: Mapping[str, MetricFn] | None = None,
    min_events: int = 5,
    include_overall: bool = True,
) -> pd.DataFrame:
    """Metrics within the levels of subgroup variables, in long format.

    Each level of each variable is evaluated on its own patients. A level with fewer than
    ``min_events`` bone metastasis events (at any time) gets NaN values with its counts, since
    discrimination and calibration are not estimable from a handful of events. A metric
    undefined in a level (ValueError, e.g. no comparable pairs) is NaN with the reason in
    ``note``. Missing labels (None/NaN) belong to no level.

    Parameters
    ----------
    y : numpy.ndarray
        Structured target.
    risk : numpy.ndarray
        Risk scores (higher = bone metastasis sooner).
    p_by_horizon : mapping
        Predicted cumulative incidence of bone metastasis by horizon (months), one value per
        patient each.
    groups : mapping
        Subgroup variable name to an array of level labels, one per patient.
    metric_fns : mapping, optional
        Metric name to ``fn(y, risk, p_by_horizon) -> float``; default
        :func:`default_metric_fns` over the keys of ``p_by_horizon``.
    min_events : int, default=5
        Fewest bone metastasis events for a level to be evaluated.
    include_overall : bool, default=True
        Prepend the whole sample as variable ``all``, level ``all``.

    Returns
    -------
    pandas.DataFrame
        Columns ``variable, level, n, events, metric, value, note``.
    """
    y = check_y(y)
    n = y.shape[0]
    risk = np.asarray(risk, dtype=float)
    if risk.shape != (n,):
        raise ValueError(f"risk must have one value per patient: shape {risk.shape}, n={n}")
    p_by_horizon = {h: check_prob(p, n, f"p_by_horizon[{h}]") for h, p in p_by_horizon.items()}
    fns = default_metric_fns(list(p_by_horizon)) if metric_fns is None else dict(metric_fns)

    subsets: list[tuple[str, Any, np.ndarray]] = []
    if include_overall:
        subsets.append(("all", "all", np.ones(n, dtype=bool)))
    for variable, labels in groups.items():
        labels = pd.Series(np.asarray(labels, dtype=object))
        if labels.shape[0] != n:
            raise ValueError(f"groups[{variable!r}] has {labels.shape[0]} labels for {n} patients")
        present = labels.notna().to_numpy()
        for level in sorted(pd.unique(labels[present]), key=str):
            subsets.append((variable, level, present & (labels == level).to_numpy()))

    rows = []
    for variable, level, member in subsets:
        ys = y[member]
        events = int(np.sum(ys["cause"] == BONE_METASTASIS))
        base = {"variable": variable, "level": level, "n": int(member.sum()), "events": events}
        for name, fn in fns.items():
            value, note = float("nan"), ""
            if events < min_events:
                note = f"fewer than {min_events} bone metastasis events"
            else:
                try:
                    value = float(
                        fn(ys, risk[member], {h: p[member] for h, p in p_by_horizon.items()})
                    )
                except ValueError as err:
                    note = str(err)
            rows.append({**base, "metric": name, "value": value, "note": note})
    return pd.DataFrame(
        rows, columns=["variable", "level", "n", "events", "metric", "value", "note"]
    )

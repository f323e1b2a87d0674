"""Pool a per-group table (:func:`training.validation.groups.group_metrics`) across groups.

The C-index is pooled on the logit scale and each O/E ratio on the log scale
(:func:`training.validation.meta.random_effects`), then every bound is transformed back. A group
whose estimate or variance is undefined (no event, one patient, follow-up too short) is left
out of that pooling and named in ``excluded``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.special import expit

from training.validation.groups import VALIDATION_HORIZONS
from training.validation.meta import random_effects

__all__ = ["POOLED_METRICS", "pool_table"]

#: Pooled metric -> (column of the estimate, column of its variance, back-transform, scale).
POOLED_METRICS: dict[str, tuple[str, str, object, str]] = {
    "c_index": ("logit_c_index", "logit_c_index_var", expit, "logit"),
    **{
        f"oe_ratio_{h}m": (f"log_oe_ratio_{h}m", f"log_oe_ratio_{h}m_var", np.exp, "log")
        for h in VALIDATION_HORIZONS
    },
}

_BOUNDS = ("estimate", "ci_low", "ci_high", "pi_low", "pi_high")


def pool_table(
    table: pd.DataFrame,
    by: str,
    *,
    method: str = "REML",
    hartung_knapp: bool = True,
    level: float = 0.95,
    metrics: Sequence[str] = tuple(POOLED_METRICS),
) -> dict[str, dict[str, object]]:
    """Random-effects summaries of each metric over the groups of ``table``.

    Returns
    -------
    dict
        Metric name -> ``scale``, the analysis-scale summary (``Pooled.as_dict()``), the same
        bounds back on the metric's own scale (``estimate``, ``ci_low``, ``ci_high``, ``pi_low``,
        ``pi_high``), ``groups`` pooled and ``excluded`` (with why). A metric no group can
        contribute to has ``estimate`` None and a ``note``.
    """
    out: dict[str, dict[str, object]] = {}
    for name in metrics:
        col, var, back, scale = POOLED_METRICS[name]
        if col not in table:
            continue
        y = table[col].to_numpy(dtype=float)
        v = table[var].to_numpy(dtype=float)
        ok = np.isfinite(y) & np.isfinite(v) & (v > 0)
        labels = table[by].astype(str).to_numpy()
        entry: dict[str, object] = {
            "scale": scale,
            "groups": labels[ok].tolist(),
            "excluded": [
                {by: str(g), "why": "estimate or its variance undefined (see by_site note)"}
                for g in labels[~ok]
            ],
        }
        if not ok.any():
            entry.update(estimate=None, note="no group has a defined estimate and variance")
            out[name] = entry
            continue
        pooled = random_effects(y[ok], v[ok], method=method, hartung_knapp=hartung_knapp,
                                level=level)
        entry["analysis_scale"] = pooled.as_dict()
        for bound in _BOUNDS:
            value = getattr(pooled, bound)
            entry[bound] = float(back(value)) if math.isfinite(value) else None
        for key in ("tau2", "i2_percent", "k", "method", "hartung_knapp", "level", "note"):
            entry[key] = pooled.as_dict()[key]
        out[name] = entry
    return out

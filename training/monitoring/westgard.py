"""Levey-Jennings charts and Westgard rules on control-material results (the ``qc`` table).

A *series* is one control level on one instrument of one lab, in date order (rows of the same
date keep the table's order). Its mean and SD are the table's ``target_mean``/``target_sd``
when given (the first non-empty of the series), otherwise those of its first
:data:`~training.monitoring.rules.QC_BASELINE_RESULTS` results, which are then not checked.
Each later result is the z score ``(value - mean) / SD`` and the rules (Westgard, Barry, Hunt,
Groth 1981) are, on consecutive results of the series:

* ``1-3s``: one result beyond 3 SD;
* ``2-2s``: two consecutive beyond 2 SD on the same side;
* ``R-4s``: within one run (same lab, instrument and date), one level above +2 SD and another
  below -2 SD;
* ``4-1s``: four consecutive beyond 1 SD on the same side;
* ``10x``: ten consecutive on the same side of the mean.

Consecutive results are counted within one lot (a new lot restarts the count), so a violation
belongs to one lot; it is reported with the date of the first result of its window (the day it
began).

Reference: Westgard JO, Barry PL, Hunt MR, Groth T (1981). A multi-rule Shewhart chart for
quality control in clinical chemistry. Clin Chem 27:493-501.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.monitoring.groups import iso
from training.monitoring.rules import QC_BASELINE_RESULTS

__all__ = ["SERIES", "WESTGARD_RULES", "series_targets", "westgard"]

SERIES = ("lab_id", "instrument_id", "control_level")
#: (name, window length, limit in SD): a rule fires when ``window`` consecutive z scores of
#: one sign all lie beyond ``limit`` (R-4s is within a run: see :func:`westgard`).
WESTGARD_RULES: tuple[tuple[str, int, float], ...] = (
    ("1-3s", 1, 3.0),
    ("2-2s", 2, 2.0),
    ("4-1s", 4, 1.0),
    ("10x", 10, 0.0),
)


def series_targets(qc: pd.DataFrame) -> pd.DataFrame:
    """``qc`` in series and date order with ``mean``, ``sd``, ``z``, ``baseline`` (a result
    that set the target) and ``target`` (``given`` or ``first N results``); series that cannot
    set a target have NaN z and a ``note``."""
    qc = qc.sort_values([*SERIES, "date"], kind="stable").reset_index(drop=True)
    parts = []
    for _, s in qc.groupby(list(SERIES), sort=False):
        s = s.copy()
        given_mean = s["target_mean"].dropna()
        given_sd = s["target_sd"].dropna()
        s["baseline"] = False
        s["note"] = None
        if len(given_mean) and len(given_sd):
            mean, sd, how = float(given_mean.iloc[0]), float(given_sd.iloc[0]), "given"
        elif len(s) > QC_BASELINE_RESULTS:
            base = s["value"].to_numpy()[:QC_BASELINE_RESULTS]
            mean, sd = float(np.mean(base)), float(np.std(base, ddof=1))
            how = f"first {QC_BASELINE_RESULTS} results"
            s.iloc[:QC_BASELINE_RESULTS, s.columns.get_loc("baseline")] = True
        else:
            mean, sd, how = np.nan, np.nan, None
            s["note"] = (
                f"{len(s)} results and no target_mean/target_sd: more than "
                f"{QC_BASELINE_RESULTS} are needed to set the mean and SD"
            )
        s["mean"], s["sd"], s["target"] = mean, sd, how
        s["z"] = (s["value"] - mean) / sd if sd and sd > 0 else np.nan
        parts.append(s)
    return pd.concat(parts, ignore_index=True)


def westgard(qc: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """Apply the rules to a typed ``qc`` table (:func:`training.monitoring.inputs.check_qc`).

    Returns
    -------
    chart : pandas.DataFrame
        :func:`series_targets` plus ``rules`` (the rules each result completed, ``;``-joined).
    violations : list of dict
        One per (series, lot, rule): ``lab_id, instrument_id, reagent_lot, control_level,
        rule, began`` (ISO date of the first result of the first violating window),
        ``last`` (date of the last violating result), ``count`` (results completing it).
    """
    chart = series_targets(qc)
    fired: list[list[str]] = [[] for _ in range(len(chart))]
    starts: dict[tuple[int, str], int] = {}
    checked = ~chart["baseline"].to_numpy() & np.isfinite(chart["z"].to_numpy())
    # Consecutive results are counted within one lot: a lot change restarts the count (a
    # violation is then charged to the lot whose results made it).
    for _, s in chart.groupby([*SERIES, "reagent_lot"], sort=False):
        idx = s.index.to_numpy()[checked[s.index.to_numpy()]]
        z = chart.loc[idx, "z"].to_numpy()
        for name, window, limit in WESTGARD_RULES:
            for sign in (1.0, -1.0):
                beyond = sign * z > limit
                run = 0
                for j, b in enumerate(beyond):
                    run = run + 1 if b else 0
                    if run >= window:
                        fired[idx[j]].append(name)
                        starts[(idx[j], name)] = idx[j - window + 1]
    # R-4s: within a run (lab, instrument, date) across control levels.
    ok = chart.loc[checked]
    for _, run in ok.groupby(["lab_id", "instrument_id", "date"], sort=False):
        if len(run) >= 2 and run["z"].max() > 2.0 and run["z"].min() < -2.0:
            last = int(run.index.max())
            fired[last].append("R-4s")
            starts[(last, "R-4s")] = int(run.index.min())
    chart["rules"] = [";".join(sorted(set(f))) for f in fired]
    found: dict[tuple, dict] = {}
    for (i, name), start in sorted(starts.items()):
        r = chart.loc[i]
        key = (r["lab_id"], r["instrument_id"], r["reagent_lot"], r["control_level"], name)
        entry = found.setdefault(
            key,
            dict(
                zip(
                    ("lab_id", "instrument_id", "reagent_lot", "control_level", "rule"),
                    key,
                    strict=True,
                ),
                began=iso(chart.loc[start, "date"]),
                count=0,
            ),
        )
        entry["count"] += 1
        entry["last"] = iso(r["date"])
    violations = sorted(found.values(), key=lambda v: (v["began"] or "", v["lab_id"], v["rule"]))
    return chart, violations

"""A group's values against its reference, corrected for the number of groups, and the day
a shift began.

Tests: the two-sided Mann-Whitney rank-sum test (location shift of a distribution; a
multiplicative shift of the marker is a location shift of its log, and ranks ignore how zeros
are logged) and Fisher's exact test (a share larger than the reference's). Holm's (1979)
step-down correction keeps the family-wise false-alarm rate over the groups of one check at
``alpha``. The onset of a flagged shift is the change point of the group's
standardised values in date order: the maximum-likelihood change point of a mean that was the
reference's before (Hinkley 1970).

References
----------
Holm S (1979). A simple sequentially rejective multiple test procedure. Scand J Stat 6:65-70.
Hinkley DV (1970). Inference about the change-point in a sequence of random variables.
Biometrika 57:1-17.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact, mannwhitneyu

from training.monitoring.rules import MIN_GROUP_DRAWS

__all__ = ["holm", "compare_groups", "onset_index", "iso"]


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p values (same order as given)."""
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def iso(day) -> str | None:
    """A date (numpy or pandas) as ``YYYY-MM-DD`` (None for NaT or None)."""
    if day is None or pd.isna(day):
        return None
    return str(np.datetime64(pd.Timestamp(day).date(), "D"))


def onset_index(values: np.ndarray, center: float, scale: float, direction: float) -> int:
    """Index (in the given order) where a shift of ``values`` away from ``center`` began.

    The maximum-likelihood change point of a normal mean that is ``center`` before and
    unknown after (in the shift's direction ``d``): with ``z = d (x - center) / scale`` and
    ``S_k = sum_{j >= k} z_j``, the ``k`` maximising ``S_k^2 / (n - k)`` among ``S_k > 0``
    (Hinkley 1970).
    """
    z = direction * (np.asarray(values, dtype=float) - center) / (scale if scale > 0 else 1.0)
    if z.size == 0:
        return 0
    tail = np.cumsum(z[::-1])[::-1]
    stat = np.where(tail > 0, tail**2 / (z.size - np.arange(z.size)), -np.inf)
    return int(np.argmax(stat))


def _reference_rows(
    reference: pd.DataFrame, key: dict[str, object], match: Sequence[str], min_n: int
) -> tuple[pd.DataFrame, str]:
    """The reference rows matching ``key`` on the ``match`` columns (most specific with at
    least ``min_n`` rows), or all of them, and words saying which."""
    for depth in range(len(match), 0, -1):
        cols = list(match[:depth])
        mask = np.ones(len(reference), dtype=bool)
        for c in cols:
            mask &= reference[c].to_numpy(dtype=object) == key[c]
        if mask.sum() >= min_n:
            return reference.loc[mask], ", ".join(f"{c} {key[c]}" for c in cols)
    return reference, "all reference rows (none of this group's with enough rows)"


def compare_groups(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    value: str,
    by: Sequence[str],
    match: Sequence[str],
    kind: str,
    alpha: float,
    min_n: int = MIN_GROUP_DRAWS,
    date: str | None = "date",
) -> list[dict]:
    """Test each group of ``current`` (by the ``by`` columns) against its reference.

    Parameters
    ----------
    current, reference : pandas.DataFrame
        Rows with the ``by`` columns, ``value`` and (optionally) ``date``.
    value : str
        Column tested: numbers for ``kind="rank"``, 0/1 for ``kind="more"``.
    by : sequence of str
        Columns defining a group.
    match : sequence of str
        Columns (in order of preference) on which a group's reference rows must agree with the
        group, e.g. ``["lab_id", "instrument_id"]``: the most specific with ``min_n`` rows.
    kind : {"rank", "more"}
        Two-sided Mann-Whitney test, or one-sided Fisher test of a larger share.
    alpha : float
        Family-wise false-alarm rate over the groups (Holm).
    min_n : int
        Groups with fewer current rows are reported, not tested.
    date : str or None
        Column of dates (datetime64[D]) for the onset of a flagged shift.

    Returns
    -------
    list of dict
        One per group: the ``by`` values, ``n``, ``n_reference``, ``reference``, ``current``
        and ``reference_value`` (medians, or shares), ``p_value``, ``p_adjusted``, ``alarm``,
        ``began`` (ISO date, flagged groups with dates), ``began_draw`` (index in date order).
    """
    if kind not in ("rank", "more"):
        raise ValueError(f"kind must be 'rank' or 'more', got {kind!r}")
    rows: list[dict] = []
    tested: list[int] = []
    cur = current.loc[current[value].notna()]
    ref_all = reference.loc[reference[value].notna()]
    if cur.empty:
        return rows
    for key_values, group in cur.groupby(list(by), sort=True, dropna=False):
        key_values = key_values if isinstance(key_values, tuple) else (key_values,)
        key = dict(zip(by, key_values, strict=True))
        ref, scope = _reference_rows(ref_all, key, [c for c in match if c in by], min_n)
        x = group[value].to_numpy(dtype=float)
        r = ref[value].to_numpy(dtype=float)
        row = {**key, "n": int(x.size), "n_reference": int(r.size), "reference": scope}
        if kind == "rank":
            row.update(
                current_value=float(np.median(x)),
                reference_value=float(np.median(r)) if r.size else None,
            )
        else:
            row.update(
                current_value=float(np.mean(x)),
                reference_value=float(np.mean(r)) if r.size else None,
            )
        row.update(p_value=None, p_adjusted=None, alarm=False, began=None, began_draw=None)
        if x.size < min_n or r.size < min_n:
            row["note"] = f"too few to test (fewer than {min_n} current or reference rows)"
        elif kind == "rank":
            if np.ptp(np.concatenate([x, r])) == 0:
                row["p_value"] = 1.0
            else:
                row["p_value"] = float(mannwhitneyu(x, r, alternative="two-sided").pvalue)
            tested.append(len(rows))
        else:
            table = [[int(x.sum()), int(x.size - x.sum())], [int(r.sum()), int(r.size - r.sum())]]
            row["p_value"] = float(fisher_exact(table, alternative="greater").pvalue)
            tested.append(len(rows))
        row["_values"], row["_ref"] = x, r
        row["_dates"] = group[date].to_numpy() if date and date in group else None
        rows.append(row)
    adjusted = holm([rows[i]["p_value"] for i in tested])
    for i, p_adj in zip(tested, adjusted, strict=True):
        rows[i]["p_adjusted"] = float(p_adj)
        rows[i]["alarm"] = bool(p_adj < alpha)
    for row in rows:
        x, r, dates = row.pop("_values"), row.pop("_ref"), row.pop("_dates")
        if not row["alarm"] or dates is None or np.isnat(dates).all():
            continue
        center = float(np.median(r)) if kind == "rank" else float(np.mean(r))
        scale = (
            float(np.std(r)) if kind == "rank" else float(np.sqrt(max(center * (1 - center), 1e-9)))
        )
        direction = 1.0 if (np.median(x) if kind == "rank" else np.mean(x)) >= center else -1.0
        j = onset_index(x, center, scale, direction)
        row["began_draw"] = j
        row["began"] = iso(dates[j])
    return rows

"""Choosing the challenger among a training run's candidates: the one-standard-error rule on
paired out-of-fold losses, and the reasons in words (``docs/modeling.md``, "Registry, selection
and promotion")."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from training.evaluation.names import lower_is_better
from training.models.names import SIMPLEST_FIRST
from training.tracking.gates import Gate, PromotionPolicy, check_gates
from training.tracking.registry import CHALLENGER, RegistryError, set_alias


@dataclass(frozen=True)
class Selection:
    """The challenger chosen among a run's candidates, and why, in words.

    ``chosen`` and ``lowest`` are candidates (``version``, ``family``, ``metrics``);
    ``reasons`` are the sentences ``bonemet train`` prints: the rule, why this version and,
    when it is not the lowest score, why not that one.
    """

    chosen: Any
    lowest: Any
    reasons: tuple[str, ...]

    @property
    def version(self) -> str:
        return self.chosen.version


#: The rule of :func:`select`, as ``bonemet train`` prints it.
SELECTION_RULE = (
    "rule: among the candidates whose calibration is not refused by the gates, the simplest "
    "family whose {metric} is within one paired standard error of the lowest (the "
    "per-patient differences of the same out-of-fold predictions, same folds for every family)"
)


def paired_se(difference: np.ndarray, groups: np.ndarray | None = None) -> float:
    """Standard error of the mean of per-row ``difference`` (a paired comparison).

    Rows of one patient (``groups``: a landmark dataset has one row per landmark) are summed
    into one independent term (the cluster-robust standard error of a mean).
    """
    d = np.asarray(difference, dtype=float)
    n = d.size
    if n < 2:
        return float("nan")
    if groups is not None and len(np.unique(groups)) < n:
        centred = pd.Series(d - d.mean()).groupby(np.asarray(groups)).sum().to_numpy()
        g = centred.size
        return float(np.sqrt(g / (g - 1) * np.sum(centred**2)) / n) if g > 1 else float("nan")
    return float(d.std(ddof=1) / np.sqrt(n))


def _simplicity(c) -> int:
    family = getattr(c, "family", "")
    return SIMPLEST_FIRST.index(family) if family in SIMPLEST_FIRST else len(SIMPLEST_FIRST)


def _family(c) -> str:
    return f"version {c.version} ({getattr(c, 'family', '') or 'unknown family'})"


def select(
    candidates: Sequence,
    selection_metric: str,
    policy: PromotionPolicy | None = None,
    losses: Mapping[str, np.ndarray] | None = None,
    groups: np.ndarray | None = None,
) -> Selection:
    """The challenger by the one-standard-error rule, and the reasons in words.

    1. Candidates whose calibration gates (:func:`check_gates` without a champion, on their
       recorded estimates and intervals) refuse them are left out, unless all are.
    2. The lowest ``selection_metric`` among the others (highest for a higher-is-better one).
    3. With per-row out-of-fold ``losses`` by version (the terms of the selection score on the
       same rows for every candidate: :func:`training.fitting.family_run.brier_losses`), each
       candidate's paired difference from the lowest and its standard error
       (:func:`paired_se`); the simplest family (:data:`SIMPLEST_FIRST`) whose difference is at
       most one standard error is chosen: a lower score by less than its noise is not evidence
       that the more complex family predicts better. Without losses, the lowest is chosen.
    Ties keep the first listed.
    """
    policy = policy or PromotionPolicy()
    scored = [c for c in candidates if math.isfinite(c.metrics.get(selection_metric, math.nan))]
    if not scored:
        raise RegistryError(f"no candidate has a finite {selection_metric}")
    reasons = [SELECTION_RULE.format(metric=selection_metric)]

    def refusal(c) -> list[Gate]:
        tags = {k: str(v) for k, v in c.metrics.items()}
        return [g for g in check_gates(tags, None, policy) if g.name != "discrimination"]

    refused = {c.version: [g for g in refusal(c) if not g.passed] for c in scored}
    pool = [c for c in scored if not refused[c.version]] or scored
    if len(pool) < len(scored):
        for c in scored:
            if refused[c.version]:
                names = ", ".join(g.name for g in refused[c.version])
                reasons.append(
                    f"left out: {_family(c)}, refused by its calibration gates ({names})"
                )
    elif any(refused.values()):
        reasons.append("every candidate fails a calibration gate: all are compared")
    sign = 1.0 if lower_is_better(selection_metric) else -1.0
    lowest = min(pool, key=lambda c: sign * c.metrics[selection_metric])
    score = lowest.metrics[selection_metric]
    usable = (
        losses is not None
        and sign > 0
        and all(c.version in losses for c in pool)
    )
    if not usable:
        reasons.append(f"{_family(lowest)} has the lowest {selection_metric} ({score:.4f})")
        return Selection(lowest, lowest, tuple(reasons))
    base = np.asarray(losses[lowest.version], dtype=float)
    gaps = {}
    for c in pool:
        d = np.asarray(losses[c.version], dtype=float) - base
        gaps[c.version] = (c.metrics[selection_metric] - score, paired_se(d, groups))
    within = [
        c
        for c in pool
        if c is lowest or gaps[c.version][0] <= gaps[c.version][1]  # NaN SE: never within
    ]
    chosen = min(within, key=_simplicity)
    simpler = [c for c in pool if _simplicity(c) < _simplicity(chosen)]
    if chosen is lowest:
        text = f"{_family(chosen)} has the lowest {selection_metric} ({score:.4f})"
        if simpler:
            worse = "; ".join(
                f"{_family(c)} +{gaps[c.version][0]:.4f} (SE {gaps[c.version][1]:.4f})"
                for c in sorted(simpler, key=_simplicity)
            )
            text += f" and every simpler family is worse by more than its paired SE: {worse}"
        reasons.append(text)
    else:
        gap, se = gaps[chosen.version]
        reasons.append(
            f"{_family(chosen)}: {selection_metric} {chosen.metrics[selection_metric]:.4f}, "
            f"within noise of the lowest and the simplest such family"
        )
        reasons.append(
            f"not {_family(lowest)}, the lowest ({score:.4f}): it is lower by {gap:.4f}, no more "
            f"than the paired standard error of the difference ({se:.4f}), so the data do not "
            "show that it predicts better"
        )
    return Selection(chosen, lowest, tuple(reasons))


def choose_challenger(
    candidates: Sequence,
    selection_metric: str,
    policy: PromotionPolicy | None = None,
    losses: Mapping[str, np.ndarray] | None = None,
    groups: np.ndarray | None = None,
) -> Selection:
    """Set ``challenger`` on :func:`select`'s choice and return the selection."""
    chosen = select(candidates, selection_metric, policy, losses, groups)
    set_alias(CHALLENGER, chosen.version)
    return chosen


def select_challenger(
    candidates: Sequence,
    selection_metric: str,
    policy: PromotionPolicy | None = None,
    losses: Mapping[str, np.ndarray] | None = None,
    groups: np.ndarray | None = None,
):
    """The candidate :func:`select` chooses (each candidate has ``metrics`` and ``version``)."""
    return select(candidates, selection_metric, policy, losses, groups).chosen

"""Choosing the challenger among a training run's candidates: the one-standard-error rule on
paired out-of-fold losses, and the reasons in words (``docs/modeling.md``, "Registry, selection
and promotion")."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from training.evaluation.names import lower_is_better
from training.evaluation.recalibration import paired_se
from training.models.names import SIMPLEST_FIRST
from training.registry.gates import Gate, PromotionPolicy, check_gates
from training.registry.versions import CHALLENGER, RegistryError, set_alias


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
    "rule: among the families whose {metric} (a proper score of the served probability, "
    "calibration included) is within one paired standard error of the lowest (the per-patient "
    "differences of the same out-of-fold predictions, same folds for every family), the "
    "simplest whose calibration gates pass on their intervals, or the simplest if none passes"
)


def _simplicity(c) -> int:
    family = getattr(c, "family", "")
    return SIMPLEST_FIRST.index(family) if family in SIMPLEST_FIRST else len(SIMPLEST_FIRST)


def _family(c) -> str:
    return f"version {c.version} ({getattr(c, 'family', '') or 'unknown family'})"


def _refused(c, policy: PromotionPolicy) -> list[Gate]:
    """The calibration gates (no champion) that refuse ``c`` on its recorded estimates and
    intervals."""
    tags = {k: str(v) for k, v in c.metrics.items()}
    return [
        g for g in check_gates(tags, None, policy) if g.name != "discrimination" and not g.passed
    ]


def select(
    candidates: Sequence,
    selection_metric: str,
    policy: PromotionPolicy | None = None,
    losses: Mapping[str, np.ndarray] | None = None,
    groups: np.ndarray | None = None,
) -> Selection:
    """The challenger by the one-standard-error rule, and the reasons in words.

    1. The lowest ``selection_metric`` among the candidates (highest for a higher-is-better
       one).
    2. With per-row out-of-fold ``losses`` by version (the terms of the selection score on the
       same rows for every candidate: :func:`training.fitting.family_run.brier_losses`), each
       candidate's paired difference from the lowest and its standard error
       (:func:`paired_se`); the simplest family (:data:`SIMPLEST_FIRST`) whose difference is at
       most one standard error is chosen: a lower score by less than its noise is not evidence
       that the more complex family predicts better. Without losses, the lowest is chosen.
    3. Calibration breaks ties within the noise, never more: among the candidates within one
       standard error of the lowest, the simplest whose calibration gates (:func:`check_gates`
       without a champion, on their estimates and intervals, as ``promote`` judges them) pass;
       the simplest of them all when none passes. Calibration is not a filter before the
       comparison: the Brier score already weighs it, and the out-of-fold calibration slope
       judges fold models fitted on two thirds of the patients, more overfitted than the
       registered one (as a filter it left out the families closest to the truth,
       ``docs/benchmarks.md``). The reasons say whether the chosen version's gates pass.
    Ties keep the first listed.
    """
    policy = policy or PromotionPolicy()
    pool = [c for c in candidates if math.isfinite(c.metrics.get(selection_metric, math.nan))]
    if not pool:
        raise RegistryError(f"no candidate has a finite {selection_metric}")
    reasons = [SELECTION_RULE.format(metric=selection_metric)]
    recalibrated = [c for c in pool if c.metrics.get("recalibration_applied", 0.0) == 1.0]
    if recalibrated:
        reasons.append(
            "recalibrated (logit p' = a + b logit p, fitted on out-of-fold predictions, adopted "
            "where the cross-fitted recalibration lowers the Brier score by more than its paired "
            "SE; scores and gates read the cross-fitted predictions): "
            + "; ".join(
                f"{_family(c)} a {c.metrics.get('recalibration_intercept', math.nan):+.2f}, "
                f"b {c.metrics.get('recalibration_slope', math.nan):.2f}, "
                f"-{c.metrics.get('recalibration_brier_gain', math.nan):.4f} "
                f"(SE {c.metrics.get('recalibration_brier_gain_se', math.nan):.4f})"
                for c in recalibrated
            )
        )
    sign = 1.0 if lower_is_better(selection_metric) else -1.0
    lowest = min(pool, key=lambda c: sign * c.metrics[selection_metric])
    score = lowest.metrics[selection_metric]
    usable = losses is not None and sign > 0 and all(c.version in losses for c in pool)
    if not usable:
        reasons.append(f"{_family(lowest)} has the lowest {selection_metric} ({score:.4f})")
        reasons += _gate_reasons(lowest, [lowest], policy)
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
    # Among the candidates the score cannot tell apart, those whose calibration the gates do
    # not refute come first; then the simplest.
    calibrated = [c for c in within if not _refused(c, policy)]
    chosen = min(calibrated or within, key=_simplicity)
    simplest = min(within, key=_simplicity)
    simpler = [c for c in pool if _simplicity(c) < _simplicity(chosen)]
    if chosen is not simplest:
        names = ", ".join(g.name for g in _refused(simplest, policy))
        reasons.append(
            f"not {_family(simplest)}, the simplest within one paired SE of the lowest: its "
            f"calibration gates refuse it ({names}), and {_family(chosen)} is the simplest "
            "within that noise whose gates pass"
        )
    if chosen is lowest:
        text = f"{_family(chosen)} has the lowest {selection_metric} ({score:.4f})"
        if simpler and chosen is simplest:
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
            "within noise of the lowest and the simplest such family"
            + ("" if chosen is simplest else " whose calibration gates pass")
        )
        reasons.append(
            f"not {_family(lowest)}, the lowest ({score:.4f}): it is lower by {gap:.4f}, no more "
            f"than the paired standard error of the difference ({se:.4f}), so the data do not "
            "show that it predicts better"
        )
    reasons += _gate_reasons(chosen, sorted(within, key=_simplicity), policy)
    return Selection(chosen, lowest, tuple(reasons))


def _gate_reasons(chosen, within: Sequence, policy: PromotionPolicy) -> list[str]:
    """Whether ``promote`` will pass the chosen version's calibration, in words; when not,
    the simplest candidate among ``within`` (no worse beyond noise) that passes."""
    refused = _refused(chosen, policy)
    if not refused:
        return [f"{_family(chosen)}: every calibration gate passes on its intervals"]
    names = ", ".join(g.name for g in refused)
    text = (
        f"{_family(chosen)}: its calibration gates refuse it ({names}); `promote` will refuse "
        "it without --force"
    )
    return [text + "; no candidate within one paired SE of the lowest score passes them"]


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

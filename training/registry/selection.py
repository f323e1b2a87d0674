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
from training.models.names import SIMPLEST_FIRST, STACK_FAMILY
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


#: The rules :func:`select` knows: the run's stack as one more candidate of the simplest-first
#: rule, the most complex (the default, chosen by measurement: ``docs/modeling.md``), or the stack
#: chosen where no family is clearly best.
STACK_AS_CANDIDATE = "stack_as_candidate"
STACK_WHEN_TIED = "stack_when_tied"
RULES = (STACK_AS_CANDIDATE, STACK_WHEN_TIED)

#: The rule of :func:`select` (the default), as ``bonemet train`` prints it.
SELECTION_RULE = (
    "rule: among the versions whose {metric} (a proper score of the served probability, "
    "calibration included) is within one paired standard error of the lowest (the per-patient "
    "differences of the same out-of-fold predictions, same folds for every version), the "
    "simplest whose calibration gates pass on their intervals, or the simplest if none passes; "
    "the stack of the families (their out-of-fold predictions combined with simplex weights, "
    "cross-fitted) is a candidate like them, the most complex: chosen when every family is "
    "worse than it beyond noise, or when it is the simplest candidate within noise whose "
    "calibration gates pass"
)
_TIED_RULE = (
    "rule: among the families whose {metric} (a proper score of the served probability, "
    "calibration included) is within one paired standard error of the lowest (the per-patient "
    "differences of the same out-of-fold predictions, same folds for every family), the "
    "simplest whose calibration gates pass on their intervals, or the simplest if none passes; "
    "but the stack of the families (their out-of-fold predictions combined with simplex "
    "weights, cross-fitted) when two families or more are within that noise (no family clearly "
    "best), when it is lower than the lowest family by more than its paired SE, or when the "
    "family chosen fails its calibration gates, provided the stack's own {metric} is not worse "
    "than the lowest family's by more than its paired SE and its calibration gates pass"
)


def rule_text(metric: str, rule: str = STACK_AS_CANDIDATE) -> str:
    """The rule of :func:`select` in words, as ``bonemet train`` prints it."""
    return (SELECTION_RULE if rule == STACK_AS_CANDIDATE else _TIED_RULE).format(metric=metric)


def _is_stack(c) -> bool:
    return getattr(c, "family", "") == STACK_FAMILY


def _members(c) -> str:
    """The stack's members and weights from its metrics (``stack_weight_<family>``)."""
    found = sorted(
        ((k.removeprefix("stack_weight_"), v) for k, v in c.metrics.items()
         if k.startswith("stack_weight_") and v >= 0.001),
        key=lambda kv: -kv[1],
    )  # fmt: skip
    return ", ".join(f"{f} {w:.2f}" for f, w in found)


def _simplicity(c) -> int:
    family = getattr(c, "family", "")
    return SIMPLEST_FIRST.index(family) if family in SIMPLEST_FIRST else len(SIMPLEST_FIRST)


def _family(c) -> str:
    text = f"version {c.version} ({getattr(c, 'family', '') or 'unknown family'}"
    if _is_stack(c) and _members(c):
        text += f": {_members(c)}"
    return text + ")"


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
    rule: str = STACK_AS_CANDIDATE,
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
    4. The run's stack (family :data:`STACK_FAMILY`, :mod:`training.fitting.stack`), by
       ``rule``. :data:`STACK_AS_CANDIDATE` (the default): the stack is one more candidate of
       steps 1-3, the most complex: chosen when every family is worse than it beyond noise, or
       when it is the simplest candidate within noise whose calibration gates pass.
       :data:`STACK_WHEN_TIED`: steps 1-3 among the single families; the stack instead when
       no family is clearly best (two or more within one paired SE of the lowest), when it
       is lower than the lowest family by more than its paired SE, or when the family chosen
       fails its calibration gates, provided it is not worse than the lowest family by more
       than its paired SE and its gates pass. ``docs/modeling.md`` says why the default, and
       ``docs/benchmarks.md`` what each rule did on the truth benchmark and GBSG2.
    Ties keep the first listed.
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    policy = policy or PromotionPolicy()
    pool = [c for c in candidates if math.isfinite(c.metrics.get(selection_metric, math.nan))]
    if not pool:
        raise RegistryError(f"no candidate has a finite {selection_metric}")
    reasons = [rule_text(selection_metric, rule)]
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
    stack = next((c for c in pool if _is_stack(c)), None)
    if rule == STACK_WHEN_TIED and stack is not None and len(pool) > 1:
        pool = [c for c in pool if c is not stack]  # the families first (steps 1-3)
    else:
        stack = None
    lowest = min(pool, key=lambda c: sign * c.metrics[selection_metric])
    score = lowest.metrics[selection_metric]
    usable = losses is not None and sign > 0 and all(c.version in losses for c in pool)
    usable = usable and (stack is None or stack.version in losses)
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
    if stack is not None:
        d = np.asarray(losses[stack.version], dtype=float) - base
        gap, se = stack.metrics[selection_metric] - score, paired_se(d, groups)
        tied = len(within) > 1
        # NaN SE: the stack is never taken; within noise, calibration breaks the tie with it too
        reason = tied or gap < -se or bool(_refused(chosen, policy))
        if reason and gap <= se and not _refused(stack, policy):
            reasons += _stack_reasons(
                stack, lowest, chosen, within, (gap, se), gaps, selection_metric
            )
            if _refused(chosen, policy):
                names = ", ".join(g.name for g in _refused(chosen, policy))
                reasons.append(
                    f"not {_family(chosen)}, the family the rule would take: its calibration "
                    f"gates refuse it ({names}), and the stack, within noise, passes them"
                )
            reasons += _gate_reasons(stack, [stack], policy)
            return Selection(stack, lowest, tuple(reasons))
        reasons.append(_stack_not_reason(stack, tied, (gap, se), _refused(stack, policy)))
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
            + (
                f"; and its calibration gates refuse it "
                f"({', '.join(g.name for g in _refused(lowest, policy))})"
                if _refused(lowest, policy)
                else ""
            )
        )
    candidate_stack = next((c for c in pool if _is_stack(c)), None)
    if candidate_stack is not None and candidate_stack not in (chosen, lowest):
        # (the lowest's line above already says why not the stack when it is the lowest)
        reasons.append(_stack_as_candidate_not(candidate_stack, chosen, gaps, policy))
    reasons += _gate_reasons(chosen, sorted(within, key=_simplicity), policy)
    return Selection(chosen, lowest, tuple(reasons))


def _stack_as_candidate_not(stack, chosen, gaps, policy: PromotionPolicy) -> str:
    """Why the stack, one more candidate, was not chosen (rule :data:`STACK_AS_CANDIDATE`)."""
    gap, se = gaps[stack.version]
    refused = _refused(stack, policy)
    if not gap <= se:  # NaN SE: never within
        why = f"it is worse than the lowest by {gap:+.4f}, more than its paired SE {se:.4f}"
    elif refused:
        why = f"its calibration gates refuse it ({', '.join(g.name for g in refused)})"
    else:
        why = (
            f"it is within noise of the lowest ({gap:+.4f}, SE {se:.4f}) but the most complex: "
            f"{_family(chosen)} is simpler and the data do not show that the combination "
            "predicts better"
        )
    return f"not {_family(stack)}, the stack of the families: {why}"


def _stack_reasons(stack, lowest, single, within, stack_gap, gaps, metric: str) -> list[str]:
    """Why the stack, and why not the lowest family nor the simplest within noise, in words."""
    gap, se = stack_gap
    out = [
        f"{_family(stack)}: {metric} "
        f"{stack.metrics[metric]:.4f}, {gap:+.4f} from the lowest family (paired SE {se:.4f}): "
        + ("lower beyond noise" if gap < -se else "not worse beyond noise")
        + (
            f", and no family is clearly best: {len(within)} are within one paired SE of the "
            f"lowest ({', '.join(c.family for c in sorted(within, key=_simplicity))}), so "
            "the stack combines them instead of betting on one the data cannot single out"
            if len(within) > 1
            else ""
        )
    ]
    g, s = gaps[lowest.version]
    out.append(
        f"not {_family(lowest)}, the lowest family ({lowest.metrics[metric]:.4f}): "
        + (
            "the stack is lower by more than its paired SE"
            if gap < -se
            else "its lead over the others is within their noise, so it is not shown to "
            "predict better than the combination"
            if len(within) > 1
            else f"the stack is within noise of it ({gap:+.4f}, SE {se:.4f})"
        )
    )
    if single is not lowest:
        g, s = gaps[single.version]
        out.append(
            f"not {_family(single)}, the simplest family within noise of the lowest "
            f"(+{g:.4f}, SE {s:.4f}): the one-standard-error rule among families the data "
            "cannot tell apart picks one by simplicity; the stack uses them all, weighted by "
            "their out-of-fold accuracy"
        )
    return out


def _stack_not_reason(stack, tied: bool, stack_gap, refused) -> str:
    """Why the stack was not chosen, in words."""
    gap, se = stack_gap
    if refused:
        why = "its calibration gates refuse it (" + ", ".join(g.name for g in refused) + ")"
    elif not math.isfinite(se):
        why = "its paired SE could not be estimated"
    elif gap > se:
        why = f"it is worse than the lowest family by {gap:+.4f}, more than its paired SE {se:.4f}"
    else:
        why = (
            f"one family is clearly best (every other is worse by more than its paired SE) "
            f"and the stack is not lower beyond noise ({gap:+.4f}, SE {se:.4f})"
        )
    return f"not {_family(stack)}: {why}"


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


def patient_groups(rows) -> np.ndarray | None:
    """The patient of each row when a patient has several (a landmark dataset's rows), for the
    cluster-robust paired SEs of :func:`select`; None when every row is its own patient."""
    ids = rows["patient_id"] if "patient_id" in rows.columns else None
    return ids.to_numpy() if ids is not None and ids.duplicated().any() else None


def choose_challenger(
    candidates: Sequence,
    selection_metric: str,
    policy: PromotionPolicy | None = None,
    losses: Mapping[str, np.ndarray] | None = None,
    groups: np.ndarray | None = None,
    rule: str = STACK_AS_CANDIDATE,
) -> Selection:
    """Set ``challenger`` on :func:`select`'s choice and return the selection."""
    chosen = select(candidates, selection_metric, policy, losses, groups, rule)
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

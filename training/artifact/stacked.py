"""The served model of the run's stack: member versions' answers combined with simplex weights.

A :class:`StackedRiskModel` holds the registered (all-patient) :class:`RiskModel` of each member
family with a positive weight, and answers as a :class:`RiskModel` does (API, pyfunc, batch and
Spark paths: :class:`training.artifact.served.ServedModel`):

- the cumulative incidence of bone metastasis is ``sum_m w_m P_m`` of the members' served
  incidences (each recalibrated when its version is), death without it the same combination
  capped at ``1 - bone`` (:func:`training.models.ensemble.combine_incidences`, the one code
  path of every stacked model);
- the risk score is the log-odds of the combined incidence by the headline horizon (24
  months), its low/intermediate/high cut-offs the tertiles of the training patients' scores;
- the interval of each probability is the same weighted combination of the members' interval
  bounds: the interval of a combination of perfectly correlated members. By Minkowski's
  inequality the spread of a weighted sum is at most the weighted sum of the spreads, so
  under any correlation between the members' errors it is at least as wide as the
  combination's own (conservative, never narrower than the evidence); the uncertainty of the
  weights themselves (a handful of numbers fitted on every patient's out-of-fold prediction)
  is not added;
- a landmark model's rows (``prediction_day``) are built once and given to every member (all
  members of a run share the landmarks);
- the explanation of an answer (``explain``) and the engineered features of ``GET /model``
  are those of the member with the largest weight (``pipeline``), said in the model card: the
  members' risk scores are on different scales (log hazard, log odds), so their
  contributions do not add up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from features.schema import HEADLINE_HORIZON_MONTHS
from training.artifact.risk_model import RiskModel
from training.models.ensemble import combine_incidences
from training.models.link import logit
from training.models.names import STACK_FAMILY

__all__ = ["StackedRiskModel", "stacked_risk_model"]


@dataclass
class StackedRiskModel(RiskModel):
    """A :class:`RiskModel` whose answers are the weighted combination of ``members``'.

    ``pipeline``, ``uncertainty``, ``plausible``, ``training_percentiles`` and the other
    facts are the heaviest member's (the members of a run were fitted on the same patients
    and inputs); ``recalibration`` is None (each member applies its own).
    """

    members: tuple[RiskModel, ...] = ()
    weights: tuple[float, ...] = ()
    member_families: tuple[str, ...] = field(default_factory=tuple)

    @property
    def estimates_death(self) -> bool:
        return all(m.estimates_death for m in self.members)

    def _horizons(self, horizons: Sequence[float]) -> tuple[tuple[float, ...], int]:
        """The horizons asked for, plus the score's (headline) when absent; its column."""
        hz = tuple(float(h) for h in horizons)
        at = float(HEADLINE_HORIZON_MONTHS)
        if at in hz:
            return hz, hz.index(at)
        return hz + (at,), len(hz)

    def predict_arrays(self, typed, horizons_months: Sequence[float]):
        """Risk scores and the combined ``(n, horizons)`` incidences of bone metastasis."""
        hz, col = self._horizons(horizons_months)
        parts = [m.predict_arrays(typed, hz)[1] for m in self.members]
        bone, _ = combine_incidences(self.weights, parts)
        return logit(bone[:, col]), bone[:, : len(horizons_months)]

    def _predict_with_bounds(self, rows, horizons: tuple[float, ...]):
        """Score, combined incidences and the combined members' bounds (module docstring)."""
        hz, col = self._horizons(horizons)
        k = len(horizons)
        bone, death, bounds = [], [], [[], [], [], []]
        for m in self.members:
            _, cif, d, b = m._predict_with_bounds(rows, hz)
            bone.append(m.recalibrate(cif, d, hz))  # as the member's own answer
            death.append(d)
            if b is not None:
                b = [m.recalibrate(x, d, hz) if j < 2 and x is not None else x
                     for j, x in enumerate(b)]  # fmt: skip
            for j in range(4):
                bounds[j].append(None if b is None else b[j])
        with_death = all(d is not None for d in death)
        p_bone, p_death = combine_incidences(self.weights, bone, death if with_death else None)
        score = logit(p_bone[:, col])
        out = None
        if all(x is not None for x in bounds[0] + bounds[1]):
            low, high = (combine_incidences(self.weights, bounds[j])[0] for j in (0, 1))
            out = [np.minimum(low, p_bone)[:, :k], np.maximum(high, p_bone)[:, :k], None, None]
            if with_death and all(x is not None for x in bounds[2] + bounds[3]):
                dlow, dhigh = (combine_incidences(self.weights, bounds[j])[0] for j in (2, 3))
                out[2] = np.minimum(dlow, p_death)[:, :k]
                out[3] = np.clip(np.maximum(dhigh, p_death), 0.0, 1.0)[:, :k]
        return score, p_bone[:, :k], None if p_death is None else p_death[:, :k], out

    def describe(self) -> str:
        """The members and their weights, in words (model card, ``why:`` lines)."""
        return ", ".join(
            f"{f} {w:.3f}" for f, w in zip(self.member_families, self.weights, strict=True)
        )


def stacked_risk_model(
    members: Sequence[RiskModel], weights: Sequence[float], X, min_weight: float = 1e-3
) -> StackedRiskModel:
    """The served stack of fitted member versions with simplex ``weights``.

    Members whose weight is below ``min_weight`` are left out (they cost a prediction for
    nothing) and the others' weights renormalised to sum to 1. ``X``: the training rows
    (typed, as the members were fitted on): the risk-group cut-offs are the tertiles of their
    combined risk scores.
    """
    w = np.asarray(weights, dtype=float)
    if len(members) != w.size or w.size == 0:
        raise ValueError("one weight per member, at least one member")
    if np.any(w < -1e-9) or not np.isclose(w.sum(), 1.0, atol=1e-6):
        raise ValueError(f"weights must be on the simplex (non-negative, sum 1), got {w}")
    keep = np.flatnonzero(w >= min_weight)
    if keep.size == 0:
        keep = np.array([int(np.argmax(w))])
    kept = [members[j] for j in keep]
    w = w[keep] / w[keep].sum()
    lead = kept[int(np.argmax(w))]
    landmarks = {tuple(m.landmark_days) for m in kept}
    if len(landmarks) > 1 or len({m.include_marker for m in kept}) > 1:
        raise ValueError("members must share their landmarks and their use of the marker")
    model = StackedRiskModel(
        family=STACK_FAMILY,
        pipeline=lead.pipeline,
        risk_cutoffs=(0.0, 0.0),
        horizons_months=tuple(lead.horizons_months),
        max_follow_up_months=float(min(m.max_follow_up_months for m in kept)),
        include_marker=lead.include_marker,
        training_ranges=dict(lead.training_ranges),
        training_percentiles=dict(lead.training_percentiles),
        landmark_days=tuple(lead.landmark_days),
        competing_death=all(m.competing_death for m in kept),
        uncertainty=lead.uncertainty if all(m.uncertainty is not None for m in kept) else None,
        plausible=lead.plausible,
        development=lead.development,
        recalibration=None,
        members=tuple(kept),
        weights=tuple(float(v) for v in w),
        member_families=tuple(m.family for m in kept),
    )
    score, _ = model.predict_arrays(X, (float(HEADLINE_HORIZON_MONTHS),))
    model.risk_cutoffs = tuple(float(c) for c in np.quantile(score, [1 / 3, 2 / 3]))
    return model

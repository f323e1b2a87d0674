"""Treatment benefit by the randomised trials (contract 1.2 ``treatment_benefit``).

The one place that says which treatment has a trial-established effect on bone metastasis, for
whom, and with which figures (``shared/domain.md``, "Treatment benefit"); the prediction API, the
clinician's page and the CDS Hooks cards import it.

The effect is never the model's own coefficient of a treatment column (confounded by who gets
treated): it is the trial's rate ratio applied to the model's prediction without treatment, on
the **cause-specific hazard** of bone metastasis, the hazard of death before bone metastasis
unchanged. Between consecutive horizons (and from the prediction day to the first) the two
cause-specific hazards are taken as proportional to the increments of their cumulative
incidences; with total cumulative hazard ``H`` over the interval split as ``H1 = H * dF1 /
(dF1 + dF2)`` and ``H2 = H - H1``, the treated interval has ``H1' = rr * H1`` and the same
``H2``, so that ``S' = S'_prev * exp(-(H1' + H2))`` and ``dF1' = (S'_prev - S') * H1' / (H1' +
H2)``. Without a competing death this is exactly ``1 - (1 - F1)^rr``.

The interval of the treated probability carries both uncertainties: the trial's confidence
limits applied to the bounds of the untreated interval (``low`` with the lower rate ratio,
``high`` with the upper one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TrialEffect:
    """A treatment's relative effect on bone metastasis from randomised trials."""

    treatment: str
    relative_risk: float
    relative_risk_low: float
    relative_risk_high: float
    source: str
    #: Who it applies to, in words (the page and the model card).
    applies_to: str


ADJUVANT_BISPHOSPHONATE = TrialEffect(
    treatment="adjuvant_bisphosphonate",
    relative_risk=0.72,
    relative_risk_low=0.60,
    relative_risk_high=0.86,
    source=(
        "EBCTCG individual-patient-data meta-analysis of 26 trials, 18,766 women (Lancet "
        "2015;386:1353-61): bone recurrence in postmenopausal women, rate ratio 0.72 "
        "(95% CI 0.60-0.86)"
    ),
    applies_to=(
        "early breast cancer (stage I-III), postmenopausal, not already on a bone-targeted agent"
    ),
)


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return str(value)


def applicable(record: Mapping[str, Any]) -> tuple[list[TrialEffect], str | None]:
    """The trial effects that apply to a patient, or none and the one-line reason why.

    Parameters
    ----------
    record : mapping
        One patient's contract fields (``disease_setting``, ``menopausal_status``,
        ``bone_targeted_therapy``, ``bone_metastasis_at_enrollment``); a missing field is None
        or NaN.

    Returns
    -------
    effects : list of TrialEffect
    reason : str or None
        Why nothing applies (None when something does).
    """
    if record.get("bone_metastasis_at_enrollment") in (True, 1, 1.0):
        return [], "bone metastasis is already present: there is no first bone metastasis to prevent"
    setting = _text(record.get("disease_setting"))
    if setting != "early":
        return [], (
            "the trials of adjuvant bisphosphonates are in early breast cancer; in metastatic "
            "disease without bone involvement bisphosphonates did not prevent bone metastasis"
        )
    status = _text(record.get("menopausal_status"))
    if status is None:
        return [], (
            "menopausal status is not given: the trial benefit of adjuvant bisphosphonates is "
            "established for postmenopausal women only"
        )
    if status != "post":
        return [], (
            "the trials showed no benefit of adjuvant bisphosphonates in women who are not "
            "postmenopausal"
        )
    therapy = _text(record.get("bone_targeted_therapy"))
    if therapy is None:
        return [], (
            "bone-targeted therapy is not given: the trial benefit applies to women not already "
            "on a bone-targeted agent"
        )
    if therapy != "none":
        return [], f"already on a bone-targeted agent ({therapy})"
    return [ADJUVANT_BISPHOSPHONATE], None


def treated_incidence(
    bone: np.ndarray, death: np.ndarray | None, horizons_months: Sequence[float], rr: float
) -> np.ndarray:
    """Cumulative incidence of bone metastasis with a rate ratio ``rr`` on its cause-specific
    hazard (module docstring), at the same horizons.

    Parameters
    ----------
    bone, death : numpy.ndarray
        ``(n, horizons)`` cumulative incidences without treatment; ``death`` None when the
        model has no competing death (taken as zero).
    horizons_months : sequence of float
        In any order (the output keeps it).
    rr : float or numpy.ndarray
        Rate ratio of the cause-specific hazard of bone metastasis, or one per row (``(n,)``).
    """
    bone = np.atleast_2d(np.asarray(bone, dtype=float))
    death = np.zeros_like(bone) if death is None else np.atleast_2d(np.asarray(death, float))
    order = np.argsort(np.asarray(horizons_months, dtype=float), kind="stable")
    f1, f2 = bone[:, order], death[:, order]
    n = f1.shape[0]
    rr = np.asarray(rr, dtype=float)
    rr = rr[:, None] if rr.ndim == 1 else rr
    tiny = 1e-12
    # Every interval at once (each one's quantities depend on the untreated incidences only);
    # the treated survival is the running product of the intervals' factors and the treated
    # incidence the running sum of its increments (np.cumprod/np.cumsum: the same operations
    # in the same order as a loop over the horizons, so the same floats). np.maximum and
    # np.minimum rather than np.clip: the same values (NaN stays NaN), without its wrapper.
    prev1 = np.concatenate([np.zeros((n, 1)), f1[:, :-1]], axis=1)
    prev2 = np.concatenate([np.zeros((n, 1)), f2[:, :-1]], axis=1)
    d1 = np.maximum(f1 - prev1, 0.0)
    d2 = np.maximum(f2 - prev2, 0.0)
    surv = np.minimum(np.maximum(1.0 - f1 - f2, tiny), 1.0)
    surv_prev = np.concatenate([np.ones((n, 1)), surv[:, :-1]], axis=1)
    total = np.maximum(np.log(np.minimum(np.maximum(surv_prev, tiny), 1.0) / surv), 0.0)
    both = d1 + d2
    share = np.where(both > 0, d1 / np.maximum(both, tiny), 0.0)
    h1 = rr * total * share
    h2 = total * (1.0 - share)
    h = h1 + h2
    treated_surv = np.cumprod(np.exp(-h), axis=1)
    before = np.concatenate([np.ones((n, 1)), treated_surv[:, :-1]], axis=1)
    step = np.where(h > 0, (before - treated_surv) * h1 / np.maximum(h, tiny), 0.0)
    out = np.cumsum(step, axis=1)
    result = np.empty_like(out)
    result[:, order] = np.minimum(out, f1)
    return result


def benefit(
    effect: TrialEffect,
    bone: np.ndarray,
    low: np.ndarray | None,
    high: np.ndarray | None,
    death: np.ndarray | None,
    horizons_months: Sequence[float],
) -> dict[str, np.ndarray | None]:
    """One patient's (or a batch's) probabilities with the treatment: point, low and high.

    ``low``/``high`` are the bounds of the untreated interval (None: the model has none); the
    treated bounds apply the trial's lower and upper rate ratio to them.
    """
    # The point and both bounds in one pass: their rows stacked, each with its rate ratio.
    tables = [("probability", bone, effect.relative_risk)]
    tables += [(k, t, r) for k, t, r in (("low", low, effect.relative_risk_low),
                                         ("high", high, effect.relative_risk_high)) if t is not None]  # fmt: skip
    parts = [np.atleast_2d(np.asarray(t, dtype=float)) for _, t, _ in tables]
    n = parts[0].shape[0]
    rr = np.repeat([r for _, _, r in tables], n)
    deaths = None if death is None else np.concatenate([np.atleast_2d(death)] * len(tables))
    treated = treated_incidence(np.concatenate(parts), deaths, horizons_months, rr)
    out: dict[str, np.ndarray | None] = {"low": None, "high": None}
    for k, (name, _, _) in enumerate(tables):
        out[name] = treated[k * n : (k + 1) * n]
    return out

"""Statistics of the osteocalcin study report: plain functions returning small dataclasses.

Each function takes numpy arrays, checks them, and returns a frozen dataclass with the estimate,
its confidence interval, the p value and the numbers behind it. Nothing here reads files, plots
or logs; :mod:`training.study.report` puts the pieces together. A statistic that cannot be
computed on the data given (too few patients, no events, a fit that does not converge) raises
:class:`StudyError` with the reason in words, which the report prints instead of the result.

Methods and their sources
-------------------------
- Group difference: Mann-Whitney U (scipy), Hodges-Lehmann shift with the distribution-free
  interval from the ordered pairwise differences (Hollander, Wolfe & Chicken 2014, ch. 4.3; the
  normal approximation of the critical value), probability of superiority = AUC with DeLong's
  variance (DeLong, DeLong & Clarke-Pearson 1988).
- ROC (scikit-learn), Youden's J cut-off (Youden 1950) with a percentile bootstrap interval
  (:func:`training.evaluation.bootstrap.bootstrap_ci`).
- Adjusted comparison: ordinary least squares of log2 marker on group and covariates, t
  intervals; ``2 ** coef`` is a ratio of geometric means.
- Cumulative incidence by group: Aalen-Johansen
(:func:`training.evaluation.incidence.aalen_johansen_ci`);
  K-sample comparison with Gray's (1988) score (observed minus expected bone metastases on the
  subdistribution risk sets) and a Monte Carlo permutation p value.
- Cause-specific Cox model: Newton-Raphson on the Breslow partial likelihood
  (:func:`training.evaluation.likelihood.cox_partial_loglik`: the same log-likelihood), standard
  errors
  from the observed information, Wald intervals; proportional hazards check with Grambsch &
  Therneau's (1994) score test on the Schoenfeld residuals against the rank of event time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_curve

from training.evaluation.bootstrap import bootstrap_ci
from training.evaluation.incidence import aalen_johansen_ci
from training.evaluation.likelihood import cox_partial_loglik
from training.models.competing import BONE_METASTASIS, CENSORED, DEATH

__all__ = [
    "StudyError",
    "RankComparison",
    "RocAnalysis",
    "Cutoff",
    "Regression",
    "CoxFit",
    "GrayTest",
    "IncidenceCurves",
    "rank_comparison",
    "hodges_lehmann",
    "delong_auc",
    "roc_analysis",
    "youden_cutoff",
    "linear_regression",
    "cox_fit",
    "gray_scores",
    "gray_test",
    "incidence_by_group",
    "json_ready",
]


class StudyError(ValueError):
    """A statistic that cannot be computed on these data; the message says why."""


def json_ready(value: object) -> object:
    """Dataclasses, numpy values and NaN turned into plain JSON values (NaN -> None)."""
    if hasattr(value, "__dataclass_fields__"):
        value = asdict(value)  # type: ignore[call-overload]
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return [json_ready(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _z(conf_level: float) -> float:
    if not 0.0 < conf_level < 1.0:
        raise ValueError(f"conf_level must be in (0, 1), got {conf_level}")
    return float(stats.norm.isf((1.0 - conf_level) / 2.0))


def _finite(values: object, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr[np.isfinite(arr)]


# --------------------------------------------------------------------------------------------
# Aim 1: group difference


@dataclass(frozen=True)
class RankComparison:
    """Two groups compared by ranks (``a`` minus ``b``), on the scale of the values given.

    Attributes
    ----------
    n_a, n_b : int
        Finite values used in each group.
    median_a, median_b : float
        Group medians.
    u_statistic, p_value : float
        Mann-Whitney U of ``a`` and its two-sided p value (scipy, tie-corrected).
    shift, shift_lo, shift_hi : float
        Hodges-Lehmann shift ``a - b`` (median of pairwise differences) with its interval.
    auc, auc_lo, auc_hi : float
        Probability of superiority P(a > b) + P(a = b) / 2 (= U / (n_a n_b)) with DeLong's
        interval.
    conf_level : float
    """

    n_a: int
    n_b: int
    median_a: float
    median_b: float
    u_statistic: float
    p_value: float
    shift: float
    shift_lo: float
    shift_hi: float
    auc: float
    auc_lo: float
    auc_hi: float
    conf_level: float


def hodges_lehmann(
    a: np.ndarray, b: np.ndarray, conf_level: float = 0.95
) -> tuple[float, float, float]:
    """Hodges-Lehmann shift ``a - b`` with its distribution-free confidence interval.

    With the ``N = n_a n_b`` pairwise differences sorted, ``D_(1) <= ... <= D_(N)``, the interval
    is ``[D_(m_lo), D_(m_hi + 1)]`` with ``m_lo = ceil(N / 2 - z s)``, ``m_hi = floor(N / 2 + z
    s)`` and ``s = sqrt(n_a n_b (n_a + n_b + 1) / 12)``: the shifts ``d`` that a two-sided
    Mann-Whitney test (normal approximation, no continuity correction) of ``a - d`` against
    ``b`` does not reject (Hollander, Wolfe & Chicken 2014, section 4.3).

    Returns
    -------
    shift, lo, hi : float
    """
    a = _finite(a, "a")
    b = _finite(b, "b")
    if a.size < 2 or b.size < 2:
        raise StudyError(
            f"a rank comparison needs at least 2 values per group, got {a.size}, {b.size}"
        )
    z = _z(conf_level)
    diffs = np.sort(np.subtract.outer(a, b).ravel())
    n = diffs.size
    s = math.sqrt(a.size * b.size * (a.size + b.size + 1) / 12.0)
    m_lo = max(math.ceil(n / 2.0 - z * s), 1)
    m_hi = min(math.floor(n / 2.0 + z * s), n - 1)
    return float(np.median(diffs)), float(diffs[m_lo - 1]), float(diffs[m_hi])


def delong_auc(
    scores_pos: np.ndarray, scores_neg: np.ndarray, conf_level: float = 0.95
) -> tuple[float, float, float, float]:
    """AUC (probability of superiority) with DeLong's standard error and a Wald interval.

    ``psi(x, y) = 1 if x > y, 1/2 if x == y, 0 otherwise``; ``V10_i`` is the mean of
    ``psi(x_i, .)`` over negatives, ``V01_j`` the mean of ``psi(., y_j)`` over positives;
    ``Var(AUC) = var(V10) / n_pos + var(V01) / n_neg`` (sample variances; DeLong et al. 1988).
    The interval is ``AUC +- z se`` clipped to [0, 1], as R's pROC reports it.

    Returns
    -------
    auc, se, lo, hi : float
    """
    x = _finite(scores_pos, "scores_pos")
    y = _finite(scores_neg, "scores_neg")
    if x.size < 2 or y.size < 2:
        raise StudyError(f"an AUC interval needs at least 2 per class, got {x.size}, {y.size}")
    psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    v10 = psi.mean(axis=1)
    v01 = psi.mean(axis=0)
    auc = float(psi.mean())
    se = math.sqrt(v10.var(ddof=1) / x.size + v01.var(ddof=1) / y.size)
    z = _z(conf_level)
    return auc, se, max(auc - z * se, 0.0), min(auc + z * se, 1.0)


def rank_comparison(a: np.ndarray, b: np.ndarray, conf_level: float = 0.95) -> RankComparison:
    """Mann-Whitney U test with Hodges-Lehmann shift and probability of superiority.

    Parameters
    ----------
    a, b : numpy.ndarray
        Values of the two groups (NaN dropped). Pass log2 values to get the shift in doublings.
    conf_level : float, default=0.95

    Returns
    -------
    RankComparison
    """
    a = _finite(a, "a")
    b = _finite(b, "b")
    shift, lo, hi = hodges_lehmann(a, b, conf_level)
    test = stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic")
    auc, _, auc_lo, auc_hi = delong_auc(a, b, conf_level)
    return RankComparison(
        n_a=int(a.size),
        n_b=int(b.size),
        median_a=float(np.median(a)),
        median_b=float(np.median(b)),
        u_statistic=float(test.statistic),
        p_value=float(test.pvalue),
        shift=shift,
        shift_lo=lo,
        shift_hi=hi,
        auc=auc,
        auc_lo=auc_lo,
        auc_hi=auc_hi,
        conf_level=conf_level,
    )


@dataclass(frozen=True)
class RocAnalysis:
    """ROC curve of a marker for a binary status (higher marker = positive)."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    auc: float
    auc_lo: float
    auc_hi: float
    n_pos: int
    n_neg: int


def _xy(status: np.ndarray, marker: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(status, dtype=float)
    m = np.asarray(marker, dtype=float)
    if s.shape != m.shape or s.ndim != 1:
        raise ValueError(f"status and marker must be 1-D of one length, got {s.shape}, {m.shape}")
    keep = np.isfinite(s) & np.isfinite(m)
    s, m = s[keep], m[keep]
    if not np.isin(s, (0.0, 1.0)).all():
        raise ValueError("status must be 0/1")
    return s.astype(bool), m


def roc_analysis(status: np.ndarray, marker: np.ndarray, conf_level: float = 0.95) -> RocAnalysis:
    """ROC curve (scikit-learn) and AUC with DeLong's interval; NaN pairs dropped."""
    s, m = _xy(status, marker)
    if s.sum() < 2 or (~s).sum() < 2:
        raise StudyError(
            f"an ROC curve needs at least 2 patients per status, got {int(s.sum())} with and "
            f"{int((~s).sum())} without"
        )
    fpr, tpr, thr = roc_curve(s, m, drop_intermediate=False)
    auc, _, lo, hi = delong_auc(m[s], m[~s], conf_level)
    return RocAnalysis(fpr, tpr, thr, auc, lo, hi, int(s.sum()), int((~s).sum()))


@dataclass(frozen=True)
class Cutoff:
    """Youden cut-off (positive when marker >= cutoff) with a percentile bootstrap interval."""

    cutoff: float
    lo: float
    hi: float
    sensitivity: float
    specificity: float
    youden_j: float
    n_boot: int
    n_boot_used: int
    n: int


def _youden(status: np.ndarray, marker: np.ndarray) -> tuple[float, float, float]:
    s = status.astype(bool)
    if s.all() or not s.any():
        raise ValueError("both classes are needed for a cut-off")
    fpr, tpr, thr = roc_curve(s, marker, drop_intermediate=False)
    j = tpr[1:] - fpr[1:]  # thresholds[0] is +inf: everyone negative
    best = int(np.argmax(j)) + 1
    return float(thr[best]), float(tpr[best]), float(1.0 - fpr[best])


def youden_cutoff(
    status: np.ndarray,
    marker: np.ndarray,
    n_boot: int = 500,
    seed: int = 0,
    conf_level: float = 0.95,
) -> Cutoff:
    """The marker value maximising sensitivity + specificity - 1, with a bootstrap interval.

    The cut-off is an observed marker value; ties in J go to the highest cut-off. The interval
    resamples patients (:func:`training.evaluation.bootstrap.bootstrap_ci`) and shows how unstable a
    data-driven cut-off is; it does not remove its optimism.
    """
    s, m = _xy(status, marker)
    if s.sum() < 2 or (~s).sum() < 2:
        raise StudyError("a cut-off needs at least 2 patients per status")
    cut, sens, spec = _youden(s, m)
    boot = bootstrap_ci(
        lambda ss, mm: _youden(ss, mm)[0],
        s,
        m,
        n_boot=n_boot,
        seed=seed,
        alpha=1.0 - conf_level,
    )
    return Cutoff(
        cut, boot.lo, boot.hi, sens, spec, sens + spec - 1.0, n_boot, boot.n_boot_used, int(s.size)
    )


# --------------------------------------------------------------------------------------------
# Regression


@dataclass(frozen=True)
class Regression:
    """Coefficients with standard errors, intervals and p values, one entry per term.

    For :func:`linear_regression` ``n_events`` is None; for :func:`cox_fit` it counts the
    events. ``n_dropped`` rows had a missing value in a term (complete-case analysis).
    """

    terms: list[str]
    coef: np.ndarray
    se: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    p_value: np.ndarray
    n: int
    n_dropped: int
    n_events: int | None = None
    loglik: float = float("nan")
    conf_level: float = 0.95
    extra: dict[str, object] = field(default_factory=dict)

    def term(self, name: str) -> dict[str, float]:
        """One term's numbers as a dictionary (``coef, se, lo, hi, p_value``)."""
        i = self.terms.index(name)
        return {
            "coef": float(self.coef[i]),
            "se": float(self.se[i]),
            "lo": float(self.lo[i]),
            "hi": float(self.hi[i]),
            "p_value": float(self.p_value[i]),
        }


def _design(
    X: np.ndarray | pd.DataFrame, terms: Sequence[str] | None
) -> tuple[np.ndarray, list[str]]:
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns] if terms is None else list(terms)
        arr = X.to_numpy(dtype=float)
    else:
        arr = np.asarray(X, dtype=float)
        arr = arr[:, None] if arr.ndim == 1 else arr
        names = list(terms) if terms is not None else [f"x{j}" for j in range(arr.shape[1])]
    if arr.ndim != 2 or len(names) != arr.shape[1]:
        raise ValueError(f"{len(names)} term names for a design of shape {arr.shape}")
    return arr, names


def linear_regression(
    y: np.ndarray,
    X: np.ndarray | pd.DataFrame,
    terms: Sequence[str] | None = None,
    conf_level: float = 0.95,
) -> Regression:
    """Ordinary least squares with an intercept (first term ``intercept``), t intervals.

    Rows with a missing value in ``y`` or ``X`` are dropped and counted.
    """
    X, names = _design(X, terms)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(y) & np.isfinite(X).all(axis=1)
    X1 = np.column_stack([np.ones(int(keep.sum())), X[keep]])
    yk = y[keep]
    n, p = X1.shape
    if n <= p + 1:
        raise StudyError(
            f"a regression on {p} terms needs more than {p + 1} complete rows, got {n}"
        )
    if np.linalg.matrix_rank(X1) < p:
        raise StudyError(
            "the regression terms are collinear (a covariate is constant or redundant)"
        )
    coef, *_ = np.linalg.lstsq(X1, yk, rcond=None)
    resid = yk - X1 @ coef
    sigma2 = float(resid @ resid) / (n - p)
    cov = sigma2 * np.linalg.inv(X1.T @ X1)
    se = np.sqrt(np.diag(cov))
    t = coef / se
    q = float(stats.t.isf((1.0 - conf_level) / 2.0, n - p))
    return Regression(
        terms=["intercept", *names],
        coef=coef,
        se=se,
        lo=coef - q * se,
        hi=coef + q * se,
        p_value=2.0 * stats.t.sf(np.abs(t), n - p),
        n=n,
        n_dropped=int((~keep).sum()),
        conf_level=conf_level,
    )


# --------------------------------------------------------------------------------------------
# Cause-specific Cox model


@dataclass(frozen=True)
class CoxFit(Regression):
    """A Cox fit; ``coef`` are log hazard ratios. ``extra`` holds the proportional hazards test:
    ``ph_p_value`` (per term), ``ph_global_p_value``, ``ph_global_statistic``."""

    @property
    def hazard_ratio(self) -> np.ndarray:
        return np.exp(self.coef)


def _cox_derivatives(
    X: np.ndarray, t: np.ndarray, event: np.ndarray, beta: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradient, information and Schoenfeld residuals of the Breslow partial likelihood.

    Rows must be sorted by time; the risk set of an event at t is every row with time >= t.
    """
    eta = X @ beta
    w = np.exp(eta - eta.max())
    s0 = np.cumsum(w[::-1])[::-1]
    s1 = np.cumsum((w[:, None] * X)[::-1], axis=0)[::-1]
    s2 = np.cumsum((w[:, None, None] * X[:, :, None] * X[:, None, :])[::-1], axis=0)[::-1]
    first = np.searchsorted(t, t, side="left")[event]
    xbar = s1[first] / s0[first, None]
    resid = X[event] - xbar
    grad = resid.sum(axis=0)
    info = (s2[first] / s0[first, None, None]).sum(axis=0) - xbar.T @ xbar
    return grad, info, resid


def cox_fit(
    time: np.ndarray,
    event: np.ndarray,
    X: np.ndarray | pd.DataFrame,
    terms: Sequence[str] | None = None,
    conf_level: float = 0.95,
    max_iter: int = 50,
    tol: float = 1e-10,
) -> CoxFit:
    """Cox proportional hazards fit (Breslow ties) with Wald intervals and a PH check.

    Newton-Raphson with step halving from 0; the standard errors are the square roots of the
    diagonal of the inverse observed information at the maximum. Rows with a missing value are
    dropped and counted (complete-case analysis).

    The proportional hazards check is Grambsch & Therneau's (1994) approximate score test of a
    linear trend of each coefficient in ``g(t)``, the rank of the event time: with ``r_k`` the
    Schoenfeld residuals at the ``d`` events, ``U = sum_k (g_k - mean g) r_k`` and ``V`` the
    covariance of the coefficients, ``T_j = d (V U)_j^2 / (V_jj sum (g_k - mean g)^2)`` on 1
    degree of freedom, and the global ``T = d U' V U / sum (g_k - mean g)^2`` on ``p``.

    Parameters
    ----------
    time : numpy.ndarray
        Follow-up times.
    event : numpy.ndarray
        1 for the event of interest (bone metastasis), 0 otherwise (censored, or death for a
        cause-specific model).
    X : numpy.ndarray or pandas.DataFrame
        Covariates, one column per term.
    terms : sequence of str, optional
        Term names (default: DataFrame columns or x0, x1, ...).

    Returns
    -------
    CoxFit
    """
    X, names = _design(X, terms)
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    keep = np.isfinite(time) & np.isfinite(event) & np.isfinite(X).all(axis=1)
    order = np.argsort(time[keep], kind="mergesort")
    t, ev, Xk = time[keep][order], event[keep][order].astype(bool), X[keep][order]
    n, p = Xk.shape
    d = int(ev.sum())
    if d < max(2 * p, 5):
        raise StudyError(
            f"a Cox model with {p} term(s) needs at least {max(2 * p, 5)} events, got {d}"
        )
    if np.linalg.matrix_rank(Xk - Xk.mean(axis=0)) < p:
        raise StudyError("the Cox model terms are collinear or constant")
    beta = np.zeros(p)
    ll = cox_partial_loglik(Xk, t, ev, beta)
    converged = False
    for _ in range(max_iter):
        grad, info, _ = _cox_derivatives(Xk, t, ev, beta)
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError as err:
            raise StudyError("the Cox information matrix is singular") from err
        for _ in range(30):
            new = beta + step
            ll_new = cox_partial_loglik(Xk, t, ev, new)
            if ll_new >= ll - 1e-12:
                break
            step = step / 2.0
        else:
            break
        done = abs(ll_new - ll) < tol * (1.0 + abs(ll))
        beta, ll = new, ll_new
        if done:
            converged = True
            break
    if not converged or not np.isfinite(beta).all() or np.abs(beta).max() > 20:
        raise StudyError(
            "the Cox fit did not converge (a covariate may separate the events: too few events "
            "in a category)"
        )
    grad, info, resid = _cox_derivatives(Xk, t, ev, beta)
    cov = np.linalg.inv(info)
    se = np.sqrt(np.diag(cov))
    z = _z(conf_level)
    # Proportional hazards: Grambsch-Therneau test against the rank of event time.
    g = stats.rankdata(t[ev])
    gc = g - g.mean()
    sgg = float(gc @ gc)
    ph_p = np.full(p, np.nan)
    ph_global = ph_stat = float("nan")
    if sgg > 0:
        u = gc @ resid
        vu = cov @ u
        ph_stats = d * vu**2 / (np.diag(cov) * sgg)
        ph_p = stats.chi2.sf(ph_stats, 1)
        ph_stat = float(d * u @ cov @ u / sgg)
        ph_global = float(stats.chi2.sf(ph_stat, p))
    return CoxFit(
        terms=names,
        coef=beta,
        se=se,
        lo=beta - z * se,
        hi=beta + z * se,
        p_value=2.0 * stats.norm.sf(np.abs(beta / se)),
        n=n,
        n_dropped=int((~keep).sum()),
        n_events=d,
        loglik=ll,
        conf_level=conf_level,
        extra={
            "ph_p_value": ph_p,
            "ph_global_statistic": ph_stat,
            "ph_global_p_value": ph_global,
            "ph_transform": "rank of event time",
        },
    )


# --------------------------------------------------------------------------------------------
# Cumulative incidence by group


@dataclass(frozen=True)
class GrayTest:
    """K-sample comparison of the cumulative incidence of bone metastasis.

    ``score`` is Gray's (1988) score (rho = 0) of each group: observed bone metastases minus
    those expected on the subdistribution risk sets. ``statistic`` is the quadratic form of the
    score in its permutation covariance; ``p_value`` its Monte Carlo permutation p value
    ``(1 + #{T* >= T}) / (1 + n_perm)``.
    """

    groups: list[str]
    n: list[int]
    n_events: list[int]
    n_competing: list[int]
    score: np.ndarray
    statistic: float
    p_value: float
    df: int
    n_perm: int


def _codes(cause: np.ndarray) -> np.ndarray:
    c = np.asarray(cause)
    if c.dtype.kind in "OUS":
        mapping = {"censored": CENSORED, "bone_metastasis": BONE_METASTASIS, "death": DEATH}
        try:
            return np.array([mapping[str(v)] for v in c], dtype=np.int64)
        except KeyError as err:
            raise ValueError(f"unknown cause {err.args[0]!r}") from err
    c = c.astype(np.int64)
    if not np.isin(c, (CENSORED, BONE_METASTASIS, DEATH)).all():
        raise ValueError("cause codes must be 0 (censored), 1 (bone metastasis), 2 (death)")
    return c


def gray_scores(
    time: np.ndarray, cause: np.ndarray, group: np.ndarray, n_groups: int
) -> np.ndarray:
    """Gray's score of every group for bone metastasis, each column of ``group`` a labelling.

    With ``Y_k`` at risk (time >= t) in group k, ``S_k`` its Kaplan-Meier probability of being
    free of both events and ``F_k`` its Aalen-Johansen incidence of bone metastasis (both just
    before t), the subdistribution risk set is ``R_k = Y_k (1 - F_k) / S_k`` and the score is
    ``sum_t [d1_k(t) - d1(t) R_k(t) / sum_l R_l(t)]`` (Gray 1988, rho = 0). Without competing
    events ``R_k = Y_k`` and this is the log-rank observed minus expected.

    Parameters
    ----------
    time, cause : numpy.ndarray
        Sorted by time (ascending); cause codes 0/1/2.
    group : numpy.ndarray
        ``(n,)`` or ``(n, B)`` integer labels 0..K-1 (several labellings at once, e.g.
        permutations).
    n_groups : int

    Returns
    -------
    numpy.ndarray
        ``(K,)`` or ``(B, K)`` scores.
    """
    g = np.asarray(group)
    single = g.ndim == 1
    g = g[:, None] if single else g
    times, start = np.unique(time, return_index=True)
    n_t = times.size
    tidx = np.searchsorted(times, time)
    b = g.shape[1]
    # Per time and group: leaving (all), bone metastases, deaths. Shape (n_t, B, K).
    onehot = np.zeros((time.size, b, n_groups))
    np.put_along_axis(onehot, g[:, :, None], 1.0, axis=2)
    leaving = np.zeros((n_t, b, n_groups))
    np.add.at(leaving, tidx, onehot)
    d1 = np.zeros_like(leaving)
    np.add.at(d1, tidx[cause == BONE_METASTASIS], onehot[cause == BONE_METASTASIS])
    d2 = np.zeros_like(leaving)
    np.add.at(d2, tidx[cause == DEATH], onehot[cause == DEATH])
    at_risk = onehot.sum(axis=0)[None] - np.cumsum(leaving, axis=0) + leaving
    with np.errstate(divide="ignore", invalid="ignore"):
        haz = np.where(at_risk > 0, (d1 + d2) / at_risk, 0.0)
        surv = np.cumprod(1.0 - haz, axis=0)
        surv_before = np.concatenate([np.ones((1, b, n_groups)), surv[:-1]], axis=0)
        inc = np.cumsum(np.where(at_risk > 0, surv_before * d1 / at_risk, 0.0), axis=0)
        inc_before = np.concatenate([np.zeros((1, b, n_groups)), inc[:-1]], axis=0)
        r = np.where(at_risk > 0, at_risk * (1.0 - inc_before) / surv_before, 0.0)
        r = np.nan_to_num(r, nan=0.0, posinf=0.0)
        d1_all = d1.sum(axis=2, keepdims=True)
        expected = np.where(
            r.sum(axis=2, keepdims=True) > 0, d1_all * r / r.sum(axis=2, keepdims=True), 0.0
        )
    score = (d1 - expected).sum(axis=0)
    return score[0] if single else score


def gray_test(
    time: np.ndarray,
    cause: np.ndarray,
    group: np.ndarray,
    n_perm: int = 2000,
    seed: int = 0,
) -> GrayTest:
    """Compare the cumulative incidence of bone metastasis between groups (death competing).

    Gray's score (:func:`gray_scores`) with a permutation p value. The permutation test is
    exact up to Monte Carlo error under the null that the groups share one distribution of
    (time, cause): the bone-metastasis incidence *and* the competing and censoring processes.
    Gray's asymptotic variance, which allows different death and censoring patterns, is not
    used; the statistic, built on the subdistribution risk sets, responds to differences in the
    incidence of bone metastasis.

    Parameters
    ----------
    time : numpy.ndarray
        Days to bone metastasis, death or censoring.
    cause : numpy.ndarray
        0/1/2 codes or ``censored``/``bone_metastasis``/``death``.
    group : numpy.ndarray
        Group label per patient (any hashable; at least 2 groups).
    n_perm : int, default=2000
    seed : int, default=0

    Returns
    -------
    GrayTest
    """
    time = np.asarray(time, dtype=float)
    codes = _codes(cause)
    labels = np.asarray(group, dtype=object)
    if not (time.shape == codes.shape == labels.shape) or time.ndim != 1:
        raise ValueError("time, cause and group must be 1-D of one length")
    keep = np.isfinite(time) & pd.notna(labels)
    time, codes, labels = time[keep], codes[keep], labels[keep]
    names, g = np.unique(labels.astype(str), return_inverse=True)
    k = names.size
    if k < 2:
        raise StudyError("a comparison of incidence needs at least 2 groups")
    if int((codes == BONE_METASTASIS).sum()) < 2:
        raise StudyError("a comparison of incidence needs at least 2 bone metastases")
    if int(n_perm) != n_perm or n_perm < 99:
        raise ValueError(f"n_perm must be an integer >= 99, got {n_perm}")
    order = np.argsort(time, kind="mergesort")
    time, codes, g = time[order], codes[order], g[order]
    observed = gray_scores(time, codes, g, k)
    rng = np.random.default_rng(seed)
    perm_scores = []
    for start in range(0, int(n_perm), 250):
        size = min(250, int(n_perm) - start)
        perms = np.stack([rng.permutation(g) for _ in range(size)], axis=1)
        perm_scores.append(gray_scores(time, codes, perms, k))
    null = np.concatenate(perm_scores, axis=0)[:, : k - 1]  # scores sum to 0: drop the last
    cov = np.cov(null, rowvar=False).reshape(k - 1, k - 1)
    inv = np.linalg.pinv(cov)
    stat = float(observed[: k - 1] @ inv @ observed[: k - 1])
    null_stats = np.einsum("bi,ij,bj->b", null, inv, null)
    p = (1.0 + float(np.sum(null_stats >= stat - 1e-9 * max(1.0, abs(stat))))) / (1.0 + len(null))
    counts = [int((g == j).sum()) for j in range(k)]
    events = [int(((g == j) & (codes == BONE_METASTASIS)).sum()) for j in range(k)]
    competing = [int(((g == j) & (codes == DEATH)).sum()) for j in range(k)]
    return GrayTest(
        groups=[str(x) for x in names],
        n=counts,
        n_events=events,
        n_competing=competing,
        score=observed,
        statistic=stat,
        p_value=p,
        df=k - 1,
        n_perm=int(n_perm),
    )


@dataclass(frozen=True)
class IncidenceCurves:
    """Aalen-Johansen incidence of bone metastasis per group on a common grid of days."""

    groups: list[str]
    times_days: np.ndarray
    cif: dict[str, np.ndarray]
    lo: dict[str, np.ndarray]
    hi: dict[str, np.ndarray]
    n: dict[str, int]
    n_events: dict[str, int]
    n_competing: dict[str, int]


def incidence_by_group(
    time: np.ndarray,
    cause: np.ndarray,
    group: np.ndarray,
    times_days: np.ndarray,
    order: Sequence[str] | None = None,
) -> IncidenceCurves:
    """Cumulative incidence of bone metastasis per group with pointwise 95 % intervals.

    Reuses :func:`training.evaluation.incidence.aalen_johansen_ci` (log-log, Aalen variance).
    """
    from training.models.competing import make_target

    time = np.asarray(time, dtype=float)
    codes = _codes(cause)
    labels = np.asarray(group, dtype=object)
    keep = np.isfinite(time) & pd.notna(labels)
    names = list(order) if order is not None else sorted({str(v) for v in labels[keep]})
    event_names = np.array(["censored", "bone_metastasis", "death"])
    grid = np.asarray(times_days, dtype=float)
    out: dict[str, dict] = {"cif": {}, "lo": {}, "hi": {}, "n": {}, "ev": {}, "comp": {}}
    for name in names:
        mine = keep & (labels.astype(str) == name)
        out["n"][name] = int(mine.sum())
        out["ev"][name] = int((codes[mine] == BONE_METASTASIS).sum())
        out["comp"][name] = int((codes[mine] == DEATH).sum())
        if not mine.any():
            nan = np.full(grid.size, np.nan)
            out["cif"][name], out["lo"][name], out["hi"][name] = nan, nan, nan
            continue
        ci = aalen_johansen_ci(make_target(event_names[codes[mine]], time[mine]), grid)
        out["cif"][name] = ci["cif"].to_numpy()
        out["lo"][name] = ci["lo"].to_numpy()
        out["hi"][name] = ci["hi"].to_numpy()
    return IncidenceCurves(
        groups=names,
        times_days=grid,
        cif=out["cif"],
        lo=out["lo"],
        hi=out["hi"],
        n=out["n"],
        n_events=out["ev"],
        n_competing=out["comp"],
    )

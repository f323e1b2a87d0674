"""Promotion gates on version tags, and the challenger's selection, both ways (no MLflow)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from tests.models.data import known_cohort
from tests.tracking.gate_values import GOOD, HORIZONS
from training.evaluation.names import lower_is_better
from training.registry.gates import PromotionPolicy, check_gates
from training.registry.selection import paired_se, select, select_challenger

CALIBRATION_GATES = [
    f"{kind}_{h}m" for h in HORIZONS for kind in ("calibration_slope", "calibration_in_the_large")
]


def verdicts(cand, champ=None, policy=None):
    return {g.name: g.passed for g in check_gates(cand, champ, policy or PromotionPolicy())}


def test_all_gates_pass_without_champion():
    assert verdicts(GOOD) == {"discrimination": True, **dict.fromkeys(CALIBRATION_GATES, True)}


@pytest.mark.parametrize(
    ("champion_c", "passes"), [("0.785", True), ("0.79", True), ("0.7901", False), ("0.85", False)]
)
def test_discrimination_margin(champion_c, passes):
    champ = dict(GOOD, test_uno_c=champion_c)
    assert verdicts(GOOD, champ)["discrimination"] is passes


@pytest.mark.parametrize("h", HORIZONS)
@pytest.mark.parametrize(
    ("slope", "passes"),
    [("0.8", True), ("1.2", True), ("0.79", False), ("1.25", False), ("nan", False)],
)
def test_slope_band_at_every_headline_horizon(h, slope, passes):
    got = verdicts(dict(GOOD, **{f"test_calibration_slope_{h}m": slope}))
    assert got[f"calibration_slope_{h}m"] is passes
    others = [g for g in CALIBRATION_GATES if g != f"calibration_slope_{h}m"]
    assert all(got[g] for g in others)


@pytest.mark.parametrize("h", HORIZONS)
def test_calibration_in_the_large_at_every_headline_horizon(h):
    gates = check_gates(
        dict(GOOD, **{f"test_calibration_in_the_large_{h}m": "0.08"}), None, PromotionPolicy()
    )
    failed = [g for g in gates if not g.passed]
    assert [g.name for g in failed] == [f"calibration_in_the_large_{h}m"]
    assert failed[0].detail == f"test_calibration_in_the_large_{h}m +0.080 beyond +/-0.05"


def test_missing_tags_fail_every_gate():
    gates = check_gates({}, None, PromotionPolicy())
    assert [g.passed for g in gates] == [False] * (1 + len(CALIBRATION_GATES))
    assert gates[0].detail == "test_uno_c is not recorded on the version"
    assert gates[1].detail == "test_calibration_slope_12m is not recorded on the version"


def test_policy_is_configurable():
    strict = PromotionPolicy(discrimination_margin=0.0, slope_band=(0.9, 1.1))
    assert (
        verdicts(dict(GOOD, test_calibration_slope_24m="0.85"), policy=strict)[
            "calibration_slope_24m"
        ]
        is False
    )
    assert verdicts(GOOD, dict(GOOD, test_uno_c="0.781"), strict)["discrimination"] is False
    only_24 = PromotionPolicy(horizons_months=(24,))
    assert set(verdicts(GOOD, policy=only_24)) == {
        "discrimination",
        "calibration_slope_24m",
        "calibration_in_the_large_24m",
    }


# -- selection of the challenger -------------------------------------------------------------


@dataclass
class Candidate:
    version: str
    metrics: dict[str, float]


def candidate(version: str, brier: float, c: float, slope: float = 0.95) -> Candidate:
    metrics = {k: float(v) for k, v in GOOD.items()}
    metrics.update(cv_brier_headline_mean=brier, cv_uno_c_mean=c, test_calibration_slope_24m=slope)
    return Candidate(version, metrics)


def test_metric_directions():
    assert lower_is_better("cv_brier_headline_mean") and lower_is_better("test_brier_24m")
    assert lower_is_better("test_ici_24m") and lower_is_better("integrated_brier")
    assert not lower_is_better("cv_uno_c_mean") and not lower_is_better("test_scaled_brier_24m")


def test_challenger_is_the_lowest_brier_not_the_highest_c():
    pool = [candidate("1", 0.080, 0.800), candidate("2", 0.075, 0.795), candidate("3", 0.079, 0.8)]
    assert select_challenger(pool, "cv_brier_headline_mean").version == "2"
    # The same candidates ranked by the old rule (Uno's C, higher is better).
    assert select_challenger(pool, "cv_uno_c_mean").version == "1"


def test_discrimination_gate_judges_the_interval_of_the_difference():
    # 0.02 below the champion, beyond the 0.01 margin: refused on the points alone, but with
    # intervals the difference (-0.02, 95 % CI about -0.105 to +0.065) is noise.
    wide = dict(GOOD, test_uno_c="0.76", test_uno_c_lo="0.70", test_uno_c_hi="0.82")
    champ = dict(GOOD, test_uno_c="0.78", test_uno_c_lo="0.72", test_uno_c_hi="0.84")
    assert verdicts(dict(GOOD, test_uno_c="0.76"), champ)["discrimination"] is False
    gate = check_gates(wide, champ, PromotionPolicy())[0]
    assert gate.passed and "not evidence it is worse" in gate.detail
    assert gate.estimate == pytest.approx(-0.02) and gate.lo < 0 < gate.hi
    # Clearly worse: refused, the interval of the difference below 0.
    poor = dict(GOOD, test_uno_c="0.70", test_uno_c_lo="0.68", test_uno_c_hi="0.72")
    sure = dict(GOOD, test_uno_c="0.80", test_uno_c_lo="0.79", test_uno_c_hi="0.81")
    gate = check_gates(poor, sure, PromotionPolicy())[0]
    assert not gate.passed and gate.hi < 0 and "beyond the noise" in gate.detail


@pytest.mark.parametrize(
    ("metric", "value", "lo", "hi", "passes"),
    [
        # Outside the band, interval includes the ideal: a small sample's wobble, passes.
        ("test_calibration_slope_12m", "0.70", "0.45", "1.10", True),
        ("test_calibration_slope_36m", "1.45", "0.95", "2.10", True),
        ("test_calibration_in_the_large_24m", "0.07", "-0.01", "0.15", True),
        # Outside the band and the interval excludes the ideal: refused.
        ("test_calibration_slope_12m", "0.70", "0.55", "0.85", False),
        ("test_calibration_slope_36m", "1.45", "1.15", "1.80", False),
        ("test_calibration_in_the_large_24m", "0.07", "0.03", "0.11", False),
        # Inside the band: passes whatever the interval.
        ("test_calibration_slope_24m", "0.85", "0.70", "0.95", True),
        # An interval that does not hold its estimate is not its interval: the point decides.
        ("test_calibration_slope_24m", "0.55", "0.80", "1.30", False),
    ],
)
def test_calibration_gates_judge_the_evidence(metric, value, lo, hi, passes):
    values = dict(GOOD, **{metric: value, f"{metric}_lo": lo, f"{metric}_hi": hi})
    gate = next(g for g in check_gates(values, None, PromotionPolicy()) if g.metric == metric)
    assert gate.passed is passes
    assert gate.estimate == float(value)
    if float(lo) <= float(value) <= float(hi):
        assert (gate.lo, gate.hi) == (float(lo), float(hi))
        assert f"95 % CI {float(lo):.3f} to {float(hi):.3f}" in gate.detail
    else:
        assert gate.lo is None and "CI" not in gate.detail


def named(version: str, family: str, brier: float) -> Candidate:
    c = candidate(version, brier, 0.8)
    c.family = family  # type: ignore[attr-defined]
    return c


def test_the_lowest_score_within_noise_is_not_chosen_and_the_reason_is_said():
    # xgb_cox is 0.0005 lower than cox_ridge on average over the same patients, but the
    # per-patient differences scatter (SD 0.05 over 800 patients: SE 0.0017).
    rng = np.random.default_rng(0)
    base = rng.uniform(0.0, 0.2, 800)
    noise = rng.normal(0.0, 0.05, 800)
    noise -= noise.mean() + 0.0005
    losses = {"1": base, "2": base + noise}
    pool = [
        named("1", "cox_ridge", float(base.mean())),
        named("2", "xgb_cox", float(losses["2"].mean())),
    ]
    choice = select(pool, "cv_brier_headline_mean", losses=losses)
    assert choice.lowest.version == "2" and choice.version == "1"
    text = "\n".join(choice.reasons)
    assert "one paired standard error" in text
    assert "not version 2 (xgb_cox), the lowest" in text and "lower by 0.0005" in text
    assert "paired standard error of the difference (0.0017)" in text
    # Without the per-patient losses the point score decides.
    assert select_challenger(pool, "cv_brier_headline_mean").version == "2"


def test_a_family_better_beyond_its_noise_is_chosen():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.0, 0.2, 800)
    better = base - 0.004 + rng.normal(0.0, 0.01, 800)  # lower by 0.004, SE about 0.0004
    losses = {"1": base, "2": better, "3": base + 0.001}
    pool = [
        named("1", "cox_ridge", float(base.mean())),
        named("2", "cox_spline", float(better.mean())),
        named("3", "rsf", float(base.mean() + 0.001)),
    ]
    choice = select(pool, "cv_brier_headline_mean", losses=losses)
    assert choice.version == "2" == choice.lowest.version
    assert "every simpler family is worse by more than its paired SE" in choice.reasons[-2]
    assert "version 1 (cox_ridge) +0.004" in choice.reasons[-2]
    assert (
        choice.reasons[-1]
        == "version 2 (cox_spline): every calibration gate passes on its intervals"
    )


def test_paired_standard_error_counts_patients_not_rows():
    rng = np.random.default_rng(2)
    d = np.repeat(rng.normal(0.0, 1.0, 100), 4)  # 4 identical landmark rows per patient
    groups = np.repeat(np.arange(100), 4)
    assert paired_se(d, groups) == pytest.approx(np.std(d[::4], ddof=1) / 10, rel=0.02)
    assert paired_se(d) == pytest.approx(np.std(d, ddof=1) / 20)


def test_calibration_breaks_ties_within_the_noise_and_never_more():
    rng = np.random.default_rng(3)
    base = rng.uniform(0.0, 0.2, 800)

    def refused(version: str, family: str, brier: float) -> Candidate:
        c = named(version, family, brier)
        c.metrics["test_calibration_in_the_large_36m"] = 0.09  # its interval excludes 0
        return c

    # Better beyond its noise: chosen although its calibration gates refuse it (the Brier score
    # weighs calibration already), and the reasons say promote will refuse it.
    better = base - 0.004 + rng.normal(0.0, 0.01, 800)
    pool = [
        named("1", "cox_ridge", float(base.mean())),
        refused("2", "xgb_cox", float(better.mean())),
    ]
    choice = select(pool, "cv_brier_headline_mean", losses={"1": base, "2": better})
    assert choice.version == "2"
    assert choice.reasons[-1] == (
        "version 2 (xgb_cox): its calibration gates refuse it (calibration_in_the_large_36m); "
        "`promote` will refuse it without --force; no candidate within one paired SE of the "
        "lowest score passes them"
    )
    # Within the noise of each other: the simplest whose gates pass, and why not the simplest.
    noisy = base + rng.normal(0.0, 0.05, 800)
    noisy -= noisy.mean() - base.mean() + 0.0005  # lower by 0.0005, SE about 0.0018
    pool = [
        refused("1", "cox_ridge", float(base.mean())),
        named("2", "xgb_cox", float(noisy.mean())),
    ]
    choice = select(pool, "cv_brier_headline_mean", losses={"1": base, "2": noisy})
    assert choice.version == "2" == choice.lowest.version
    text = "\n".join(choice.reasons)
    assert (
        "not version 1 (cox_ridge), the simplest within one paired SE of the lowest: its "
        "calibration gates refuse it (calibration_in_the_large_36m), and version 2 (xgb_cox) is "
        "the simplest within that noise whose gates pass"
    ) in text
    assert "every simpler family is worse" not in text
    assert (
        choice.reasons[-1] == "version 2 (xgb_cox): every calibration gate passes on its intervals"
    )
    # The same pair with both calibrated: the simplest.
    pool[0] = named("1", "cox_ridge", float(base.mean()))
    assert select(pool, "cv_brier_headline_mean", losses={"1": base, "2": noisy}).version == "1"


# -- the gates on a cohort whose answer is known ---------------------------------------------


def gate_verdicts(y, cif) -> dict[str, bool]:
    """The calibration gates on the suite's estimates and bootstrap intervals of ``cif``."""
    from training.evaluation.suite import (
        SplitEvaluation,
        bootstrap_intervals,
        calibration_intervals,
        point_metrics,
    )

    at_24 = ("calibration_slope_24m", "calibration_in_the_large_24m")
    intervals = {
        **bootstrap_intervals(y, y, cif[24], cif[24], 50, 0, names=at_24),
        **calibration_intervals(y, cif, 50, 0),
    }
    ev = SplitEvaluation(point_metrics(y, y, cif[24], cif), intervals)
    values = {k: str(v) for k, v in ev.flat("test_").items()}
    gates = [g for g in check_gates(values, None, PromotionPolicy()) if g.name != "discrimination"]
    assert all(g.lo is not None for g in gates)  # every gate judged with its interval
    return {g.name: g.passed for g in gates}


def test_gates_pass_the_true_incidence_and_refuse_a_clear_miscalibration_on_400_patients():
    from scipy.special import expit, logit

    y, truth = known_cohort(400, seed=3)
    assert all(gate_verdicts(y, truth).values())
    doubled = {h: np.clip(2 * p, 0, 1) for h, p in truth.items()}
    refused = [name for name, ok in gate_verdicts(y, doubled).items() if not ok]
    assert {f"calibration_in_the_large_{h}m" for h in (24, 36)} <= set(refused)
    extreme = {h: expit(2.5 * logit(p)) for h, p in truth.items()}  # slope about 0.4
    refused = [name for name, ok in gate_verdicts(y, extreme).items() if not ok]
    assert {f"calibration_slope_{h}m" for h in (12, 24, 36)} <= set(refused)


def _stack_pool(family_losses: dict[str, tuple[str, np.ndarray]], stack: np.ndarray):
    """Candidates named by family with their losses, the run's stack last."""
    pool, losses = [], {}
    for version, (family, loss) in family_losses.items():
        pool.append(named(version, family, float(loss.mean())))
        losses[version] = loss
    version = str(len(pool) + 1)
    c = named(version, "stacked_oof", float(stack.mean()))
    c.metrics.update(stack_weight_cox_ridge=0.4, stack_weight_cox_spline=0.6)
    pool.append(c)
    losses[version] = stack
    return pool, losses


def _tie():
    """cox_ridge and cox_spline differ by 0.0003 with a paired SE of about 0.0018 (a tie); the
    stack is lower than both by about 0.0002, within its noise."""
    rng = np.random.default_rng(2)
    base = rng.uniform(0.0, 0.2, 800)
    noise = rng.normal(0.0, 0.05, 800)
    spline = base + noise - noise.mean() - 0.0003
    stack = 0.5 * (base + spline) - 0.0002
    return _stack_pool({"1": ("cox_ridge", base), "2": ("cox_spline", spline)}, stack)


def test_a_stack_within_noise_is_not_chosen_over_a_simpler_family_and_the_output_says_why():
    # The default rule: the stack is one more candidate, the most complex.
    pool, losses = _tie()
    choice = select(pool, "cv_brier_headline_mean", losses=losses)
    assert choice.version == "1" and choice.lowest.version == "3"
    text = "\n".join(choice.reasons)
    assert "stack of the families" in choice.reasons[0]
    assert "the stack of the families: it is within noise" not in text  # said once, below
    assert "not version 3 (stacked_oof: cox_spline 0.60, cox_ridge 0.40), the lowest" in text


def test_the_stack_is_chosen_where_families_tie_under_the_tied_rule_and_the_output_says_why():
    pool, losses = _tie()
    choice = select(pool, "cv_brier_headline_mean", losses=losses, rule="stack_when_tied")
    assert choice.version == "3" and choice.lowest.family == "cox_spline"
    text = "\n".join(choice.reasons)
    assert "version 3 (stacked_oof: cox_spline 0.60, cox_ridge 0.40): cv_brier" in text
    assert "no family is clearly best: 2 are within one paired SE of the lowest" in text
    assert "not version 2 (cox_spline), the lowest family" in text
    assert "not version 1 (cox_ridge), the simplest family within noise of the lowest" in text
    assert choice.reasons[-1] == (
        "version 3 (stacked_oof: cox_spline 0.60, cox_ridge 0.40): every calibration gate "
        "passes on its intervals"
    )


def test_the_stack_breaks_a_calibration_tie_under_both_rules():
    # cox_ridge is lowest, but its gates refuse it; the stack is within noise and passes.
    rng = np.random.default_rng(6)
    base = rng.uniform(0.0, 0.2, 800)
    spline = base + 0.004 + rng.normal(0.0, 0.01, 800)  # clearly worse
    stack = base + 0.00005 + rng.normal(0.0, 0.01, 800)
    pool, losses = _stack_pool({"1": ("cox_ridge", base), "2": ("cox_spline", spline)}, stack)
    pool[0].metrics["test_calibration_slope_12m"] = 0.5
    for rule in ("stack_as_candidate", "stack_when_tied"):
        choice = select(pool, "cv_brier_headline_mean", losses=losses, rule=rule)
        assert choice.version == "3", rule
        assert "calibration_slope_12m" in "\n".join(choice.reasons), rule


def test_a_family_clearly_best_is_chosen_over_the_stack_and_the_output_says_why():
    rng = np.random.default_rng(3)
    base = rng.uniform(0.0, 0.2, 800)
    spline = base - 0.004 + rng.normal(0.0, 0.01, 800)  # lower by 0.004, SE about 0.0004
    stack = spline + 0.0001 + rng.normal(0.0, 0.01, 800)  # not lower than the best beyond noise
    pool, losses = _stack_pool({"1": ("cox_ridge", base), "2": ("cox_spline", spline)}, stack)
    choice = select(pool, "cv_brier_headline_mean", losses=losses)
    assert choice.version == "2"
    assert "but the most complex: version 2 (cox_spline) is simpler" in "\n".join(choice.reasons)
    tied = select(pool, "cv_brier_headline_mean", losses=losses, rule="stack_when_tied")
    assert tied.version == "2"
    assert (
        "not version 3 (stacked_oof: cox_spline 0.60, cox_ridge 0.40): one family is clearly "
        "best" in "\n".join(tied.reasons)
    )


@pytest.mark.parametrize("rule", ["stack_as_candidate", "stack_when_tied"])
def test_a_stack_worse_beyond_noise_or_miscalibrated_is_not_chosen(rule):
    rng = np.random.default_rng(4)
    base = rng.uniform(0.0, 0.2, 800)
    noise = rng.normal(0.0, 0.05, 800)
    spline = base + noise - noise.mean() - 0.0003
    worse = base + 0.01 + rng.normal(0.0, 0.01, 800)
    pool, losses = _stack_pool({"1": ("cox_ridge", base), "2": ("cox_spline", spline)}, worse)
    choice = select(pool, "cv_brier_headline_mean", losses=losses, rule=rule)
    assert choice.version == "1"
    assert "worse than the lowest" in "\n".join(choice.reasons)
    stack = 0.5 * (base + spline) - 0.0002
    pool, losses = _stack_pool({"1": ("cox_ridge", base), "2": ("cox_spline", spline)}, stack)
    pool[-1].metrics["test_calibration_slope_24m"] = 0.5  # refused by its gate
    choice = select(pool, "cv_brier_headline_mean", losses=losses, rule=rule)
    assert choice.version == "1"
    assert "its calibration gates refuse it (calibration_slope_24m)" in "\n".join(choice.reasons)


@pytest.mark.parametrize("rule", ["stack_as_candidate", "stack_when_tied"])
def test_the_stack_lower_beyond_noise_than_a_clearly_best_family_is_chosen(rule):
    rng = np.random.default_rng(5)
    base = rng.uniform(0.0, 0.2, 800)
    spline = base - 0.004 + rng.normal(0.0, 0.01, 800)
    stack = spline - 0.003 + rng.normal(0.0, 0.005, 800)
    pool, losses = _stack_pool({"1": ("cox_ridge", base), "2": ("cox_spline", spline)}, stack)
    choice = select(pool, "cv_brier_headline_mean", losses=losses, rule=rule)
    assert choice.version == "3"
    assert choice.reasons[-1].startswith("version 3 (stacked_oof: cox_spline 0.60")

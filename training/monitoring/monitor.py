"""Every check of a monitoring run together: :func:`run_checks` (pure: no MLflow, no files)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from features.contract import Cohort
from features.vocabulary import probability_column
from training.models.competing import BONE_METASTASIS, make_target
from training.monitoring.curves import cumulative_hazard
from training.monitoring.cusum import CusumResult, control_limit, cusum, run_lengths
from training.monitoring.draws import MISSING_GROUP, PROVENANCE, draw_table, log_percent
from training.monitoring.groups import compare_groups, iso
from training.monitoring.outcomes import calibration_windows, observed_expected, window_alarms
from training.monitoring.rules import (
    DETECTION_EVENTS,
    MIN_GROUP_DRAWS,
    QUANTIFICATION_EVENTS,
    RULE_BY_KEY,
)
from training.monitoring.westgard import westgard

__all__ = [
    "MonitorCohort",
    "MonitorConfig",
    "MonitorResult",
    "run_checks",
    "BY_CHOICES",
    "MARKER_DRAWS",
]

#: Columns ``--by`` may group draws by.
BY_CHOICES = ("site_id", *PROVENANCE)
#: Which draws the marker checks compare: ``enrollment`` (day 0: every patient measured at the
#: same point of the disease, so a cohort followed for less long does not look shifted) or
#: ``all`` (more draws, but later draws rise before bone metastasis and a current cohort has
#: fewer of them).
MARKER_DRAWS = ("enrollment", "all")


@dataclass(frozen=True, eq=False)
class MonitorCohort:
    """A validated cohort, its enrollment dates (or None) and its predictions (or None):
    a frame with ``patient_id`` and ``p_bone_met_<h>m`` (and ``p_death_<h>m``) columns."""

    cohort: Cohort
    enrollment: np.ndarray | None = None
    predictions: pd.DataFrame | None = None


@dataclass(frozen=True)
class MonitorConfig:
    """Settings of a monitoring run (``docs/monitoring.md``)."""

    by: tuple[str, ...] = PROVENANCE
    alpha: float = 0.01
    marker_draws: str = "enrollment"
    oe_horizons_months: tuple[float, ...] = (12.0, 24.0)
    drift_months: float = 24.0
    window_months: float = 12.0
    window_days: float = 365.0
    window_step_days: float = 91.0
    window_min_events: int = 10
    n_boot: int = 100
    cusum_hazard_ratio: float = 2.0
    cusum_arl: float = 1000.0
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [c for c in self.by if c not in BY_CHOICES]
        if bad or not self.by:
            raise ValueError(
                f"--by takes columns among {', '.join(BY_CHOICES)}; got "
                f"{', '.join(self.by) or 'none'}"
            )
        if self.marker_draws not in MARKER_DRAWS:
            raise ValueError(
                f"marker draws must be one of {', '.join(MARKER_DRAWS)}, got {self.marker_draws!r}"
            )
        if not 0.0 < self.alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {self.alpha}")
        if not self.cusum_hazard_ratio > 1.0:
            raise ValueError(f"the CUSUM's hazard ratio must be > 1, got {self.cusum_hazard_ratio}")
        if not self.cusum_arl > 1.0:
            raise ValueError(f"the CUSUM's in-control run length must be > 1, got {self.cusum_arl}")


@dataclass
class MonitorResult:
    """Numbers (JSON-ready), alarms, what was not computed and the frames the charts need."""

    numbers: dict = field(default_factory=dict)
    alarms: list[dict] = field(default_factory=list)
    not_computed: dict[str, str] = field(default_factory=dict)
    draws: pd.DataFrame | None = None
    qc_chart: pd.DataFrame | None = None
    cusum: CusumResult | None = None
    origin: np.datetime64 | None = None


def _where(row: dict, columns) -> str:
    return ", ".join(f"{c} {row[c]}" for c in columns if c in row)


def _alarm(result: MonitorResult, kind: str, row: dict, columns, detail: str) -> None:
    where = {c: row[c] for c in columns if c in row}
    began = row.get("began")
    text = f"{RULE_BY_KEY[kind].label}: {_where(row, columns)}: {detail}"
    if began:
        text += f"; began {began}"
    result.alarms.append({"kind": kind, **where, "began": began, "message": text})


def _marker(
    ref: pd.DataFrame, cur: pd.DataFrame, cfg: MonitorConfig, result: MonitorResult
) -> None:
    positive = pd.concat([ref["oc_positive_percent"], cur["oc_positive_percent"]])
    positive = positive[positive > 0]
    floor = float(positive.min()) / 2 if len(positive) else 1e-6
    for frame in (ref, cur):
        frame["log_percent"] = log_percent(frame["oc_positive_percent"].to_numpy(), floor)
        counted = frame["oc_positive_events"].notna()
        frame["below_quantification"] = np.where(
            counted, (frame["oc_positive_events"] < QUANTIFICATION_EVENTS).astype(float), np.nan
        )
        frame["below_detection"] = np.where(
            counted, (frame["oc_positive_events"] < DETECTION_EVENTS).astype(float), np.nan
        )
    by, match = list(cfg.by), ["lab_id", "instrument_id"]
    checks = {
        "marker_shift": ("log_percent", "rank", "median ratio"),
        "below_quantification": ("below_quantification", "more", "share"),
        "pbmc_counts": ("pbmc_events", "rank", "median"),
    }
    numbers = {}
    for kind, (value, test, _) in checks.items():
        rows = compare_groups(cur, ref, value, by, match, test, cfg.alpha)
        for row in rows:
            if kind == "marker_shift":
                if row["reference_value"] is not None:
                    row["ratio"] = float(np.exp(row["current_value"] - row["reference_value"]))
                row["current_value"] = float(np.exp(row["current_value"]))
                if row["reference_value"] is not None:
                    row["reference_value"] = float(np.exp(row["reference_value"]))
            if not row["alarm"]:
                continue
            if kind == "marker_shift":
                detail = (
                    f"median {row['current_value']:.4g} % against {row['reference_value']:.4g} % "
                    f"({row['reference']}), x{row['ratio']:.2f}, Holm p = {row['p_adjusted']:.2g}"
                )
            elif kind == "below_quantification":
                detail = (
                    f"{100 * row['current_value']:.0f} % of draws below {QUANTIFICATION_EVENTS} "
                    f"positive events against {100 * row['reference_value']:.0f} % "
                    f"({row['reference']}), Holm p = {row['p_adjusted']:.2g}"
                )
            else:
                detail = (
                    f"median {row['current_value']:.0f} PBMC events against "
                    f"{row['reference_value']:.0f} ({row['reference']}), Holm p = "
                    f"{row['p_adjusted']:.2g}"
                )
            _alarm(result, kind, row, by, detail)
        numbers[kind] = rows
    detection = []
    for key, g in cur.groupby(by, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        detection.append(
            {
                **dict(zip(by, key, strict=True)),
                "draws": len(g),
                "with_counts": int(g["oc_positive_events"].notna().sum()),
                "below_detection": float(g["below_detection"].mean())
                if g["below_detection"].notna().any()
                else None,
                "below_quantification": float(g["below_quantification"].mean())
                if g["below_quantification"].notna().any()
                else None,
                "median_pbmc_events": float(g["pbmc_events"].median())
                if g["pbmc_events"].notna().any()
                else None,
                "first": iso(g["date"].min()) if g["date"].notna().any() else None,
                "last": iso(g["date"].max()) if g["date"].notna().any() else None,
            }
        )
    numbers["groups"] = detection
    result.numbers["marker"] = numbers


def _qc(qc: pd.DataFrame, result: MonitorResult) -> None:
    chart, violations = westgard(qc)
    result.qc_chart = chart
    notes = chart.dropna(subset=["note"]).drop_duplicates(
        ["lab_id", "instrument_id", "control_level"]
    )
    result.numbers["qc"] = {
        "results": int(len(chart)),
        "series": int(chart.groupby(["lab_id", "instrument_id", "control_level"]).ngroups),
        "violations": violations,
        "notes": [
            f"{r.lab_id} {r.instrument_id} {r.control_level}: {r.note}" for r in notes.itertuples()
        ],
    }
    # One alarm per lot of an instrument: its rules and levels, the first day one was broken.
    lots: dict[tuple, list[dict]] = {}
    for v in violations:
        lots.setdefault((v["lab_id"], v["instrument_id"], v["reagent_lot"]), []).append(v)
    for (lab, instrument, lot), found in lots.items():
        began = min(v["began"] for v in found)
        rules = sorted({f"{v['rule']} ({v['control_level']})" for v in found})
        _alarm(
            result,
            "westgard",
            {"lab_id": lab, "instrument_id": instrument, "reagent_lot": lot, "began": began},
            ("lab_id", "instrument_id", "reagent_lot"),
            f"{', '.join(rules)}; last violation {max(v['last'] for v in found)}",
        )


def _free_rows(mc: MonitorCohort) -> np.ndarray:
    return mc.cohort.patients["bone_metastasis_at_enrollment"].to_numpy(dtype=float) != 1.0


def _predicted(mc: MonitorCohort, months: float) -> pd.DataFrame:
    """Patients free of bone metastasis at enrollment with their site, enrollment lab and
    prediction ``p`` by ``months``."""
    p = mc.cohort.patients
    free = _free_rows(mc)
    pred = mc.predictions.set_index("patient_id")
    frame = pd.DataFrame({"patient_id": p["patient_id"].to_numpy(dtype=object)})
    for c in ("site_id", "lab_id"):
        values = (
            p[c].to_numpy(dtype=object) if c in p.columns else np.full(len(p), None, dtype=object)
        )
        frame[c] = np.where(pd.isna(values), MISSING_GROUP, values)
    column = probability_column(months)
    frame["p"] = (
        pred[column].reindex(frame["patient_id"]).to_numpy(dtype=float)
        if column in pred
        else np.nan
    )
    frame["date"] = mc.enrollment if mc.enrollment is not None else np.datetime64("NaT")
    # Date order, so that a flagged group's onset is the day its predictions moved.
    return frame.loc[free].sort_values("date", kind="stable").reset_index(drop=True)


def _drift(
    ref: MonitorCohort, cur: MonitorCohort, cfg: MonitorConfig, result: MonitorResult
) -> None:
    months = cfg.drift_months
    r, c = _predicted(ref, months), _predicted(cur, months)
    if c["p"].isna().all() or r["p"].isna().all():
        result.not_computed["prediction_drift"] = (
            f"the predictions have no {probability_column(months)} column"
        )
        return
    numbers = {
        "months": months,
        "current_mean": float(c["p"].mean()),
        "reference_mean": float(r["p"].mean()),
    }
    for by in ("site_id", "lab_id"):
        rows = compare_groups(c, r, "p", [by], [by], "rank", cfg.alpha / 2)
        for row in rows:
            row["current_mean"] = float(c.loc[c[by] == row[by], "p"].mean())
            if row["alarm"]:
                _alarm(
                    result,
                    "prediction_drift",
                    row,
                    [by],
                    f"median predicted {months:g}-month incidence {row['current_value']:.3f} "
                    "against "
                    f"{row['reference_value']:.3f} ({row['reference']}), Holm p = "
                    f"{row['p_adjusted']:.2g}",
                )
        numbers[by] = rows
    result.numbers["prediction_drift"] = numbers


def _outcomes(cur: MonitorCohort, cfg: MonitorConfig, result: MonitorResult, origin) -> None:
    p = cur.cohort.patients
    free = _free_rows(cur) & p["event"].notna().to_numpy()
    if not free.any():
        for what in ("observed_expected", "calibration_window", "cusum"):
            result.not_computed[what] = "the current cohort has no outcomes (time_days, event) yet"
        return
    sub = p.loc[free].reset_index(drop=True)
    y = make_target(sub["event"].tolist(), sub["time_days"].to_numpy(dtype=float))
    pred = cur.predictions.set_index("patient_id").reindex(sub["patient_id"]).reset_index()
    site = (
        sub["site_id"].to_numpy(dtype=object)
        if "site_id" in sub
        else np.full(len(sub), None, object)
    )
    site = np.where(pd.isna(site), MISSING_GROUP, site)
    sites = [s for s in sorted(set(site)) if np.sum(site == s) >= MIN_GROUP_DRAWS]
    scopes = [("all", np.ones(len(sub), bool))]
    if len(sites) > 1:
        scopes += [(s, site == s) for s in sites]
    horizons = [h for h in cfg.oe_horizons_months if probability_column(h) in pred]
    m = len(horizons) * len(scopes)
    rows = []
    for scope, mask in scopes:
        for h in horizons:
            row = observed_expected(
                y[mask],
                pred[probability_column(h)].to_numpy(dtype=float)[mask],
                h,
                1 - cfg.alpha / max(m, 1),
            )
            row["site_id"] = scope
            row["alarm"] = bool(
                row["ratio"] is not None and not row["ratio_lo"] <= 1.0 <= row["ratio_hi"]
            )
            if row["alarm"]:
                _alarm(
                    result,
                    "observed_expected",
                    row,
                    ["site_id"],
                    f"O/E at {h:g} months {row['ratio']:.2f} "
                    f"({row['ratio_lo']:.2f}-{row['ratio_hi']:.2f}, "
                    f"level {row['conf_level']:.4f}): observed {row['observed']:.3f}, expected "
                    f"{row['expected']:.3f}",
                )
            rows.append(row)
    result.numbers["observed_expected"] = rows
    if cur.enrollment is None:
        why = "needs enrollment_date in the current patients table (the calendar order of patients)"
        result.not_computed["calibration_window"] = why
        result.not_computed["cusum"] = why
        return
    enroll = (cur.enrollment[free] - origin).astype(float)
    wm = cfg.window_months
    col = probability_column(wm)
    if col in pred:
        windows = calibration_windows(
            y,
            pred[col].to_numpy(dtype=float),
            enroll,
            wm,
            cfg.window_days,
            cfg.window_step_days,
            cfg.window_min_events,
            cfg.n_boot,
            cfg.seed,
        )
        window_alarms(windows, cfg.alpha)
        for w in windows:
            w["start_date"] = iso(origin + np.timedelta64(int(w["start"]), "D"))
            w["end_date"] = iso(origin + np.timedelta64(int(w["end"]), "D"))
            if w.get("alarm"):
                w["began"] = w["start_date"]
                _alarm(
                    result,
                    "calibration_window",
                    {**w, "window": f"{w['start_date']} to {w['end_date']}"},
                    ["window"],
                    f"slope {w['slope']:.2f} ({w['slope_lo']:.2f}-{w['slope_hi']:.2f}), "
                    f"intercept {w['intercept']:.2f} "
                    f"({w['intercept_lo']:.2f}-{w['intercept_hi']:.2f})",
                )
        result.numbers["calibration_windows"] = {"months": wm, "windows": windows}
    else:
        result.not_computed["calibration_window"] = f"the predictions have no {col} column"
    grid, cumhaz = cumulative_hazard(pred)
    limit = control_limit(cfg.cusum_arl, cfg.cusum_hazard_ratio)
    chart = cusum(
        enroll,
        y["time"].astype(float),
        y["cause"] == BONE_METASTASIS,
        grid,
        cumhaz,
        cfg.cusum_hazard_ratio,
        limit,
    )
    result.cusum = chart
    delay = float(
        run_lengths(limit, cfg.cusum_hazard_ratio, cfg.cusum_hazard_ratio, 2000, 1).mean()
    )
    per_year = chart.expected_per_day * 365.25
    result.numbers["cusum"] = {
        "hazard_ratio": cfg.cusum_hazard_ratio,
        "limit": limit,
        "in_control_arl_expected_events": cfg.cusum_arl,
        "in_control_arl_years_at_current_rate": cfg.cusum_arl / per_year if per_year > 0 else None,
        "detection_delay_expected_events": delay,
        "expected_events": float(chart.expected[-1]),
        "observed_events": float(chart.observed[-1]),
        "expected_per_year": per_year,
        "signal": iso(origin + np.timedelta64(int(chart.signal_day), "D"))
        if chart.signal_day is not None
        else None,
        "began": iso(origin + np.timedelta64(int(chart.onset_day), "D"))
        if chart.onset_day is not None
        else None,
        "max_statistic": float(chart.statistic.max()) if chart.statistic.size else 0.0,
    }
    if chart.signal_day is not None:
        n = result.numbers["cusum"]
        _alarm(
            result,
            "cusum",
            {"began": n["began"], "scope": "all"},
            ["scope"],
            f"CUSUM crossed h = {limit} on {n['signal']} (hazard ratio {cfg.cusum_hazard_ratio:g} "
            "tuned, "
            f"{n['observed_events']:.0f} observed against {n['expected_events']:.1f} expected)",
        )


def run_checks(
    reference: MonitorCohort,
    current: MonitorCohort,
    qc: pd.DataFrame | None = None,
    config: MonitorConfig | None = None,
) -> MonitorResult:
    """All checks of one monitoring run (``docs/monitoring.md``).

    The marker checks need draws in both cohorts; the prediction checks need predictions of
    both; the outcome checks outcomes (and, for windows and the CUSUM, enrollment dates) in the
    current cohort. What cannot be computed is listed in ``not_computed`` with the reason.
    """
    cfg = config or MonitorConfig()
    result = MonitorResult()
    dates = [d for d in (reference.enrollment, current.enrollment) if d is not None]
    origin = min(np.min(d) for d in dates) if dates else None
    result.origin = origin
    result.numbers["config"] = {
        k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()
    }
    result.numbers["origin"] = iso(origin) if origin is not None else None
    ref_draws = draw_table(reference.cohort, reference.enrollment)
    cur_draws = draw_table(current.cohort, current.enrollment)
    result.numbers["counts"] = {
        "reference_patients": len(reference.cohort.patients),
        "current_patients": len(current.cohort.patients),
        "reference_draws": len(ref_draws),
        "current_draws": len(cur_draws),
    }
    if cfg.marker_draws == "enrollment":
        ref_draws = ref_draws.loc[ref_draws["day"] == 0.0].reset_index(drop=True)
        cur_draws = cur_draws.loc[cur_draws["day"] == 0.0].reset_index(drop=True)
    if len(ref_draws) and len(cur_draws):
        _marker(ref_draws, cur_draws, cfg, result)
        result.draws = cur_draws
        if current.enrollment is None:
            result.not_computed["marker_onset"] = (
                "needs enrollment_date: alarms cannot say the day a shift began"
            )
    else:
        result.not_computed["marker"] = "no marker draws in the reference or the current cohort"
    if qc is not None:
        _qc(qc, result)
    else:
        result.not_computed["westgard"] = "no qc table given (--qc)"
    if reference.predictions is None or current.predictions is None:
        why = (
            "no model and no predictions (--model-uri, or --reference-predictions and "
            "--current-predictions)"
        )
        for what in ("prediction_drift", "observed_expected", "calibration_window", "cusum"):
            result.not_computed[what] = why
    else:
        _drift(reference, current, cfg, result)
        _outcomes(current, cfg, result, origin)
    result.numbers["alarms"] = result.alarms
    result.numbers["not_computed"] = result.not_computed
    return result

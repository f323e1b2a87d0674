"""The rules of one table: ``patients`` and ``oc_measurements``, from frames or records.

Across the columns of a row (counts and percent agree, disease setting, outcome pairs) and
across the rows of a table (unique ids, unique draws); the cohort's rule across the two tables
(every draw's patient exists) runs here too, given the patients' ids.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

import numpy as np
import pandas as pd

from features.contract.columns import (
    Parsed,
    Records,
    parse_table,
    table_frame,
)
from features.contract.violations import (
    MEASUREMENTS_TABLE,
    PATIENTS_TABLE,
    RULE_BONE_MET_EARLY,
    RULE_EVENTS_LE_PBMC,
    RULE_MEASUREMENT_VALUE,
    RULE_OUTCOME_BONE_MET,
    RULE_OUTCOME_MIXED,
    RULE_OUTCOME_PAIR,
    RULE_PERCENT_AGREES,
    RULE_UNIQUE_DRAW,
    RULE_UNIQUE_ID,
    RULE_UNKNOWN_PATIENT,
    RULE_VISCERAL_EARLY,
    Report,
    Violation,
)
from features.schema import (
    MEASUREMENT_COLUMNS,
    OUTCOME_COLUMNS,
    PATIENT_COLUMNS,
    PERCENT_ABS_TOL,
    PERCENT_REL_TOL,
    ColumnSpec,
)


def _check_counts(parsed: dict[str, Parsed], report: Report) -> None:
    """Events <= PBMC events; percent agrees with the counts; derive a missing percent."""
    events, pbmc, percent = (
        parsed["oc_positive_events"],
        parsed["pbmc_events"],
        parsed["oc_positive_percent"],
    )
    both = events.valid & pbmc.valid
    over = both & (events.values > pbmc.values)
    report.rows(
        over,
        "oc_positive_events",
        events.raw,
        lambda i: RULE_EVENTS_LE_PBMC.format(pbmc=_fmt_number(pbmc.values[i])),
    )
    usable = both & ~over
    expected = np.full(len(usable), np.nan)
    expected[usable] = 100.0 * events.values[usable] / pbmc.values[usable]
    compare = usable & percent.valid
    tolerance = np.maximum(PERCENT_REL_TOL * np.abs(expected), PERCENT_ABS_TOL)
    disagree = np.zeros(len(usable), dtype=bool)
    disagree[compare] = np.abs(percent.values[compare] - expected[compare]) > tolerance[compare]
    report.rows(
        disagree,
        "oc_positive_percent",
        percent.raw,
        lambda i: RULE_PERCENT_AGREES.format(expected=f"{expected[i]:.6g}"),
    )
    derive = usable & ~percent.present
    percent.values[derive] = expected[derive]


def _fmt_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _report_repeats(
    report: Report,
    keys: Sequence[object],
    rows: np.ndarray,
    column: str,
    raw: np.ndarray | None,
    rule: str,
) -> None:
    """Report each row whose key an earlier row already has; ``rule`` names that row (``first``).

    ``keys[k]`` is the key of row ``rows[k]`` (0-based); rows not listed are not compared.
    """
    repeated = np.zeros(report.n_rows, dtype=bool)
    first: dict = {}
    key_of: dict[int, object] = {}
    for key, row in zip(keys, rows, strict=True):
        if key in first:
            repeated[row] = True
            key_of[int(row)] = key
        else:
            first[key] = int(row) + 1
    report.rows(repeated, column, raw, lambda i: rule.format(first=first[key_of[i]]))


def check_patients(
    raw: pd.DataFrame, *, table: str = PATIENTS_TABLE, allow_outcome: bool = True
) -> tuple[pd.DataFrame, list[Violation]]:
    """Check a ``patients`` table against the contract and type its columns.

    Parameters
    ----------
    raw : pandas.DataFrame
        The table as read: CSV strings, Parquet-typed columns or JSON-typed records.
    table : str, default "patients"
        Name used in violations (the service uses ``"request"``).
    allow_outcome : bool, default True
        When False (prediction requests), ``time_days`` and ``event`` are not accepted and the
        returned frame holds only ``schema.PREDICTOR_COLUMNS``.

    Returns
    -------
    typed : pandas.DataFrame
        Every contract column in contract order (absent optional ones all missing), RangeIndex,
        typed as described in :class:`Cohort`; ``oc_positive_percent`` derived from the counts
        where missing. A value that breaks a rule of its own column is missing here.
    violations : list of Violation
        Every violation found, table-level ones first, then by row; empty when valid.
    """
    parsed, specs, violations = check_patient_table(raw, table, allow_outcome)
    return table_frame(parsed, specs), violations


def check_patient_records(
    records: Sequence[Mapping[str, object]],
    *,
    table: str = "request",
    allow_outcome: bool = False,
    validated: bool = False,
) -> tuple[dict[str, np.ndarray], list[Violation]]:
    """:func:`check_patients` for JSON-style records, without pandas (the serving hot path).

    Parameters
    ----------
    records : sequence of mapping
        One mapping per row, column name to value (int, float, bool, str or None); a key
        absent from a record is a missing value, a key that is no contract column a violation.
    table, allow_outcome
        As in :func:`check_patients` (defaults for prediction requests).
    validated : bool, default False
        True when every value already passed the rules of its own column (types, bounds,
        allowed values, pattern, required, no unknown keys): the prediction API's pydantic
        models, generated from the same :mod:`features.schema` specs, check exactly these.
        Then only the rules across columns run (uniqueness, counts, disease setting) - the
        serving hot path. Records that were not checked so must use the default.

    Returns
    -------
    typed : dict of str to numpy.ndarray
        Every contract column in contract order, one array per column typed as in
        :func:`check_patients` (float with NaN; object with str or None).
    violations : list of Violation
    """
    if validated and not allow_outcome and len(records) == 1:
        typed = one_validated_row(records[0])
        if typed is not None:
            return typed, []
    parsed, specs, violations = check_patient_table(
        Records(records, validated), table, allow_outcome
    )
    return {spec.name: parsed[spec.name].values for spec in specs}, violations


#: The prediction row's columns (no outcome) as ``(name, is_text)``, in contract order: the
#: rules of :func:`one_validated_row`, precomputed once.
_PREDICTION_SPECS: tuple[tuple[str, bool], ...] = tuple(
    (s.name, s.kind in ("category", "string"))
    for s in PATIENT_COLUMNS
    if s.name not in OUTCOME_COLUMNS
)
_NUMBER_TYPES = (int, float, bool, type(None))


def one_validated_row(record: Mapping[str, object]) -> dict[str, np.ndarray] | None:
    """:func:`check_patient_records`' answer for one validated prediction row, or None.

    The serving hot path (one patient): the same typed columns as the full check (numbers as
    float64 with NaN, text as object with None, the percent derived from the counts where
    missing), computed with Python scalars. Returns None - the caller then runs the full check,
    whose violations and messages are the only ones ever given - as soon as anything could be
    reported (a value of an unexpected type, events above PBMC events, a percent disagreeing
    with the counts, visceral or bone metastasis in early disease) or anything is unusual.
    ``tests/features/contract/test_one_row_fast_path.py`` holds it equal to the full check.
    """
    if not isinstance(record, Mapping):
        return None
    values: dict[str, object] = {}
    for name, is_text in _PREDICTION_SPECS:
        v = record.get(name)
        if is_text:
            if v is not None and type(v) is not str:
                return None
            values[name] = v
        else:
            if type(v) not in _NUMBER_TYPES:
                return None
            values[name] = math.nan if v is None else float(v)
    events, pbmc = values["oc_positive_events"], values["pbmc_events"]
    percent = values["oc_positive_percent"]
    if events == events and pbmc == pbmc:  # both present (not NaN)
        if events > pbmc or pbmc == 0.0:
            return None
        expected = 100.0 * events / pbmc
        if percent == percent:
            tolerance = max(PERCENT_REL_TOL * abs(expected), PERCENT_ABS_TOL)
            if not abs(percent - expected) <= tolerance:
                return None
        else:
            values["oc_positive_percent"] = expected
    if values["disease_setting"] == "early" and (
        values["visceral_metastasis"] == 1.0 or values["bone_metastasis_at_enrollment"] == 1.0
    ):
        return None
    return {name: _one(values[name], is_text) for name, is_text in _PREDICTION_SPECS}


def _one(value: object, is_text: bool) -> np.ndarray:
    if is_text:
        out = np.empty(1, dtype=object)
        out[0] = value
        return out
    return np.array([value], dtype=float)


def check_patient_table(
    raw: pd.DataFrame | Records, table: str, allow_outcome: bool
) -> tuple[dict[str, Parsed], list[ColumnSpec], list[Violation]]:
    specs = [s for s in PATIENT_COLUMNS if allow_outcome or s.name not in OUTCOME_COLUMNS]
    report = Report(table, len(raw))
    parsed = parse_table(raw, specs, report, () if allow_outcome else OUTCOME_COLUMNS)
    pid = parsed["patient_id"]
    rows = np.flatnonzero(pid.valid)
    _report_repeats(report, pid.values[rows], rows, "patient_id", pid.raw, RULE_UNIQUE_ID)
    _check_counts(parsed, report)

    setting = parsed["disease_setting"]
    early = setting.valid & (setting.values == "early")
    visceral = parsed["visceral_metastasis"]
    report.rows(
        early & visceral.valid & (visceral.values == 1.0),
        "visceral_metastasis",
        visceral.raw,
        RULE_VISCERAL_EARLY,
    )
    bone = parsed["bone_metastasis_at_enrollment"]
    bone_early = early & bone.valid & (bone.values == 1.0)
    report.rows(bone_early, "bone_metastasis_at_enrollment", bone.raw, RULE_BONE_MET_EARLY)
    if allow_outcome:
        # A row whose bone status is unknown or contradicted is left out of the outcome rules.
        known = bone.valid & ~bone_early
        _check_outcome(parsed, known & (bone.values == 1.0), known & (bone.values == 0.0), report)
    return parsed, specs, report.sorted([s.name for s in specs])


def _check_outcome(
    parsed: dict[str, Parsed], bone_true: np.ndarray, bone_false: np.ndarray, report: Report
) -> None:
    time, event = parsed["time_days"], parsed["event"]
    for name, col in (("time_days", time), ("event", event)):
        report.rows(bone_true & col.present, name, col.raw, RULE_OUTCOME_BONE_MET)
    report.rows(
        bone_false & event.present & ~time.present,
        "time_days",
        None,
        RULE_OUTCOME_PAIR.format(other="event"),
    )
    report.rows(
        bone_false & time.present & ~event.present,
        "event",
        None,
        RULE_OUTCOME_PAIR.format(other="time_days"),
    )
    if (bone_false & time.present & event.present).any():
        report.rows(bone_false & ~time.present & ~event.present, None, None, RULE_OUTCOME_MIXED)


def check_measurements(
    raw: pd.DataFrame,
    patient_ids: Collection[str] | None,
    *,
    table: str = MEASUREMENTS_TABLE,
) -> tuple[pd.DataFrame, list[Violation]]:
    """Check an ``oc_measurements`` table against the contract and type its columns.

    Parameters
    ----------
    raw : pandas.DataFrame
        The table as read: CSV strings, Parquet-typed columns or JSON-typed records.
    patient_ids : collection of str or None
        The ids of the ``patients`` table; None skips the check that each id exists there.
    table : str, default "oc_measurements"
        Name used in violations.

    Returns
    -------
    typed : pandas.DataFrame
        Every column of ``schema.MEASUREMENT_COLUMNS`` in contract order, typed as in
        :func:`check_patients`, original row order, ``oc_positive_percent`` derived from the
        counts where missing.
    violations : list of Violation
        Every violation found, table-level ones first, then by row; empty when valid.
    """
    parsed, violations = _check_measurement_table(raw, patient_ids, table)
    return table_frame(parsed, MEASUREMENT_COLUMNS), violations


def check_measurement_records(
    records: Sequence[Mapping[str, object]],
    patient_ids: Collection[str] | None,
    *,
    table: str = "request",
    validated: bool = False,
) -> tuple[dict[str, np.ndarray], list[Violation]]:
    """:func:`check_measurements` for JSON-style records, without pandas.

    Returns the typed columns as a dict of arrays (as :func:`check_patient_records`, whose
    ``validated`` flag this shares) and the violations.
    """
    parsed, violations = _check_measurement_table(Records(records, validated), patient_ids, table)
    return {spec.name: parsed[spec.name].values for spec in MEASUREMENT_COLUMNS}, violations


def _check_measurement_table(
    raw: pd.DataFrame | Records, patient_ids: Collection[str] | None, table: str
) -> tuple[dict[str, Parsed], list[Violation]]:
    report = Report(table, len(raw))
    parsed = parse_table(raw, MEASUREMENT_COLUMNS, report, ())
    pid, day = parsed["patient_id"], parsed["day"]
    if patient_ids is not None:
        ids = frozenset(patient_ids)
        known = np.fromiter((v in ids for v in pid.values), dtype=bool, count=len(pid.values))
        report.rows(pid.valid & ~known, "patient_id", pid.raw, RULE_UNKNOWN_PATIENT)

    rows = np.flatnonzero(pid.valid & day.valid)
    keys = list(zip(pid.values[rows], day.values[rows].tolist(), strict=True))
    _report_repeats(report, keys, rows, "day", day.raw, RULE_UNIQUE_DRAW)

    percent = parsed["oc_positive_percent"].present
    events = parsed["oc_positive_events"].present
    pbmc = parsed["pbmc_events"].present
    nothing = ~percent & ~events & ~pbmc
    report.rows(nothing, "oc_positive_percent", None, RULE_MEASUREMENT_VALUE)
    report.rows(events & ~pbmc, "pbmc_events", None, RULE_MEASUREMENT_VALUE)
    report.rows(pbmc & ~events, "oc_positive_events", None, RULE_MEASUREMENT_VALUE)
    _check_counts(parsed, report)
    return parsed, report.sorted([s.name for s in MEASUREMENT_COLUMNS])

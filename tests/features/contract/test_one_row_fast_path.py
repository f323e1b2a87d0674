"""The one-row fast path of ``check_patient_records`` answers exactly what the full check does.

A validated single prediction row (the serving hot path) is typed with Python scalars
(``features.contract.tables.one_validated_row``) and falls back to the full check whenever
anything could be reported. Here many random rows, valid and broken (rules across columns,
values of the wrong type, edge values), go through both; typed columns must be bitwise equal
and the violations the same.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

from features.contract import check_patient_records, check_patients, read_table
from features.contract.columns import Records
from features.contract.tables import check_patient_table, one_validated_row
from features.records import contract_rows
from features.schema import OUTCOME_COLUMNS, PATIENT_COLUMNS

GOOD = Path(__file__).parent / "good"
SPECS = [s for s in PATIENT_COLUMNS if s.name not in OUTCOME_COLUMNS]


def _base_rows() -> list[dict[str, object]]:
    typed = check_patients(read_table(GOOD / "patients.csv"))[0]
    rows = contract_rows(typed, "patients").to_dict(orient="records")
    return [{k: v for k, v in r.items() if k not in OUTCOME_COLUMNS} for r in rows]


def _full(record: dict[str, object]):
    parsed, specs, violations = check_patient_table(Records([record], True), "request", False)
    return {s.name: parsed[s.name].values for s in specs}, violations


def _mutate(row: dict[str, object], rng: random.Random) -> dict[str, object]:
    row = dict(row)
    for _ in range(rng.randint(0, 4)):
        spec = rng.choice(SPECS)
        name = spec.name
        choice = rng.random()
        if choice < 0.25:
            row[name] = None
        elif choice < 0.35:
            row.pop(name, None)
        elif spec.kind in ("category",):
            row[name] = rng.choice(list(spec.allowed) + ["", 3, True])
        elif spec.kind == "string":
            row[name] = rng.choice(["P9", "A-1", "", 7])
        elif spec.kind == "boolean":
            row[name] = rng.choice([True, False, 0, 1, 1.0, 0.0, "true", float("nan")])
        else:
            row[name] = rng.choice(
                [0, 1, 2, 3.5, 17, 150.25, 1e5, -1, float("nan"), True, "12", 2**60]
            )
    counts = rng.random()
    if counts < 0.15:  # events above PBMC events
        row["oc_positive_events"], row["pbmc_events"] = 90, 40
    elif counts < 0.3:  # percent disagreeing with the counts, or just within tolerance
        events, pbmc = rng.randint(0, 500), rng.randint(1, 200_000)
        expected = 100.0 * events / pbmc
        row.update(
            oc_positive_events=events,
            pbmc_events=pbmc,
            oc_positive_percent=rng.choice(
                [expected, expected * 1.0099, expected * 1.0101, expected + 2e-4, None]
            ),
        )
    elif counts < 0.35:
        row.update(oc_positive_events=0, pbmc_events=0, oc_positive_percent=None)
    setting = rng.random()
    if setting < 0.15:
        row.update(disease_setting="early", visceral_metastasis=rng.choice([True, 1, None]))
    elif setting < 0.3:
        row.update(disease_setting="early", bone_metastasis_at_enrollment=rng.choice([True, 1.0]))
    return row


def _same(fast: dict[str, np.ndarray], full: dict[str, np.ndarray]) -> None:
    assert list(fast) == list(full)
    for name in full:
        a, b = fast[name], full[name]
        assert a.dtype == b.dtype and a.shape == b.shape, name
        if b.dtype == object:
            assert [(type(v), v) for v in a] == [(type(v), v) for v in b], name
        else:
            assert a.tobytes() == b.tobytes(), name  # bitwise, NaN included


def test_fast_path_equals_the_full_check_on_random_rows() -> None:
    rng = random.Random(20261207)
    base = _base_rows()
    taken = fell_back = 0
    for k in range(3000):
        row = _mutate(rng.choice(base), rng)
        try:
            full = _full(row)
        except Exception as err:  # noqa: BLE001 - the same failure either way
            try:
                check_patient_records([row], validated=True)
            except Exception as again:  # noqa: BLE001
                assert type(again) is type(err) and str(again) == str(err)
                continue
            raise AssertionError(f"the full check fails on {row!r}, the fast path does not")
        fast = check_patient_records([row], validated=True)
        assert [str(v) for v in fast[1]] == [str(v) for v in full[1]], row
        _same(fast[0], full[0])
        if one_validated_row(row) is None:
            fell_back += 1
        else:
            taken += 1
            assert not full[1], row  # the fast path never hides a violation
    # Both branches were exercised, each many times.
    assert taken > 500 and fell_back > 500, (taken, fell_back)


def test_every_valid_base_row_takes_the_fast_path() -> None:
    for row in _base_rows():
        if row["disease_setting"] == "early" and row.get("visceral_metastasis"):
            continue
        typed = one_validated_row(row)
        full = _full(row)
        if full[1]:
            assert typed is None
        else:
            assert typed is not None
            _same(typed, full[0])


def test_percent_is_derived_as_the_full_check_derives_it() -> None:
    row = _base_rows()[0] | {
        "oc_positive_percent": None,
        "oc_positive_events": 7,
        "pbmc_events": 3,
    }
    row["oc_positive_events"], row["pbmc_events"] = 3, 7
    typed = one_validated_row(row)
    assert typed is not None
    _same(typed, _full(row)[0])
    assert typed["oc_positive_percent"][0] == 100.0 * 3 / 7

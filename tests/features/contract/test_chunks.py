"""A cohort validated chunk by chunk says exactly what the whole-file validation says.

:func:`features.contract.iter_cohort` must give the typed rows of :func:`load_cohort` and, for
a broken cohort, the same :class:`ContractError` (same violations, file row numbers, same
message), whatever the chunk size: the rules across rows (unique ids, outcomes all or none,
every draw's patient) included when the rows involved sit in different chunks.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from features.contract import (
    ContractError,
    chunks,
    iter_cohort,
    load_cohort,
    read_chunks,
    read_table,
)

HERE = Path(__file__).parent
GOOD = HERE / "good"
BAD = HERE / "bad"
SIZES = (1, 2, 3, 7, 1000)


def _whole(patients, measurements):
    try:
        cohort = load_cohort(patients, measurements)
    except ContractError as err:
        return err
    return cohort


def _chunked(patients, measurements, size):
    try:
        chunks = list(iter_cohort(patients, measurements, chunk_size=size))
    except ContractError as err:
        return err
    return chunks


def _assert_same(patients, measurements, size):
    whole, chunked = _whole(patients, measurements), _chunked(patients, measurements, size)
    if isinstance(whole, ContractError):
        assert isinstance(chunked, ContractError), f"chunks of {size} found no violation"
        assert chunked.violations == whole.violations
        assert str(chunked) == str(whole)
        return
    assert not isinstance(chunked, ContractError), str(chunked)
    assert [c.first_row for c in chunked] == list(range(1, len(whole.patients) + 1, size))
    typed = pd.concat([c.patients for c in chunked], ignore_index=True)
    pd.testing.assert_frame_equal(typed, whole.patients)
    if measurements is None:
        assert all(c.measurements is None for c in chunked)
        return
    for chunk in chunked:
        mine = whole.measurements["patient_id"].isin(set(chunk.patients["patient_id"]))
        expected = whole.measurements.loc[mine].reset_index(drop=True)
        pd.testing.assert_frame_equal(chunk.measurements, expected)


def _cases():
    yield GOOD / "patients.csv", GOOD / "oc_measurements.csv"
    yield GOOD / "patients.csv", None
    for path in sorted(BAD.iterdir()):
        if path.name.startswith("patients"):
            yield path, GOOD / "oc_measurements.csv"
        else:
            yield GOOD / "patients.csv", path


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    ("patients", "measurements"),
    list(_cases()),
    ids=lambda p: p.name if isinstance(p, Path) else "none",
)
def test_every_contract_file_gives_the_whole_file_answer(patients, measurements, size):
    _assert_same(patients, measurements, size)


@pytest.fixture
def rows() -> pd.DataFrame:
    """Twenty valid patients (the good file's first rows, renamed) as CSV text."""
    good = read_table(GOOD / "patients.csv")
    free = good[good["bone_metastasis_at_enrollment"].str.lower() == "false"].iloc[[0]]
    frame = pd.concat([free] * 20, ignore_index=True)
    frame["patient_id"] = [f"Q{i:03d}" for i in range(20)]
    for column in ("time_days", "event"):
        if column in frame.columns:
            frame[column] = ""
    return frame


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return path


@pytest.mark.parametrize("size", (1, 3, 7))
def test_an_id_repeated_in_a_later_chunk_names_its_first_row(rows, tmp_path, size):
    rows.loc[[9, 15], "patient_id"] = rows.loc[1, "patient_id"]
    path = _write(rows, tmp_path / "patients.csv")
    _assert_same(path, None, size)
    with pytest.raises(ContractError) as err:
        list(iter_cohort(path, chunk_size=size))
    assert [str(v) for v in err.value.violations] == [
        f"patients row {row} (patient_id Q001), column patient_id, value 'Q001': "
        "must be unique, already in row 2"
        for row in (10, 16)
    ]


@pytest.mark.parametrize("size", (1, 4, 7))
def test_an_outcome_in_a_late_chunk_flags_the_earlier_rows_without_one(rows, tmp_path, size):
    rows["time_days"] = ""
    rows["event"] = ""
    rows.loc[18, ["time_days", "event"]] = ["300", "1"]
    path = _write(rows, tmp_path / "patients.csv")
    _assert_same(path, None, size)
    with pytest.raises(ContractError) as err:
        list(iter_cohort(path, chunk_size=size))
    mixed = [v.row for v in err.value.violations if v.rule.startswith("outcome missing")]
    assert mixed == [r for r in range(1, 21) if r != 19]


def test_a_draw_of_no_patient_is_caught_after_the_last_chunk(rows, tmp_path):
    draws = pd.DataFrame(
        {"patient_id": ["Q003", "Q019", "Z999"], "day": ["0", "30", "0"]}
        | {"oc_positive_percent": ["1.5", "2", "0.5"]}
    )
    patients = _write(rows, tmp_path / "patients.csv")
    measurements = _write(draws, tmp_path / "oc_measurements.csv")
    for size in (1, 7):
        _assert_same(patients, measurements, size)
        with pytest.raises(ContractError, match="oc_measurements row 3 .*must exist in patients"):
            list(iter_cohort(patients, measurements, chunk_size=size))


def test_parquet_with_a_stored_index_reads_as_a_whole(rows, tmp_path):
    typed = rows.copy()
    typed["age_years"] = typed["age_years"].astype(float)
    typed.index = typed.index + 100  # stored in the file as a column by pandas' metadata
    path = tmp_path / "patients.parquet"
    typed.to_parquet(path, index=True)
    chunks = list(read_chunks(path, 6))
    assert [len(c) for c in chunks] == [6, 6, 6, 2]
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), read_table(path))
    for size in (1, 6):
        _assert_same(path, None, size)


def test_a_malformed_row_in_a_late_chunk_is_the_whole_file_error(rows, tmp_path):
    path = _write(rows, tmp_path / "patients.csv")
    lines = path.read_text().splitlines()
    lines[17] += ",extra"
    path.write_text("\n".join(lines) + "\n")
    for size in (1, 5, 16, 17):
        _assert_same(path, None, size)
    with pytest.raises(ContractError, match="malformed CSV .*in line 18"):
        list(iter_cohort(path, chunk_size=5))


def test_a_header_only_file_has_no_rows(tmp_path):
    path = tmp_path / "patients.csv"
    path.write_text(read_table(GOOD / "patients.csv").iloc[:0].to_csv(index=False))
    for size in (1, 7):
        _assert_same(path, None, size)
    assert list(read_chunks(path, 3))[0].empty


def test_a_draw_repeated_in_a_later_chunk_names_its_first_row(rows, tmp_path, monkeypatch):
    draws = pd.DataFrame(
        {
            "patient_id": ["Q003", "Q004", "Q003", "Q005", "Q003"],
            "day": ["0", "0", "30", "0", "0.0"],
        }
        | {"oc_positive_percent": ["1.5", "2", "0.5", "1", "1"]}
    )
    patients = _write(rows, tmp_path / "patients.csv")
    measurements = _write(draws, tmp_path / "oc_measurements.csv")
    for size, per_sort in ((1, 1), (2, 2), (7, 1_000_000)):
        monkeypatch.setattr(chunks, "DRAWS_PER_SORT", per_sort)  # sorted in parts of patients
        _assert_same(patients, measurements, size)
        with pytest.raises(ContractError) as err:
            list(iter_cohort(patients, measurements, chunk_size=size))
        assert [str(v) for v in err.value.violations] == [
            "oc_measurements row 5 (patient_id Q003), column day, value '0.0': "
            "(patient_id, day) must be unique, already in row 1"
        ]


def test_enrollment_chunks_carry_the_day_0_draws_only(small_cohort):
    patients, measurements = small_cohort / "patients.csv", small_cohort / "oc_measurements.csv"
    whole = load_cohort(patients, measurements).measurements
    day0 = whole[whole["day"] == 0.0]
    chunks = list(iter_cohort(patients, measurements, chunk_size=50, enrollment_draws_only=True))
    for chunk in chunks:
        mine = day0[day0["patient_id"].isin(set(chunk.patients["patient_id"]))]
        pd.testing.assert_frame_equal(chunk.measurements, mine.reset_index(drop=True))
    assert sum(len(c.measurements) for c in chunks) == len(day0) > 0

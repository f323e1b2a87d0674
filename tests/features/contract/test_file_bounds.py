"""Hostile files (issue 20.9): a huge cell, a NUL byte, a million columns, thousands of
violations. Both readers (``validate`` reads a table whole, ``predict`` in chunks) give the same
one answer, and every message is bounded."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from features.contract import ContractError, read_chunks, read_table
from features.contract.files import MAX_CELL_CHARS, MAX_COLUMNS
from features.contract.violations import MAX_LINES_SHOWN, MAX_VALUE_SHOWN
from training.cli import app

HEADER = "patient_id,age_years,disease_setting,bone_metastasis_at_enrollment"


def _both_readers(path: Path) -> str:
    """The message of each reader, asserted equal; returned once."""
    with pytest.raises(ContractError) as whole:
        read_table(path, table="patients")
    with pytest.raises(ContractError) as chunked:
        list(read_chunks(path, 2, table="patients"))
    assert str(whole.value) == str(chunked.value)
    return str(whole.value)


def _cli(args: list[str], tmp_path: Path):
    return CliRunner().invoke(app, args, env={"BONEMET_DATA_DIR": str(tmp_path / "data")})


def test_a_cell_over_csvs_field_limit_is_one_bounded_answer(tmp_path):
    path = tmp_path / "patients.csv"
    path.write_text(f"{HEADER}\nP1,54,early,false\nP2,{'9' * 200_000},early,false\n")
    message = _both_readers(path)
    assert message.endswith(
        "cannot read file: malformed CSV (a cell of 200,000 characters in row 2, column "
        f"age_years: at most {MAX_CELL_CHARS:,} (contract values are short))"
    )
    for command in (["validate"], ["predict", "--out", str(tmp_path / "o.csv")]):
        res = _cli([*command, "--patients", str(path)], tmp_path)
        assert res.exit_code == 2 and "_csv.Error" not in res.output
        assert "a cell of 200,000 characters" in res.output and len(res.output) < 1000


def test_a_nul_byte_is_refused_by_validate_and_predict_alike(tmp_path):
    path = tmp_path / "patients.csv"
    path.write_bytes(f"{HEADER}\nP1,54,early,false\n".encode() + b"P\x0002,61,early,false\n")
    message = _both_readers(path)
    assert message.endswith("cannot read file: malformed CSV (a NUL byte on line 3: not CSV text)")
    answers = [
        _cli([*command, "--patients", str(path)], tmp_path)
        for command in (["validate"], ["predict", "--out", str(tmp_path / "o.csv")])
    ]
    assert [a.exit_code for a in answers] == [2, 2]
    assert answers[0].output == answers[1].output
    assert not (tmp_path / "o.csv").exists()


def test_a_million_columns_are_refused_before_parsing(tmp_path):
    path = tmp_path / "patients.csv"
    extra = ",".join(f"c{i}" for i in range(1_000_000))
    path.write_text(f"{HEADER},{extra}\nP1,54,early,false\n")
    message = _both_readers(path)
    assert message.endswith(
        f"malformed CSV (the header has 1,000,004 columns; a contract table has at most "
        f"{MAX_COLUMNS})"
    )
    assert len(message.splitlines()) == 2


def test_messages_are_bounded_in_lines_and_echoed_values(tmp_path):
    path = tmp_path / "patients.csv"
    unknown = ",".join(f"c{i}" for i in range(MAX_COLUMNS - 4))
    long_id = "P" * (MAX_CELL_CHARS - 1) + " "
    path.write_text(f"{HEADER},{unknown}\n{long_id},54,early,false\n")
    res = _cli(["validate", "--patients", str(path)], tmp_path)
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2
    assert len(lines) == 1 + MAX_LINES_SHOWN + 1, lines[:3]
    assert lines[-1] == f"... and {MAX_COLUMNS - 4 + 1 - MAX_LINES_SHOWN:,} more line(s) of violations"
    with pytest.raises(ContractError) as err:
        from features.contract import load_cohort

        load_cohort(path)
    (id_violation,) = [v for v in err.value.violations if v.column == "patient_id"]
    assert id_violation.value == long_id  # kept whole; only the message is cut
    shown = f"value {long_id[:MAX_VALUE_SHOWN]!r}... ({len(long_id):,} characters)"
    assert shown in str(id_violation)

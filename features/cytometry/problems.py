"""Quality control of a cytometry batch: rule texts, :class:`Problem`, :class:`CytometryError`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

RULE_FILE_MISSING = "file not found: {path}"
RULE_FILE_UNREADABLE = "cannot read file: {problem}"
RULE_NOT_FCS = (
    "not an FCS file: it does not start with an FCS version header (FCS2.0, 3.0, 3.1 or 3.2)"
)
RULE_BAD_FCS = "truncated or corrupt FCS file: {problem}"
RULE_MISSING_CHANNELS = "channel(s) the gating needs are missing: {missing} (file has: {present})"
RULE_GATING_FAILED = "FlowKit could not gate the file: {problem}"
RULE_FEW_PBMC = "too few events in the PBMC gate {gate}: {count} < {minimum} (--min-pbmc-events)"
RULE_FCS_FILE_REQUIRED = "required value missing: a path to the draw's FCS file"
RULE_MANIFEST_COLUMN = (
    "unknown manifest column: expected patient_id, day, fcs_file and optionally "
    "alkaline_phosphatase_u_per_l, lab_id, instrument_id, reagent_lot (counts come from the FCS "
    "files)"
)
RULE_INSTRUMENT_MISMATCH = (
    "instrument_id {manifest!r} in the manifest, but the FCS file names instrument {file!r} "
    "($CYTSN, else $CYT)"
)
RULE_GATING_UNREADABLE = "cannot read the GatingML 2.0 file: {problem}"
RULE_GATE_UNKNOWN = "gate id {gate!r} (--{option}) is not in the gating strategy (gates: {known})"
RULE_GATE_AMBIGUOUS = "gate id {gate!r} (--{option}) occurs at several paths: give one of {paths}"
RULE_OC_OUTSIDE_PBMC = "the OC gate {oc} does not lie within the PBMC gate {pbmc}"


@dataclass(frozen=True)
class Problem:
    """One quality-control failure.

    Parameters
    ----------
    rule : str
        What is wrong, as a sentence a person can act on.
    row : int or None
        1-based manifest row (header excluded); None for a problem of the whole batch.
    fcs_file : str or None
        The file as written in the manifest.
    patient_id : str or None
        The row's patient id when known.
    """

    rule: str
    row: int | None = None
    fcs_file: str | None = None
    patient_id: str | None = None

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"manifest row {self.row}")
        if self.patient_id is not None:
            where.append(f"patient_id {self.patient_id}")
        if self.fcs_file is not None:
            where.append(f"file {self.fcs_file}")
        return (", ".join(where) + ": " if where else "") + self.rule


class CytometryError(ValueError):
    """The batch failed quality control; ``problems`` lists every failure found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(
            f"cytometry quality control failed ({len(self.problems)} problem(s)); "
            f"nothing written:\n{lines}"
        )

"""What the monitor reads beyond the data contract (``docs/monitoring.md``).

* :data:`ENROLLMENT_DATE`: an optional column of the ``patients`` table the monitor reads (ISO
  ``YYYY-MM-DD``), the calendar day of enrollment; the monitor removes it before the contract's
  validation (the contract has no enrollment date).
* :data:`QC_COLUMNS`: the ``qc`` table of control-material results, one row per result.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ENROLLMENT_DATE", "QC_TABLE", "QCColumn", "QC_COLUMNS"]

ENROLLMENT_DATE = "enrollment_date"
QC_TABLE = "qc"


@dataclass(frozen=True)
class QCColumn:
    """One column of the ``qc`` table: kind ``id`` (as the contract's ids), ``date``
    (YYYY-MM-DD) or ``number`` (finite, > 0)."""

    name: str
    kind: str
    required: bool
    meaning: str


QC_COLUMNS: tuple[QCColumn, ...] = (
    QCColumn("lab_id", "id", True, "laboratory (as lab_id in the contract)"),
    QCColumn("instrument_id", "id", True, "cytometer (as instrument_id)"),
    QCColumn("reagent_lot", "id", True, "anti-osteocalcin antibody lot used (as reagent_lot)"),
    QCColumn("date", "date", True, "day the control was run, YYYY-MM-DD"),
    QCColumn("control_level", "id", True, "control material or level, e.g. low, high"),
    QCColumn("value", "number", True, "measured osteocalcin-positive percent of the control"),
    QCColumn("target_mean", "number", False, "assigned mean of this material (optional)"),
    QCColumn("target_sd", "number", False, "assigned SD of this material (optional)"),
)

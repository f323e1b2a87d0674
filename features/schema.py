"""Column specifications of data contract v1.2 (``shared/data-contract.md``).

This module is the single source of truth for the names, types and allowed values of the two
tables. The validator (:mod:`features.contract`), the feature builders, the simulator and the
service's request models all read it; none of them spells a column rule again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from features.vocabulary import DEFAULT_HORIZONS_MONTHS as DEFAULT_HORIZONS_MONTHS
from features.vocabulary import HEADLINE_HORIZON_MONTHS as HEADLINE_HORIZON_MONTHS

#: The version of the tables and their rules (1.2 added the provenance columns
#: :data:`PROVENANCE_COLUMNS`); a string, as every message and record formats it.
CONTRACT_VERSION = "1.2"
#: The full contract version the prediction API answers (``GET /model``, the model card): 1.1
#: added ``death_probability`` to each prediction, 1.2 the interval on every probability and
#: ``treatment_benefit``.
CONTRACT_REVISION = "1.2"

#: The largest magnitude of an integer column: every value is held as a float64 (the typed
#: tables, the models' input), which is exact for integers up to 2**53 and no further. A count
#: above it is out of range in files and requests alike (no contract count comes near it).
MAX_INTEGER = 2**53


Kind = Literal["string", "number", "integer", "category", "boolean"]


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a contract table.

    Parameters
    ----------
    name : str
        Column name, exactly as in the contract.
    kind : {"string", "number", "integer", "category", "boolean"}
        Logical type.
    required : bool
        Whether every row must carry a value.
    allowed : tuple of str, optional
        Allowed values of a category column.
    minimum, maximum : float, optional
        Inclusive bounds of a numeric column.
    exclusive_minimum : bool
        When true, ``minimum`` itself is not allowed (``> minimum``).
    unit : str
        Unit for humans (documentation and API schema).
    description : str
        Meaning, from the contract.
    """

    name: str
    kind: Kind
    required: bool = False
    allowed: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    unit: str = ""
    description: str = ""

    @property
    def upper(self) -> float | None:
        """The inclusive upper bound checked: ``maximum``, or :data:`MAX_INTEGER` for an integer
        column the contract leaves open (a count)."""
        if self.kind == "integer" and self.maximum is None:
            return float(MAX_INTEGER)
        return self.maximum

    def range_text(self) -> str:
        """Human-readable allowed range, used in violation messages."""
        if self.allowed:
            return "one of " + ", ".join(self.allowed)
        if self.kind == "boolean":
            return "true or false"
        lo = self.minimum
        hi = self.maximum
        if lo is not None and hi is not None:
            if self.exclusive_minimum:
                return f">{_fmt(lo)} and <={_fmt(hi)}"
            return f"{_fmt(lo)}-{_fmt(hi)}"
        if lo is not None:
            return f">{_fmt(lo)}" if self.exclusive_minimum else f">={_fmt(lo)}"
        return ""


def integral(values: np.ndarray) -> np.ndarray:
    """The contract's rule of an integer column, on float values (files and requests alike).

    A value is an integer when it is a finite number without a fractional part: ``2.0`` is the
    integer 2 (a pandas column of integers with missing values is float, and so is its JSON),
    ``2.5`` is not. The range (including :data:`MAX_INTEGER`) is a separate rule.

    Parameters
    ----------
    values : numpy.ndarray
        Values as float64 (NaN for missing, infinity for a number beyond float range).

    Returns
    -------
    numpy.ndarray of bool
        True where the value is an integer; False for missing, infinite and fractional values.
    """
    finite = np.isfinite(values)
    return finite & (values == np.floor(np.where(finite, values, 0.0)))


def integer_value(value: object) -> object:
    """A JSON number that is an integer by :func:`integral`, as ``int``; anything else unchanged.

    The request models call it before their own (strict) integer check, so a request and a file
    follow one rule: ``2.0`` becomes 2, ``2.5`` (and a string, a boolean) stays as given and is
    rejected by the model's type check.
    """
    if isinstance(value, float) and math.isfinite(value) and bool(integral(np.array([value]))[0]):
        return int(value)
    return value


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _provenance(name: str, description: str) -> ColumnSpec:
    """A (1.2) provenance column: a string with the pattern of ``patient_id``."""
    return ColumnSpec(name, "string", description=description + "; same pattern as patient_id")


#: (1.2) Where a patient and a draw come from. Every string column of the contract follows
#: :data:`PATIENT_ID_PATTERN`. They describe the data, never the patient: no model uses them as
#: predictors (a model must not learn the hospital); validation groups by them.
_LAB = _provenance("lab_id", "the laboratory that measured the draw")
_INSTRUMENT = _provenance("instrument_id", "the cytometer (serial or local name) of the draw")
_LOT = _provenance("reagent_lot", "the anti-osteocalcin antibody lot of the draw")
_SITE = _provenance("site_id", "the centre that enrolled the patient")
PROVENANCE_COLUMNS: tuple[str, ...] = ("site_id", "lab_id", "instrument_id", "reagent_lot")


PATIENT_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec(
        "patient_id",
        "string",
        required=True,
        description="pseudonymous study id; 1-64 chars of A-Z a-z 0-9 _ -, unique",
    ),
    ColumnSpec(
        "age_years",
        "number",
        required=True,
        minimum=18,
        maximum=100,
        unit="years",
        description="age at enrollment",
    ),
    ColumnSpec(
        "menopausal_status",
        "category",
        allowed=("pre", "peri", "post"),
        description="menopausal status at enrollment",
    ),
    ColumnSpec(
        "er_status",
        "category",
        allowed=("positive", "negative"),
        description="estrogen receptor of the primary tumor",
    ),
    ColumnSpec(
        "pr_status",
        "category",
        allowed=("positive", "negative"),
        description="progesterone receptor of the primary tumor",
    ),
    ColumnSpec(
        "her2_status",
        "category",
        allowed=("positive", "negative"),
        description="HER2 (IHC 3+ or ISH amplified = positive)",
    ),
    ColumnSpec(
        "ki67_percent", "number", minimum=0, maximum=100, unit="%", description="Ki-67 index"
    ),
    ColumnSpec("histologic_grade", "integer", minimum=1, maximum=3, description="histologic grade"),
    ColumnSpec(
        "tumor_size_mm",
        "number",
        minimum=0,
        maximum=300,
        exclusive_minimum=True,
        unit="mm",
        description="largest diameter of the primary tumor",
    ),
    ColumnSpec(
        "positive_lymph_nodes",
        "integer",
        minimum=0,
        maximum=80,
        unit="nodes",
        description="involved axillary nodes",
    ),
    ColumnSpec(
        "disease_setting",
        "category",
        required=True,
        allowed=("early", "metastatic"),
        description="early = stage I-III; metastatic = distant disease at enrollment",
    ),
    ColumnSpec(
        "visceral_metastasis",
        "boolean",
        description="lung/liver/brain metastasis at enrollment; never true when early",
    ),
    ColumnSpec(
        "bone_metastasis_at_enrollment",
        "boolean",
        required=True,
        description="bone metastasis already present at enrollment; false when early",
    ),
    ColumnSpec(
        "bone_targeted_therapy",
        "category",
        allowed=("none", "bisphosphonate", "denosumab"),
        description="bone-targeted therapy at enrollment",
    ),
    ColumnSpec("endocrine_therapy", "boolean", description="endocrine therapy at enrollment"),
    ColumnSpec("chemotherapy", "boolean", description="chemotherapy at enrollment"),
    ColumnSpec(
        "alkaline_phosphatase_u_per_l",
        "number",
        minimum=0,
        maximum=5000,
        exclusive_minimum=True,
        unit="U/L",
        description="serum ALP at enrollment",
    ),
    ColumnSpec(
        "oc_positive_percent",
        "number",
        minimum=0,
        maximum=100,
        unit="% of PBMC events",
        description="circulating osteocalcin-positive cells, enrollment draw",
    ),
    ColumnSpec(
        "oc_positive_events",
        "integer",
        minimum=0,
        unit="events",
        description="osteocalcin-positive events counted",
    ),
    ColumnSpec(
        "pbmc_events",
        "integer",
        minimum=0,
        exclusive_minimum=True,
        unit="events",
        description="gated PBMC events (the denominator)",
    ),
    _SITE,
    _LAB,
    _INSTRUMENT,
    _LOT,
    ColumnSpec(
        "time_days",
        "number",
        minimum=0,
        exclusive_minimum=True,
        unit="days",
        description="days from enrollment to first bone metastasis, death, or last follow-up",
    ),
    ColumnSpec(
        "event",
        "category",
        allowed=("bone_metastasis", "death", "censored"),
        description="what ended follow-up; death = death without bone metastasis",
    ),
)

MEASUREMENT_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("patient_id", "string", required=True, description="must exist in patients"),
    ColumnSpec(
        "day",
        "number",
        required=True,
        minimum=0,
        unit="days",
        description="days since enrollment; the enrollment draw is day 0",
    ),
    ColumnSpec(
        "oc_positive_percent",
        "number",
        minimum=0,
        maximum=100,
        unit="% of PBMC events",
        description="circulating osteocalcin-positive cells",
    ),
    ColumnSpec(
        "oc_positive_events",
        "integer",
        minimum=0,
        unit="events",
        description="osteocalcin-positive events counted",
    ),
    ColumnSpec(
        "pbmc_events",
        "integer",
        minimum=0,
        exclusive_minimum=True,
        unit="events",
        description="gated PBMC events (the denominator)",
    ),
    ColumnSpec(
        "alkaline_phosphatase_u_per_l",
        "number",
        minimum=0,
        maximum=5000,
        exclusive_minimum=True,
        unit="U/L",
        description="serum ALP",
    ),
    _LAB,
    _INSTRUMENT,
    _LOT,
)

PATIENT_SPECS: dict[str, ColumnSpec] = {c.name: c for c in PATIENT_COLUMNS}
MEASUREMENT_SPECS: dict[str, ColumnSpec] = {c.name: c for c in MEASUREMENT_COLUMNS}

OUTCOME_COLUMNS: tuple[str, ...] = ("time_days", "event")
#: The columns a prediction may use: a patients row without its outcome.
PREDICTOR_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in PATIENT_COLUMNS if c.name not in OUTCOME_COLUMNS
)
EVENTS: tuple[str, ...] = ("bone_metastasis", "death", "censored")

#: Agreement of the percent with its counts: within 1 % relative or 0.0001 percentage points.
PERCENT_REL_TOL = 0.01
PERCENT_ABS_TOL = 0.0001
#: Contract 1.2: ids (and every id of the same pattern) never begin with ``-``, which a
#: spreadsheet opening a CSV reads as the start of a formula.
PATIENT_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$"

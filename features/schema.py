"""Column specifications of data contract v1 (``shared/data-contract.md``).

This module is the single source of truth for the names, types and allowed values of the two
tables. The validator (:mod:`features.contract`), the feature builders, the simulator and the
service's request models all read it; none of them spells a column rule again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CONTRACT_VERSION = 1
#: The full contract version the prediction API answers (``GET /model``): 1.1 is version 1
#: plus ``death_probability`` in each prediction; the tables and their rules are those of v1.
CONTRACT_REVISION = "1.1"

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


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


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
PATIENT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

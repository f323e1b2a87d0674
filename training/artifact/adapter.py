"""Contract-checked prediction over a DataFrame of contract rows (the pyfunc's ``predict``).

Kept outside ``pyfunc_model.py`` so it is importable and testable like any module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from features.contract import CONTRACT_VERSION, ContractError
from features.vocabulary import MAX_HORIZON_MONTHS, MIN_HORIZON_MONTHS, horizons_in_range
from training.artifact.inputs import check_prediction_rows, refusal_text
from training.artifact.risk_model import RiskModel


class PredictionInputError(ValueError):
    """Input rows that break the contract; carries every violation."""

    def __init__(self, violations: list) -> None:
        self.violations = violations
        lines = "\n".join(str(v) for v in violations)
        super().__init__(
            f"input breaks data contract v{CONTRACT_VERSION}: {len(violations)} violation(s)\n"
            f"{lines}"
        )


def horizons_from_params(params: Mapping[str, Any] | None, default: tuple[int, ...]) -> list[float]:
    """Validated ``horizons_months`` parameter (each 1-120 months)."""
    if not params or params.get("horizons_months") is None:
        return [float(h) for h in default]
    raw = params["horizons_months"]
    values = list(raw) if not isinstance(raw, (int, float, str)) else [raw]
    try:
        horizons = [float(h) for h in values]
    except (TypeError, ValueError) as err:
        raise PredictionInputError([f"horizons_months: not a list of numbers ({raw!r})"]) from err
    if not horizons_in_range(horizons):
        raise PredictionInputError(
            [
                f"horizons_months: each must be {MIN_HORIZON_MONTHS}-{MAX_HORIZON_MONTHS} months, "
                f"got {raw!r}"
            ]
        )
    return horizons


def predict_records_frame(
    risk_model: RiskModel, model_input: pd.DataFrame, params: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """Validate contract rows, then predict.

    Raises
    ------
    mlflow.exceptions.MlflowException
        With error code ``INVALID_PARAMETER_VALUE`` (HTTP 400 in ``mlflow models serve``)
        listing every violation.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    try:
        if not isinstance(model_input, pd.DataFrame):
            # object: values stay as sent for the contract check (pandas 2.3 raises
            # OverflowError inferring a column from an integer beyond float range).
            model_input = pd.DataFrame(model_input, dtype=object)
        horizons = horizons_from_params(params, risk_model.horizons_months)
        # The API's check (training.artifact.inputs): the same rules, the same words.
        typed, violations = check_prediction_rows(model_input)
        if violations:
            raise MlflowException(refusal_text(violations), error_code=INVALID_PARAMETER_VALUE)
    except (PredictionInputError, ContractError) as err:
        raise MlflowException(str(err), error_code=INVALID_PARAMETER_VALUE) from err
    explain = bool(params.get("explain", False)) if params else False
    return risk_model.predict_frame(typed, horizons, explain=explain)

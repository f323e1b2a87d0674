"""MLflow models-from-code definition of the served model.

MLflow executes this file when the model is loaded; the fitted :class:`RiskModel` comes from the
``risk_model`` artifact. ``predict`` takes contract rows (a DataFrame of patients rows without
outcome) and returns, per patient, ``patient_id``, ``risk_score``, ``risk_group``, one
``p_bone_met_<h>m`` column per horizon, one ``p_death_<h>m`` column per horizon (death without
bone metastasis, contract 1.1) and ``warnings`` (a JSON list of strings). The horizons
come from the ``horizons_months`` parameter (default: the model's 12, 24, 36, 60).
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class BoneMetastasisRiskModel(PythonModel):
    """Pyfunc wrapper: validate contract rows, then score them with the fitted RiskModel."""

    def load_context(self, context) -> None:
        # scikit-survival patches sklearn's Pipeline on import: import it before unpickling.
        import joblib
        import sksurv.linear_model  # noqa: F401

        self.risk_model = joblib.load(context.artifacts["risk_model"])
        # The model card travels in the model (``model_card`` artifact): the service shows it.
        card = context.artifacts.get("model_card")
        self.model_card = Path(card).read_text(encoding="utf-8") if card else None

    # The pandas hint tells MLflow the input is a frame it cannot infer a schema from (no
    # type-hint validation, no "add type hints" warning at each load); the signature comes
    # from the input example and the rows are checked against the contract here.
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from training.artifact.adapter import predict_records_frame

        return predict_records_frame(self.risk_model, model_input, params)


mlflow.models.set_model(BoneMetastasisRiskModel())

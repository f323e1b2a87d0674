"""Log a fitted :class:`~training.artifact.risk_model.RiskModel` as an MLflow pyfunc."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import pandas as pd

from features.contract import check_patients
from features.examples import synthetic_patient_rows
from training.artifact.risk_model import RiskModel


def log_risk_model(
    model: RiskModel,
    example: pd.DataFrame | None = None,
    registered_model_name: str | None = None,
    model_card: str | None = None,
):
    """Log a fitted RiskModel as an MLflow pyfunc (models-from-code) in the active run.

    Parameters
    ----------
    model : RiskModel
        The fitted model; pickled into the ``risk_model`` artifact.
    example : pandas.DataFrame, optional
        Contract rows used as input example and to infer the signature. Default: the
        synthetic rows of :func:`features.examples.synthetic_patient_rows`. The example
        travels with the model (registry, Bento, container): never pass patient rows.
    registered_model_name : str or None
        Register the logged model as a new version of this name (``train`` registers after
        the family's run finished instead, with all tags at once:
        :func:`training.registry.versions.register_version`).
    model_card : str, optional
        Markdown model card stored inside the model (``model_card`` artifact).

    Returns
    -------
    mlflow.models.model.ModelInfo
    """
    import joblib
    import mlflow
    from mlflow.models import infer_signature

    import features
    import training
    from training import artifact
    from training.registry import logged_model

    model_code = str(Path(artifact.__file__).with_name("pyfunc_model.py"))
    if example is None:
        example = synthetic_patient_rows()
    typed, _ = check_patients(example, table="example", allow_outcome=False)
    output = model.predict_frame(typed, model.horizons_months)
    with warnings.catch_warnings():
        # MLflow hints that integer columns cannot hold missing values; the input schema is
        # relaxed to Any below (logged_model.relax_input_schema), so the hint does not apply.
        warnings.filterwarnings("ignore", message=".*Inferred schema contains integer")
        signature = infer_signature(
            example,
            output,
            params={"horizons_months": [float(h) for h in model.horizons_months], "explain": False},
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "risk_model.joblib"
        joblib.dump(model, path)
        # The pickle names every module it needs: XGBoost families need xgboost installed.
        needs_xgboost = b"xgboost" in path.read_bytes()
        artifacts = {"risk_model": str(path)}
        if model_card is not None:
            card = Path(tmp) / "model_card.md"
            card.write_text(model_card)
            artifacts["model_card"] = str(card)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=model_code,
            artifacts=artifacts,
            signature=logged_model.relax_input_schema(signature),
            input_example=example,
            pip_requirements=logged_model.pip_requirements(xgboost=needs_xgboost),
            # The project's own packages travel with the model: it loads in an environment
            # with only its requirements.txt installed, outside the project folder.
            code_paths=[str(Path(pkg.__file__).parent) for pkg in (features, training)],
            registered_model_name=registered_model_name,
        )

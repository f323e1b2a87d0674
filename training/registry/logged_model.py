"""What a logged model declares besides its pickle: the exact libraries a fresh environment
installs (``pip_requirements``) and the input signature MLflow records (``relax_input_schema``).
"""

from __future__ import annotations

from importlib import metadata

from training.registry.versions import RegistryError

REQUIREMENT_PACKAGES = (
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "scikit-survival",
    "mlflow",
    "joblib",
    "pyarrow",
)


def pip_requirements(xgboost: bool = False) -> list[str]:
    """Exact versions of the libraries the logged model needs.

    The model's own code (``features``, ``training``) travels inside the model (MLflow
    ``code_paths``), so these are all a fresh environment installs. ``xgboost``: the pickled
    model holds XGBoost estimators (the distribution installed here, ``xgboost-cpu`` or
    ``xgboost``).
    """
    names = list(REQUIREMENT_PACKAGES)
    if xgboost:
        names.append(_installed("xgboost-cpu", "xgboost"))
    return [f"{name}=={metadata.version(name)}" for name in names]


def _installed(*names: str) -> str:
    """The first of ``names`` installed as a distribution."""
    for name in names:
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        return name
    raise RegistryError(f"none of {', '.join(names)} is installed")


def relax_input_schema(signature):
    """Input columns typed ``Any`` and optional except the contract's required ones.

    The contract lets a client omit any non-required column (its value is then missing) and
    send JSON integers for numbers; MLflow's in-process enforcement would reject an int64 for a
    double column. The model validates the rows itself against the contract, with messages
    naming each violation, so the signature documents columns without second-guessing types.
    """
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    from features.schema import PATIENT_SPECS

    cols = []
    for col in signature.inputs.inputs:
        spec = PATIENT_SPECS.get(col.name)
        required = bool(spec and spec.required)
        cols.append(ColSpec(type=AnyType(), name=col.name, required=required))
    return ModelSignature(inputs=Schema(cols), outputs=signature.outputs, params=signature.params)

"""The model registry: one registered model, versions tagged with metrics, aliases.

All candidates are versions of ``bone-metastasis-risk``. ``challenger`` marks the best candidate
of the latest training run by the selection metric; ``champion`` is what serving answers with
and moves only through :func:`promote`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata

from training.config import MODEL_NAME

CHAMPION = "champion"
CHALLENGER = "challenger"
HEADLINE_METRICS = (
    "test_harrell_c",
    "test_uno_c",
    "test_td_auc_24m",
    "test_ipcw_auc_24m",
    "test_brier_24m",
)
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


class RegistryError(RuntimeError):
    """A registry request that cannot be carried out, with the reason."""


def pip_requirements() -> list[str]:
    """Exact versions of the libraries the logged model needs.

    The model's code lives in the ``bonemet`` package (``features``, ``training``), which must
    be installed where the model is loaded; it is not on a public index, so it is not listed.
    """
    return [f"{name}=={metadata.version(name)}" for name in REQUIREMENT_PACKAGES]


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


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def tag_version(
    version: str,
    family: str,
    metrics: dict[str, float],
    dataset_digest: str,
    run_id: str,
    selection_metric: str,
) -> None:
    """Tag a version with its family, headline metrics and training-data digest."""
    client = _client()
    tags = {
        "family": family,
        "dataset_digest": dataset_digest,
        "run_id": run_id,
        "selection_metric": selection_metric,
    }
    for name in dict.fromkeys((*HEADLINE_METRICS, selection_metric)):
        if name in metrics and math.isfinite(metrics[name]):
            tags[name] = f"{metrics[name]:.4f}"
    for key, value in tags.items():
        client.set_model_version_tag(MODEL_NAME, version, key, value)
    headline = ", ".join(f"{k}={tags[k]}" for k in HEADLINE_METRICS if k in tags)
    client.update_model_version(MODEL_NAME, version, description=f"{family}: {headline}")


def choose_challenger(candidates: Sequence, selection_metric: str):
    """Set ``challenger`` on the best candidate (higher metric is better; ties: first listed)."""
    scored = [c for c in candidates if math.isfinite(c.metrics.get(selection_metric, math.nan))]
    if not scored:
        raise RegistryError(f"no candidate has a finite {selection_metric}")
    best = max(scored, key=lambda c: c.metrics[selection_metric])
    _client().set_registered_model_alias(MODEL_NAME, CHALLENGER, best.version)
    return best


@dataclass(frozen=True)
class Promotion:
    """Result of a promotion: the version that is now champion and the one it replaced."""

    version: str
    previous: str | None


def alias_version(alias: str) -> str | None:
    """Version carrying ``alias``, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return str(_client().get_model_version_by_alias(MODEL_NAME, alias).version)
    except MlflowException:
        return None


def promote(version: str | None = None) -> Promotion:
    """Move ``champion`` to ``version`` (default: the current ``challenger``)."""
    from mlflow.exceptions import MlflowException

    client = _client()
    if version is None:
        version = alias_version(CHALLENGER)
        if version is None:
            raise RegistryError(
                f"no version of {MODEL_NAME} has the alias '{CHALLENGER}': train first or "
                "name one with --version"
            )
    try:
        client.get_model_version(MODEL_NAME, str(version))
    except MlflowException as err:
        raise RegistryError(f"{MODEL_NAME} has no version {version}") from err
    previous = alias_version(CHAMPION)
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, str(version))
    client.set_model_version_tag(MODEL_NAME, str(version), "promoted_from", previous or "none")
    return Promotion(version=str(version), previous=previous)


@dataclass(frozen=True)
class ResolvedModel:
    """A concrete registered version behind a models:/ URI."""

    name: str
    version: str
    alias: str | None
    run_id: str
    uri: str
    tags: dict[str, str]


def resolve(model_uri: str) -> ResolvedModel:
    """Resolve ``models:/name@alias`` or ``models:/name/version`` to a concrete version."""
    from mlflow.exceptions import MlflowException

    client = _client()
    if not model_uri.startswith("models:/"):
        raise RegistryError(f"expected a models:/ URI, got {model_uri!r}")
    rest = model_uri[len("models:/") :]
    try:
        if "@" in rest:
            name, alias = rest.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
        else:
            name, _, ver = rest.partition("/")
            alias = None
            mv = client.get_model_version(name, ver)
    except MlflowException as err:
        raise RegistryError(f"cannot resolve {model_uri}: {err.message}") from err
    return ResolvedModel(
        name=name,
        version=str(mv.version),
        alias=alias,
        run_id=mv.run_id,
        uri=f"models:/{name}/{mv.version}",
        tags=dict(mv.tags or {}),
    )

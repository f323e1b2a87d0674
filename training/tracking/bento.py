"""Bring a registered MLflow version into the BentoML model store for serving.

The BentoML store lives in ``<data_dir>/bentoml`` (``BENTOML_HOME``) unless the environment
already names one. The imported model keeps the MLflow model unchanged (BentoML's MLflow
import) and records the registry facts the service reports with every answer.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from training.config import Settings
from training.tracking.registry import RegistryError, ResolvedModel, resolve

ENV_MODEL_TAG = "BONEMET_BENTO_MODEL"


class BentoImportError(RuntimeError):
    """The model could not be resolved or imported into the BentoML store."""


@dataclass(frozen=True)
class ServingModel:
    """A registered version imported into the BentoML store."""

    resolved: ResolvedModel
    bento_tag: str
    bentoml_home: Path
    tracking_uri: str

    def environment(self) -> dict[str, str]:
        """Environment for ``bentoml serve serving.service:BoneMetastasisService``.

        When the URI names an alias (``models:/name@champion``) the service follows it: it polls
        the registry (``MLFLOW_TRACKING_URI``) and swaps in the new version without downtime.
        """
        env = {
            ENV_MODEL_TAG: self.bento_tag,
            "BENTOML_HOME": str(self.bentoml_home),
            "MLFLOW_TRACKING_URI": self.tracking_uri,
        }
        if self.resolved.alias:
            env["BONEMET_FOLLOW_ALIAS"] = self.resolved.alias
        return env


def bentoml_home(settings: Settings) -> Path:
    """The BentoML store folder: ``$BENTOML_HOME`` or ``<data_dir>/bentoml``."""
    return Path(os.environ.get("BENTOML_HOME") or settings.data_dir / "bentoml").resolve()


def import_for_serving(model_uri: str, settings: Settings) -> ServingModel:
    """Resolve ``model_uri`` in the registry and import that version into BentoML.

    A version already imported is reused (its tag names the registry version).
    """
    try:
        resolved = resolve(model_uri)
    except RegistryError as err:
        raise BentoImportError(str(err)) from err
    home = bentoml_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    os.environ["BENTOML_HOME"] = str(home)  # before bentoml is imported: it reads it once
    import bentoml
    from bentoml.exceptions import NotFound

    tag = f"{resolved.name}:v{resolved.version}"
    metadata = {
        "name": resolved.name,
        "version": resolved.version,
        "alias": resolved.alias or "",
        "run_id": resolved.run_id,
        "model_uri": resolved.uri,
        "tags": json.dumps(resolved.tags),
    }
    try:
        bentoml.models.get(tag)
    except NotFound:
        bentoml.mlflow.import_model(
            tag, resolved.uri, labels={"registry_version": resolved.version}, metadata=metadata
        )
    return ServingModel(
        resolved=resolved, bento_tag=tag, bentoml_home=home, tracking_uri=settings.tracking_uri
    )

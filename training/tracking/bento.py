"""Bring a registered MLflow version into the BentoML model store for serving.

The BentoML store lives in ``<data_dir>/bentoml`` unless ``BENTOML_HOME`` already names one;
importing leaves the process environment as it found it. The imported model keeps the MLflow
model unchanged (BentoML's MLflow import) and records the registry facts the service reports
with every answer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from training.config import Settings
from training.tracking.registry import RegistryError, ResolvedModel, resolve

ENV_MODEL_TAG = "BONEMET_BENTO_MODEL"
#: Worker processes of the service (read by serving/settings.py, bounded the same way there).
ENV_WORKERS = "BONEMET_WORKERS"
MAX_WORKERS = 16


class BentoImportError(RuntimeError):
    """The model could not be resolved or imported into the BentoML store."""


@dataclass(frozen=True)
class ServingModel:
    """A registered version imported into the BentoML store."""

    resolved: ResolvedModel
    bento_tag: str
    bentoml_home: Path
    tracking_uri: str

    def environment(self, workers: int = 1) -> dict[str, str]:
        """Environment for ``bentoml serve serving.service:BoneMetastasisService``.

        When the URI names an alias (``models:/name@champion``) the service follows it: it polls
        the registry (``MLFLOW_TRACKING_URI``) and swaps in the new version without downtime.
        ``workers`` worker processes (1-16) answer, each with the model and the alias follower.

        Raises
        ------
        ValueError
            When ``workers`` is not 1-16.
        """
        if not 1 <= workers <= MAX_WORKERS:
            raise ValueError(f"workers must be 1-{MAX_WORKERS}, got {workers}")
        env = {
            ENV_MODEL_TAG: self.bento_tag,
            "BENTOML_HOME": str(self.bentoml_home),
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            ENV_WORKERS: str(workers),
        }
        if self.resolved.alias:
            env["BONEMET_FOLLOW_ALIAS"] = self.resolved.alias
        return env


def bentoml_home(settings: Settings) -> Path:
    """The BentoML store folder: ``$BENTOML_HOME`` or ``<data_dir>/bentoml``."""
    return Path(os.environ.get("BENTOML_HOME") or settings.data_dir / "bentoml").resolve()


@contextmanager
def _bentoml_home(home: Path) -> Iterator[None]:
    """``BENTOML_HOME`` set to ``home`` while BentoML opens its store, then as it was.

    BentoML takes its store folder from the environment the first time a process uses the
    store (it offers no public argument for it); the serving process gets the same folder from
    :meth:`ServingModel.environment`.
    """
    before = os.environ.get("BENTOML_HOME")
    os.environ["BENTOML_HOME"] = str(home)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("BENTOML_HOME", None)
        else:
            os.environ["BENTOML_HOME"] = before


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
    tag = f"{resolved.name}:v{resolved.version}"
    metadata = {
        "name": resolved.name,
        "version": resolved.version,
        "alias": resolved.alias or "",
        "run_id": resolved.run_id,
        "model_uri": resolved.uri,
        "tags": json.dumps(resolved.tags),
    }
    with _bentoml_home(home):
        import bentoml
        from bentoml.exceptions import NotFound

        try:
            bentoml.models.get(tag)
        except NotFound:
            bentoml.mlflow.import_model(
                tag, resolved.uri, labels={"registry_version": resolved.version}, metadata=metadata
            )
    return ServingModel(
        resolved=resolved, bento_tag=tag, bentoml_home=home, tracking_uri=settings.tracking_uri
    )

"""Bring a registered MLflow version into the BentoML model store for serving.

The BentoML store lives in ``<data_dir>/bentoml`` unless ``BENTOML_HOME`` already names one;
importing leaves the process environment as it found it. The imported model keeps the MLflow
model unchanged (BentoML's MLflow import) and records the registry facts the service reports
with every answer.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from features.vocabulary import ENV_FOLLOW_ALIAS, ENV_MODEL_TAG, ENV_WORKERS, MAX_WORKERS
from training.config import Settings
from training.registry.versions import RegistryError, ResolvedModel, resolve


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
            env[ENV_FOLLOW_ALIAS] = self.resolved.alias
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


def bento_tag(resolved: ResolvedModel) -> str:
    """The BentoML tag of a registered version: its number and a digest of its identity.

    The number alone is not an identity: a new registry (``mlflow.db`` deleted, or the data
    folder pointed at another tracking server) numbers its versions from 1 again, and a copy
    keyed ``v1`` would serve the old registry's model under the new registry's name. The
    digest covers the run that logged the version and where its model is (the registry's
    ``source``), so another model never reuses a copy.
    """
    identity = hashlib.sha256(f"{resolved.run_id}\n{resolved.source}".encode()).hexdigest()
    return f"{resolved.name}:v{resolved.version}-{identity[:16]}"


def _identity(resolved: ResolvedModel) -> dict[str, str]:
    """The registry facts a BentoML copy must carry to be served for ``resolved``."""
    return {
        "name": resolved.name,
        "version": resolved.version,
        "run_id": resolved.run_id,
        "source": resolved.source,
    }


def check_copy(metadata: dict, resolved: ResolvedModel, tag: str) -> None:
    """Refuse a BentoML copy whose recorded registry facts are not the registry's now.

    Raises
    ------
    BentoImportError
        Naming the fact that differs and how to remove the copy.
    """
    for key, expected in _identity(resolved).items():
        found = str(metadata.get(key, ""))
        if found != expected:
            raise BentoImportError(
                f"the BentoML copy {tag} is not the registry's {resolved.uri} ({key} is "
                f"{found!r} in the copy, {expected!r} in the registry); refusing to serve it "
                f"(remove it: BENTOML_HOME=... bentoml models delete {tag})"
            )


def import_for_serving(model_uri: str, settings: Settings) -> ServingModel:
    """Resolve ``model_uri`` in the registry and import that version into BentoML.

    A copy imported before is reused only when it is the same model (:func:`bento_tag`), and
    only after its recorded run id, version and source are checked against the registry
    (:func:`check_copy`).

    Raises
    ------
    BentoImportError
        When the URI does not resolve, or a copy disagrees with the registry.
    """
    try:
        resolved = resolve(model_uri)
    except RegistryError as err:
        raise BentoImportError(str(err)) from err
    home = bentoml_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    tag = bento_tag(resolved)
    metadata = {
        **_identity(resolved),
        "alias": resolved.alias or "",
        "model_uri": resolved.uri,
        "tags": json.dumps(resolved.tags),
    }
    with _bentoml_home(home):
        import bentoml
        from bentoml.exceptions import NotFound

        try:
            copy = bentoml.models.get(tag)
        except NotFound:
            copy = bentoml.mlflow.import_model(
                tag, resolved.uri, labels={"registry_version": resolved.version}, metadata=metadata
            )
        check_copy(copy.info.metadata, resolved, tag)
    return ServingModel(
        resolved=resolved, bento_tag=tag, bentoml_home=home, tracking_uri=settings.tracking_uri
    )


def smoke_load(model: ServingModel) -> None:
    """Load the BentoML copy that will be served and predict synthetic contract rows.

    ``bonemet serve`` calls this before it starts the server: a damaged model is refused in
    one line here instead of crash-looping the server's workers.

    Raises
    ------
    BentoImportError
        Naming the version and what failed (the exception type and its first line).
    """
    from training.artifact.smoke import SmokeCheckError, smoke_check

    name = f"{model.resolved.name} version {model.resolved.version}"
    with _bentoml_home(model.bentoml_home):
        import bentoml

        try:
            loaded = bentoml.mlflow.load_model(model.bento_tag)
        except Exception as err:  # noqa: BLE001 - a damaged artifact fails in any way
            raise BentoImportError(f"{name} does not load ({_first_line(err)})") from err
        try:
            smoke_check(loaded)
        except SmokeCheckError as err:
            raise BentoImportError(f"{name} {err}") from err


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0][:200]}" if lines else type(err).__name__

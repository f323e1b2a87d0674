"""What ``bonemet serve`` checks before it starts a server (issue 20, items 1 and 10).

- **The registry's model, never another under its name**: the BentoML copy of a version was
  keyed by the version number alone, so after ``mlflow.db`` was deleted (or the data folder
  pointed at another tracking server) and a new training registered version 1 again,
  ``bonemet serve`` answered from the old registry's copy labelled "version 1". A copy left
  under a version's number by another registry is never reused now, and a copy whose recorded
  run, version or source is not the registry's is refused.
- **A damaged champion is refused in one line** (exit 2) instead of crash-looping the server.

Against a copy of the session's real MLflow store (the shared store is left unchanged) and a
BentoML store of the test's own.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serving.servers import free_port

pytestmark = pytest.mark.slow
NAME = "bone-metastasis-risk"


@pytest.fixture
def registry_copy(trained_store, tmp_path, monkeypatch):
    """A copy of the session's registry database (same artifacts), MLflow pointed at it."""
    import mlflow

    from training.config import Settings
    from training.store import backend as tracking

    db = tmp_path / "mlflow.db"
    shutil.copy(trained_store["dir"] / "data" / "mlflow.db", db)
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    settings = Settings(data_dir=tmp_path, tracking_uri_override=uri)
    tracking.configure(settings)
    yield {"uri": uri, "settings": settings, "client": mlflow.MlflowClient(), "dir": tmp_path}


def _probabilities(model) -> list[float]:
    from features.examples import synthetic_patient_rows

    out = model.predict(synthetic_patient_rows())
    return out[[c for c in out.columns if c.startswith("p_bone_met_")]].to_numpy().ravel().tolist()


def test_a_copy_left_by_another_registry_is_not_served(registry_copy):
    import bentoml
    import mlflow

    from training.registry.bento import BentoImportError, bento_tag, import_for_serving
    from training.registry.versions import resolve

    client = registry_copy["client"]
    one, two = (client.get_model_version(NAME, v) for v in ("1", "2"))
    # What an earlier registry left: its "version 1" (here: another model) under v1's number,
    # as the import keyed by number wrote it.
    bentoml.mlflow.import_model(
        f"{NAME}:v1",
        f"models:/{NAME}/2",
        metadata={"name": NAME, "version": "1", "run_id": two.run_id},
    )
    served = import_for_serving(f"models:/{NAME}/1", registry_copy["settings"])
    assert served.bento_tag != f"{NAME}:v1"
    copy = bentoml.models.get(served.bento_tag)
    assert copy.info.metadata["run_id"] == one.run_id
    registry = mlflow.pyfunc.load_model(f"models:/{NAME}/1")
    assert _probabilities(bentoml.mlflow.load_model(served.bento_tag)) == _probabilities(registry)
    # A copy under the version's own key that records another run is refused, not served.
    resolved = resolve(f"models:/{NAME}/2")
    tag = bento_tag(resolved)
    bentoml.mlflow.import_model(
        tag,
        f"models:/{NAME}/1",
        metadata={"name": NAME, "version": "2", "run_id": one.run_id, "source": resolved.source},
    )
    with pytest.raises(BentoImportError, match="refusing to serve it"):
        import_for_serving(f"models:/{NAME}/2", registry_copy["settings"])


def test_a_damaged_champion_is_refused_in_one_line(registry_copy, trained_store):
    client = registry_copy["client"]
    good = client.get_model_version(NAME, "1")
    source = Path(client.get_model_version_download_uri(NAME, "1").removeprefix("file://"))
    damaged = registry_copy["dir"] / "damaged-model"
    shutil.copytree(source, damaged)
    (pickled,) = (damaged / "artifacts").glob("*.joblib")
    pickled.write_bytes(pickled.read_bytes()[: pickled.stat().st_size // 2])
    version = client.create_model_version(NAME, str(damaged), run_id=good.run_id).version
    client.set_registered_model_alias(NAME, "champion", str(version))
    env = dict(
        trained_store["env"],
        MLFLOW_TRACKING_URI=registry_copy["uri"],
        BENTOML_HOME=str(registry_copy["dir"] / "bentoml"),
    )
    cmd = [sys.executable, "-m", "training.cli", "serve", "--port", str(free_port())]
    proc = subprocess.run(
        cmd, env=env, cwd=registry_copy["dir"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"cannot serve: {NAME} version {version} does not load"), line
    assert "Traceback" not in proc.stdout + proc.stderr

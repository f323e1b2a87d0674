"""Promotion records why before ``champion`` moves (issue 20.2).

A copy of the session's trained store (its database; the artifacts it points at are shared and
only read) so that moving aliases here leaves ``trained_store`` as the other tests expect it.
Failures of the registry are injected where the client writes: a dropped connection and a
Ctrl-C while the audit tags are written, and while the alias moves.
"""

from __future__ import annotations

import shutil

import pytest

NAME = "bone-metastasis-risk"
#: Gates that any finite metric passes: which version passes the real gates depends on the
#: data; here only the write path is under test.
LENIENT = dict(
    discrimination_margin=1.0, slope_band=(-1e9, 1e9), citl_max=1e9
)


@pytest.fixture()
def store(trained_store, tmp_path):
    import mlflow

    from training.registry import versions as registry

    shutil.copy(trained_store["dir"] / "data" / "mlflow.db", tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = registry.mlflow_client()
    champion = registry.alias_version("champion")
    versions = sorted(str(v.version) for v in client.search_model_versions(f"name='{NAME}'"))
    other = next(v for v in versions if v != champion)
    yield client, champion, other
    mlflow.set_tracking_uri(before[0])
    mlflow.set_registry_uri(before[1])


def _fail_on(monkeypatch, method: str, call: int, error: BaseException) -> None:
    """Make ``MlflowClient.<method>`` raise ``error`` on its ``call``-th call."""
    from mlflow import MlflowClient

    real = getattr(MlflowClient, method)
    calls = {"n": 0}

    def broken(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise error
        return real(self, *args, **kwargs)

    monkeypatch.setattr(MlflowClient, method, broken)


def _dropped():
    from mlflow.exceptions import MlflowException

    return MlflowException(
        "API request to endpoint /api/2.0/mlflow/model-versions/set-tag failed with exception "
        "ConnectionResetError(104, 'Connection reset by peer')"
    )


@pytest.mark.parametrize("error", [_dropped(), KeyboardInterrupt()], ids=["dropped", "ctrl-c"])
def test_a_failed_audit_leaves_the_alias_and_the_tags_as_they_were(store, monkeypatch, error):
    from training.registry import promotion
    from training.registry import versions as registry

    client, champion, other = store
    tags_before = dict(client.get_model_version(NAME, other).tags)
    _fail_on(monkeypatch, "set_model_version_tag", 1, error)
    with pytest.raises(registry.RegistryError) as refused:
        promotion.promote(other, force=True, reason="clinical review")
    message = str(refused.value)
    assert "could not be recorded" in message and "'champion' was not moved" in message
    assert f"still version {champion}" in message and "\n" not in message
    assert registry.alias_version("champion") == champion
    assert dict(client.get_model_version(NAME, other).tags) == tags_before


def test_a_failed_alias_move_rolls_the_audit_back(store, monkeypatch):
    from training.registry import promotion
    from training.registry import versions as registry

    client, champion, other = store
    tags_before = dict(client.get_model_version(NAME, other).tags)
    _fail_on(monkeypatch, "set_registered_model_alias", 1, KeyboardInterrupt())
    with pytest.raises(registry.RegistryError, match="moving 'champion' to version .* failed"):
        promotion.promote(other, force=True, reason="clinical review")
    assert registry.alias_version("champion") == champion
    assert dict(client.get_model_version(NAME, other).tags) == tags_before


def test_a_second_promotion_replaces_the_first_ones_reason(store):
    from training.registry import gates, promotion
    from training.registry import versions as registry

    client, champion, other = store
    def record(version):
        return registry.promotion_record(client.get_model_version(NAME, version).tags)

    promotion.promote(other, force=True, reason="first, forced")
    tags = record(other)
    assert tags["forced_promotion_reason"] == tags["promotion_reason"] == "first, forced"
    promotion.promote(champion, force=True, reason="back")
    assert record(other)["promotion_reason"] == "first, forced"
    done = promotion.promote(other, policy=gates.PromotionPolicy(**LENIENT))
    assert done.forced_reason is None and registry.alias_version("champion") == other
    tags = record(other)
    assert set(client.get_model_version(NAME, other).tags) == {"summary", "facts"}
    assert tags["promotion_reason"] == "promotion gates passed"
    assert "forced_promotion_reason" not in tags
    assert tags["promoted_from"] == champion


def test_the_command_says_in_one_line_what_state_a_failed_promotion_left(
    store, monkeypatch, tmp_path
):
    from mlflow.exceptions import MlflowException
    from typer.testing import CliRunner

    from training.cli import app
    from training.registry import versions as registry

    client, champion, other = store
    _fail_on(monkeypatch, "set_model_version_tag", 1, MlflowException("Connection aborted."))
    res = CliRunner().invoke(
        app,
        ["promote", "--version", other, "--force", "--reason", "review"],
        env={"BONEMET_DATA_DIR": str(tmp_path), "MLFLOW_TRACKING_URI": ""},
    )
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        f"cannot promote: the promotion of version {other} could not be recorded (Connection "
        f"aborted.); 'champion' was not moved (still version {champion}); its promotion tags "
        "are as before"
    ]
    assert registry.alias_version("champion") == champion


def test_a_version_of_a_killed_training_is_incomplete_for_promote_and_compare(store):
    from training.registry import promotion
    from training.registry import versions as registry
    from training.registry.compare import compare

    client, champion, other = store
    # The training that registered `other` ended FAILED, as bonemet's reaper marks a killed
    # one; its family run finished and the version carries every tag.
    tags = client.get_model_version(NAME, other).tags
    training_run = registry.version_facts(tags)["training_run_id"]
    client.set_terminated(training_run, "FAILED")
    with pytest.raises(registry.RegistryError) as refused:
        promotion.promote(other, force=True, reason="clinical review")
    assert str(refused.value) == (
        f"version {other} is incomplete: its training run {training_run} is FAILED, not "
        "FINISHED; it is not promoted (not even with --force)"
    )
    states = {row.version: row.complete for row in compare()}
    assert states[other] is False
    assert registry.alias_version("champion") == champion


def _as_an_earlier_release_left_it(client, version: str) -> dict[str, str]:
    """Rewrite ``version`` and its run as bonemet 0.1 recorded them: a tag per fact and per
    headline metric (``%.4f``), a tag per promotion field, every metric of the run logged as
    an MLflow metric (no metrics table). Returns the 0.1 tags."""
    from mlflow.entities import Metric

    from training.registry import versions as registry

    mv = client.get_model_version(NAME, version)
    facts = registry.version_facts(mv.tags)
    metrics = registry.run_metrics(mv.run_id, client)
    old = {k: facts[k] for k in ("family", "selection_metric", "dataset_digest", "landmark_days")}
    old.update(run_id=facts["run_id"], training_run_id=facts["training_run_id"])
    old.update({k: f"{v:.4f}" for k, v in facts["metrics"].items()})
    old.update(
        promoted_from="none",
        promotion_gates="discrimination: pass (no champion yet)",
        promoted_by="someone",
        promoted_at="2026-01-01T00:00:00+00:00",
        promotion_reason="promotion gates passed",
    )
    for key in mv.tags:
        client.delete_model_version_tag(NAME, version, key)
    for key, value in old.items():
        client.set_model_version_tag(NAME, version, key, value)
    client.delete_tag(mv.run_id, "metrics_table")
    items = sorted(metrics.items())
    for i in range(0, len(items), 500):
        client.log_batch(mv.run_id, [Metric(k, v, 0, 0) for k, v in items[i : i + 500]])
    return old


def test_versions_and_runs_of_an_earlier_release_read_alike(store):
    """A version registered by bonemet 0.1 (a tag per fact, its run's metrics all logged as
    MLflow metrics, its promotion a tag per field) reads as it did (issue 23): facts, gate
    values, compare, history; promoting it again replaces its promotion tags by one."""
    from training.registry import gates, promotion
    from training.registry import versions as registry
    from training.registry.compare import compare

    client, champion, other = store
    mv = client.get_model_version(NAME, other)
    facts = registry.version_facts(mv.tags)
    values = gates.gate_values(mv)
    rows = {r.version: r for r in compare()}
    old = _as_an_earlier_release_left_it(client, other)
    legacy = client.get_model_version(NAME, other)
    assert len(legacy.tags) > 12  # the 0.1 layout
    read = registry.version_facts(legacy.tags)
    assert {k: v for k, v in read.items() if k != "metrics"} == {
        k: v for k, v in facts.items() if k != "metrics"
    }
    assert read["metrics"] == pytest.approx(facts["metrics"], abs=1e-4)
    assert registry.promotion_record(legacy.tags)["promoted_by"] == "someone"
    assert registry.incomplete_reason(legacy) is None
    # 0.1 tagged the headline values at 4 decimals, 0.2 records 4 significant digits.
    legacy_values = gates.gate_values(legacy)
    assert set(legacy_values) == set(values)
    for key, value in values.items():
        assert float(legacy_values[key]) == pytest.approx(float(value), abs=1e-4), key
    row, before = {r.version: r for r in compare()}[other], rows[other]
    assert (row.family, row.data_digest, row.complete, row.selection_metric) == (
        before.family,
        before.data_digest,
        before.complete,
        before.selection_metric,
    )
    assert row.failed_gates == before.failed_gates
    for key, metric in before.metrics.items():
        assert (row.metrics[key] is None) == (metric is None), key
        if metric is not None:
            assert row.metrics[key].estimate == pytest.approx(metric.estimate, abs=1e-4)
            assert (row.metrics[key].lo, row.metrics[key].hi) == (metric.lo, metric.hi)
    history = registry.training_history()
    assert other in history.iloc[0]["versions"].split(",")
    promotion.promote(other, force=True, reason="re-promoted")
    tags = client.get_model_version(NAME, other).tags
    assert set(tags) == {"summary", "facts"} and len(old) > 12  # moved to the two tags
    moved = registry.version_facts(tags)
    assert moved["family"] == facts["family"] and moved["run_id"] == facts["run_id"]
    assert moved["metrics"] == pytest.approx(facts["metrics"], abs=1e-4)
    record = registry.promotion_record(tags)
    assert record["promoted_by"] != "someone" and record["promotion_reason"] == "re-promoted"
    assert registry.alias_version("champion") == other

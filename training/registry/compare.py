"""Registered versions side by side: what each is, its gate verdicts and its metrics.

:func:`compare` returns values (:class:`VersionComparison`, one per version); the command line
turns them into text (``training.cli.output.comparison_rows_text``: the ``bonemet compare``
table and its ``--json`` document).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from training.config import MODEL_NAME
from training.evaluation import names
from training.registry.gates import Gate, PromotionPolicy, check_gates, gate_values, tag_float
from training.registry.versions import (
    CHAMPION,
    RegistryError,
    alias_version,
    incomplete_reason,
    mlflow_client,
    version_facts,
)

#: Metrics shown side by side: Harrell's C, the headline metrics, the marker's increment.
COMPARE_METRICS = names.COMPARE


@dataclass(frozen=True)
class MetricValue:
    """One metric of a version: estimate, interval bounds (None when not recorded) and whether
    it lies outside its promotion gate."""

    estimate: float
    lo: float | None
    hi: float | None
    flagged: bool


@dataclass(frozen=True)
class VersionComparison:
    """One registered version as :func:`compare` sees it.

    Parameters
    ----------
    version, family, data_digest : str
        The version, its model family and its training data's digest (empty when untagged).
    aliases : tuple of str
        Its aliases, sorted.
    complete : bool
        Registered by a finished ``bonemet train``
        (:func:`training.registry.versions.incomplete_reason`: the rule ``promote`` applies).
    selection_metric : str
        The metric that ranked its training run (empty when untagged).
    selection_value : float or None
        That metric's value.
    failed_gates : tuple of str
        Names of the promotion gates it fails against the current champion.
    metrics : dict
        :data:`COMPARE_METRICS` name to :class:`MetricValue`, or None when not recorded.
    gates : tuple of Gate
        Every gate's verdict (name, passed, detail, metric).
    champion : str or None
        The champion the gates were checked against, at the time of the comparison (None: no
        champion yet; the champion's own gates are checked against no champion): a version
        that passed when it was trained may fail once another version is promoted.
    """

    version: str
    family: str
    aliases: tuple[str, ...]
    data_digest: str
    complete: bool
    selection_metric: str
    selection_value: float | None
    failed_gates: tuple[str, ...]
    metrics: dict[str, MetricValue | None]
    gates: tuple[Gate, ...] = ()
    champion: str | None = None


def compare(
    versions: Sequence[str] | None = None, policy: PromotionPolicy | None = None
) -> list[VersionComparison]:
    """Registered versions side by side: family, aliases, data digest, the selection metric,
    the promotion-gate verdicts (:func:`check_gates` against the current champion) and
    :data:`COMPARE_METRICS` with intervals, a metric outside its gate flagged.

    Returns
    -------
    list of VersionComparison
        One per version, newest first.

    Raises
    ------
    RegistryError
        A version asked for that does not exist, or no registered model yet.
    """
    from mlflow.exceptions import MlflowException

    policy = policy or PromotionPolicy()
    client = mlflow_client()
    found = client.search_model_versions(f"name='{MODEL_NAME}'")
    if versions:
        wanted = {str(v) for v in versions}
        missing = wanted - {str(v.version) for v in found}
        if missing:
            raise RegistryError(f"{MODEL_NAME} has no version(s) {', '.join(sorted(missing))}")
        found = [v for v in found if str(v.version) in wanted]
    aliases: dict[str, list[str]] = {}
    try:
        for alias, ver in (client.get_registered_model(MODEL_NAME).aliases or {}).items():
            aliases.setdefault(str(ver), []).append(alias)
    except MlflowException as err:
        raise RegistryError(f"no registered model {MODEL_NAME}: train first") from err
    champion = alias_version(CHAMPION)
    champion_tags = None
    if champion is not None:
        champion_tags = gate_values(client.get_model_version(MODEL_NAME, champion))
    rows = []
    run_status: dict[str, str] = {}
    for v in sorted(found, key=lambda v: int(v.version), reverse=True):
        tags = version_facts(v.tags or {})
        values = gate_values(v)
        selection = tags.get("selection_metric", "")
        other = champion_tags if str(v.version) != champion else None
        verdicts = check_gates(values, other, policy)
        failed_gates = [g for g in verdicts if not g.passed]
        failed = tuple(g.name for g in failed_gates)
        flagged = {g.metric for g in failed_gates}
        metrics: dict[str, MetricValue | None] = {}
        for name in COMPARE_METRICS:
            est = tag_float(values, name)
            metrics[name] = (
                None
                if est is None
                else MetricValue(
                    est,
                    tag_float(values, name + "_lo"),
                    tag_float(values, name + "_hi"),
                    name in flagged,
                )
            )
        rows.append(
            VersionComparison(
                version=str(v.version),
                family=tags.get("family", ""),
                aliases=tuple(sorted(aliases.get(str(v.version), []))),
                data_digest=tags.get("dataset_digest", ""),
                complete=incomplete_reason(v, run_status) is None,
                selection_metric=selection,
                selection_value=tag_float(values, selection) if selection else None,
                failed_gates=failed,
                metrics=metrics,
                gates=tuple(verdicts),
                champion=champion,
            )
        )
    return rows

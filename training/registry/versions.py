"""The model registry: one registered model, its versions, their tags, descriptions and aliases.

All candidates are versions of ``bone-metastasis-risk``. ``challenger`` marks the best candidate
of the latest training run by the selection metric; ``champion`` is what serving answers with
and moves only through :func:`training.registry.promotion.promote`. The promotion gates live in
:mod:`training.registry.gates`, the side-by-side comparison in :mod:`training.registry.compare`,
what a logged model declares (requirements, signature) in :mod:`training.registry.logged_model`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from features.schema import HEADLINE_HORIZON_MONTHS
from training.config import MODEL_NAME
from training.evaluation import names

CHAMPION = "champion"
CHALLENGER = "challenger"
#: Metrics recorded on each version (with the selection metric, in its :data:`FACTS_TAG`):
#: what a person scanning the registry needs. Every other metric, and every interval, stays in
#: the version's training run (:func:`run_metrics`), where the promotion gates also read the
#: other horizons (:func:`training.registry.gates.gate_values`).
HEADLINE_METRICS = names.HEADLINE_TEST
#: The two tags of a version (MLflow 3.17's registry table shows a line per tag): a one-line
#: ``summary`` for people (family, headline metrics, data) and ``facts``, one JSON object for
#: programs (:func:`version_facts`; its ``promotion`` the latest promotion,
#: :func:`promotion_record`). Versions of releases before 0.2 carry a tag per fact instead,
#: among them :data:`FAMILY_TAG`.
SUMMARY_TAG, FACTS_TAG, FAMILY_TAG = "summary", "facts", "family"
#: Key of the latest promotion in a version's facts.
PROMOTION_KEY = "promotion"
#: Key of the facts holding the external validations of a version: grouping column to the
#: run of ``bonemet evaluate --by`` (tags ``validation_by_<column>_run_id`` before 0.2).
VALIDATIONS_KEY = "validations"
#: The promotion record's fields; versions promoted by releases before 0.2 carry each as a
#: tag of its own, read alike by :func:`promotion_record`.
PROMOTION_FIELDS = (
    "promoted_from",
    "promotion_gates",
    "promoted_by",
    "promoted_at",
    "promotion_reason",
    "forced_promotion_reason",
)
#: Description of the registered model itself (the registry's model page).
MODEL_DESCRIPTION = (
    "Cumulative incidence of a first bone metastasis in breast cancer, death without bone "
    "metastasis competing, from clinical covariates and circulating osteocalcin-positive cells "
    "(data contract v1). Each version is one model family trained by `bonemet train`; its "
    "description opens with a summary, then the model card; its two tags hold a one-line "
    "summary and its facts (JSON), everything else is in its training run "
    "(tables/metrics.json). `champion` is served, `challenger` is "
    "the best candidate of the latest training. Research software, not a medical device."
)


class RegistryError(RuntimeError):
    """A registry request that cannot be carried out, with the reason."""


class RegistrationRefused(RegistryError):
    """The tracking server refused this user a new version of the registered model.

    Raised by :func:`register_version`; :func:`training.runs.train.train` raises it
    again, once every family is logged and its run finished, with ``run_id`` (the training's
    parent run) and ``experiment_id`` set and the message saying what was kept.
    """

    def __init__(self, message: str, run_id: str = "", experiment_id: str = "") -> None:
        super().__init__(message)
        self.run_id = run_id
        self.experiment_id = experiment_id


def mlflow_client():
    """An ``MlflowClient`` on the configured store (:func:`training.store.backend.configure`)."""
    from mlflow import MlflowClient

    return MlflowClient()


#: Facts every version bonemet registers carries from its creation (one request, in its
#: :data:`FACTS_TAG`; before 0.2 as tags of their own): a version without them was not made by
#: a finished ``bonemet train`` and is never promoted.
REQUIRED_VERSION_TAGS = ("family", "dataset_digest", "run_id", "selection_metric")


def incomplete_reason(version, run_status: dict[str, str] | None = None) -> str | None:
    """Why a version is not one a finished ``bonemet train`` registered, or None if it is.

    Complete means READY, carrying :data:`REQUIRED_VERSION_TAGS`, its family's run FINISHED
    and the training (parent) run that registered it (``training_run_id``) FINISHED: a
    training killed after registering a version leaves it without its description and
    without a challenger chosen among its candidates, so that version is incomplete too.
    ``promote`` refuses an incomplete version whatever ``--force`` says and ``compare`` shows
    it as incomplete (one rule, here).

    Parameters
    ----------
    version : mlflow.entities.model_registry.ModelVersion
    run_status : dict, optional
        A cache of run id to status shared across calls (``compare`` reads many versions).
    """
    from mlflow.exceptions import MlflowException

    tags = version_facts(version.tags or {})
    if str(version.status) != "READY":
        return f"it is {version.status}, not READY"
    missing = [t for t in REQUIRED_VERSION_TAGS if not tags.get(t)]
    if missing:
        return f"it lacks the fact(s) {', '.join(missing)} a finished bonemet train records"
    cache = run_status if run_status is not None else {}
    runs = [("run", tags["run_id"])]
    if tags.get("training_run_id"):
        runs.append(("training run", tags["training_run_id"]))
    for what, run_id in runs:
        if run_id not in cache:
            try:
                cache[run_id] = str(mlflow_client().get_run(run_id).info.status)
            except MlflowException as err:
                if authentication_failed(err):
                    raise AuthenticationFailed(authentication_message()) from err
                cache[run_id] = f"unreadable ({err.message.splitlines()[0][:200]})"
        if cache[run_id] != "FINISHED":
            return f"its {what} {run_id} is {cache[run_id]}, not FINISHED"
    return None


def version_tags(
    family: str,
    metrics: dict[str, float],
    dataset_digest: str,
    run_id: str,
    selection_metric: str,
    landmark_days: Sequence[float] = (),
    training_run_id: str | None = None,
) -> dict[str, str]:
    """The two tags a version carries (:data:`SUMMARY_TAG`, :data:`FACTS_TAG`): two lines in
    the registry's table.

    ``facts`` is one JSON object: family, data digest, landmark days, its run, the training
    (parent) run it came from, the selection metric and ``metrics``, the point estimates of the
    selection metric and :data:`HEADLINE_METRICS` (intervals stay in the run). Read it with
    :func:`version_facts`, which reads the versions of earlier releases (a tag per fact) alike.
    """
    values = {
        name: float(metrics[name])
        for name in dict.fromkeys((selection_metric, *HEADLINE_METRICS))
        if name in metrics and math.isfinite(metrics[name])
    }
    facts = {
        "family": family,
        "selection_metric": selection_metric,
        "dataset_digest": dataset_digest,
        "landmark_days": ",".join(f"{d:g}" for d in landmark_days) or "none",
        "run_id": run_id,
        **({"training_run_id": training_run_id} if training_run_id else {}),
        "metrics": values,
    }
    return {
        SUMMARY_TAG: summary_line(family, values, dataset_digest),
        FACTS_TAG: json.dumps(facts, separators=(",", ":")),
    }


#: Metrics of a version's one-line summary (its :data:`SUMMARY_TAG`).
SUMMARY_METRICS = HEADLINE_METRICS[:3]


def summary_line(family: str, metrics: Mapping[str, float], dataset_digest: str) -> str:
    """``cox_ridge · Uno C 0.773 · AUC 24m 0.801 · Brier 24m 0.061 · data 1a2b3c4d``: what a
    person scanning the registry reads of a version (labels of
    :mod:`training.evaluation.names`)."""
    parts = [
        f"{names.label(name)} {metrics[name]:.3f}" for name in SUMMARY_METRICS if name in metrics
    ]
    return " · ".join([family, *parts, f"data {dataset_digest[:8]}"])


def version_facts(tags: Mapping[str, str]) -> dict:
    """What bonemet recorded on a version, from its tags, whichever release registered it.

    Returns
    -------
    dict
        ``family``, ``dataset_digest``, ``landmark_days``, ``run_id``, ``training_run_id``,
        ``selection_metric`` (str, absent when not recorded) and ``metrics`` (name to float).
        From the :data:`FACTS_TAG` (0.2 on), else from one tag per fact (earlier releases:
        ``run_id``, ``test_uno_c``, ...). A facts tag that is not a JSON object (edited by
        hand) reads as no facts: the version is then incomplete.
    """
    tags = dict(tags or {})
    out: dict = {}
    if FACTS_TAG in tags:
        try:
            facts = json.loads(tags[FACTS_TAG])
        except ValueError:
            facts = None
        if isinstance(facts, dict):
            out = {
                k: str(v)
                for k, v in facts.items()
                if k not in ("metrics", PROMOTION_KEY, VALIDATIONS_KEY) and v is not None
            }
            values = facts.get("metrics")
            out["metrics"] = {
                k: float(v)
                for k, v in (values.items() if isinstance(values, dict) else ())
                if isinstance(v, int | float) and math.isfinite(v)
            }
        else:
            out["metrics"] = {}
    else:
        out = {k: tags[k] for k in LEGACY_FACT_TAGS if tags.get(k)}
        out["metrics"] = {}
        for k, v in tags.items():
            if names.parse(k) is not None:
                try:
                    value = float(v)
                except ValueError:
                    continue
                if math.isfinite(value):
                    out["metrics"][k] = value
    return out


def version_validations(tags: Mapping[str, str]) -> dict[str, str]:
    """The external validations recorded on a version: grouping column to the run id of its
    ``bonemet evaluate --by`` run (in the facts' :data:`VALIDATIONS_KEY`, or a tag per column
    ``validation_by_<column>_run_id`` before 0.2)."""
    tags = dict(tags or {})
    found = {
        m.group(1): v
        for k, v in tags.items()
        if (m := re.fullmatch(r"validation_by_(.+)_run_id", k)) and v
    }
    try:
        facts = json.loads(tags[FACTS_TAG]) if FACTS_TAG in tags else None
    except ValueError:
        facts = None
    recorded = facts.get(VALIDATIONS_KEY) if isinstance(facts, dict) else None
    if isinstance(recorded, dict):
        found.update({str(k): str(v) for k, v in recorded.items() if v})
    return found


def promotion_record(tags: Mapping[str, str]) -> dict[str, str]:
    """The latest promotion recorded on a version (:data:`PROMOTION_FIELDS` present), from
    the ``promotion`` of its facts or, for a version promoted before 0.2, from a tag per
    field."""
    tags = dict(tags or {})
    if FACTS_TAG in tags:
        try:
            record = json.loads(tags[FACTS_TAG]).get(PROMOTION_KEY)
        except (ValueError, AttributeError):
            record = None
        if isinstance(record, dict):
            return {k: str(record[k]) for k in PROMOTION_FIELDS if record.get(k) is not None}
    return {k: tags[k] for k in PROMOTION_FIELDS if tags.get(k)}


def promotion_tags(tags: Mapping[str, str], record: Mapping[str, str | None]) -> dict:
    """The tag writes that record ``record`` (:data:`PROMOTION_FIELDS`) on a version with
    ``tags``: its facts with ``promotion`` replaced (two lines in the registry's table, still).
    A version of a release before 0.2 is moved to the two tags on the way
    (:func:`facts_tags`)."""
    return facts_tags(tags, PROMOTION_KEY, {k: v for k, v in record.items() if v is not None})


def validation_tags(tags: Mapping[str, str], by: str, run_id: str) -> dict:
    """The tag writes that record the validation run ``run_id`` grouped by ``by`` on a version
    with ``tags``, in its facts (a version stays two lines in the registry's table)."""
    validations = {**version_validations(tags), by: run_id}
    return facts_tags(tags, VALIDATIONS_KEY, validations)


def facts_tags(tags: Mapping[str, str], key: str, value) -> dict:
    """The tag writes that set ``key`` of a version's facts to ``value`` (None: delete the
    tag). A version of a release before 0.2 is moved to the two tags on the way: its facts
    written from :func:`version_facts`, its tags per fact, per promotion field and per
    validation deleted."""
    tags = dict(tags or {})
    try:
        facts = json.loads(tags[FACTS_TAG]) if FACTS_TAG in tags else None
    except ValueError:
        facts = None
    legacy: dict[str, str | None] = {}
    if not isinstance(facts, dict):
        facts = version_facts(tags)
        legacy[SUMMARY_TAG] = summary_line(
            facts.get("family", ""), facts["metrics"], facts.get("dataset_digest", "")
        )
        old = {*LEGACY_FACT_TAGS, *PROMOTION_FIELDS, *facts["metrics"]}
        legacy.update({k: None for k in tags if k in old})
        if PROMOTION_KEY != key and (record := promotion_record(tags)):
            facts[PROMOTION_KEY] = record
    if key != VALIDATIONS_KEY and (validations := version_validations(tags)):
        facts[VALIDATIONS_KEY] = validations
    legacy.update({k: None for k in tags if re.fullmatch(r"validation_by_(.+)_run_id", k)})
    # The facts first: a reader between two writes finds the version complete.
    facts_json = json.dumps({**facts, key: value}, separators=(",", ":"))
    return {FACTS_TAG: facts_json, **legacy}


#: Tags per fact of the versions of releases before 0.2 (with one per headline metric).
LEGACY_FACT_TAGS = (
    FAMILY_TAG,
    "selection_metric",
    "dataset_digest",
    "landmark_days",
    "run_id",
    "training_run_id",
)


def run_metrics(run_id: str, client=None) -> dict[str, float]:
    """Every metric of a run: its :data:`~training.evaluation.names.METRICS_TABLE` (0.2 on:
    the headline set alone is logged as MLflow metrics) over its logged metrics (all of them
    in runs of earlier releases). ``{}`` for an unreadable run.
    """
    import tempfile

    from mlflow.exceptions import MlflowException

    client = client or mlflow_client()
    try:
        run = client.get_run(run_id)
    except MlflowException as err:
        if authentication_failed(err):
            raise AuthenticationFailed(authentication_message()) from err
        return {}
    values = dict(run.data.metrics)
    if run.data.tags.get(METRICS_TABLE_TAG) != names.METRICS_TABLE:
        return values
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(run_id, names.METRICS_TABLE, tmp)
            with open(path, encoding="utf-8") as fh:
                table = json.load(fh)
    except (MlflowException, OSError, ValueError):
        return values
    return {**values, **metrics_from_table(table)}


#: Run tag saying the run's metrics are in its :data:`~training.evaluation.names.METRICS_TABLE`.
METRICS_TABLE_TAG = "metrics_table"


def metrics_table(metrics: Mapping[str, float]):
    """The :data:`~training.evaluation.names.METRICS_TABLE` of a run's metrics: one row per
    metric (``metric``, ``estimate``, ``low``, ``high``: ``<key>_lo``/``<key>_hi`` become its
    interval), sorted by key."""
    import pandas as pd

    rows: dict[str, dict] = {}
    for k, v in metrics.items():
        base, column = k, "estimate"
        for suffix, name in (("_lo", "low"), ("_hi", "high")):
            if k.endswith(suffix) and k[: -len(suffix)] in metrics:
                base, column = k[: -len(suffix)], name
        rows.setdefault(base, {"metric": base, "estimate": None, "low": None, "high": None})
        rows[base][column] = float(v) if v is not None and math.isfinite(v) else None
    columns = ["metric", "estimate", "low", "high"]
    return pd.DataFrame([rows[k] for k in sorted(rows)], columns=columns)


def metrics_from_table(table: Mapping) -> dict[str, float]:
    """The flat metrics (``<key>``, ``<key>_lo``, ``<key>_hi``) of a logged
    :func:`metrics_table` (MLflow's ``{"columns": [...], "data": [...]}``)."""
    columns = list(table.get("columns") or [])
    out: dict[str, float] = {}
    for row in table.get("data") or []:
        entry = dict(zip(columns, row, strict=False))
        name = entry.get("metric")
        for column, suffix in (("estimate", ""), ("low", "_lo"), ("high", "_hi")):
            value = entry.get(column)
            if isinstance(name, str) and isinstance(value, int | float) and math.isfinite(value):
                out[name + suffix] = float(value)
    return out


def version_summary(family: str, metrics: dict[str, float], selection_metric: str) -> str:
    """One paragraph that opens a version's description: what it is and how it did."""

    def value(name: str, digits: int = 3) -> str:
        est = metrics.get(name, math.nan)
        if not math.isfinite(est):
            return "n/a"
        lo, hi = metrics.get(name + "_lo", math.nan), metrics.get(name + "_hi", math.nan)
        text = f"{est:.{digits}f}"
        if math.isfinite(lo) and math.isfinite(hi):
            text += f" (95 % CI {lo:.{digits}f}-{hi:.{digits}f})"
        return text

    uno_c, auc, brier, slope, citl = HEADLINE_METRICS
    h = HEADLINE_HORIZON_MONTHS
    return (
        f"**{family}** candidate of `bonemet train`, selected by {selection_metric} = "
        f"{value(selection_metric)}. Held-out test: Uno's C {value(uno_c)}, AUC at {h} "
        f"months {value(auc)}, Brier at {h} months {value(brier)}, "
        f"calibration slope {value(slope, 2)}, calibration-in-the-large "
        f"{value(citl)}"
        + (
            f"; the marker adds {value(names.MARKER_GAIN)} to Uno's C"
            if math.isfinite(metrics.get(names.MARKER_GAIN, math.nan))
            else ""
        )
        + ". All metrics, figures and tables are in the training run; the model card follows."
    )


def register_version(model_uri: str, tags: dict[str, str]) -> str:
    """Register a logged model as a new version, created with all its tags at once.

    The tags (:func:`version_tags`) go in the version's create request, so no reader
    (``compare``, ``promote``, a training killed at any point) ever sees the version without
    its metrics.

    Returns
    -------
    str
        The new version number.

    Raises
    ------
    RegistrationRefused
        The tracking server refused this user (no EDIT on the registered model); nothing was
        registered.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return str(mlflow.register_model(model_uri, MODEL_NAME, tags=tags).version)
    except MlflowException as err:
        if permission_denied(err):
            raise RegistrationRefused(
                f"user {current_user()!r} may not register versions of {MODEL_NAME} (the "
                "tracking server refused: permission denied; registering needs EDIT on the "
                "registered model)"
            ) from err
        raise


#: Longest version description PostgreSQL stores hold (MLflow's VARCHAR(5000); SQLite has
#: no limit).
MAX_DESCRIPTION = 5000


def describe_version(
    version: str,
    model_card: str,
    run_id: str,
    family: str,
    metrics: dict[str, float],
    selection_metric: str,
) -> None:
    """Describe a version in the UI: a one-paragraph summary (:func:`version_summary`), then
    the model card (Markdown, naming the version), also logged as ``model_card.md`` of its
    run. The registered model gets its own short description (:data:`MODEL_DESCRIPTION`).

    Where the store refuses a description that long (VARCHAR(5000) on PostgreSQL), its
    beginning, cut at a line, is stored with a note saying where the whole card is (the run's
    ``model_card.md`` and the model's ``model_card`` artifact).
    """
    from mlflow.exceptions import MlflowException

    client = mlflow_client()
    description = f"{version_summary(family, metrics, selection_metric)}\n\n{model_card}"
    client.log_text(run_id, model_card, "model_card.md")
    try:
        client.update_model_version(MODEL_NAME, version, description=description)
    except MlflowException:
        if len(description) <= MAX_DESCRIPTION:
            raise
        note = (
            f"\n\n... (shortened: the whole card is model_card.md of run {run_id} and the "
            "model's model_card artifact)\n"
        )
        head = description[: MAX_DESCRIPTION - len(note)]
        head = head[: head.rfind("\n") + 1 or len(head)]
        client.update_model_version(MODEL_NAME, version, description=head + note)
    if (client.get_registered_model(MODEL_NAME).description or "") != MODEL_DESCRIPTION:
        client.update_registered_model(MODEL_NAME, description=MODEL_DESCRIPTION)


class AuthenticationFailed(RegistryError):
    """The tracking server did not accept this user's credentials (HTTP 401)."""


def authentication_failed(err) -> bool:
    """Whether an ``MlflowException`` is the server rejecting the credentials (wrong or no
    password), not a refusal of a known user (:func:`permission_denied`)."""
    return getattr(err, "error_code", "") == "UNAUTHENTICATED" or (
        getattr(err, "get_http_status_code", lambda: 0)() == 401
    )


def authentication_message() -> str:
    """The one line every command prints when the tracking server rejects the credentials."""
    import mlflow

    return (
        f"authentication failed: the tracking server {mlflow.get_tracking_uri()} did not "
        "accept the credentials (check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)"
    )


def alias_version(alias: str) -> str | None:
    """Version carrying ``alias``, or None when no version carries it (or no model exists yet).

    Any other failure (credentials rejected, server unreachable) is raised, never read as
    "no such alias": :class:`AuthenticationFailed` for rejected credentials, the
    ``MlflowException`` otherwise.
    """
    from mlflow.exceptions import MlflowException

    try:
        return str(mlflow_client().get_model_version_by_alias(MODEL_NAME, alias).version)
    except MlflowException as err:
        if authentication_failed(err):
            raise AuthenticationFailed(authentication_message()) from err
        if getattr(err, "error_code", "") in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"):
            return None
        raise


def current_user() -> str:
    """The user a promotion is recorded under: the MLflow login, else the OS account."""
    import getpass
    import os

    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if user:
        return user
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def set_alias(alias: str, version: str, attempts: int = 4, client=None) -> None:
    """Point ``alias`` of the registered model at ``version``, retrying a write conflict.

    MLflow's SQL store sets an alias by reading the row, then inserting it when absent: two
    trainings that set the same alias for the first time at the same moment (two shells on
    one tracking server) both insert, and PostgreSQL refuses the second (a server error). The
    row exists by then, so the retry updates it; the last writer wins, as it would one after
    the other. A permission refusal is not retried. ``client``: an ``MlflowClient`` (default:
    :func:`mlflow_client`, the configured store).
    """
    import time

    from mlflow.exceptions import MlflowException

    client = client or mlflow_client()
    for attempt in range(attempts):
        try:
            client.set_registered_model_alias(MODEL_NAME, alias, str(version))
            return
        except MlflowException as err:
            if permission_denied(err) or attempt == attempts - 1:
                raise
            time.sleep(0.25 * (attempt + 1))


def permission_denied(err) -> bool:
    """Whether an ``MlflowException`` is the server refusing this user (no right, no login)."""
    return getattr(err, "error_code", "") in ("PERMISSION_DENIED", "UNAUTHENTICATED") or (
        getattr(err, "get_http_status_code", lambda: 0)() in (401, 403)
    )


@dataclass(frozen=True)
class ResolvedModel:
    """A concrete registered version behind a models:/ URI."""

    name: str
    version: str
    alias: str | None
    run_id: str
    uri: str
    tags: dict[str, str]
    #: Where the registry says the version's model is (``ModelVersion.source``).
    source: str = ""


def resolve(model_uri: str) -> ResolvedModel:
    """Resolve ``models:/name@alias`` or ``models:/name/version`` to a concrete version."""
    from mlflow.exceptions import MlflowException

    client = mlflow_client()
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
        if authentication_failed(err):
            raise AuthenticationFailed(authentication_message()) from err
        raise RegistryError(f"cannot resolve {model_uri}: {err.message}") from err
    return ResolvedModel(
        name=name,
        version=str(mv.version),
        alias=alias,
        run_id=mv.run_id,
        uri=f"models:/{name}/{mv.version}",
        tags=dict(mv.tags or {}),
        source=str(mv.source or ""),
    )


def training_history(limit: int = 10):
    """The latest ``bonemet train`` runs: status, what they registered, why one failed.

    Returns
    -------
    pandas.DataFrame
        One row per training run (newest first): ``run_id``, ``started`` (UTC), ``status``
        (RUNNING, FINISHED, FAILED), ``versions`` registered by it, ``challenger`` it set,
        ``note`` (e.g. a training killed and marked failed afterwards).
    """
    from datetime import UTC, datetime

    import pandas as pd

    from training.store.backend import INTERRUPTED, OWNER_PID

    client = mlflow_client()
    experiments = [e.experiment_id for e in client.search_experiments(max_results=1000)]
    if not experiments:
        return pd.DataFrame()
    runs = client.search_runs(
        experiments,
        filter_string=f"tags.`{OWNER_PID}` != ''",
        order_by=["attributes.start_time DESC"],
        max_results=limit,
    )
    by_run: dict[str, list[str]] = {}
    for v in client.search_model_versions(f"name='{MODEL_NAME}'"):
        parent = version_facts(v.tags or {}).get("training_run_id")
        if parent:
            by_run.setdefault(parent, []).append(str(v.version))
    rows = []
    for run in runs:
        tags = run.data.tags
        started = datetime.fromtimestamp(run.info.start_time / 1000, UTC)
        rows.append(
            {
                "run_id": run.info.run_id,
                "started": started.strftime("%Y-%m-%d %H:%M:%S"),
                "status": run.info.status,
                "versions": ",".join(sorted(by_run.get(run.info.run_id, []), key=int)) or "none",
                "challenger": tags.get("challenger_version", ""),
                "note": tags.get(INTERRUPTED, ""),
            }
        )
    return pd.DataFrame(rows)

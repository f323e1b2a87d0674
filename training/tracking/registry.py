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

from training.config import MODEL_NAME, lower_is_better

CHAMPION = "champion"
CHALLENGER = "challenger"
#: Metrics tagged on each version (with the selection metric): what a person scanning the
#: registry needs. Every other metric, and every interval, stays in the version's training run
#: (``run_id`` tag), where the promotion gates also read the other horizons (:func:`gate_values`).
HEADLINE_METRICS = (
    "test_uno_c",
    "test_td_auc_24m",
    "test_brier_24m",
    "test_calibration_slope_24m",
    "test_calibration_in_the_large_24m",
)
#: Description of the registered model itself (the registry's model page).
MODEL_DESCRIPTION = (
    "Cumulative incidence of a first bone metastasis in breast cancer, death without bone "
    "metastasis competing, from clinical covariates and circulating osteocalcin-positive cells "
    "(data contract v1). Each version is one model family trained by `bonemet train`; its "
    "description opens with a summary, then the model card; its tags hold the headline "
    "metrics, everything else is in its training run. `champion` is served, `challenger` is "
    "the best candidate of the latest training. Research software, not a medical device."
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


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


#: Tags every version bonemet registers carries from its creation (one request): a version
#: without them was not made by a finished ``bonemet train`` and is never promoted.
REQUIRED_VERSION_TAGS = ("family", "dataset_digest", "run_id", "selection_metric")


def version_tags(
    family: str,
    metrics: dict[str, float],
    dataset_digest: str,
    run_id: str,
    selection_metric: str,
    landmark_days: Sequence[float] = (),
    training_run_id: str | None = None,
) -> dict[str, str]:
    """The handful of tags a version carries: family, selection metric, headline metrics
    (:data:`HEADLINE_METRICS`, point estimates; intervals stay in the run), data digest,
    landmark or not, its run and the training (parent) run it came from."""
    tags = {
        "family": family,
        "selection_metric": selection_metric,
        "dataset_digest": dataset_digest,
        "landmark_days": ",".join(f"{d:g}" for d in landmark_days) or "none",
        "run_id": run_id,
    }
    if training_run_id:
        tags["training_run_id"] = training_run_id
    for name in dict.fromkeys((selection_metric, *HEADLINE_METRICS)):
        if name in metrics and math.isfinite(metrics[name]):
            tags[name] = f"{metrics[name]:.4f}"
    return tags


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

    return (
        f"**{family}** candidate of `bonemet train`, selected by {selection_metric} = "
        f"{value(selection_metric)}. Held-out test: Uno's C {value('test_uno_c')}, AUC at 24 "
        f"months {value('test_td_auc_24m')}, Brier at 24 months {value('test_brier_24m')}, "
        f"calibration slope {value('test_calibration_slope_24m', 2)}, calibration-in-the-large "
        f"{value('test_calibration_in_the_large_24m')}"
        + (
            f"; the marker adds {value('delta_uno_c_marker')} to Uno's C"
            if math.isfinite(metrics.get("delta_uno_c_marker", math.nan))
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
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return str(mlflow.register_model(model_uri, MODEL_NAME, tags=tags).version)
    except MlflowException as err:
        if _permission_denied(err):
            raise RegistryError(
                f"user {_who()!r} may not register versions of {MODEL_NAME} (the tracking "
                f"server refused: permission denied); the run {tags.get('run_id', '')} and its "
                "logged model are kept. Registering needs EDIT on the registered model."
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

    client = _client()
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


def choose_challenger(
    candidates: Sequence, selection_metric: str, policy: PromotionPolicy | None = None
):
    """Set ``challenger`` on :func:`select_challenger`'s choice and return it."""
    best = select_challenger(candidates, selection_metric, policy)
    _client().set_registered_model_alias(MODEL_NAME, CHALLENGER, best.version)
    return best


def select_challenger(
    candidates: Sequence, selection_metric: str, policy: PromotionPolicy | None = None
):
    """The best candidate by ``selection_metric`` (each has ``metrics`` and ``version``).

    Best is the lowest for Brier scores and ICI, the highest otherwise
    (:func:`training.config.lower_is_better`). Discrimination and calibration are gates, not
    the score: candidates that pass the calibration gates of ``policy`` at every headline
    horizon come first (a miscalibrated model is not offered while a calibrated one exists),
    and among those, only the ones whose nested-CV Uno's C is within
    ``policy.discrimination_margin`` of the best of them. Ties go to the first listed.
    """
    policy = policy or PromotionPolicy()
    scored = [c for c in candidates if math.isfinite(c.metrics.get(selection_metric, math.nan))]
    if not scored:
        raise RegistryError(f"no candidate has a finite {selection_metric}")

    def calibrated(c) -> bool:
        tags = {k: str(v) for k, v in c.metrics.items()}
        gates = check_gates(tags, None, policy)
        return all(g.passed for g in gates if g.name != "discrimination")

    pool = [c for c in scored if calibrated(c)] or scored
    c_index = [c.metrics.get(policy.selection_discrimination_metric, math.nan) for c in pool]
    finite = [v for v in c_index if math.isfinite(v)]
    if finite:
        floor = max(finite) - policy.discrimination_margin
        pool = [c for c, v in zip(pool, c_index, strict=True) if math.isfinite(v) and v >= floor]
    sign = 1.0 if lower_is_better(selection_metric) else -1.0
    return min(pool, key=lambda c: sign * c.metrics[selection_metric])


@dataclass(frozen=True)
class PromotionPolicy:
    """Written gates a version must pass to become ``champion`` (docs/modeling.md).

    Parameters
    ----------
    discrimination_metric : str
        Version tag compared with the champion's (higher is better).
    discrimination_margin : float
        The candidate may be worse than the champion by at most this much.
    slope_metric : str
        Version tag of the calibration slope on the test split, ``{h}`` standing for a horizon.
    slope_band : tuple of float
        Inclusive band the calibration slope must lie in at every horizon.
    citl_metric : str
        Version tag of calibration-in-the-large (predicted minus observed), ``{h}`` a horizon.
    citl_max : float
        Largest allowed absolute calibration-in-the-large at every horizon.
    horizons_months : tuple of int
        Headline horizons whose probability must be calibrated (12, 24 and 36 months).
    selection_discrimination_metric : str
        Candidate metric of the discrimination gate of :func:`choose_challenger`.
    """

    discrimination_metric: str = "test_uno_c"
    discrimination_margin: float = 0.01
    slope_metric: str = "test_calibration_slope_{h}m"
    slope_band: tuple[float, float] = (0.8, 1.2)
    citl_metric: str = "test_calibration_in_the_large_{h}m"
    citl_max: float = 0.05
    horizons_months: tuple[int, ...] = (12, 24, 36)
    selection_discrimination_metric: str = "cv_uno_c_mean"


@dataclass(frozen=True)
class Gate:
    """One gate's verdict."""

    name: str
    passed: bool
    detail: str


class PromotionRefused(RegistryError):
    """A promotion that failed its gates; ``gates`` holds every verdict."""

    def __init__(self, version: str, gates: list[Gate]) -> None:
        self.gates = gates
        failed = "; ".join(g.detail for g in gates if not g.passed)
        super().__init__(
            f"version {version} fails the promotion gates: {failed}. "
            "Use --force --reason '...' to promote anyway (the reason is recorded)."
        )


def _tag_float(tags: dict[str, str], name: str) -> float | None:
    try:
        value = float(tags[name])
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _bounded_gate(candidate: dict[str, str], name: str, metric: str, ok, describe) -> Gate:
    """A gate on one recorded value: fails when the value is absent or out of bounds."""
    value = _tag_float(candidate, metric)
    if value is None:
        return Gate(name, False, f"{metric} is not recorded on the version")
    passed = bool(ok(value))
    return Gate(name, passed, f"{metric} {describe(value, passed)}")


def gate_values(version) -> dict[str, str]:
    """What the gates and ``compare`` read of a version: its training run's metrics (every
    horizon, intervals) under its tags (the headline values it was registered with)."""
    from mlflow.exceptions import MlflowException

    tags = dict(version.tags or {})
    try:
        run_metrics = _client().get_run(version.run_id).data.metrics if version.run_id else {}
    except MlflowException:
        run_metrics = {}
    return {**{k: str(x) for k, x in run_metrics.items()}, **tags}


def check_gates(
    candidate: dict[str, str], champion: dict[str, str] | None, policy: PromotionPolicy
) -> list[Gate]:
    """Evaluate the promotion gates on a version's values (:func:`gate_values`; the champion's
    may be None)."""
    gates = []
    metric = policy.discrimination_metric
    cand = _tag_float(candidate, metric)
    champ = _tag_float(champion, metric) if champion is not None else None
    if cand is None:
        gates.append(Gate("discrimination", False, f"{metric} is not recorded on the version"))
    elif champion is None:
        gates.append(Gate("discrimination", True, f"{metric} {cand:.4f}; no champion yet"))
    elif champ is None:
        gates.append(
            Gate(
                "discrimination",
                True,
                f"{metric} {cand:.4f}; the champion has no {metric} to compare",
            )
        )
    else:
        ok = cand >= champ - policy.discrimination_margin
        gates.append(
            Gate(
                "discrimination",
                ok,
                f"{metric} {cand:.4f} vs champion {champ:.4f} (allowed margin "
                f"{policy.discrimination_margin:g})" + ("" if ok else ": worse beyond the margin"),
            )
        )
    lo, hi = policy.slope_band
    for h in policy.horizons_months:
        gates.append(
            _bounded_gate(
                candidate,
                f"calibration_slope_{h}m",
                policy.slope_metric.format(h=h),
                lambda v: lo <= v <= hi,
                lambda v, ok: f"{v:.3f} " + ("within" if ok else "outside") + f" [{lo:g}, {hi:g}]",
            )
        )
        gates.append(
            _bounded_gate(
                candidate,
                f"calibration_in_the_large_{h}m",
                policy.citl_metric.format(h=h),
                lambda v: abs(v) <= policy.citl_max,
                lambda v, ok: (
                    f"{v:+.3f} " + ("within" if ok else "beyond") + f" +/-{policy.citl_max:g}"
                ),
            )
        )
    return gates


@dataclass(frozen=True)
class Promotion:
    """Result of a promotion: the version that is now champion, the one it replaced, gates."""

    version: str
    previous: str | None
    gates: tuple[Gate, ...] = ()
    forced_reason: str | None = None


def alias_version(alias: str) -> str | None:
    """Version carrying ``alias``, or None."""
    from mlflow.exceptions import MlflowException

    try:
        return str(_client().get_model_version_by_alias(MODEL_NAME, alias).version)
    except MlflowException:
        return None


def smoke_check(version: str) -> None:
    """Load ``version`` and predict synthetic contract rows; raise if either fails.

    Serving follows ``champion``: a version whose artifact is damaged or whose predictions are
    not finite probabilities must never get it. The rows come from the contract
    (:func:`features.examples.synthetic_patient_rows`), not from any patient.

    Raises
    ------
    RegistryError
        Naming the version and what failed.
    """
    import mlflow
    import numpy as np

    from features.examples import synthetic_patient_rows

    uri = f"models:/{MODEL_NAME}/{version}"
    rows = synthetic_patient_rows()
    try:
        model = mlflow.pyfunc.load_model(uri)
    except Exception as err:  # a damaged artifact fails in any way (pickle, IO)
        raise RegistryError(
            f"version {version} does not load ({type(err).__name__}: {err}); it cannot be "
            "served, so it is not promoted (not even with --force)"
        ) from err
    try:
        out = model.predict(rows)
    except Exception as err:  # whatever the loaded code raises, it cannot serve
        raise RegistryError(
            f"version {version} loads but fails to predict a synthetic case "
            f"({type(err).__name__}: {err}); it is not promoted (not even with --force)"
        ) from err
    probabilities = [c for c in out.columns if str(c).startswith("p_bone_met_")]
    values = out[["risk_score", *probabilities]].to_numpy(dtype=float) if len(out) else None
    bad = (
        values is None
        or len(out) != len(rows)
        or not probabilities
        or not np.isfinite(values).all()
        or not ((values[:, 1:] >= 0) & (values[:, 1:] <= 1)).all()
    )
    if bad:
        raise RegistryError(
            f"version {version} answers the synthetic case without a finite risk score and "
            "probabilities in [0, 1] for every row; it is not promoted (not even with --force)"
        )


def check_complete(version) -> None:
    """Refuse a version that a finished ``bonemet train`` did not fully register.

    A complete version is READY, carries :data:`REQUIRED_VERSION_TAGS` and its training run
    finished; anything else (a version registered by hand, a run killed or failed) is refused
    whatever ``--force`` says.

    Parameters
    ----------
    version : mlflow.entities.model_registry.ModelVersion
    """
    from mlflow.exceptions import MlflowException

    tags = dict(version.tags or {})
    missing = [t for t in REQUIRED_VERSION_TAGS if not tags.get(t)]
    if str(version.status) != "READY":
        raise RegistryError(f"version {version.version} is {version.status}, not READY")
    if missing:
        raise RegistryError(
            f"version {version.version} lacks the tag(s) {', '.join(missing)} a finished "
            "bonemet train records: it is incomplete and is not promoted (not even with --force)"
        )
    try:
        status = _client().get_run(tags["run_id"]).info.status
    except MlflowException as err:
        raise RegistryError(
            f"version {version.version}: its training run {tags['run_id']} cannot be read "
            f"({err.message})"
        ) from err
    if status != "FINISHED":
        raise RegistryError(
            f"version {version.version}: its training run {tags['run_id']} is {status}, not "
            "FINISHED; the version is incomplete and is not promoted (not even with --force)"
        )


def _who() -> str:
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


def _permission_denied(err) -> bool:
    return getattr(err, "error_code", "") in ("PERMISSION_DENIED", "UNAUTHENTICATED") or (
        getattr(err, "get_http_status_code", lambda: 0)() in (401, 403)
    )


def promote(
    version: str | None = None,
    *,
    force: bool = False,
    reason: str | None = None,
    policy: PromotionPolicy | None = None,
) -> Promotion:
    """Move ``champion`` to ``version`` (default: the current ``challenger``) if its gates pass.

    Whatever ``force`` says, the version must be complete (:func:`check_complete`) and must load
    and predict a synthetic case (:func:`smoke_check`). Who promoted, when and why is recorded
    on the version (``promoted_by``, ``promoted_at``, ``promotion_reason``).

    Raises
    ------
    PromotionRefused
        When a gate fails and ``force`` is not set.
    RegistryError
        Unknown version, no challenger, ``force`` without a reason, an incomplete or broken
        version, or a user without the right to move the alias.
    """
    from datetime import UTC, datetime

    from mlflow.exceptions import MlflowException

    policy = policy or PromotionPolicy()
    client = _client()
    reason = reason.strip() if reason and reason.strip() else None
    if force and not reason:
        raise RegistryError("--force requires --reason: the reason is recorded on the version")
    if version is None:
        version = alias_version(CHALLENGER)
        if version is None:
            raise RegistryError(
                f"no version of {MODEL_NAME} has the alias '{CHALLENGER}': train first or "
                "name one with --version"
            )
    try:
        candidate = client.get_model_version(MODEL_NAME, str(version))
    except MlflowException as err:
        if _permission_denied(err):
            raise RegistryError(f"you may not read {MODEL_NAME}: {err.message}") from err
        raise RegistryError(f"{MODEL_NAME} has no version {version}") from err
    check_complete(candidate)
    smoke_check(str(version))
    previous = alias_version(CHAMPION)
    champion_tags = None
    if previous is not None and previous != str(version):
        champion_tags = gate_values(client.get_model_version(MODEL_NAME, previous))
    gates = check_gates(gate_values(candidate), champion_tags, policy)
    if not all(g.passed for g in gates) and not force:
        raise PromotionRefused(str(version), gates)
    audit = {
        "promoted_from": previous or "none",
        "promotion_gates": "; ".join(
            f"{g.name}: {'pass' if g.passed else 'FAIL'} ({g.detail})" for g in gates
        ),
        "promoted_by": _who(),
        "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "promotion_reason": reason or "promotion gates passed",
    }
    if force:
        audit["forced_promotion_reason"] = reason
    try:
        client.set_registered_model_alias(MODEL_NAME, CHAMPION, str(version))
        for key, value in audit.items():
            client.set_model_version_tag(MODEL_NAME, str(version), key, value)
    except MlflowException as err:
        if _permission_denied(err):
            raise RegistryError(
                f"user {_who()!r} may not move '{CHAMPION}' of {MODEL_NAME} (the tracking "
                "server refused: permission denied). Promotion needs EDIT or MANAGE on the "
                "registered model; ask an administrator of the tracking server."
            ) from err
        raise
    return Promotion(
        version=str(version),
        previous=previous,
        gates=tuple(gates),
        forced_reason=reason if force else None,
    )


COMPARE_METRICS = (
    "test_harrell_c",
    "test_uno_c",
    "test_td_auc_24m",
    "test_brier_24m",
    "test_calibration_slope_24m",
    "test_calibration_in_the_large_24m",
    "delta_uno_c_marker",
)


def compare(versions: Sequence[str] | None = None, policy: PromotionPolicy | None = None):
    """Registered versions side by side: family, aliases, data digest, the selection metric,
    the promotion-gate verdicts and metrics with intervals.

    ``selection`` is ``<metric>=<value>`` of the metric that ranked the version's training
    run; ``gates`` is ``pass`` or ``FAIL`` with the failing gates (:func:`check_gates` against
    the current champion), and a metric outside its gate ends in ``" !"``.

    Returns
    -------
    pandas.DataFrame
        One row per version (newest first).
    """
    policy = policy or PromotionPolicy()
    gate_metric = {"discrimination": policy.discrimination_metric}
    for h in policy.horizons_months:
        gate_metric[f"calibration_slope_{h}m"] = policy.slope_metric.format(h=h)
        gate_metric[f"calibration_in_the_large_{h}m"] = policy.citl_metric.format(h=h)
    import pandas as pd
    from mlflow.exceptions import MlflowException

    client = _client()
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
    for v in sorted(found, key=lambda v: int(v.version), reverse=True):
        tags = dict(v.tags or {})
        values = gate_values(v)
        missing = [t for t in REQUIRED_VERSION_TAGS if not tags.get(t)]
        row = {
            "version": str(v.version),
            "family": tags.get("family", ""),
            "alias": ",".join(sorted(aliases.get(str(v.version), []))),
            "data_digest": tags.get("dataset_digest", ""),
            "state": "incomplete" if missing or str(v.status) != "READY" else "complete",
        }
        selection = tags.get("selection_metric", "")
        chosen = _tag_float(values, selection) if selection else None
        row["selection"] = f"{selection}={chosen:.3f}" if chosen is not None else selection
        other = champion_tags if str(v.version) != champion else None
        failed = [g.name for g in check_gates(values, other, policy) if not g.passed]
        row["gates"] = "FAIL " + ",".join(failed) if failed else "pass"
        flagged = {gate_metric[name] for name in failed}
        for name in COMPARE_METRICS:
            est, lo, hi = (
                _tag_float(values, name),
                _tag_float(values, name + "_lo"),
                _tag_float(values, name + "_hi"),
            )
            mark = " !" if name in flagged else ""
            if est is None:
                row[name] = ""
            elif lo is None or hi is None:
                row[name] = f"{est:.3f}{mark}"
            else:
                row[name] = f"{est:.3f}{mark} [{lo:.3f}, {hi:.3f}]"
        rows.append(row)
    return pd.DataFrame(rows)


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

    from training.tracking.store import INTERRUPTED, OWNER_PID

    client = _client()
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
        parent = (v.tags or {}).get("training_run_id")
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

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
HEADLINE_METRICS = (
    "cv_brier_headline_mean",
    "test_brier_headline",
    "cv_uno_c_mean",
    "test_harrell_c",
    "test_uno_c",
    "test_td_auc_24m",
    "test_ipcw_auc_24m",
    "test_brier_24m",
    "test_calibration_slope_12m",
    "test_calibration_slope_24m",
    "test_calibration_slope_36m",
    "test_calibration_in_the_large_12m",
    "test_calibration_in_the_large_24m",
    "test_calibration_in_the_large_36m",
    "test_ici_24m",
    "delta_harrell_c_marker",
    "delta_uno_c_marker",
    "delta_td_auc_24m_marker",
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
    description: str | None = None,
) -> None:
    """Tag a version with its family, headline metrics (with intervals) and data digest.

    ``description`` (the model card, Markdown) becomes the version's description in the UI.
    """
    client = _client()
    tags = {
        "family": family,
        "dataset_digest": dataset_digest,
        "run_id": run_id,
        "selection_metric": selection_metric,
    }
    for base in dict.fromkeys((*HEADLINE_METRICS, selection_metric)):
        for name in (base, base + "_lo", base + "_hi"):
            if name in metrics and math.isfinite(metrics[name]):
                tags[name] = f"{metrics[name]:.4f}"
    for key, value in tags.items():
        client.set_model_version_tag(MODEL_NAME, version, key, value)
    if description is None:
        headline = ", ".join(f"{k}={tags[k]}" for k in HEADLINE_METRICS if k in tags)
        description = f"{family}: {headline}"
    client.update_model_version(MODEL_NAME, version, description=description)


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


def check_gates(
    candidate: dict[str, str], champion: dict[str, str] | None, policy: PromotionPolicy
) -> list[Gate]:
    """Evaluate the promotion gates on version tags (the champion's may be None)."""
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


def promote(
    version: str | None = None,
    *,
    force: bool = False,
    reason: str | None = None,
    policy: PromotionPolicy | None = None,
) -> Promotion:
    """Move ``champion`` to ``version`` (default: the current ``challenger``) if its gates pass.

    Raises
    ------
    PromotionRefused
        When a gate fails and ``force`` is not set.
    RegistryError
        Unknown version, no challenger, or ``force`` without a reason.
    """
    from mlflow.exceptions import MlflowException

    policy = policy or PromotionPolicy()
    client = _client()
    if force and not (reason and reason.strip()):
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
        raise RegistryError(f"{MODEL_NAME} has no version {version}") from err
    previous = alias_version(CHAMPION)
    champion_tags = None
    if previous is not None and previous != str(version):
        champion_tags = dict(client.get_model_version(MODEL_NAME, previous).tags or {})
    gates = check_gates(dict(candidate.tags or {}), champion_tags, policy)
    if not all(g.passed for g in gates) and not force:
        raise PromotionRefused(str(version), gates)
    client.set_registered_model_alias(MODEL_NAME, CHAMPION, str(version))
    client.set_model_version_tag(MODEL_NAME, str(version), "promoted_from", previous or "none")
    client.set_model_version_tag(
        MODEL_NAME,
        str(version),
        "promotion_gates",
        "; ".join(f"{g.name}: {'pass' if g.passed else 'FAIL'} ({g.detail})" for g in gates),
    )
    if force:
        client.set_model_version_tag(
            MODEL_NAME, str(version), "forced_promotion_reason", reason.strip()
        )
    return Promotion(
        version=str(version),
        previous=previous,
        gates=tuple(gates),
        forced_reason=reason.strip() if force else None,
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


def compare(versions: Sequence[str] | None = None):
    """Registered versions side by side: family, aliases, data digest, metrics with intervals.

    Returns
    -------
    pandas.DataFrame
        One row per version (newest first).
    """
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
    rows = []
    for v in sorted(found, key=lambda v: int(v.version), reverse=True):
        tags = dict(v.tags or {})
        row = {
            "version": str(v.version),
            "family": tags.get("family", ""),
            "alias": ",".join(sorted(aliases.get(str(v.version), []))),
            "data_digest": tags.get("dataset_digest", ""),
        }
        for name in COMPARE_METRICS:
            est, lo, hi = (
                _tag_float(tags, name),
                _tag_float(tags, name + "_lo"),
                _tag_float(tags, name + "_hi"),
            )
            if est is None:
                row[name] = ""
            elif lo is None or hi is None:
                row[name] = f"{est:.3f}"
            else:
                row[name] = f"{est:.3f} [{lo:.3f}, {hi:.3f}]"
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

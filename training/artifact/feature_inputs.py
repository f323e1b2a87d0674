"""Which contract inputs each engineered feature comes from, and the groups explanations occlude.

The fitted feature pipeline knows its builders (:mod:`features.transformers`): each names the
contract columns it reads (``columns_in``) and the features it makes
(``get_feature_names_out``). :func:`feature_inputs` asks every builder of a fitted pipeline
which inputs each of its features is computed from, the input it describes first;
:func:`feature_groups` turns that into the groups of :mod:`training.artifact.explain`: a
feature belongs to the group of its first input, and a few inputs are attributed jointly
(:data:`JOINT_GROUPS`: the receptors as ``receptor_status``, the marker's trajectory as
``oc_trend``, the landmark day as ``prediction_day``).

A builder answers with its own ``get_feature_inputs()`` when it has one. Otherwise the answer
is read from what every builder exposes: a feature named as one of its inputs comes from that
input; ``missing_<x>`` from ``x`` (an input, or a feature of the same builder); a spline term
or interaction ``<feature>:<term>`` from the inputs of ``<feature>`` (and of the modifier
``x_<m>``); and the derived names that do not say their input, from :data:`BUILT_FROM`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sklearn.pipeline import FeatureUnion, Pipeline

from features.transformers import MarkerFeatures

__all__ = [
    "BUILT_FROM",
    "JOINT_GROUPS",
    "OC_TREND",
    "PREDICTION_DAY",
    "RECEPTOR_STATUS",
    "FeatureInputs",
    "feature_groups",
    "feature_inputs",
]

#: Engineered feature -> the contract columns it is computed from, the one it describes first.
FeatureInputs = dict[str, tuple[str, ...]]

RECEPTOR_STATUS = "receptor_status"
OC_TREND = "oc_trend"
PREDICTION_DAY = "prediction_day"

#: Inputs attributed jointly, as one group (see :mod:`training.artifact.explain` for why).
JOINT_GROUPS: dict[str, str] = {
    "er_status": RECEPTOR_STATUS,
    "pr_status": RECEPTOR_STATUS,
    "her2_status": RECEPTOR_STATUS,
    "oc_change_log2": OC_TREND,
    "oc_slope_log2_per_year": OC_TREND,
    "landmark_day": PREDICTION_DAY,
}

_RECEPTORS = ("er_status", "pr_status", "her2_status")
_THERAPY_BY_MENOPAUSE = ("bone_targeted_therapy", "menopausal_status")

#: Features of the builders of :mod:`features.transformers` whose names do not say their input,
#: for builders without ``get_feature_inputs()`` (those of bonemet 0.1 and 0.2).
BUILT_FROM: FeatureInputs = {
    "oc_log2_percent": MarkerFeatures.columns_in,
    "log_tumor_size_mm": ("tumor_size_mm",),
    "tumor_gt_20mm": ("tumor_size_mm",),
    "er_positive": ("er_status",),
    "pr_positive": ("pr_status",),
    "her2_positive": ("her2_status",),
    "er_pos_pr_neg": ("er_status", "pr_status"),
    "subtype_luminal": _RECEPTORS,
    "subtype_triple_negative": _RECEPTORS,
    "nodes_1_3": ("positive_lymph_nodes",),
    "nodes_4_plus": ("positive_lymph_nodes",),
    "metastatic": ("disease_setting",),
    "visceral": ("visceral_metastasis", "disease_setting"),
    "log_alp": ("alkaline_phosphatase_u_per_l",),
    "postmenopausal": ("menopausal_status",),
    "btt_postmenopausal": _THERAPY_BY_MENOPAUSE,
    "btt_premenopausal": _THERAPY_BY_MENOPAUSE,
    "landmark_years": ("landmark_day",),
}


def _builders(step: Any) -> Iterator[Any]:
    """The feature builders of a fitted pipeline, in output order (nested pipelines and
    unions flattened)."""
    if isinstance(step, Pipeline):
        for _, inner in step.steps:
            yield from _builders(inner)
    elif isinstance(step, FeatureUnion):
        for _, inner in step.transformer_list:
            if not isinstance(inner, str):  # "drop" / "passthrough"
                yield from _builders(inner)
    elif hasattr(step, "columns_in"):
        yield step


def _inputs_of(name: str, columns: Sequence[str], known: Mapping[str, tuple[str, ...]]):
    """Inputs of one feature from its name (see the module docstring), () when unknown."""
    if name in columns:
        return (name,)
    if name in known:
        return tuple(known[name])
    if name.startswith("missing_"):
        return _inputs_of(name.removeprefix("missing_"), columns, known)
    base, _, term = name.partition(":")
    if term:
        found = _inputs_of(base, columns, known)
        if term.startswith("x_"):
            modifier = _inputs_of(term.removeprefix("x_"), columns, known)
            found += tuple(c for c in modifier if c not in found)
        return found
    return ()


def feature_inputs(features: Pipeline) -> FeatureInputs:
    """Which contract inputs each output feature of a fitted feature pipeline is computed from.

    Parameters
    ----------
    features : sklearn.pipeline.Pipeline
        The fitted feature pipeline (``risk_model.pipeline[:-1]``), possibly nested.

    Returns
    -------
    dict
        Feature name -> input columns, the one the feature describes first; features whose
        inputs cannot be told are left out.
    """
    out: FeatureInputs = {}
    for builder in _builders(features):
        names = [str(n) for n in builder.get_feature_names_out()]
        declared = getattr(builder, "get_feature_inputs", None)
        if declared is not None:
            out.update({n: tuple(c) for n, c in declared().items()})
            continue
        columns = tuple(builder.columns_in)
        for name in names:
            found = _inputs_of(name, columns, {**BUILT_FROM, **out})
            if found:
                out[name] = found
    return out


def feature_groups(
    feature_names: Sequence[str], inputs: Mapping[str, Sequence[str]] | None = None
) -> dict[str, list[int]]:
    """Group engineered features by the input they describe.

    Parameters
    ----------
    feature_names : sequence of str
        Output names of the fitted feature pipeline, in column order.
    inputs : mapping, optional
        Feature -> input columns (:func:`feature_inputs`). A feature without an entry is read
        from its name: ``missing_<x>`` and ``<x>:<term>`` join the group of ``<x>``, any other
        feature is a group of its own.

    Returns
    -------
    dict
        Group name (a contract column, or one of :data:`JOINT_GROUPS`' groups) -> column
        indices, in order of first appearance.
    """
    inputs = inputs or {}
    groups: dict[str, list[int]] = {}
    for j, raw in enumerate(feature_names):
        name = str(raw)
        found = inputs.get(name) or _inputs_of(name, (), inputs)
        first = found[0] if found else name.split(":", 1)[0].removeprefix("missing_")
        groups.setdefault(JOINT_GROUPS.get(first, first), []).append(j)
    return groups

"""The model card's sections, in TRIPOD+AI order, and :func:`render_model_card`.

Each section formats facts of :class:`~training.registry.card.facts.ModelCardFacts`; none
computes anything about the model.
"""

from __future__ import annotations

import pandas as pd

from features.schema import PATIENT_SPECS, ColumnSpec
from training.artifact.card import DEFAULT_INTENDED_USE, LANDMARK_INTENDED_USE
from training.evaluation.names import label, parse
from training.registry.card.facts import (
    SPLIT_KEYS,
    ModelCardFacts,
    estimate_parts,
)
from training.registry.card.text import (
    NOT_AVAILABLE,
    ci_header,
    count_text,
    decimals,
    format_ci,
    format_estimate,
    is_number,
    md_bullets,
    md_table,
    or_not_available,
    p_value_text,
)

SECTION_HEADINGS: tuple[str, ...] = (
    "Model details",
    "Intended use and users",
    "Data and eligibility",
    "Outcome and horizons",
    "Predictors with units",
    "Missing data",
    "Sample size and events",
    "Model building",
    "Performance: discrimination and calibration",
    "Subgroups",
    "Incremental value of the osteocalcin marker",
    "Limitations and intended-use caveats",
)

#: Unit and meaning of the engineered features of ``features.transformers`` (all standardised with
#: training means and standard deviations before the model; ``missing_<input>`` is added by name).
#: A feature that is a contract column as it is (``age_years``, ``ki67_percent``, ...) takes both
#: from the contract (:func:`_feature_doc`).
_FEATURE_DOCS: dict[str, tuple[str, str]] = {
    "oc_log2_percent": (
        "log2(% of PBMC events)",
        "osteocalcin-positive cells at enrollment; from counts with a half-event continuity "
        "correction when counts are present",
    ),
    "log_tumor_size_mm": ("log(mm)", "natural log of the largest tumor diameter"),
    "tumor_gt_20mm": ("0/1", "tumor larger than 20 mm"),
    "er_positive": ("0/1", "estrogen receptor positive"),
    "pr_positive": ("0/1", "progesterone receptor positive"),
    "her2_positive": ("0/1", "HER2 positive"),
    "er_pos_pr_neg": ("0/1", "ER-positive and PR-negative"),
    "subtype_luminal": ("0/1", "luminal subtype (ER+ or PR+, HER2-)"),
    "subtype_triple_negative": ("0/1", "triple-negative subtype"),
    "nodes_1_3": ("0/1", "1-3 involved axillary nodes (reference: none)"),
    "nodes_4_plus": ("0/1", "4 or more involved axillary nodes (reference: none)"),
    "metastatic": ("0/1", "metastatic setting at enrollment"),
    "visceral": ("0/1", "visceral metastasis (0 in early disease)"),
    "log_alp": ("log(U/L)", "natural log of serum alkaline phosphatase"),
    "postmenopausal": ("0/1", "postmenopausal"),
    "btt_postmenopausal": ("0/1", "bone-targeted therapy in a postmenopausal patient"),
    "btt_premenopausal": ("0/1", "bone-targeted therapy in a pre- or perimenopausal patient"),
}


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def _model_details(f: ModelCardFacts) -> list[str]:
    return md_bullets(
        {
            "Name": f.model_name,
            "Version": f.model_version,
            "Family": f.family,
            "MLflow run id": f.run_id,
            "Git commit": f.git_commit,
            "Training date": f.training_date,
            "Training-data digest": f.data_digest,
            "Data contract version": f.contract_version,
        }
    )


def _intended_use(f: ModelCardFacts) -> list[str]:
    use = f.intended_use
    if f.landmark_days and use == DEFAULT_INTENDED_USE:
        use = LANDMARK_INTENDED_USE
    return md_bullets({"Intended use": use, "Intended users": f.intended_users})


def _data(f: ModelCardFacts) -> list[str]:
    simulated = {True: "yes (simulated cohort)", False: "no (observed patients)"}.get(
        f.simulated, NOT_AVAILABLE
    )
    items = {
        "Source": f.data_source,
        "Simulated data": simulated,
        "Setting": f.setting,
        "Enrollment period": f.enrollment_period,
        "Eligibility": "patients free of bone metastasis at enrollment",
        "Patients used (eligible)": count_text(f.n_patients),
        "Excluded: bone metastasis at enrollment": count_text(f.n_excluded_bone_met_at_enrollment),
    }
    if f.landmark_days:
        rows = f.landmark_rows or {}
        items["Landmark rows"] = (
            ", ".join(f"{split} {count_text(n)}" for split, n in rows.items()) or NOT_AVAILABLE
        ) + (
            " (one row per patient and landmark at which the patient is still at risk; "
            f"landmarks: days {', '.join(f'{d:g}' for d in f.landmark_days)})"
        )
    lines = md_bullets(items)
    lines += [f"- **Modelling note**: {or_not_available(note)}" for note in f.modelling_notes]
    return lines


def _outcome(f: ModelCardFacts) -> list[str]:
    horizons = ", ".join(f"{h:g}" for h in f.horizons_months) + " months"
    follow = (
        f"{f.median_follow_up_months:.1f} months"
        if is_number(f.median_follow_up_months)
        else NOT_AVAILABLE
    )
    return md_bullets(
        {
            "Outcome": "time from enrollment to the first bone metastasis (days; a month is "
            "365.25 / 12 days)",
            "Competing event": (
                "death without bone metastasis. A patient who dies can no longer "
                "develop bone metastasis, so predictions and observed incidences are cumulative "
                "incidences with death competing (Aalen-Johansen), not 1 - Kaplan-Meier with "
                "death censored, which would overstate them. Each prediction also returns the "
                "cumulative incidence of death without bone metastasis (death_probability, data "
                "contract 1.1; docs/modeling.md says how each family obtains it)"
                if f.competing_death
                else "not modelled: the training data had too few deaths without bone "
                "metastasis, so the death hazard is taken as zero and the predicted incidence "
                "is 1 - S(t) (this overstates it where patients do die first)"
            ),
            "Censoring": "end of follow-up without either event, assumed independent of the "
            "outcome given the predictors. A patient censored before a horizon has unknown "
            "status at it and is represented by inverse probability of censoring weights "
            "(Kaplan-Meier estimate of the censoring distribution), not dropped",
            "Horizons": horizons,
            "Median follow-up": follow,
        }
    )


def _unit(spec: ColumnSpec) -> str:
    if spec.unit:
        return spec.unit
    if spec.allowed:
        return "category: " + ", ".join(spec.allowed)
    if spec.kind == "boolean":
        return "true/false"
    if spec.range_text():
        return f"{spec.kind} {spec.range_text()}"
    return "unitless"


def _feature_doc(name: str) -> tuple[str, str]:
    """Unit and meaning of a model feature: engineered, a contract column as it is (booleans
    enter the model as 0/1), or a missing-value indicator."""
    if name in _FEATURE_DOCS:
        return _FEATURE_DOCS[name]
    if name in PATIENT_SPECS:
        spec = PATIENT_SPECS[name]
        return ("0/1" if spec.kind == "boolean" else _unit(spec)), spec.description
    if name.startswith("missing_"):
        return "0/1", f"indicator: {name.removeprefix('missing_')} was missing (then imputed)"
    return NOT_AVAILABLE, NOT_AVAILABLE


def _predictors(f: ModelCardFacts) -> list[str]:
    lines = ["Inputs (data contract columns):", ""]
    lines += md_table(
        ("feature", "unit", "meaning"),
        [
            (PATIENT_SPECS[c].name, _unit(PATIENT_SPECS[c]), PATIENT_SPECS[c].description)
            for c in f.inputs()
        ],
    )
    lines += ["", "Model features (built from the inputs, standardised on the training split):", ""]
    if f.engineered_features:
        lines += md_table(
            ("feature", "unit", "meaning"),
            [(name, *_feature_doc(name)) for name in f.engineered_features],
        )
    else:
        lines.append(f"Model features: {NOT_AVAILABLE}.")
    return lines


def _missing(f: ModelCardFacts) -> list[str]:
    lines = ["Share missing per input in the training split:", ""]
    if f.missing_share:
        lines += md_table(
            ("input", "missing"),
            [(c, f"{100 * float(s):.1f} %") for c, s in f.missing_share.items()],
        )
    else:
        lines.append(f"Share missing: {NOT_AVAILABLE}.")
    indicators = [n for n in f.engineered_features if n.startswith("missing_")]
    lines += ["", f"Handling: {or_not_available(f.imputation)}"]
    if indicators:
        lines += ["", f"Missing-value indicators in the model: {', '.join(indicators)}."]
    return lines


def _events_per_feature(f: ModelCardFacts) -> str:
    train = (f.split_counts or {}).get("train")
    if not train or not f.engineered_features or not is_number(train.get("bone_metastasis")):
        return NOT_AVAILABLE
    events = int(train["bone_metastasis"])
    p = len(f.engineered_features)
    return f"{events / p:.1f} ({events} bone metastasis events / {p} features)"


def _sample_size(f: ModelCardFacts) -> list[str]:
    if not f.split_counts:
        return [f"Counts per split: {NOT_AVAILABLE}."]
    lines = md_table(
        ("split", "patients", "bone metastasis", "death (competing)", "censored"),
        [
            (split, *(count_text(counts[k]) for k in SPLIT_KEYS))
            for split, counts in f.split_counts.items()
        ],
    )
    lines += ["", f"Events per model feature in training: {_events_per_feature(f)}."]
    return lines


def _model_building(f: ModelCardFacts) -> list[str]:
    lines = md_bullets(
        {
            "Family": f.family,
            "Hyperparameter search": f.hyperparameter_search,
            "Resampling": f.cv_scheme,
            "Risk-group cut-offs (risk score)": (
                ", ".join(format_estimate(c, 3) for c in f.risk_cutoffs) if f.risk_cutoffs else None
            ),
        }
    )
    if f.search_space:
        lines += ["", "Search space and selected values:", ""]
        selected = dict(f.selected_params or {})
        lines += md_table(
            ("hyperparameter", "values searched", "selected"),
            [
                (k, ", ".join(str(v) for v in values), or_not_available(selected.get(k)))
                for k, values in f.search_space.items()
            ],
        )
    elif f.selected_params:
        lines += ["", "Selected hyperparameters:", ""]
        lines += md_table(("hyperparameter", "selected"), list(f.selected_params.items()))
    else:
        lines.append(f"- **Selected hyperparameters**: {NOT_AVAILABLE}")
    return lines


def _row_value(row: pd.Series, column: str) -> object:
    return row[column] if column in row.index else None


def _metric_cell(name: str) -> str:
    """``Uno C (uno_c)``: the metric's label and logged name (the ``Metric`` table)."""
    text = label(name)
    return name if text == name else f"{text} ({name})"


def better(name: str) -> str:
    """Which values of a metric are better: ``higher``, ``lower``, ``near 1`` (the table)."""
    parsed = parse(name)
    if parsed is None:
        return ""
    metric = parsed.metric
    if metric.ideal is not None:
        return f"near {metric.ideal:g}"
    return metric.direction if metric.direction in ("higher", "lower") else ""


def _performance(f: ModelCardFacts) -> list[str]:
    lines = [f"Test estimates: {or_not_available(f.evaluation)}.", ""]
    if f.performance is None or f.performance.empty:
        return lines + [f"Performance: {NOT_AVAILABLE}."]
    rows = []
    for _, row in f.performance.iterrows():
        mean, sd = _row_value(row, "cv_mean"), _row_value(row, "cv_sd")
        cv = (
            f"{format_estimate(mean)} ± {format_estimate(sd, decimals(float(mean)))}"
            if is_number(mean) and is_number(sd)
            else format_estimate(mean)
        )
        test = format_ci(row["estimate"], _row_value(row, "lo"), _row_value(row, "hi"))
        rows.append((_metric_cell(str(row["metric"])), better(str(row["metric"])), cv, test))
    header = ("metric", "better", "CV mean ± sd", f"test estimate [{ci_header(f.conf_level)}]")
    return lines + md_table(header, rows)


def _subgroups(f: ModelCardFacts) -> list[str]:
    if f.subgroups is None or f.subgroups.empty:
        return [f"Subgroup performance: {NOT_AVAILABLE}."]
    frame = f.subgroups
    metrics = list(pd.unique(frame["metric"]))
    keys = list(dict.fromkeys(zip(frame["variable"], frame["level"], strict=True)))
    rows = []
    for variable, level in keys:
        part = frame[(frame["variable"] == variable) & (frame["level"] == level)]
        cells = []
        for metric in metrics:
            hit = part[part["metric"] == metric]
            if hit.empty:
                cells.append(NOT_AVAILABLE)
                continue
            r = hit.iloc[0]
            if "lo" in r.index and "hi" in r.index:
                cells.append(format_ci(r["value"], r["lo"], r["hi"]))
            else:
                cells.append(format_estimate(r["value"]))
        notes = (
            sorted({str(n) for n in part["note"] if isinstance(n, str) and n})
            if "note" in part.columns
            else []
        )
        first = part.iloc[0]
        rows.append(
            (
                variable,
                level,
                count_text(first["n"]),
                count_text(first["events"]),
                *cells,
                "; ".join(notes),
            )
        )
    lines = [
        "Metrics within subgroups; a metric is not available when the subgroup has too few "
        "events or the metric is not defined there (reason in the note).",
        "",
    ]
    return lines + md_table(("variable", "level", "n", "events", *metrics, "note"), rows)


def _marker(f: ModelCardFacts) -> list[str]:
    lines = [
        "Difference between the model with the osteocalcin marker and the same model without "
        "it (with minus without).",
        "",
        f"Method: {or_not_available(f.marker_method)}.",
        "",
    ]
    if f.marker_increment:
        rows = []
        for label, value in f.marker_increment.items():
            estimate, lo, hi = estimate_parts(value)
            if is_number(lo) and is_number(hi):
                excludes = "yes" if float(lo) > 0 or float(hi) < 0 else "no"
            else:
                excludes = NOT_AVAILABLE
            rows.append((label, format_ci(estimate, lo, hi), excludes))
        ci = ci_header(f.conf_level)
        lines += md_table(("quantity", f"difference [{ci}]", f"{ci} excludes 0"), rows)
    else:
        lines.append(f"Differences: {NOT_AVAILABLE}.")
    lr = f.marker_lr_test
    if lr and is_number(lr.get("statistic")):
        df = count_text(lr.get("df"))
        lines += [
            "",
            f"Likelihood-ratio test of the marker terms: chi2 = {float(lr['statistic']):.2f}, "
            f"df = {df}, {p_value_text(lr.get('p_value'))}.",
        ]
    else:
        lines += ["", f"Likelihood-ratio test: {NOT_AVAILABLE}."]
    return lines


def _limitations(f: ModelCardFacts) -> list[str]:
    items = []
    if f.simulated is True:
        items.append(
            "**Trained and evaluated on simulated data** (the project's simulator). The "
            "performance shown describes the simulator, not patients; it supports no clinical "
            "claim."
        )
    elif f.simulated is None:
        items.append(f"Whether the data are simulated: {NOT_AVAILABLE}.")
    items += [
        "Not a medical device: not cleared or approved for clinical use; not for decisions about "
        "individual patients.",
        "Risk of overfitting: events per model feature in training "
        f"{_events_per_feature(f)}; hyperparameters were tuned on the development data and the "
        "test estimates come from the same cohort (held out or out of fold, as stated under "
        "Test estimates), so performance in new patients may be lower.",
        "Transportability: no external validation. Calibration may not transfer to other "
        "settings, populations, eras or flow-cytometry protocols (gating, number of PBMC events "
        "counted); recalibrate before use elsewhere.",
        "The marker is counted from tens of positive events per draw: counting noise attenuates "
        "its apparent effect and adds to individual prediction error.",
        "Horizons beyond the training follow-up are held at the last estimable value "
        "(with a warning).",
    ]
    items += [str(x) for x in f.limitations]
    return [f"- {item}" for item in items]


_SECTIONS = (
    _model_details,
    _intended_use,
    _data,
    _outcome,
    _predictors,
    _missing,
    _sample_size,
    _model_building,
    _performance,
    _subgroups,
    _marker,
    _limitations,
)


def render_model_card(facts: ModelCardFacts) -> str:
    """Render the model card as Markdown.

    Sections, in order, are :data:`SECTION_HEADINGS` (level-2 headings), after a level-1 title
    with the model's name and version.

    Parameters
    ----------
    facts : ModelCardFacts
        What the card states.

    Returns
    -------
    str
        Markdown text ending in a newline.
    """
    version = f" version {facts.model_version}" if facts.model_version else ""
    lines = [
        f"# Model card: {facts.model_name}{version} ({facts.family})",
        "",
        "Reported along TRIPOD+AI (Collins et al., BMJ 2024;385:e078378). Predicts the "
        "cumulative incidence of bone metastasis with death as a competing event.",
    ]
    for heading, section in zip(SECTION_HEADINGS, _SECTIONS, strict=True):
        lines += ["", f"## {heading}", "", *section(facts)]
    return "\n".join(lines) + "\n"

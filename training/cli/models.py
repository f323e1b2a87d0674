"""Commands over models: train, evaluate, promote, compare."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from features.vocabulary import MODEL_NAME
from training.cli.app import (
    DEFAULT_MODEL_URI,
    JsonOpt,
    MeasurementsOpt,
    ModelUriOpt,
    PatientsOpt,
    fail,
    library_output,
    load,
    store_settings,
)
from training.cli.output import (
    Bars,
    candidate_table,
    evaluation_by_landmark,
    evaluation_json,
    print_comparison,
    print_transposed,
    summary_json,
    table,
    with_interval,
)
from training.evaluation.names import EVALUATION


def _family_names() -> str:
    from training.config import FAMILY_NAMES, OPTIONAL_FAMILIES  # names only (no estimators)

    return ", ".join(FAMILY_NAMES) + f" (default: all but {', '.join(OPTIONAL_FAMILIES)})"


def train(
    patients: PatientsOpt,
    measurements: MeasurementsOpt = None,
    experiment: Annotated[
        str | None,
        typer.Option("--experiment", help="MLflow experiment (default: bone-metastasis)"),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML training config: fields of training.config.TrainConfig (default: none)",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="overrides the config seed (default: 42)")
    ] = None,
    families: Annotated[
        str | None,
        typer.Option("--families", help=f"comma-separated model families: {_family_names()}"),
    ] = None,
    landmarks: Annotated[
        str | None,
        typer.Option(
            "--landmarks",
            help="comma-separated landmark days starting with 0 (e.g. 0,91,183,365): train "
            "landmark models that predict from any prediction_day with the draws known by "
            "then (default: none: models predict from enrollment)",
        ),
    ] = None,
    holdout: Annotated[
        float | None,
        typer.Option(
            "--holdout",
            help="share of patients (0.05-0.5) held out as a test split that only evaluates "
            "(default: none: every eligible patient trains the registered model and the "
            "metrics come from the out-of-fold predictions of the nested cross-validation)",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train every family, log to MLflow, register versions, set the challenger alias.

    Ends with a table of the candidates (selection metric, headline metrics with 95 %
    intervals, promotion-gate verdicts, the challenger), why the challenger was chosen, and
    the next command to run.
    Exits 2 when the input or the store cannot be used, 3 when everything was trained and
    logged but the tracking server refused to register versions (no EDIT on the model).
    """
    from training.config import ConfigError, load_config
    from training.fitting.data import TrainingDataError
    from training.registry.versions import RegistrationRefused, RegistryError
    from training.runs.train import train as run_train

    cohort = load(patients, measurements)
    try:
        cfg = load_config(
            config,
            experiment=experiment,
            seed=seed,
            families=families,
            landmark_days=landmarks,
            holdout=holdout,
        )
        with Bars() as bars, library_output():
            result = run_train(
                cohort, cfg, store_settings(), source=str(Path(patients).resolve()), progress=bars
            )
    except RegistrationRefused as err:
        fail(f"trained but not registered: {err}", code=3)
    except (ConfigError, TrainingDataError, RegistryError) as err:
        fail(f"cannot train: {err}")
    if as_json:
        typer.echo(summary_json(result))
        return
    if result.design == "holdout":
        patients_text = (
            f"{result.n_train_patients} training and {result.n_test_patients} test patients"
        )
        if result.landmark_days:
            patients_text += f" ({result.n_train} and {result.n_test} landmark rows)"
        design = "metrics (test_*) on the held-out test patients"
    else:
        patients_text = f"all {result.n_train_patients} eligible patients"
        if result.landmark_days:
            patients_text += f" ({result.n_train} landmark rows)"
        design = (
            "metrics (test_*) on the out-of-fold predictions of every patient "
            "(nested cross-validation)"
        )
    typer.echo(f"trained on {patients_text}; {design}; parent run {result.parent_run_id}")
    for note in result.notes:
        typer.echo(f"note: {note}")
    for skipped in result.skipped:
        typer.echo(f"skipped {skipped.family}: {skipped.reason}")
    candidates = candidate_table(result)
    challenger = candidates.loc[candidates["version"] == result.challenger_version].iloc[0]
    candidates["family"] = candidates.pop("").str.cat(candidates["family"], sep="\n").str.strip()
    print_transposed(
        candidates, "family", title=f"candidates (selected by {result.selection_metric})"
    )
    for reason in result.selection_reasons:
        typer.echo(f"why: {reason}")
    version = result.challenger_version
    verdict = challenger.iloc[-1]  # the gates, against the champion of this moment
    if verdict == "pass":
        typer.echo(
            f"next: bonemet promote   (champion -> the challenger, version {version}; "
            "then: bonemet serve)"
        )
    else:
        failed = verdict.removeprefix("FAIL:").replace("\n", " ").strip()
        typer.echo(
            f"next: bonemet compare   (the challenger, version {version}, fails the gate(s) "
            f"{failed}: bonemet promote refuses it; bonemet promote --force --reason '...' "
            "records an override)"
        )


def evaluate(
    patients: PatientsOpt,
    measurements: MeasurementsOpt = None,
    model_uri: ModelUriOpt = DEFAULT_MODEL_URI,
    experiment: Annotated[
        str, typer.Option("--experiment", help="MLflow experiment of the evaluation run")
    ] = "bone-metastasis-evaluation",
    n_bootstrap: Annotated[
        int, typer.Option("--n-bootstrap", min=0, max=5000, help="bootstrap resamples (0-5000)")
    ] = 200,
    as_json: JsonOpt = False,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="validate group by group on this patients column (site_id, lab_id, ...) and "
            "pool the groups (docs/validation.md); needs --out",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="folder of by_<group>.csv, pooled.json and report.html"),
    ] = None,
    tau2: Annotated[
        str,
        typer.Option("--tau2", help="estimator of the between-group variance: REML or DL"),
    ] = "REML",
    hartung_knapp: Annotated[
        bool,
        typer.Option(
            "--hartung-knapp/--no-hartung-knapp",
            help="Hartung-Knapp adjustment of the pooled interval (t quantiles)",
        ),
    ] = True,
) -> None:
    """Evaluate a registered model on a cohort with outcomes (external validation).

    Works for every registered model; a landmark model is evaluated on the cohort's landmark
    rows and at each landmark on its own. With ``--by site_id --out DIR``: the performance in
    each site, pooled across sites with a prediction interval for a new site.
    """
    from training.fitting.data import TrainingDataError
    from training.runs.evaluate import evaluate_model
    from training.scoring.predict import ScoringError

    if by is not None or out is not None:
        _evaluate_by(patients, measurements, model_uri, experiment, n_bootstrap, as_json, by,
                     out, tau2, hartung_knapp)
        return
    cohort = load(patients, measurements)
    try:
        with library_output():
            result = evaluate_model(
                cohort,
                model_uri,
                store_settings(),
                experiment=experiment,
                source=str(Path(patients).resolve()),
                n_bootstrap=n_bootstrap,
            )
    except (ScoringError, TrainingDataError) as err:
        fail(f"cannot evaluate: {err}")
    shown = {f"eval_{name}" for name in EVALUATION}
    headline = {k: round(v, 4) for k, v in result.metrics.items() if k in shown}
    landmarks = {
        k: round(v, 4) for k, v in result.metrics.items() if k.startswith("eval_landmark_")
    }
    if as_json:
        typer.echo(evaluation_json(result))
        return
    import pandas as pd

    typer.echo(
        f"evaluated {result.model_uri} (version {result.version or 'n/a'}); run {result.run_id}"
    )
    table(
        pd.DataFrame(
            [
                {"metric": k.removeprefix("eval_"), "estimate": with_interval(result.metrics, k)}
                for k in headline
            ]
        ),
        title="pooled" if landmarks else None,
    )
    if landmarks:
        table(evaluation_by_landmark(result.metrics), title="at each landmark")


def _evaluate_by(
    patients: Path,
    measurements: Path | None,
    model_uri: str,
    experiment: str,
    n_bootstrap: int,
    as_json: bool,
    by: str | None,
    out: Path | None,
    tau2: str,
    hartung_knapp: bool,
) -> None:
    """``bonemet evaluate --by``: every argument checked before anything is loaded."""
    import json

    from training.fitting.data import TrainingDataError
    from training.scoring.predict import ScoringError
    from training.validation.groups import check_group_column
    from training.validation.meta import METHODS

    if by is None or out is None:
        fail("--by and --out go together: --by COLUMN --out DIR")
    try:
        check_group_column(by)
    except ValueError as err:
        fail(str(err))
    if tau2 not in METHODS:
        fail(f"--tau2 {tau2}: must be one of {', '.join(METHODS)}")
    if out.exists() and not out.is_dir():
        fail(f"--out {out}: exists and is not a folder")
    from training.runs.validate import validate_by_group

    cohort = load(patients, measurements)
    try:
        with library_output():
            result = validate_by_group(
                cohort, model_uri, store_settings(), by, out, experiment=experiment,
                source=str(Path(patients).resolve()), method=tau2,
                hartung_knapp=hartung_knapp, n_bootstrap=n_bootstrap,
            )
    except (ScoringError, TrainingDataError, ValueError) as err:
        fail(f"cannot evaluate: {err}")
    if as_json:
        document = {"run_id": result.run_id, "model_uri": result.model_uri,
                    "version": result.version, **{k: str(v) for k, v in result.paths.items()}}
        typer.echo(json.dumps(document, indent=2))
        return
    table = result.table
    typer.echo(
        f"validated {result.model_uri} (version {result.version or 'n/a'}) by {by}: "
        f"{len(table)} groups, flagged: {', '.join(table.loc[table['flagged'], by]) or 'none'}; "
        f"run {result.run_id}"
    )
    for name, entry in result.pooled.items():
        if entry.get("estimate") is None:
            continue
        typer.echo(
            f"  {name}: {entry['estimate']:.3f} (CI {entry['ci_low']:.3f}-{entry['ci_high']:.3f}"
            + (f"; new site {entry['pi_low']:.3f}-{entry['pi_high']:.3f}"
               if entry.get("pi_low") is not None else "")
            + f"; k={entry['k']})"
        )
    for path in result.paths.values():
        typer.echo(f"  {path}")


def promote(
    version: Annotated[str | None, typer.Option("--version", help="version to promote")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="promote even if a gate fails (needs --reason)")
    ] = False,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="why (recorded on the version; required with --force)"),
    ] = None,
) -> None:
    """Move the champion alias (default: to the challenger) if the promotion gates pass.

    Prints each gate's estimate, 95 % interval and verdict. A gate refuses only on evidence:
    the calibration slope (band 0.8-1.2) or calibration-in-the-large (+/-0.05) at 12, 24 and
    36 months outside its band with an interval that excludes perfect calibration, or Uno's C
    below the champion's by more than 0.01 with an interval of the difference that excludes 0
    (docs/modeling.md, "Promotion gates").
    """
    from training.registry import promotion
    from training.registry import versions as registry
    from training.store import backend as tracking

    def show(verdicts) -> None:
        for gate in verdicts:
            typer.echo(f"gate {gate.name}: {'pass' if gate.passed else 'FAIL'} ({gate.detail})")

    tracking.configure(store_settings())
    try:
        with library_output():
            done = promotion.promote(version, force=force, reason=reason)
    except promotion.PromotionRefused as err:
        show(err.gates)
        fail(f"cannot promote: {err}")
    except registry.RegistryError as err:
        fail(f"cannot promote: {err}")
    show(done.gates)
    if done.forced_reason:
        typer.echo(f"forced: {done.forced_reason}")
    typer.echo(
        f"champion: version {done.version} (was {done.previous or 'none'}) of {MODEL_NAME}"
    )


def compare(
    versions: Annotated[
        str | None,
        typer.Option("--versions", help="comma-separated versions (default: all)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print registered versions side by side, flagging metrics outside the promotion gates,
    and the latest training runs (finished, running, or killed).

    Columns: version, family, alias, data digest, state (complete or not), the selection
    metric, gate verdicts and headline metrics with 95 % intervals; the table fits the
    terminal's width.
    """
    from training.registry import versions as registry
    from training.registry.compare import compare as compare_versions
    from training.store import backend as tracking

    tracking.configure(store_settings())
    with library_output():
        tracking.reap_stale_runs()
    wanted = [v.strip() for v in versions.split(",") if v.strip()] if versions else None
    try:
        with library_output():
            compared = compare_versions(wanted)
    except registry.RegistryError as err:
        fail(f"cannot compare: {err}")
    if not compared:
        fail("no versions registered yet: run bonemet train first")
    print_comparison(compared, registry.training_history(), as_json)

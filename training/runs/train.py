"""The MLflow training run: fit every candidate family (:mod:`training.fitting`), log each
as a child run with its figures, tables and model card, register it, pick the challenger."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from features.contract import Cohort
from features.schema import CONTRACT_VERSION
from features.vocabulary import BONE_METASTASIS, DEATH
from training.config import MODEL_NAME, Settings, TrainConfig
from training.evaluation.names import (
    CANDIDATES,
)
from training.fitting.data import TrainingData, TrainingDataError, prepare_training_data
from training.fitting.family_run import (
    FamilyOutcome,
    FamilySkipped,
    Progress,
    SilentProgress,
    family_outcomes,
)
from training.fitting.landmarks import landmark_metrics
from training.fitting.marker import marker_lr_test
from training.fitting.search import SEARCH_METRIC
from training.fitting.stack import stack_or_skip
from training.models.catalog import FAMILIES
from training.models.names import STACK_FAMILY
from training.runs.card_facts import card_facts
from training.runs.log_model import log_risk_model
from training.runs.logged import (
    cohort_dataset,
    log_decision_curve_figure,
    log_run_metrics,
    log_split_tables,
    logged_value,
    run_name,
)
from training.store.backend import git_commit


@dataclass(frozen=True)
class CandidateResult:
    """One fitted family: its run, registered version and test metrics."""

    family: str
    run_id: str
    version: str
    metrics: dict[str, float]


@dataclass(frozen=True)
class TrainResult:
    """What ``train`` did: the parent run, each candidate, and the new challenger.

    ``design`` says what the ``test_*`` metrics were measured on (``nested_cv_oof``: the
    out-of-fold predictions of every patient, who all train the registered model; or
    ``holdout``: a held-out split, ``n_test`` > 0); ``selection_reasons`` say why the
    challenger was chosen (:func:`training.registry.selection.select`). ``notes`` say how the
    cohort was modelled when it departs from the default (no competing deaths, no marker);
    ``skipped`` lists the families that could not be fitted.
    """

    parent_run_id: str
    experiment_id: str
    candidates: tuple[CandidateResult, ...]
    challenger_version: str
    selection_metric: str
    n_train: int
    n_test: int
    n_excluded_bone_met_at_enrollment: int
    dataset_digest: str
    notes: tuple[str, ...] = ()
    skipped: tuple[FamilySkipped, ...] = ()
    n_train_patients: int | None = None
    n_test_patients: int | None = None
    landmark_days: tuple[float, ...] = field(default_factory=tuple)
    selection_reasons: tuple[str, ...] = ()
    design: str = "nested_cv_oof"


#: Tag of a training run whose versions the tracking server refused to register.
REGISTRATION_REFUSED = "bonemet.registration_refused"


def model_notes(config: TrainConfig, death_note: str | None) -> dict[str, str]:
    """Run tags saying how the outcome and the marker were modelled."""
    return {
        "competing_death": "zero hazard (incidence = 1 - S(t))" if death_note else "modelled",
        "marker": "used" if config.include_marker else "none (clinical-only model)",
    }


def _log_trials(out: FamilyOutcome) -> None:
    """Each final-search configuration as a nested run, and the trials table."""
    import mlflow

    experiment_id = mlflow.active_run().info.experiment_id
    mean, sd = f"inner_cv_{SEARCH_METRIC}_mean", f"inner_cv_{SEARCH_METRIC}_sd"
    if not out.trials:  # the run's stack: no search of its own
        return
    for i, trial in enumerate(out.trials):
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=f"{out.family}-trial-{i + 1}", nested=True
        ):
            mlflow.log_params({"family": out.family, **trial.params})
            mlflow.set_tag("selected", str(trial.params == out.params).lower())
            mlflow.log_metrics(
                {k: v for k, v in ((mean, trial.mean), (sd, trial.sd)) if np.isfinite(v)}
            )
    trials = pd.DataFrame([{**t.params, mean: t.mean, sd: t.sd} for t in out.trials])
    mlflow.log_table(trials, "tables/trials.json")


def _log_family(out: FamilyOutcome, y_test: np.ndarray, X_test: pd.DataFrame) -> dict[str, float]:
    # ``X_test``/``y_test``: the evaluated rows (held-out split, or every row out of fold).
    """Trial runs, tables and figures of one family into the active run; returns its metrics
    (logged by :func:`log_run_metrics`)."""
    import mlflow

    from training.evaluation import figures

    metrics = {**out.test.flat("test_"), **out.cv}
    metrics.update(
        {f"clinical_test_{k}": v for k, v in out.clinical_test.items() if np.isfinite(v)}
    )
    for k, iv in out.increments.items():
        for suffix, value in (("", iv.estimate), ("_lo", iv.lo), ("_hi", iv.hi)):
            if np.isfinite(value):
                metrics[f"delta_{k}_marker{suffix}"] = float(value)
    metrics.update(landmark_metrics(X_test, y_test, out.test_risk))
    mlflow.log_params({f"selected_{k}": v for k, v in out.params.items()})
    _log_trials(out)
    mlflow.log_table(pd.DataFrame(out.fold_metrics), "tables/cv_outer_folds.json")
    log_split_tables(out.test)
    mlflow.log_table(
        out.importance.rename("importance").reset_index(), "tables/feature_importance.json"
    )
    annotations = {}
    for h in out.test.calibration:
        slope = out.test.metrics.get(f"calibration_slope_{h}m", float("nan"))
        ici = out.test.metrics.get(f"ici_{h}m", float("nan"))
        annotations[h] = f"slope {slope:.2f}\nICI {ici:.3f}"
    mlflow.log_figure(
        figures.calibration_figure(out.test.calibration, annotations), "figures/calibration.png"
    )
    groups = out.test_groups
    if groups is None:
        groups = out.model.risk_group(out.test_risk)
    mlflow.log_figure(
        figures.incidence_by_group_figure(y_test, groups), "figures/incidence_by_risk_group.png"
    )
    mlflow.log_figure(
        figures.auc_over_time_figure(
            np.asarray(out.test.auc_months),
            np.asarray(out.test.auc_values),
            "with osteocalcin marker" if out.model.include_marker else "clinical only",
            other=(
                {"clinical only": tuple(np.asarray(a) for a in out.clinical_auc)}
                if out.clinical_auc is not None
                else {}
            ),
        ),
        "figures/auc_over_time.png",
    )
    log_decision_curve_figure(out.test)
    mlflow.log_figure(figures.importance_figure(out.importance), "figures/feature_importance.png")
    return metrics


def _log_parent(data: TrainingData, dataset) -> dict[str, float] | None:
    """Configuration, data, tags, counts and the marker's likelihood-ratio test of the
    parent run (active); returns the test's finite values (None if not run or none)."""
    import mlflow

    from training.store import backend as tracking

    config = data.config
    mlflow.log_params(config.to_params())
    mlflow.log_dict(asdict(config), "config.yaml")
    tracking.log_input(dataset, "training")
    mlflow.set_tags(
        {
            "git_commit": git_commit(),
            "contract_version": str(CONTRACT_VERSION),
            "dataset_digest": dataset.digest,
            "seed": str(config.seed),
            "evaluation_design": data.design,
            **model_notes(config, data.death_note),
        }
    )
    if data.notes:
        mlflow.log_text("\n".join(data.notes) + "\n", "notes.txt")
    y_train, y_test = data.y_train, data.y_test
    counts = {
        "n_train": len(data.X_train),
        "n_test": len(y_test) if y_test is not None else 0,
        "n_train_patients": len(data.patients_y["train"]),
        "n_test_patients": len(data.patients_y.get("test", ())),
        "n_excluded_bone_met_at_enrollment": data.n_excluded,
        "n_bone_met_events_train": int(np.sum(y_train["cause"] == BONE_METASTASIS)),
        "n_death_events_train": int(np.sum(y_train["cause"] == DEATH)),
    }
    if y_test is not None:
        counts["n_bone_met_events_test"] = int(np.sum(y_test["cause"] == BONE_METASTASIS))
    mlflow.log_metrics(counts)
    lr_test = marker_lr_test(data.X_train, y_train) if config.include_marker else None
    if lr_test:
        lr_test = {k: logged_value(v) for k, v in lr_test.items() if np.isfinite(v)} or None
    if lr_test:
        mlflow.log_metrics(lr_test)
    return lr_test


@dataclass
class _Training:
    """What every family's run of one training shares: the cohort, its data and dataset, the
    parent run, the marker's test and the champion to pair with (:func:`train`)."""

    cohort: Cohort
    config: TrainConfig
    data: TrainingData
    dataset: object
    source: str
    experiment_id: str
    parent_run_id: str
    lr_test: dict[str, float] | None
    pairing: object

    def _child(self, name: str):
        import mlflow

        return mlflow.start_run(
            experiment_id=self.experiment_id,
            run_name=run_name(name, self.cohort, self.dataset.digest),
            nested=True,
        )

    def log_skipped(self, name: str, out: FamilySkipped) -> None:
        """A child run that says why the family could not be fitted."""
        import mlflow

        with self._child(name):
            mlflow.set_tags({"family": name, "skipped": "true", "skip_reason": out.reason})

    def log_candidate(self, name: str, out: FamilyOutcome):
        """The family's child run: parameters, tags, metrics (with the paired comparison and
        the marker's test), figures, tables, the model and its card. Returns the run id, the
        logged (rounded) metrics, the logged model's URI and the card's arguments."""
        import mlflow

        from training.registry import card as mc
        from training.registry import gates
        from training.store import backend as tracking

        config, data = self.config, self.data
        X_test, y_test = data.evaluation_rows()
        with self._child(name) as child:
            mlflow.log_params({**config.to_params(), "family": name})
            tracking.log_input(self.dataset, "training")
            mlflow.set_tags(
                {
                    "family": name,
                    "git_commit": git_commit(),
                    "dataset_digest": self.dataset.digest,
                    "evaluation_design": data.design,
                    **model_notes(config, data.death_note),
                }
            )
            metrics = _log_family(out, y_test, X_test)
            if data.design == "nested_cv_oof":
                mlflow.log_dict({"risk_24m": out.test_risk.tolist()}, gates.OOF_RISK_ARTIFACT)
            if self.pairing is not None:
                metrics.update(
                    gates.paired_discrimination(
                        self.pairing, y_test, out.test_risk, config.n_bootstrap, config.seed,
                        config.bootstrap_max_patients or None,
                    )
                )
            is_cox = name in FAMILIES and FAMILIES[name].is_cox  # the stack is in none
            if self.lr_test and is_cox:
                metrics.update(self.lr_test)
            # Logged, recorded and shown rounded alike.
            metrics = log_run_metrics(metrics)
            card_args = dict(
                run_id=child.info.run_id,
                dataset_digest=self.dataset.digest,
                source=self.source,
                cohort=self.cohort,
                lr_test=self.lr_test if is_cox else None,
            )
            card = mc.render_model_card(card_facts(out, data, **card_args))
            out.model.performance = out.test.flat("")  # the page's accuracy (contract 1.2)
            info = log_risk_model(out.model, model_card=card)
            mlflow.log_dict(
                {
                    "risk_cutoffs": list(out.model.risk_cutoffs),
                    "selected_params": out.params,
                    "feature_names": out.model.pipeline[0].get_feature_names_out().tolist(),
                    "max_follow_up_months": out.model.max_follow_up_months,
                },
                "model_summary.json",
            )
        return child.info.run_id, metrics, info.model_uri, card_args

    def register(self, name, out, run_id, metrics, model_uri, card_args) -> str:
        """Register the family's finished run as a version, with every tag in the create
        request (a training killed at any point leaves no version without its facts), then
        its description and card. Raises ``RegistrationRefused`` for a user who may not."""
        from training.registry import card as mc
        from training.registry import versions as registry

        config = self.config
        tags = registry.version_tags(
            name,
            metrics,
            self.dataset.digest,
            run_id,
            config.selection_metric,
            landmark_days=config.landmark_days,
            training_run_id=self.parent_run_id,
        )
        version = registry.register_version(model_uri, tags)
        card = mc.render_model_card(card_facts(out, self.data, version=version, **card_args))
        registry.describe_version(version, card, run_id, name, metrics, config.selection_metric)
        return version


def train(
    cohort: Cohort,
    config: TrainConfig,
    settings: Settings,
    *,
    source: str = "cohort",
    progress: Progress | None = None,
) -> TrainResult:
    """Train every configured family and register each as a version of the model.

    For each family: bounded hyperparameter search nested in (repeated) cross-validation on
    the training patients (every eligible patient unless ``config.holdout``; each
    configuration a child run with its inner-CV scores pooled over the outer folds), a final
    fit on every training patient, the evaluation suite with bootstrap intervals on the
    out-of-fold predictions (or the held-out split), calibration, decision curve and
    subgroups, the same family without the osteocalcin features (incremental value), figures,
    a model card, and a registered version tagged with its headline metrics. Then the stack of
    the fitted families (:mod:`training.fitting.stack`: their out-of-fold predictions combined
    with simplex weights, cross-fitted; no new fit), logged, evaluated and registered the same
    way (family ``stacked_oof``). The challenger alias goes to
    :func:`training.registry.selection.select`'s choice (one-standard-error rule on
    ``config.selection_metric``, the stack a candidate, the most complex), its reasons logged
    as ``selection.txt``.

    Parameters
    ----------
    cohort : features.contract.Cohort
        A validated cohort with outcomes.
    config : TrainConfig
        Families, search sizes, seed, split.
    settings : Settings
        The MLflow store.
    source : str
        Where the cohort came from (a path), recorded with the dataset.
    progress : Progress, optional
        Receives one ``advance`` per fitted model.

    Returns
    -------
    TrainResult

    Raises
    ------
    training.registry.versions.RegistrationRefused
        The tracking server refused this user new versions (no EDIT on the registered model):
        raised after every family was logged and the training run ended FINISHED, tagged
        :data:`REGISTRATION_REFUSED`; nothing registered, no alias moved.
    """
    import mlflow

    from training.registry import gates, selection
    from training.registry import versions as registry
    from training.store import backend as tracking

    progress = progress or SilentProgress()
    refused: registry.RegistrationRefused | None = None
    unregistered: list[str] = []  # "family (run id)" of the families logged, not registered
    data = prepare_training_data(cohort, config)
    config = data.config
    X_test, y_test = data.evaluation_rows()
    losses: dict[str, np.ndarray] = {}

    tracking.configure(settings)
    experiment_id = tracking.ensure_experiment(config.experiment, settings)
    dataset = cohort_dataset(cohort, source)
    # Runs left RUNNING by a killed training are marked failed before this one starts.
    tracking.reap_stale_runs()
    candidates = []
    # The run is created with its owner's tags: a kill at any later point can be detected.
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=run_name("train", cohort, dataset.digest),
        tags=tracking.owner_tags(),
    ) as parent:
        # Under `mlflow run` the project's run is resumed as the parent: children follow it.
        experiment_id = parent.info.experiment_id
        tracking.mark_training_experiment(experiment_id)
        lr_test = _log_parent(data, dataset)
        # The champion's out-of-fold risk on these patients, when it has one: paired gates.
        pairing = gates.champion_pairing(dataset.digest, data.design, len(y_test))
        outcomes = family_outcomes(data, progress)
        skipped = []
        training = _Training(
            cohort, config, data, dataset, source, experiment_id, parent.info.run_id, lr_test,
            pairing,
        )
        fitted: list[FamilyOutcome] = []

        def with_stack():
            """The families' outcomes, then the stack of the fitted ones (when two or more)."""
            yield from zip(config.families, outcomes, strict=True)
            stacked = stack_or_skip(fitted, data)
            if stacked is not None:
                yield STACK_FAMILY, stacked

        for name, out in with_stack():
            if isinstance(out, FamilySkipped):
                skipped.append(out)
                training.log_skipped(name, out)
                continue
            fitted.append(out)
            run_id, metrics, model_uri, card_args = training.log_candidate(name, out)
            if refused is None:
                try:
                    version = training.register(name, out, run_id, metrics, model_uri, card_args)
                except registry.RegistrationRefused as err:
                    refused = err
            if refused is not None:
                # Not allowed to register: the next families are still logged in full.
                unregistered.append(f"{name} (run {run_id})")
                continue
            candidates.append(CandidateResult(name, run_id, version, metrics))
            if out.oof_loss is not None:
                losses[version] = out.oof_loss
        if skipped:
            mlflow.set_tag(
                "skipped_families", "; ".join(f"{s.family}: {s.reason}" for s in skipped)[:4900]
            )
        if refused is not None:
            note = f"{refused}; logged, not registered: {', '.join(unregistered)}"
            mlflow.set_tag(REGISTRATION_REFUSED, note[:4900])
        elif not candidates:
            raise TrainingDataError(
                "no model family could be fitted on this cohort: "
                + "; ".join(f"{s.family}: {s.reason}" for s in skipped)
            )
        else:
            best = selection.choose_challenger(
                candidates, config.selection_metric, losses=losses or None,
                groups=selection.patient_groups(data.X_train),
            )  # fmt: skip
            mlflow.set_tag("challenger_version", best.version)
            mlflow.log_text("\n".join(best.reasons) + "\n", "selection.txt")
            table = pd.DataFrame(
                [
                    {
                        "family": c.family,
                        "version": c.version,
                        **{k: c.metrics.get(k) for k in CANDIDATES},
                    }
                    for c in candidates
                ]
            )
            mlflow.log_table(table, "tables/candidates.json")
    if refused is not None:
        # Raised once the training run has ended FINISHED, with everything logged.
        raise registry.RegistrationRefused(
            f"{refused}. Training run {parent.info.run_id} (experiment {config.experiment!r}) "
            f"finished with every family logged, model included: {', '.join(unregistered)}; "
            f"no version was registered and no alias moved. To register, ask an admin or a "
            f"user with MANAGE on {MODEL_NAME} for EDIT on it, then train again",
            run_id=parent.info.run_id,
            experiment_id=experiment_id,
        ) from refused
    return TrainResult(
        parent_run_id=parent.info.run_id,
        experiment_id=experiment_id,
        candidates=tuple(candidates),
        challenger_version=best.version,
        selection_metric=config.selection_metric,
        n_train=len(data.X_train),
        n_test=len(data.y_test) if data.y_test is not None else 0,
        n_excluded_bone_met_at_enrollment=data.n_excluded,
        dataset_digest=dataset.digest,
        notes=data.notes,
        skipped=tuple(skipped),
        n_train_patients=len(data.patients_y["train"]),
        n_test_patients=len(data.patients_y.get("test", ())),
        landmark_days=tuple(config.landmark_days),
        selection_reasons=best.reasons,
        design=data.design,
    )

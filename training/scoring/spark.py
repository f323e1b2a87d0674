"""Batch scoring on Apache Spark: the registered pyfunc as a Spark UDF.

At enrollment, the rows handed to the model are the local engine's
(:func:`training.scoring.predict.scoring_rows`), the model is the same MLflow pyfunc
(``mlflow.pyfunc.spark_udf``), and the output has the same columns; Spark spreads the rows over
its executors and writes a Parquet folder. From a prediction day, each patient's draws known
by then are needed beside the patient's row: patients and draws are cogrouped by bucket of
patients and each group is scored by the local engine's own function
(:func:`training.scoring.predict.predict_patients`, the rule of ``POST /predict``) with the
registered model's fitted risk model, shipped to the executors with the task. With
``--spark-master local[*]`` it runs on this machine; with a cluster's master URL (or under
``spark-submit``) on the cluster (docs/scoring-at-scale.md).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from features.contract import Cohort
from features.schema import MEASUREMENT_SPECS, PATIENT_SPECS
from training.artifact.risk_model import RISK_GROUPS
from training.scoring.predict import (
    DEFAULT_HORIZONS_MONTHS,
    OUTPUT_COLUMNS,
    ScoringError,
    load_risk_model,
    output_columns,
    predict_patients,
    scoring_rows,
)


def _spark_schema(rows: pd.DataFrame):
    from pyspark.sql.types import (
        BooleanType,
        DoubleType,
        LongType,
        StringType,
        StructField,
        StructType,
    )

    # Integers as longs: event counts exceed 2**31.
    kinds = {"string": StringType(), "boolean": BooleanType(), "integer": LongType()}
    fields = []
    for name in rows.columns:
        spec = PATIENT_SPECS.get(name) or MEASUREMENT_SPECS.get(name)
        kind = "string" if spec is None or spec.kind == "category" else spec.kind
        fields.append(StructField(name, kinds.get(kind, DoubleType()), nullable=True))
    return StructType(fields)


def _result_type(horizons: Sequence[float]):
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    columns = [StructField("patient_id", StringType()), StructField("risk_score", DoubleType())]
    columns.append(StructField("risk_group", StringType()))
    names = output_columns(horizons)
    columns += [StructField(name, DoubleType()) for name in names[3:-1]]
    columns.append(StructField("warnings", StringType()))
    return StructType(columns)


def spark_session(master: str = "local[*]", app_name: str = "bonemet-predict"):
    """A Spark session on ``master``; Python workers run this interpreter (the venv's).

    Under ``spark-submit`` (its JVM already runs: ``PYSPARK_GATEWAY_PORT`` is set) the master
    and settings given to ``spark-submit`` win and ``master`` is ignored.
    """
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        builder = builder.master(master).config("spark.ui.enabled", "false")
    return builder.config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate()


def score_cohort_spark(
    cohort: Cohort,
    model_uri: str,
    out: Path,
    *,
    master: str = "local[*]",
    env_manager: str = "local",
    prediction_day: float | None = None,
) -> int:
    """Score every patient with the model on Spark; write a Parquet folder ``out``.

    At enrollment (no ``prediction_day``) the model runs as a Spark UDF
    (``mlflow.pyfunc.spark_udf``); from ``prediction_day``, by :func:`score_at_day_spark`.

    Parameters
    ----------
    cohort : features.contract.Cohort
        A validated cohort (outcome columns are ignored).
    model_uri : str
        MLflow model URI (``models:/name@alias``, ``models:/name/version``, ``runs:/...``).
    out : pathlib.Path
        Parquet folder to create; it must not exist.
    master : str
        Spark master URL (``local[*]``, ``spark://host:7077``, ``yarn``, ...).
    env_manager : str
        MLflow's environment manager for the UDF: ``local`` (the executors' Python has
        bonemet installed), ``virtualenv`` or ``uv`` (MLflow builds the model's environment
        from its logged requirements on each executor). From a prediction day the executors
        need bonemet installed (``local``).
    prediction_day : float, optional
        Days since enrollment: every patient scored at that day with the draws known by then.

    Returns
    -------
    int
        Number of rows written.
    """
    import mlflow
    from mlflow.exceptions import MlflowException
    from pyspark.sql.functions import col, struct, when

    if out.exists():
        raise ScoringError(f"--out {out} exists: Spark writes a new Parquet folder")
    if prediction_day is not None:
        if env_manager != "local":
            raise ScoringError("--prediction-day on Spark needs bonemet on the executors (local)")
        return score_at_day_spark(cohort, model_uri, out, prediction_day, master=master)
    rows = scoring_rows(cohort)
    spark = spark_session(master)
    frame = _spark_frame(spark, rows)
    horizons = [float(h) for h in DEFAULT_HORIZONS_MONTHS]
    try:
        udf = mlflow.pyfunc.spark_udf(
            spark,
            model_uri,
            result_type=_result_type(horizons),
            env_manager=env_manager,
            params={"horizons_months": horizons},
        )
    except (MlflowException, OSError) as err:
        raise ScoringError(f"cannot load model {model_uri}: {err}") from err
    scored = frame.select(udf(struct(*[col(c) for c in rows.columns])).alias("p")).select("p.*")
    # MLflow turns a missing string (no group: bone metastasis at enrollment) into "nan" when
    # it converts the pyfunc's frame to Spark; only the model's groups are groups.
    group = when(col("risk_group").isin(*RISK_GROUPS), col("risk_group"))
    scored = scored.withColumn("risk_group", group)
    scored.select(*OUTPUT_COLUMNS).write.parquet(str(out))
    return len(rows)


def _spark_frame(spark, frame: pd.DataFrame):
    """A Spark DataFrame of a typed contract frame (missing values as nulls)."""
    return spark.createDataFrame(
        frame.astype(object).where(frame.notna(), None), _spark_schema(frame)
    )


def score_at_day_spark(
    cohort: Cohort, model_uri: str, out: Path, prediction_day: float, *, master: str = "local[*]"
) -> int:
    """Every patient scored at ``prediction_day`` with the draws known by then, on Spark.

    Patients and draws are cogrouped by bucket of patients (a few buckets per core); each
    bucket is re-typed by the contract (:func:`features.contract.validate_cohort`) and scored
    by :func:`training.scoring.predict.predict_patients` with the model's fitted risk model,
    so the answer is the local engine's, row for row. Returns the number of rows written.
    """
    import numpy as np

    from features.contract import validate_cohort
    from features.records import contract_rows

    day = float(prediction_day)
    risk_model = load_risk_model(model_uri)
    horizons = [float(h) for h in DEFAULT_HORIZONS_MONTHS]
    spark = spark_session(master)
    # The outcome columns travel with the rows: predict_patients leaves out (or warns for) a
    # patient whose outcome came on or before the prediction day.
    patients = cohort.patients
    n_buckets = max(1, min(len(patients), 4 * spark.sparkContext.defaultParallelism))
    bucket_of = dict(zip(patients["patient_id"], np.arange(len(patients)) % n_buckets, strict=True))
    patients = contract_rows(patients).assign(
        _bucket=[str(bucket_of[p]) for p in patients["patient_id"]]
    )
    measurements = cohort.measurements
    if measurements is None:
        measurements = pd.DataFrame({c: pd.Series(dtype=object) for c in MEASUREMENT_SPECS})
    measurements = contract_rows(measurements, table="oc_measurements").assign(
        _bucket=[str(bucket_of[p]) for p in measurements["patient_id"]]
    )
    columns = list(OUTPUT_COLUMNS)

    def score(p: pd.DataFrame, m: pd.DataFrame) -> pd.DataFrame:
        p = p.drop(columns="_bucket")
        m = m.drop(columns="_bucket")
        if p.empty:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        bucket = validate_cohort(p, m if len(m) else None)
        frame = predict_patients(
            risk_model, bucket.patients, bucket.measurements, day, horizons_months=horizons
        ).reindex(columns=columns)
        return frame.astype(object).where(frame.notna(), None)

    grouped = _spark_frame(spark, patients).groupBy("_bucket")
    draws = _spark_frame(spark, measurements).groupBy("_bucket")
    scored = grouped.cogroup(draws).applyInPandas(score, schema=_result_type(horizons))
    scored.select(*columns).write.parquet(str(out))
    return len(patients)

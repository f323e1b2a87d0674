"""Batch scoring on Apache Spark: the registered pyfunc as a Spark UDF.

The rows handed to the model are the local engine's (:func:`training.scoring.predict.scoring_rows`),
the model is the same MLflow pyfunc (``mlflow.pyfunc.spark_udf``), and the output has the same
columns; Spark spreads the rows over its executors and writes a Parquet folder. With
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
from features.schema import PATIENT_SPECS
from training.artifact.risk_model import RISK_GROUPS
from training.scoring.predict import (
    DEFAULT_HORIZONS_MONTHS,
    OUTPUT_COLUMNS,
    ScoringError,
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
        spec = PATIENT_SPECS.get(name)
        kind = "string" if spec is None or spec.kind == "category" else spec.kind
        fields.append(StructField(name, kinds.get(kind, DoubleType()), nullable=True))
    return StructType(fields)


def _result_type(horizons: Sequence[float]):
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    columns = [StructField("patient_id", StringType()), StructField("risk_score", DoubleType())]
    columns.append(StructField("risk_group", StringType()))
    columns += [StructField(f"p_bone_met_{h:g}m", DoubleType()) for h in horizons]
    columns += [StructField(f"p_death_{h:g}m", DoubleType()) for h in horizons]
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
) -> int:
    """Score every patient with the model as a Spark UDF; write a Parquet folder ``out``.

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
        from its logged requirements on each executor).

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
    rows = scoring_rows(cohort)
    spark = spark_session(master)
    frame = spark.createDataFrame(
        rows.astype(object).where(rows.notna(), None), _spark_schema(rows)
    )
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

"""The osteocalcin study: its statistics (:mod:`training.study.stats`), the report built from
them (:mod:`training.study.report`) and the report logged as an MLflow run
(:mod:`training.runs.study`)."""

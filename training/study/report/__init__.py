"""The osteocalcin study report: one self-contained HTML file answering the study's questions.

:func:`training.study.report.build.build_study` computes the parts from a validated cohort with
the statistics of :mod:`training.study.stats` and the landmark features of
:mod:`features.landmark`, one module per section:

- :mod:`~training.study.report.cohort`: who is in the cohort;
- :mod:`~training.study.report.aim1`: the enrollment marker with versus without bone metastasis;
- :mod:`~training.study.report.aim2`: time to bone metastasis by the enrollment marker;
- :mod:`~training.study.report.monitoring` and :mod:`~training.study.report.landmark`: repeated
  draws and the landmark analyses;
- :mod:`~training.study.report.limits`: the limits of the analysis.

A part (or one analysis in it) that the data cannot support is reported as not computed, with
the reason, instead of failing. :mod:`~training.study.report.parts` holds the report as data,
:mod:`~training.study.report.figures` its figures, :mod:`~training.study.report.render` the
HTML, and :func:`~training.study.report.build.write_study` writes ``report.html``,
``study.json`` and ``figures/*.png``. Logging the report as an MLflow run is
:mod:`training.runs.study`.
"""

"""Statistics of the osteocalcin study report: plain functions returning frozen dataclasses.

Each function takes numpy arrays, checks them, and returns a dataclass with the estimate, its
confidence interval, the p value and the numbers behind it. Nothing here reads files, plots or
logs; :mod:`training.study.report` puts the pieces together. A statistic that cannot be computed
on the data given (too few patients, no events, a fit that does not converge) raises
:class:`~training.study.stats.common.StudyError` with the reason in words, which the report
prints instead of the result.

Modules
-------
- :mod:`~training.study.stats.comparisons`: two groups and a binary status compared by a marker
  (Mann-Whitney, Hodges-Lehmann, DeLong's AUC interval, ROC, Youden cut-off).
- :mod:`~training.study.stats.regression`: ordinary least squares and the cause-specific Cox
  model (statsmodels) with the Grambsch-Therneau proportional hazards check.
- :mod:`~training.study.stats.competing`: cumulative incidence by group (Aalen-Johansen) and
  Gray's score test with a permutation p value.
- :mod:`~training.study.stats.common`: the error raised, input checks, JSON conversion.
"""

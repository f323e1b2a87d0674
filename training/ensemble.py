"""Moved to :mod:`training.models.ensemble` (0.2). Kept so models logged by 0.1 load: their pickles
(or their
``pyfunc_model.py``) name ``training.ensemble``. Nothing new imports this module."""

from training.models.ensemble import StackedEnsemble  # noqa: F401

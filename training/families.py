"""Moved to :mod:`training.models.families` (0.2). Kept so models logged by 0.1 load: their pickles
(or their
``pyfunc_model.py``) name ``training.families``. Nothing new imports this module."""

from training.models.families import CauseSpecificHazards, XGBIPCWClassifier  # noqa: F401

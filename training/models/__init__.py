"""Model families for bone metastasis with death competing.

``names`` (the family names, import-light), ``competing`` (the target, the censoring
distribution and the one competing-risk combination), ``bases`` (the survival bases: defaults,
construction, bounds), ``cause_specific`` (cause-specific hazards, Breslow baselines), ``ipcw``
(the "status known at the horizon" step and the IPCW classifiers), ``ensemble`` (the stacked
ensemble), ``catalog`` (the one family registry), and ``coxph`` and ``gbsa`` (scikit-survival's
ridge Cox and gradient-boosted Cox models with vectorised fits).

Before 0.2 this package was the module ``training.models``; models logged then pickle
``training.models.IPCWHorizonClassifier``. :func:`__getattr__` resolves those names lazily
(no import at package import), so such models keep loading.
"""

from __future__ import annotations

from importlib import import_module

#: Names pickled at the 0.1 module path -> the module that defines them now.
_MOVED = {"IPCWHorizonClassifier": "training.models.ipcw"}


def __getattr__(name: str):
    if name in _MOVED:
        return getattr(import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

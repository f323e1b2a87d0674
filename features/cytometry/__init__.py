"""Flow cytometry: FCS files and a GatingML 2.0 strategy to ``oc_measurements`` (FlowKit).

``gating`` checks and gates a batch of files and records their provenance; ``strategy`` reads
the GatingML document and names its gates; ``problems`` holds the quality-control rules and
:class:`CytometryError`; ``simulate_fcs`` writes FCS files and a strategy that reproduce a
simulated cohort's counts; ``figures`` draws the two gates on a file's events for quality
control.
"""

from features.cytometry.gating import (
    DEFAULT_MIN_PBMC_EVENTS,
    KEPT_KEYWORDS,
    CytometryResult,
    compare_counts,
    gate_batch,
    write_result,
)
from features.cytometry.problems import CytometryError, Problem
from features.cytometry.strategy import GateRef

__all__ = [
    "DEFAULT_MIN_PBMC_EVENTS",
    "KEPT_KEYWORDS",
    "CytometryError",
    "CytometryResult",
    "GateRef",
    "Problem",
    "compare_counts",
    "gate_batch",
    "write_result",
]

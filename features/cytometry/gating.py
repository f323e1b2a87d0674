"""FCS files and a GatingML 2.0 strategy in, the contract's ``oc_measurements`` rows out.

FlowKit does every step that belongs to cytometry: it reads the FCS files (through FlowIO),
parses the GatingML 2.0 document (gates, transforms, compensation) and gates the events. This
module only checks the batch, asks FlowKit for the two gate counts of each file and records
where every number came from. Counts are FlowKit's own ``GatingResults.get_gate_count``.

Quality control covers the whole batch before anything is returned: every problem of every
file is collected and raised together in one :class:`CytometryError`; callers write nothing
when it is raised.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import (
    RULE_MEASUREMENT_VALUE,
    ContractError,
    check_measurements,
    read_table,
)
from features.csv_output import write_csv
from features.cytometry.problems import (
    RULE_BAD_FCS,
    RULE_FCS_FILE_REQUIRED,
    RULE_FEW_PBMC,
    RULE_FILE_MISSING,
    RULE_FILE_UNREADABLE,
    RULE_GATING_FAILED,
    RULE_INSTRUMENT_MISMATCH,
    RULE_MANIFEST_COLUMN,
    RULE_MISSING_CHANNELS,
    RULE_NOT_FCS,
    RULE_OUTSIDE_FOLDER,
    RULE_TOT_MISMATCH,
    CytometryError,
    Problem,
)
from features.cytometry.strategy import (
    GateRef,
    first_line,
    load_strategy,
    required_channels,
    resolve_gates,
)
from features.schema import MEASUREMENT_COLUMNS

MANIFEST_TABLE = "manifest"
MANIFEST_REQUIRED = ("patient_id", "day", "fcs_file")
#: (1.2) The draw's provenance comes with it: lab and reagent lot from the manifest, the
#: instrument from the FCS file's $CYTSN (serial), else $CYT (model) (:func:`instrument_id`),
#: else the manifest's ``instrument_id``; a manifest value the file contradicts is a problem.
MANIFEST_PROVENANCE = ("lab_id", "instrument_id", "reagent_lot")
MANIFEST_OPTIONAL = ("alkaline_phosphatase_u_per_l", *MANIFEST_PROVENANCE)
# A fraction of tens of positive events needs enough gated cells to be stable: at 0.045 % (the
# study's cut-off, shared/domain.md) 10,000 PBMC events hold about 4.5 expected positives,
# whose Poisson coefficient of variation (47 %) is about the largest a lab would report.
DEFAULT_MIN_PBMC_EVENTS = 10_000

# FCS TEXT keywords copied into the provenance (FlowIO lower-cases them and drops the "$").
# Everything else is left out on purpose: $FIL, $SRC, $SMNO, $OP, $INST, $COM, $PROJ, $EXP,
# $CELLS, $PnS and vendor keywords are free text that labs fill with names, dates of birth or
# record numbers. The kept ones are fixed-format acquisition facts: which instrument (model and
# serial, for batch effects), on which date, and how many events the file holds.
KEPT_KEYWORDS: dict[str, str] = {
    "cyt": "instrument",
    "cytsn": "instrument_serial",
    "date": "acquisition_date",
    "tot": "total_events",
}


@dataclass
class CytometryResult:
    """What :func:`gate_batch` found.

    Attributes
    ----------
    measurements : pandas.DataFrame
        The contract's ``oc_measurements`` columns (validated), one row per manifest row.
    provenance : pandas.DataFrame
        One row per draw: file, SHA-256, kept FCS keywords, gating digest, gate paths, versions.
    gating_file, gating_sha256 : Path, str
    pbmc_gate, oc_gate : GateRef
    total_events : int
        Events in all files (what was gated).
    seconds : float
        Wall time of reading and gating.
    workers : int
        Processes used (1: in this process).
    """

    measurements: pd.DataFrame
    provenance: pd.DataFrame
    gating_file: Path
    gating_sha256: str
    pbmc_gate: GateRef
    oc_gate: GateRef
    total_events: int
    seconds: float
    workers: int
    files: list[Path] = field(default_factory=list)


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class _Task:
    row: int
    patient_id: str | None
    fcs_file: str
    path: Path


@dataclass
class _Outcome:
    row: int
    problems: list[Problem]
    pbmc_events: int | None = None
    oc_positive_events: int | None = None
    provenance: dict[str, object] = field(default_factory=dict)
    total_events: int = 0


_FCS_MAGIC = (b"FCS2.0", b"FCS3.0", b"FCS3.1", b"FCS3.2")


def _read_sample(path: Path, sample_id: str):
    """FlowKit Sample of ``path`` plus the reader's warnings.

    Raises ``_NotFCS`` when the file does not start like an FCS file, ``_BadFCS`` with FlowIO's
    or FlowKit's message when it cannot be parsed (truncated, inconsistent offsets, ...).
    """
    import flowio
    import flowkit as fk

    with open(path, "rb") as fh:
        head = fh.read(6)
        if head not in _FCS_MAGIC:
            raise _NotFCS()
        fh.seek(0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                # subsample=0: FlowKit's plotting subsample is not needed for gating.
                sample = fk.Sample(fh, sample_id=sample_id, subsample=0)
            except (
                flowio.exceptions.FlowIOException,
                ValueError,
                KeyError,
                IndexError,
                EOFError,
                NotImplementedError,
                UnicodeDecodeError,
                struct.error,
            ) as exc:
                raise _BadFCS(f"{type(exc).__name__}: {first_line(exc)}") from exc
    return sample, sorted({str(w.message) for w in caught})


class _NotFCS(Exception):
    pass


class _BadFCS(Exception):
    pass


def kept_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """The allow-listed FCS keywords (see ``KEPT_KEYWORDS``) under their provenance names."""
    return {
        out: str(metadata[key]).strip() for key, out in KEPT_KEYWORDS.items() if key in metadata
    }


_NOT_ID = re.compile(r"[^A-Za-z0-9_-]+")


def instrument_id(provenance: dict[str, object]) -> str | None:
    """The contract's ``instrument_id`` from a file's kept keywords: $CYTSN, else $CYT.

    Free text such as ``BD FACSCanto II`` becomes an identifier of the contract's pattern: each
    run of other characters becomes ``_``, leading ``_``/``-`` are dropped, at most 64 kept.
    None when the file holds neither keyword (or nothing of it is left).
    """
    for key in ("instrument_serial", "instrument"):
        text = provenance.get(key)
        if isinstance(text, str):
            ident = _NOT_ID.sub("_", text).lstrip("_-")[:64].rstrip("_")
            if ident:
                return ident
    return None


def gate_file(
    strategy,
    task: _Task,
    pbmc: GateRef | None,
    oc: GateRef | None,
    needed: Sequence[str],
    min_pbmc_events: int,
) -> _Outcome:
    """Read one FCS file, check it and gate it; every problem goes into the outcome.

    With ``strategy``, ``pbmc`` or ``oc`` None (the batch's strategy failed) only the file's own
    checks run.
    """
    where = {"row": task.row, "fcs_file": task.fcs_file, "patient_id": task.patient_id}
    if not task.path.exists():
        return _Outcome(task.row, [Problem(RULE_FILE_MISSING.format(path=task.path), **where)])
    if task.path.is_dir():
        rule = RULE_FILE_UNREADABLE.format(problem="is a directory")
        return _Outcome(task.row, [Problem(rule, **where)])
    try:
        digest = sha256_file(task.path)
        sample, reader_warnings = _read_sample(task.path, f"row{task.row}")
    except _NotFCS:
        return _Outcome(task.row, [Problem(RULE_NOT_FCS, **where)])
    except _BadFCS as exc:
        return _Outcome(task.row, [Problem(RULE_BAD_FCS.format(problem=exc), **where)])
    except OSError as exc:
        problem = exc.strerror or first_line(exc)
        return _Outcome(task.row, [Problem(RULE_FILE_UNREADABLE.format(problem=problem), **where)])
    held = int(sample.get_events(source="raw").shape[0])
    if held != int(sample.event_count):
        # FlowIO takes the event count from $TOT and the events from the data segment: a
        # header that promises more (or fewer) events than the file holds is corrupt.
        rule = RULE_TOT_MISMATCH.format(tot=int(sample.event_count), held=held)
        return _Outcome(task.row, [Problem(rule, **where)])
    labels = set(sample.pnn_labels) | {s for s in sample.pns_labels if s}
    missing = [c for c in needed if c not in labels]
    if missing:
        rule = RULE_MISSING_CHANNELS.format(
            missing=", ".join(missing), present=", ".join(sample.pnn_labels)
        )
        return _Outcome(task.row, [Problem(rule, **where)])
    if strategy is None or pbmc is None or oc is None:
        # The strategy or its gates failed (reported once for the batch): the file's own checks
        # are all that can run.
        return _Outcome(task.row, [])
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results = strategy.gate_sample(sample)
        reader_warnings += sorted({str(w.message) for w in caught})
    except (LookupError, ValueError, ZeroDivisionError) as exc:
        problem = f"{type(exc).__name__}: {first_line(exc)}"
        return _Outcome(task.row, [Problem(RULE_GATING_FAILED.format(problem=problem), **where)])
    n_pbmc = int(results.get_gate_count(pbmc.name, pbmc.path))
    n_oc = int(results.get_gate_count(oc.name, oc.path))
    problems = []
    if n_pbmc < min_pbmc_events:
        rule = RULE_FEW_PBMC.format(gate=pbmc, count=n_pbmc, minimum=min_pbmc_events)
        problems.append(Problem(rule, **where))
    provenance = {
        "fcs_sha256": digest,
        "fcs_version": sample.version,
        **{k: None for k in KEPT_KEYWORDS.values()},
        **kept_metadata(sample.metadata),
        "event_count": int(sample.event_count),
        "channels": ";".join(sample.pnn_labels),
        "reader_warnings": " | ".join(reader_warnings),
    }
    return _Outcome(task.row, problems, n_pbmc, n_oc, provenance, int(sample.event_count))


# One parsed strategy per worker process, set by the pool initializer: parsing the GatingML once
# per process instead of once per file.
_WORKER: dict[str, object] = {}


def _init_worker(gating_file: str, pbmc: GateRef, oc: GateRef, min_pbmc_events: int) -> None:
    strategy = load_strategy(Path(gating_file))
    _WORKER.update(
        strategy=strategy,
        pbmc=pbmc,
        oc=oc,
        needed=required_channels(strategy),
        min_pbmc_events=min_pbmc_events,
    )


def _gate_in_worker(task: _Task) -> _Outcome:
    w = _WORKER
    return gate_file(w["strategy"], task, w["pbmc"], w["oc"], w["needed"], w["min_pbmc_events"])


def read_manifest(
    manifest: Path, allow_outside: bool = False
) -> tuple[pd.DataFrame, list[_Task], list[Problem]]:
    """Read and check the manifest; return its rows, one task per row and the problems found.

    ``patient_id``, ``day`` and the ALP are checked by the data contract's own rules (the
    ``oc_measurements`` ones: id format, day >= 0, ALP range, unique (patient_id, day)). A file
    must lie inside the manifest's folder once every symbolic link is followed (no absolute
    path, ``..`` or link leading out of it) unless ``allow_outside``: a manifest names files,
    it does not open the machine's.
    """
    manifest = Path(manifest)
    try:
        raw = read_table(manifest, table=MANIFEST_TABLE)
    except ContractError as err:
        return pd.DataFrame(), [], [Problem(str(v)) for v in err.violations]
    problems: list[Problem] = []
    allowed = MANIFEST_REQUIRED + MANIFEST_OPTIONAL
    for col in raw.columns:
        if str(col) not in allowed:
            problems.append(Problem(f"column {col}: {RULE_MANIFEST_COLUMN}"))
    if "fcs_file" not in raw.columns:
        problems.append(Problem("column fcs_file: required column missing"))
    contract_cols = [c for c in raw.columns if c in ("patient_id", "day", *MANIFEST_OPTIONAL)]
    typed, violations = check_measurements(raw[contract_cols], None, table=MANIFEST_TABLE)
    # The counts are what the files are for: the rule that a row carries them does not apply.
    problems += [Problem(str(v)) for v in violations if v.rule != RULE_MEASUREMENT_VALUE]
    tasks: list[_Task] = []
    if "fcs_file" in raw.columns:
        ids = typed["patient_id"].tolist()
        for i, value in enumerate(raw["fcs_file"].tolist()):
            pid = ids[i] if isinstance(ids[i], str) else None
            # A CSV cell is text ("" when empty); a Parquet cell may be None or NaN.
            rel = value if isinstance(value, str) else ""
            if rel.strip() == "":
                problems.append(Problem(RULE_FCS_FILE_REQUIRED, i + 1, None, pid))
                continue
            path = manifest.parent / rel
            if not allow_outside and not _inside(path, manifest.parent):
                folder = manifest.parent.resolve()
                problems.append(Problem(RULE_OUTSIDE_FOLDER.format(folder=folder), i + 1, rel, pid))
                continue
            tasks.append(_Task(i + 1, pid, rel, path))
    return typed, tasks, problems


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path``, every symbolic link followed, lies inside ``folder``."""
    try:
        path.resolve().relative_to(folder.resolve())
    except (ValueError, OSError, RuntimeError):  # outside, unreadable, or a link loop
        return False
    return True


def default_workers(n_files: int) -> int:
    """Processes worth starting: one per core, none beyond the files (1 = in this process)."""
    # Below two files per worker the pool's start-up and pickling do not pay for themselves.
    cores = os.cpu_count() or 1
    return max(1, min(cores, n_files // 2))


def gate_batch(
    manifest: str | os.PathLike[str],
    gating_file: str | os.PathLike[str],
    pbmc_gate: str,
    oc_gate: str,
    *,
    min_pbmc_events: int = DEFAULT_MIN_PBMC_EVENTS,
    workers: int | None = None,
    allow_outside: bool = False,
) -> CytometryResult:
    """Gate every FCS file of a manifest with a GatingML 2.0 strategy.

    Parameters
    ----------
    manifest : path
        CSV (or Parquet) with ``patient_id``, ``day``, ``fcs_file`` (relative to the manifest's
        folder) and optionally ``alkaline_phosphatase_u_per_l``.
    gating_file : path
        GatingML 2.0 document.
    pbmc_gate, oc_gate : str
        Gate ids (or ``A/B/id`` paths where an id repeats); the OC gate must lie within the PBMC
        gate.
    min_pbmc_events : int, default DEFAULT_MIN_PBMC_EVENTS
        Fewest events in the PBMC gate for a file to pass.
    workers : int, optional
        Processes for the files; default :func:`default_workers`.
    allow_outside : bool, default False
        Read files outside the manifest's folder too (:func:`read_manifest`).

    Returns
    -------
    CytometryResult

    Raises
    ------
    CytometryError
        With every problem of the batch (manifest, gating file, gates, each file).
    """
    manifest, gating_file = Path(manifest), Path(gating_file)
    t0 = time.perf_counter()
    problems: list[Problem] = []
    typed, tasks, manifest_problems = read_manifest(manifest, allow_outside)
    problems += manifest_problems
    strategy = pbmc = oc = None
    try:
        strategy = load_strategy(gating_file)
        pbmc, oc = resolve_gates(strategy, pbmc_gate, oc_gate)
    except CytometryError as err:
        problems += err.problems
    n_workers = 1
    outcomes: list[_Outcome] = []
    if tasks:
        n_workers = workers if workers is not None else default_workers(len(tasks))
        n_workers = max(1, min(n_workers, len(tasks)))
        if n_workers == 1 or pbmc is None:
            # Without a usable strategy the files still get their own checks, in this process.
            n_workers = 1
            needed = required_channels(strategy) if strategy is not None else []
            outcomes = [gate_file(strategy, t, pbmc, oc, needed, min_pbmc_events) for t in tasks]
        else:
            # fork: a worker inherits the imported FlowKit (importing it costs about 3 s of CPU
            # per process). gate_batch runs before anything starts threads of its own (MLflow
            # logging comes after), and NumPy's OpenBLAS re-initialises its pool after a fork.
            with ProcessPoolExecutor(
                n_workers,
                mp_context=get_context("fork"),
                initializer=_init_worker,
                initargs=(str(gating_file), pbmc, oc, min_pbmc_events),
            ) as pool:
                outcomes = list(pool.map(_gate_in_worker, tasks, chunksize=1))
    for outcome in outcomes:
        problems += outcome.problems
    if problems:
        raise CytometryError(problems)
    gating_digest = sha256_file(gating_file)
    import flowio
    import flowkit as fk

    by_row = {o.row: o for o in outcomes}
    rows = [by_row[t.row] for t in tasks]
    measured = typed.copy()
    problems = _take_instruments(measured, tasks, rows)
    if problems:
        raise CytometryError(problems)
    measured["pbmc_events"] = np.array([o.pbmc_events for o in rows], dtype=float)
    measured["oc_positive_events"] = np.array([o.oc_positive_events for o in rows], dtype=float)
    measured["oc_positive_percent"] = (
        100.0 * measured["oc_positive_events"] / measured["pbmc_events"]
    )
    out, violations = check_measurements(measurements_frame(measured), None)
    if violations:  # pragma: no cover - the counts come from FlowKit and satisfy the contract
        raise CytometryError([Problem(str(v)) for v in violations])
    provenance = pd.DataFrame(
        [
            {
                "patient_id": t.patient_id,
                "day": measured["day"].iloc[i],
                "fcs_file": t.fcs_file,
                **o.provenance,
                "pbmc_events": o.pbmc_events,
                "oc_positive_events": o.oc_positive_events,
                "gating_file": gating_file.name,
                "gating_sha256": gating_digest,
                "pbmc_gate_path": str(pbmc),
                "oc_gate_path": str(oc),
                "flowkit_version": fk.__version__,
                "flowio_version": flowio.__version__,
            }
            for i, (t, o) in enumerate(zip(tasks, rows, strict=True))
        ]
    )
    return CytometryResult(
        measurements=out,
        provenance=provenance,
        gating_file=gating_file,
        gating_sha256=gating_digest,
        pbmc_gate=pbmc,
        oc_gate=oc,
        total_events=sum(o.total_events for o in rows),
        seconds=time.perf_counter() - t0,
        workers=n_workers,
        files=[t.path for t in tasks],
    )


def _take_instruments(
    measured: pd.DataFrame, tasks: Sequence[_Task], rows: Sequence[_Outcome]
) -> list[Problem]:
    """Set each draw's ``instrument_id`` from its file (:func:`instrument_id`), the manifest's
    where the file names none; a manifest value the file contradicts is a problem."""
    given = measured["instrument_id"].to_numpy(dtype=object)
    found = np.array([instrument_id(o.provenance) for o in rows], dtype=object)
    problems = []
    for i, (task, ident) in enumerate(zip(tasks, found, strict=True)):
        if ident is not None and given[i] is not None and given[i] != ident:
            rule = RULE_INSTRUMENT_MISMATCH.format(manifest=given[i], file=ident)
            where = {"row": task.row, "fcs_file": task.fcs_file, "patient_id": task.patient_id}
            problems.append(Problem(rule, **where))
    measured["instrument_id"] = np.where(pd.isna(found), given, found)
    return problems


def measurements_frame(measured: pd.DataFrame) -> pd.DataFrame:
    """The contract's ``oc_measurements`` columns as plain values (integer counts, no ALP or
    provenance column when neither the manifest nor the files gave any)."""
    cols = [c.name for c in MEASUREMENT_COLUMNS if c.name in measured.columns]
    frame = measured[cols].copy()
    for c in ("pbmc_events", "oc_positive_events"):
        frame[c] = frame[c].astype("int64")
    unused = [c for c in MANIFEST_OPTIONAL if c in frame and frame[c].isna().all()]
    return frame.drop(columns=unused)


def write_result(result: CytometryResult, out: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``out`` (the oc_measurements table, CSV) and its provenance table beside it.

    The provenance goes to ``<out stem>.provenance.csv`` in the same folder.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    prov = out.with_name(out.stem + ".provenance.csv")
    frame = measurements_frame(result.measurements)
    write_csv(frame, out, float_format="%.10g", lineterminator="\n")
    # FCS keywords ($CYT, $CYTSN, channel names) are copied from the files: any text.
    write_csv(result.provenance, prov, float_format="%.10g", lineterminator="\n")
    return {"oc_measurements": out, "provenance": prov}


def compare_counts(measured: pd.DataFrame, expected: pd.DataFrame) -> pd.DataFrame:
    """Draws whose gated counts differ from ``expected`` (both ``oc_measurements`` tables).

    Returns the rows of ``measured`` (patient_id, day) with the two counts of each side where
    they differ or the draw is missing from ``expected``; an empty frame means every count
    matches.
    """
    keys = ["patient_id", "day"]
    counts = ["pbmc_events", "oc_positive_events"]
    merged = measured[keys + counts].merge(
        expected[keys + counts], on=keys, how="left", suffixes=("", "_expected")
    )
    differ = np.zeros(len(merged), dtype=bool)
    for c in counts:
        differ |= ~(merged[c].astype(float) == merged[f"{c}_expected"].astype(float)).to_numpy()
    return merged[differ].reset_index(drop=True)

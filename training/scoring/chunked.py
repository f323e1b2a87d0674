"""The local engine on files: a cohort scored chunk by chunk, in bounded memory.

:func:`score_files` reads the patients table in chunks (:func:`features.contract.iter_cohort`,
which applies the contract's rules and messages, the rules across rows included), scores each
chunk with :func:`~training.scoring.predict.predict_patients` and appends its rows to the output
CSV. The output is written to a temporary file beside ``out`` and moved into place only when
every chunk is valid and scored: a bad row in the last chunk leaves no output (and an existing
``out`` untouched).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from features.contract import DEFAULT_CHUNK_SIZE, iter_cohort
from features.csv_output import write_csv
from training.scoring.predict import ScoringError, load_risk_model, output_frame


def score_files(
    patients: str | os.PathLike[str],
    measurements: str | os.PathLike[str] | None,
    model_uri: str,
    out: str | os.PathLike[str],
    *,
    prediction_day: float | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    before_loading: Callable[[], None] | None = None,
) -> int:
    """Score the cohort of these files and write one CSV row per patient to ``out``.

    The output is :func:`~training.scoring.predict.score_cohort`'s on the whole cohort (same
    rows, order and columns); memory holds one chunk, the ids seen and a few bytes per draw
    (:mod:`features.contract.chunks`).

    Parameters
    ----------
    patients, measurements : str or os.PathLike
        The contract tables (CSV or Parquet); ``measurements`` may be None.
    model_uri : str
        The registered model.
    out : str or os.PathLike
        The output CSV; its folder is created. Replaced only when all went well.
    prediction_day : float, optional
        Score at this day since enrollment with the draws known by then (default: enrollment).
    chunk_size : int, default 50,000
        Patients per chunk.
    before_loading : callable, optional
        Called once before the model is loaded, when the first chunk is valid (the command
        line configures the MLflow store there: a cohort whose first chunk is already broken
        creates nothing).

    Returns
    -------
    int
        The number of patients scored.

    Raises
    ------
    features.contract.ContractError
        When a file cannot be read or the cohort breaks the contract (nothing written).
    ScoringError
        When the model cannot be loaded or cannot score the cohort (nothing written).
    """
    # At enrollment only the day-0 draws are read by the model (features.draws.enrollment_view).
    chunks = iter_cohort(
        patients,
        measurements,
        chunk_size=chunk_size,
        enrollment_draws_only=prediction_day is None,
    )
    target = Path(out)
    if target.is_dir():
        raise ScoringError(f"cannot write {target}: it is a folder")
    partial = partial_path(target, os.getpid())
    first = next(chunks, None)  # nothing is loaded or written before a first valid chunk
    if first is None:
        raise ScoringError("no patient to score")  # not reached: iter_cohort raises first
    if before_loading is not None:
        before_loading()
    try:
        risk_model = load_risk_model(model_uri)
    except ScoringError:
        for _ in chunks:  # a broken cohort is reported first, as when it is read whole
            pass
        raise
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(target)
    n = 0
    try:
        with _signals_unwind(), open(partial, "x", newline="", encoding="utf-8") as handle:
            for chunk in itertools.chain([first], chunks):
                frame = output_frame(risk_model, chunk.patients, chunk.measurements, prediction_day)
                write_csv(frame, handle, header=n == 0)
                n += len(frame)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return n


def partial_path(target: Path, pid: int) -> Path:
    """The file a scoring process ``pid`` writes before it becomes ``target``."""
    return target.with_name(f".{target.name}.{pid}.partial")


def remove_stale_partials(target: Path) -> list[Path]:
    """Remove the partial outputs of ``target`` left by scoring processes that are gone.

    A ``predict`` killed outright (``kill -9``, a lost machine) cannot remove its partial file
    of patient predictions; the next run on the same output removes it. Partial files of
    processes still running are theirs and stay.

    Returns
    -------
    list of Path
        The files removed.
    """
    import psutil

    removed = []
    for path in target.parent.glob(f".{target.name}.*.partial"):
        pid = path.name[len(target.name) + 2 : -len(".partial")]
        if pid.isdigit() and int(pid) != os.getpid() and psutil.pid_exists(int(pid)):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


@contextlib.contextmanager
def _signals_unwind() -> Iterator[None]:
    """SIGTERM and SIGHUP end the block by an exception (``SystemExit`` 128 + signal), so
    that ``finally`` clauses remove partial files, as Ctrl-C (KeyboardInterrupt) already does.
    Outside the main thread (no signal handlers there) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def unwind(signum, frame):
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, unwind) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

"""Keep request values out of the server's logs.

BentoML 1.4 logs every request it fails on through
``bentoml._internal.server.http_app.log_exception``: ``Exception on /predict [POST]`` at ERROR
with the traceback (``_bentoml_impl.server.app.ServiceAppFactory.api_endpoint_wrapper``). For a
body that fails pydantic validation that traceback ends with the ``ValidationError`` text, which
quotes every offending value (``input_value=...``: patient fields, whole patient records, the
names of unknown fields, the raw bytes of malformed JSON). Any other exception raised while
answering can quote request values too (e.g. a ``KeyError`` naming a requested horizon).

:class:`RedactRequestValues` rewrites such records before any handler formats them:

- a pydantic ``ValidationError`` (a rejected request, answered 400) becomes one line with the
  number of errors, each error's type and its location, where a location part that is not a
  field name of the API (an unknown field's name) is replaced by ``<unknown field>``;
- any other exception keeps its traceback (files, lines, source code: no values) and the
  exception types of its chain, without the messages.

A rejected request (a ``ValidationError``, or a BentoML error with a 4xx code) is the client's
error, not the server's: its record is lowered to INFO (BentoML logs it at ERROR).

:func:`install` puts the filter on the loggers that log request failures (their own records,
whatever handlers they get later) and on every handler configured at the time (records from
any logger, e.g. uvicorn's). :mod:`serving.gateway` installs it at import and again when the
middleware is built in the server process, after BentoML has configured logging.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from pydantic import ValidationError

from serving.schemas import MeasurementRecord, PatientRecord

#: Loggers that log request failures with their exception: BentoML's error logger
#: (``log_exception``), BentoML's service logger, uvicorn's errors, and the project's own.
SOURCE_LOGGERS = (
    "bentoml._internal.server.http_app",
    "bentoml.serve",
    "uvicorn.error",
    "uvicorn.asgi",
    "bonemet",
)
#: Names that may appear in a validation error's location: the fields of the API.
API_FIELDS = frozenset(
    {"patients", "horizons_months", *PatientRecord.model_fields, *MeasurementRecord.model_fields}
)
MAX_ERRORS_LOGGED = 20
WITHHELD = "<message withheld: may contain request values>"


def describe_validation_error(error: ValidationError) -> str:
    """Summarise a pydantic error without any input value.

    Parameters
    ----------
    error : pydantic.ValidationError

    Returns
    -------
    str
        E.g. ``2 validation error(s) for PredictRequest: float_type at patients.0.age_years;
        extra_forbidden at patients.0.<unknown field>``.
    """
    items = error.errors(include_url=False, include_context=False, include_input=False)
    parts = [f"{item['type']} at {_safe_loc(item['loc'])}" for item in items[:MAX_ERRORS_LOGGED]]
    if len(items) > MAX_ERRORS_LOGGED:
        parts.append(f"... {len(items) - MAX_ERRORS_LOGGED} more")
    return f"{error.error_count()} validation error(s) for {error.title}: " + "; ".join(parts)


def _safe_loc(loc: tuple[Any, ...]) -> str:
    if not loc:
        return "body"
    return ".".join(
        str(part) if isinstance(part, int) or part in API_FIELDS else "<unknown field>"
        for part in loc
    )


def redacted_traceback(error: BaseException) -> str:
    """The traceback of ``error`` and its chain, with exception types but no messages."""
    blocks = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        frames = "".join(traceback.format_tb(current.__traceback__))
        kind = type(current)
        blocks.append(
            f"Traceback (most recent call last):\n{frames}"
            f"{kind.__module__}.{kind.__qualname__}: {WITHHELD}"
        )
        if current.__cause__ is not None:
            current = current.__cause__
        elif not current.__suppress_context__:
            current = current.__context__
        else:
            current = None
    separator = "\n\nThe above exception led to the following exception:\n\n"
    return separator.join(reversed(blocks))


def redact(record: logging.LogRecord) -> None:
    """Rewrite ``record`` in place so that no request value can be formatted from it."""
    exc_info = record.exc_info
    if not exc_info or getattr(record, "bonemet_redacted", False):
        return
    error = exc_info[1] if isinstance(exc_info, tuple) else None
    if _client_error(error) and record.levelno > logging.INFO:
        record.levelno, record.levelname = logging.INFO, "INFO"
    if isinstance(error, ValidationError):
        record.msg = f"{record.getMessage()}: rejected, {describe_validation_error(error)}"
        record.args = None
        record.exc_text = None
    elif isinstance(error, BaseException):
        record.exc_text = redacted_traceback(error)
    else:
        record.exc_text = None
    record.exc_info = None
    record.bonemet_redacted = True


def _client_error(error: BaseException | None) -> bool:
    """Whether ``error`` is answered with a 4xx (the request's fault)."""
    if isinstance(error, ValidationError):
        return True
    code = getattr(getattr(error, "error_code", None), "value", None)
    return isinstance(code, int) and 400 <= code < 500


class RedactRequestValues(logging.Filter):
    """Logging filter applying :func:`redact`; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact(record)
        return True


_FILTER = RedactRequestValues()


def _add(target: logging.Logger | logging.Handler) -> None:
    if not any(isinstance(f, RedactRequestValues) for f in target.filters):
        target.addFilter(_FILTER)


def install(handlers: bool = True) -> None:
    """Put the filter on :data:`SOURCE_LOGGERS` and, with ``handlers``, every handler there is.

    Idempotent. Handlers created later (a logging reconfiguration) are not covered, the source
    loggers still are.
    """
    for name in SOURCE_LOGGERS:
        _add(logging.getLogger(name))
    if not handlers:
        return
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for lg in loggers:
        for handler in lg.handlers:
            _add(handler)

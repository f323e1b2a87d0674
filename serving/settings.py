"""The service's settings: one frozen object read from the environment, once per process.

Every variable the server reads is here, with its default and its check; a value that cannot be
used stops the server with a :class:`SettingsError` naming the variable and what it must be.

============================== ==================================== ==========================
Variable                       Meaning                              Default
============================== ==================================== ==========================
``BONEMET_BENTO_MODEL``        BentoML model tag served             ``bone-metastasis-risk:latest``
``BONEMET_CORS_ORIGINS``       browser origins allowed (comma list) none: CORS off
``BONEMET_FOLLOW_ALIAS``       registry alias to follow             the imported version's
``MLFLOW_TRACKING_URI``        registry to poll for the alias       none: alias not followed
``BONEMET_RELOAD_SECONDS``     seconds between alias polls          10
``BONEMET_API_TOKEN``          bearer token of non-public routes    none: open
``BONEMET_MAX_BODY_BYTES``     largest request body                 10 MB
``BONEMET_BODY_TIMEOUT_SECONDS`` time to receive a body             30
``BONEMET_HEADER_TIMEOUT_SECONDS`` time to send a request's headers 10
``BONEMET_WORKERS``            BentoML worker processes (1-16)      1
``BONEMET_CDS_TRUST``          CDS Hooks trusted EHRs (YAML file)   none: every hook refused
``BONEMET_FHIR_MAPPING``       FHIR mapping table (YAML file)       the one shipped
``BONEMET_PUBLIC_URL``         the service's address seen by EHRs   the request's own
``BONEMET_SMART_LAUNCH_URL``   a SMART app offered on the card      none
``BONEMET_DIRECT_PREDICT``     ``POST /predict`` answered directly  ``1`` (``0``: via BentoML)
============================== ==================================== ==========================

``bonemet serve`` (:mod:`training.registry.bento`) sets the first four for the server process,
and ``BONEMET_WORKERS`` from its ``--workers`` option. Each worker is a process of its own that
loads the model and follows the alias.
An empty value counts as unset.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from features.vocabulary import (
    ENV_FOLLOW_ALIAS,
    ENV_MODEL_TAG,
    ENV_WORKERS,
    MAX_WORKERS,
    MODEL_NAME,
)

__all__ = ["ServingSettings", "SettingsError"]

DEFAULT_MODEL_TAG = f"{MODEL_NAME}:latest"
DEFAULT_RELOAD_SECONDS = 10.0
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
#: Below BentoML's traffic timeout (60 s, a 504): a client that stalls its body gets a 408.
DEFAULT_BODY_TIMEOUT_SECONDS = 30.0
#: A connection that has not sent a request's headers this long after opening or after its
#: previous answer is closed (silent and slow-header connections).
DEFAULT_HEADER_TIMEOUT_SECONDS = 10.0


class SettingsError(ValueError):
    """An environment variable of the service holds a value it cannot use."""


@dataclass(frozen=True)
class ServingSettings:
    """What the service reads from its environment (see the module docstring for the names).

    Attributes
    ----------
    model_tag : str
        BentoML model tag of the version served at start (``BONEMET_BENTO_MODEL``).
    cors_origins : tuple of str
        Origins a browser may call the API from (``BONEMET_CORS_ORIGINS``); empty: CORS off.
    follow_alias : str or None
        Registry alias to follow (``BONEMET_FOLLOW_ALIAS``); None: the alias the version was
        imported under, if any.
    tracking_uri : str or None
        The registry (``MLFLOW_TRACKING_URI``); None: no alias is followed.
    reload_seconds : float
        Seconds between two looks at the alias (``BONEMET_RELOAD_SECONDS``).
    api_token : str or None
        Bearer token of every route but the public ones (``serving.gateway.PUBLIC_ROUTES``;
        ``BONEMET_API_TOKEN``); None, the default: every route is open to whoever can reach
        the port.
    max_body_bytes : int
        Largest request body accepted (``BONEMET_MAX_BODY_BYTES``).
    body_timeout_seconds : float
        Time a client has to send its body (``BONEMET_BODY_TIMEOUT_SECONDS``).
    header_timeout_seconds : float
        Time a connection has to send a request's headers, from its opening or its previous
        answer (``BONEMET_HEADER_TIMEOUT_SECONDS``).
    workers : int
        BentoML worker processes, each with the model loaded (``BONEMET_WORKERS``, 1-16).
    cds_trust_file, fhir_mapping_file : str or None
        CDS Hooks: the trusted EHRs and the FHIR mapping table (``docs/ehr.md``).
    public_url, smart_launch_url : str or None
        CDS Hooks: the address EHRs call (JWT audience, card links) and a SMART app link.
    direct_predict : bool
        ``POST /predict`` answered by the gateway with the service's own code, past BentoML's
        dispatch (:func:`serving.service.answer_predict`: the same answers, headers and
        errors); False (``BONEMET_DIRECT_PREDICT=0``) routes it through BentoML's IO
        descriptor, the reference the direct route is tested against.
    """

    model_tag: str = DEFAULT_MODEL_TAG
    cors_origins: tuple[str, ...] = ()
    follow_alias: str | None = None
    tracking_uri: str | None = None
    reload_seconds: float = DEFAULT_RELOAD_SECONDS
    api_token: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    body_timeout_seconds: float = DEFAULT_BODY_TIMEOUT_SECONDS
    header_timeout_seconds: float = DEFAULT_HEADER_TIMEOUT_SECONDS
    workers: int = 1
    cds_trust_file: str | None = None
    fhir_mapping_file: str | None = None
    public_url: str | None = None
    smart_launch_url: str | None = None
    direct_predict: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServingSettings:
        """Read and check the settings.

        Parameters
        ----------
        environ : mapping, optional
            The environment to read; defaults to ``os.environ``.

        Returns
        -------
        ServingSettings

        Raises
        ------
        SettingsError
            Naming the variable, when a number is not a positive finite number, or the
            workers are not 1-16.
        """
        env = os.environ if environ is None else environ

        def text(name: str) -> str | None:
            return env.get(name) or None

        origins = (o.strip() for o in (env.get("BONEMET_CORS_ORIGINS") or "").split(","))
        return cls(
            model_tag=text(ENV_MODEL_TAG) or DEFAULT_MODEL_TAG,
            cors_origins=tuple(o for o in origins if o),
            follow_alias=text(ENV_FOLLOW_ALIAS),
            tracking_uri=text("MLFLOW_TRACKING_URI"),
            reload_seconds=_positive(env, "BONEMET_RELOAD_SECONDS", DEFAULT_RELOAD_SECONDS),
            api_token=text("BONEMET_API_TOKEN"),
            max_body_bytes=_positive(
                env, "BONEMET_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, integer=True
            ),
            body_timeout_seconds=_positive(
                env, "BONEMET_BODY_TIMEOUT_SECONDS", DEFAULT_BODY_TIMEOUT_SECONDS
            ),
            header_timeout_seconds=_positive(
                env, "BONEMET_HEADER_TIMEOUT_SECONDS", DEFAULT_HEADER_TIMEOUT_SECONDS
            ),
            workers=_workers(env),
            cds_trust_file=text("BONEMET_CDS_TRUST"),
            fhir_mapping_file=text("BONEMET_FHIR_MAPPING"),
            public_url=text("BONEMET_PUBLIC_URL"),
            smart_launch_url=text("BONEMET_SMART_LAUNCH_URL"),
            direct_predict=_switch(env, "BONEMET_DIRECT_PREDICT", True),
        )


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    """The on/off value of variable ``name`` (``default`` when unset or empty)."""
    raw = env.get(name)
    if not raw:
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "on", "yes"):
        return True
    if value in ("0", "false", "off", "no"):
        return False
    raise SettingsError(f"{name} must be 1 or 0 (true/false, on/off, yes/no), got {raw!r}")


def _workers(env: Mapping[str, str]) -> int:
    """The number of worker processes in ``BONEMET_WORKERS`` (1 when unset or empty)."""
    raw = env.get(ENV_WORKERS)
    if not raw:
        return 1
    problem = f"{ENV_WORKERS} must be an integer from 1 to {MAX_WORKERS}, got {raw!r}"
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(problem) from None
    if not 1 <= value <= MAX_WORKERS:
        raise SettingsError(problem)
    return value


def _positive(env: Mapping[str, str], name: str, default: float, integer: bool = False):
    """The positive number in variable ``name`` (``default`` when unset or empty)."""
    raw = env.get(name)
    if not raw:
        return default
    kind = "a positive integer" if integer else "a positive number"
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be {kind}, got {raw!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise SettingsError(f"{name} must be {kind}, got {raw!r}")
    return value

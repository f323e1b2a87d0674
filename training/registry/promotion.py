"""Promotion: moving ``champion`` to a version, with the record of who, when and why.

:func:`promote` moves ``champion`` only to a complete version that loads, predicts a synthetic
case and passes the gates of :mod:`training.registry.gates` (or with ``force`` and a recorded
reason); the alias itself is written by :func:`training.registry.versions.set_alias`, the one
writer of aliases.
"""

from __future__ import annotations

from dataclasses import dataclass

from training.config import MODEL_NAME
from training.registry.gates import Gate, PromotionPolicy, check_gates, gate_values
from training.registry.versions import (
    CHALLENGER,
    CHAMPION,
    AuthenticationFailed,
    RegistryError,
    alias_version,
    authentication_failed,
    authentication_message,
    current_user,
    incomplete_reason,
    mlflow_client,
    permission_denied,
    promotion_tags,
    set_alias,
)


class PromotionRefused(RegistryError):
    """A promotion that failed its gates; ``gates`` holds every verdict."""

    def __init__(self, version: str, gates: list[Gate]) -> None:
        self.gates = gates
        failed = "; ".join(g.detail for g in gates if not g.passed)
        super().__init__(
            f"version {version} fails the promotion gates: {failed}. "
            "Use --force --reason '...' to promote anyway (the reason is recorded)."
        )


@dataclass(frozen=True)
class Promotion:
    """Result of a promotion: the version that is now champion, the one it replaced, gates."""

    version: str
    previous: str | None
    gates: tuple[Gate, ...] = ()
    forced_reason: str | None = None


def smoke_check(version: str) -> None:
    """Load ``version`` and predict synthetic contract rows; raise if either fails.

    Serving follows ``champion``: a version whose artifact is damaged or whose predictions are
    not finite probabilities must never get it. The check is the one serving makes
    (:func:`training.artifact.smoke.smoke_check`).

    Raises
    ------
    RegistryError
        Naming the version and what failed.
    """
    import mlflow

    from training.artifact.smoke import SmokeCheckError
    from training.artifact.smoke import smoke_check as check_answers

    uri = f"models:/{MODEL_NAME}/{version}"
    try:
        model = mlflow.pyfunc.load_model(uri)
    except Exception as err:  # a damaged artifact fails in any way (pickle, IO)
        raise RegistryError(
            f"version {version} does not load ({type(err).__name__}: {err}); it cannot be "
            "served, so it is not promoted (not even with --force)"
        ) from err
    try:
        check_answers(model)
    except SmokeCheckError as err:
        raise RegistryError(
            f"version {version} {err}; it is not promoted (not even with --force)"
        ) from err


def check_complete(version) -> None:
    """Refuse a version that a finished ``bonemet train`` did not fully register.

    The rule is :func:`training.registry.versions.incomplete_reason` (READY, the tags of
    :data:`REQUIRED_VERSION_TAGS`, its run and its training run FINISHED): anything else (a
    version registered by hand, a training killed or failed, one still running) is refused
    whatever ``--force`` says.

    Parameters
    ----------
    version : mlflow.entities.model_registry.ModelVersion
    """
    reason = incomplete_reason(version)
    if reason is not None:
        raise RegistryError(
            f"version {version.version} is incomplete: {reason}; it is not promoted (not even "
            "with --force)"
        )


def promote(
    version: str | None = None,
    *,
    force: bool = False,
    reason: str | None = None,
    policy: PromotionPolicy | None = None,
) -> Promotion:
    """Move ``champion`` to ``version`` (default: the current ``challenger``) if its gates pass.

    Whatever ``force`` says, the version must be complete (:func:`check_complete`) and must load
    and predict a synthetic case (:func:`smoke_check`). Who promoted, when and why is recorded
    on the version (``promoted_by``, ``promoted_at``, ``promotion_reason``, the gates, and
    ``forced_promotion_reason`` for a forced one) before the alias moves, so ``champion``
    never rests on a version without the record of this promotion
    (:func:`_record_then_move`).

    Raises
    ------
    PromotionRefused
        When a gate fails and ``force`` is not set.
    RegistryError
        Unknown version, no challenger, ``force`` without a reason, an incomplete or broken
        version, a user without the right to move the alias, or a failure (the server lost,
        Ctrl-C) while recording or moving, with what state it left.
    """
    from datetime import UTC, datetime

    from mlflow.exceptions import MlflowException

    policy = policy or PromotionPolicy()
    client = mlflow_client()
    reason = reason.strip() if reason and reason.strip() else None
    if force and not reason:
        raise RegistryError("--force requires --reason: the reason is recorded on the version")
    if version is None:
        version = alias_version(CHALLENGER)
        if version is None:
            raise RegistryError(
                f"no version of {MODEL_NAME} has the alias '{CHALLENGER}': train first or "
                "name one with --version"
            )
    try:
        candidate = client.get_model_version(MODEL_NAME, str(version))
    except MlflowException as err:
        if authentication_failed(err):
            raise AuthenticationFailed(authentication_message()) from err
        if permission_denied(err):
            raise RegistryError(f"you may not read {MODEL_NAME}: {err.message}") from err
        raise RegistryError(f"{MODEL_NAME} has no version {version}") from err
    check_complete(candidate)
    smoke_check(str(version))
    previous = alias_version(CHAMPION)
    champion_tags = None
    if previous is not None and previous != str(version):
        champion_tags = gate_values(client.get_model_version(MODEL_NAME, previous))
    gates = check_gates(gate_values(candidate), champion_tags, policy)
    if not all(g.passed for g in gates) and not force:
        raise PromotionRefused(str(version), gates)
    record = {
        "promoted_from": previous or "none",
        "promotion_gates": "; ".join(
            f"{g.name}: {'pass' if g.passed else 'FAIL'} ({g.detail})" for g in gates
        ),
        "promoted_by": current_user(),
        "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "promotion_reason": reason or "promotion gates passed",
        # A forced reason of an earlier promotion of this version does not outlive this one.
        "forced_promotion_reason": reason if force else None,
    }
    # In the version's facts tag (its row in the registry stays two lines).
    audit = promotion_tags(candidate.tags or {}, record)
    _record_then_move(client, candidate, audit, previous)
    return Promotion(
        version=str(version),
        previous=previous,
        gates=tuple(gates),
        forced_reason=reason if force else None,
    )


def _promotion_failure(err: BaseException) -> str:
    """One line naming why a registry write failed."""
    if isinstance(err, KeyboardInterrupt):
        return "interrupted"
    message = getattr(err, "message", None) or str(err) or type(err).__name__
    return " ".join(message.split())[:300]


def _record_then_move(client, candidate, audit: dict[str, str | None], previous) -> None:
    """Write the promotion record on ``candidate``, then move ``champion`` to it.

    The record comes first: a failure while writing it (connection lost, server restarted,
    Ctrl-C) leaves the alias where it was, and the tags written so far are put back. A failure
    while moving the alias puts the tags back only once the alias is read and seen not to
    point at the version; otherwise the record stays (the alias may have moved). ``None`` in
    ``audit`` deletes that tag. Raises :class:`RegistryError` saying which state is left.
    """
    from mlflow.exceptions import MlflowException

    version = str(candidate.version)
    before = {name: (candidate.tags or {}).get(name) for name in audit}

    def write(tags: dict[str, str | None]) -> None:
        for name, value in tags.items():
            if value is not None:
                client.set_model_version_tag(MODEL_NAME, version, name, value)
            else:  # deleting an absent tag is no error
                client.delete_model_version_tag(MODEL_NAME, version, name)

    def restored() -> str:
        try:
            write(before)
        except (MlflowException, KeyboardInterrupt) as err:
            return (
                f"putting back its earlier promotion tags failed too ({_promotion_failure(err)}): "
                f"version {version}'s promotion tags may describe this promotion that did not "
                "happen"
            )
        return "its promotion tags are as before"

    def refused(err: MlflowException) -> RegistryError:
        if authentication_failed(err):
            return AuthenticationFailed(authentication_message())
        return RegistryError(
            f"user {current_user()!r} may not move '{CHAMPION}' of {MODEL_NAME} (the tracking "
            "server refused: permission denied). Promotion needs EDIT or MANAGE on the "
            "registered model; ask an administrator of the tracking server."
        )

    was = f"still version {previous}" if previous else "still on no version"
    try:
        write(audit)
    except (MlflowException, KeyboardInterrupt) as err:
        state = restored()
        if isinstance(err, MlflowException) and permission_denied(err):
            raise refused(err) from err
        raise RegistryError(
            f"the promotion of version {version} could not be recorded "
            f"({_promotion_failure(err)}); '{CHAMPION}' was not moved ({was}); {state}"
        ) from err
    try:
        set_alias(CHAMPION, version, client=client)
    except (MlflowException, KeyboardInterrupt) as err:
        try:
            now = alias_version(CHAMPION)
        except (MlflowException, RegistryError, KeyboardInterrupt):
            now = "unknown"
        if now == version:
            return  # the alias moved before the failure: recorded and done
        if now == "unknown":
            state = (
                f"whether '{CHAMPION}' moved cannot be read now, so version {version} keeps the "
                "record of this promotion; run bonemet compare to see where it points"
            )
        else:
            state = f"'{CHAMPION}' was not moved ({was}); {restored()}"
        if isinstance(err, MlflowException) and permission_denied(err):
            raise refused(err) from err
        raise RegistryError(
            f"moving '{CHAMPION}' to version {version} failed ({_promotion_failure(err)}); "
            f"{state}"
        ) from err

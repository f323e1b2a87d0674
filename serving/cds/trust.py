"""Which CDS clients (EHRs) the service trusts, and the check of their signed JWT (CDS Hooks 2.0).

Every call of a CDS service carries ``Authorization: Bearer <JWT>``, signed by the EHR's private
key. The service accepts it only when:

- the header names a ``kid`` and an algorithm of :data:`ALGORITHMS`, and the signature verifies
  with that key of the issuer's JWK Set (configured inline or in a file, or fetched from the
  header's ``jku`` when that URL is on the issuer's allow-list);
- ``iss`` is a configured issuer; ``aud`` names the endpoint called (or a configured audience);
- ``exp``, ``iat`` and ``jti`` are present, ``exp`` has not passed, the token lives at most
  :data:`MAX_LIFETIME_SECONDS`;
- its ``jti`` has not been seen from that issuer before it expires (a replay).

Anything else is a :class:`TrustError` (HTTP 401) whose message says what was wrong, never the
token. The trust file (``BONEMET_CDS_TRUST``, YAML) is described in ``docs/ehr.md``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import yaml

__all__ = ["ALGORITHMS", "CdsTrust", "TrustError", "TrustedClient"]

#: Signing algorithms CDS Hooks 2.0 requires services to support (and RS256/ES256 for older EHRs).
ALGORITHMS = ("ES384", "RS384", "ES256", "RS256")
#: The specification recommends tokens that expire within 5 minutes.
MAX_LIFETIME_SECONDS = 300
LEEWAY_SECONDS = 30
JKU_CACHE_SECONDS = 300


class TrustError(Exception):
    """A CDS client's token is refused (HTTP 401); the message says why."""


class TrustConfigError(ValueError):
    """The trust file cannot be used; the message names the file and the entry."""


@dataclass
class TrustedClient:
    """One EHR: its issuer, its public keys and the FHIR servers it may send."""

    iss: str
    jwks: dict[str, Any] | None = None
    jku: tuple[str, ...] = ()
    fhir_servers: tuple[str, ...] = ()

    def allows_fhir_server(self, url: str) -> bool:
        """Whether the hook may fetch from ``url`` (any, when no list is configured)."""
        return not self.fhir_servers or any(url.startswith(p) for p in self.fhir_servers)


@dataclass
class CdsTrust:
    """The trusted issuers and the replay memory of one worker process."""

    clients: dict[str, TrustedClient] = field(default_factory=dict)
    audiences: tuple[str, ...] = ()
    _seen: dict[tuple[str, str], float] = field(default_factory=dict)
    _jku_cache: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_file(cls, path: str | Path | None) -> CdsTrust:
        """Read the trust file; no file: no client is trusted (every hook call is refused).

        Raises
        ------
        TrustConfigError
            Naming the file and the entry, for an unreadable file, a client without ``iss``
            or without any key source, an ``iss`` listed twice, a JWK Set without ``keys``.
        """
        if path is None:
            return cls()
        path = Path(path)
        where = f"CDS trust file {path}"
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as err:
            raise TrustConfigError(f"{where}: cannot be read ({err})") from None
        clients: dict[str, TrustedClient] = {}
        for n, entry in enumerate(doc.get("clients") or [], start=1):
            here = f"{where}: client {n}"
            if not isinstance(entry, dict) or not entry.get("iss"):
                raise TrustConfigError(f"{here} has no `iss`")
            jwks = entry.get("jwks")
            if entry.get("jwks_file"):
                file = Path(entry["jwks_file"])
                file = file if file.is_absolute() else path.parent / file
                try:
                    jwks = json.loads(file.read_text(encoding="utf-8"))
                except (OSError, ValueError) as err:
                    raise TrustConfigError(f"{here}: jwks_file {file} ({err})") from None
            if jwks is not None and not isinstance(jwks.get("keys"), list):
                raise TrustConfigError(f"{here}: a JWK Set needs a `keys` list")
            jku = tuple(_strings(entry.get("jku")))
            if jwks is None and not jku:
                raise TrustConfigError(f"{here}: needs `jwks`, `jwks_file` or `jku` URLs")
            if entry["iss"] in clients:
                raise TrustConfigError(f"{here}: issuer {entry['iss']} is listed twice")
            clients[entry["iss"]] = TrustedClient(
                iss=str(entry["iss"]),
                jwks=jwks,
                jku=jku,
                fhir_servers=tuple(_strings(entry.get("fhir_servers"))),
            )
        return cls(clients=clients, audiences=tuple(_strings(doc.get("audience"))))

    def verify(self, authorization: str | None, audiences: Iterable[str]) -> tuple[
        TrustedClient, dict[str, Any]
    ]:
        """Check a request's ``Authorization`` header; the client and the token's claims.

        Parameters
        ----------
        authorization : str or None
            The header's value (``Bearer <JWT>``).
        audiences : iterable of str
            The endpoint URLs this call may be addressed to (added to the configured ones).

        Raises
        ------
        TrustError
            Saying what is wrong.
        """
        if not self.clients:
            raise TrustError("no CDS client is trusted by this service (BONEMET_CDS_TRUST)")
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise TrustError("missing bearer JWT (Authorization: Bearer <JWT>)")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise TrustError("the bearer token is not a JWT") from None
        client = self.clients.get(str(unverified.get("iss")))
        if client is None:
            raise TrustError("JWT issuer (iss) is not a trusted CDS client")
        if header.get("alg") not in ALGORITHMS:
            raise TrustError(f"JWT algorithm must be one of {', '.join(ALGORITHMS)}")
        kid = header.get("kid")
        if not kid:
            raise TrustError("JWT header has no kid")
        key = self._key(client, kid, header.get("jku"))
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[header["alg"]],
                audience=[*self.audiences, *audiences],
                issuer=client.iss,
                leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise TrustError("JWT expired (exp)") from None
        except jwt.InvalidAudienceError:
            raise TrustError("JWT audience (aud) is not this CDS service") from None
        except jwt.MissingRequiredClaimError as err:
            raise TrustError(f"JWT lacks the {err.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise TrustError("JWT signature does not verify with the issuer's key") from None
        except jwt.PyJWTError as err:
            raise TrustError(f"JWT refused: {type(err).__name__}") from None
        if claims["exp"] - claims["iat"] > MAX_LIFETIME_SECONDS + LEEWAY_SECONDS:
            raise TrustError(f"JWT lives longer than {MAX_LIFETIME_SECONDS} s (exp - iat)")
        self._once(client.iss, str(claims["jti"]), float(claims["exp"]))
        return client, claims

    def _once(self, iss: str, jti: str, exp: float) -> None:
        now = time.time()
        with self._lock:
            for k in [k for k, until in self._seen.items() if until < now]:
                del self._seen[k]
            if (iss, jti) in self._seen:
                raise TrustError("JWT already used (jti seen before): a replay")
            self._seen[(iss, jti)] = exp + LEEWAY_SECONDS

    def _key(self, client: TrustedClient, kid: str, jku: str | None) -> Any:
        if jku is not None:
            if jku not in client.jku:
                raise TrustError("JWT jku is not on the issuer's allow-list")
            jwks = self._fetch_jwks(jku)
        else:
            jwks = client.jwks
        if jwks is None:
            raise TrustError("no JWK Set configured for this issuer (send jku)")
        for raw in jwks.get("keys", ()):
            if isinstance(raw, dict) and raw.get("kid") == kid:
                try:
                    return jwt.PyJWK(raw).key
                except jwt.PyJWTError:
                    raise TrustError("the issuer's key for this kid cannot be used") from None
        raise TrustError("JWT kid is not a key of the issuer")

    def _fetch_jwks(self, url: str) -> dict[str, Any]:
        import httpx

        now = time.monotonic()
        cached = self._jku_cache.get(url)
        if cached and now - cached[0] < JKU_CACHE_SECONDS:
            return cached[1]
        try:
            answer = httpx.get(url, timeout=5.0)
            answer.raise_for_status()
            jwks = answer.json()
        except (httpx.HTTPError, ValueError):
            raise TrustError("the issuer's JWK Set (jku) could not be fetched") from None
        if not isinstance(jwks, dict):
            raise TrustError("the issuer's JWK Set (jku) is not a JWK Set")
        self._jku_cache[url] = (now, jwks)
        return jwks


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]

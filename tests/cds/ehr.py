"""A test EHR: a real FHIR server (sekmet-fhir) on loopback loaded with simulated patients, and a
CDS client that discovers the service, resolves its prefetch templates, signs its JWT and calls.

sekmet-fhir (PyPI) is a FHIR R4 server with a SQLite index and FHIR search (token, reference,
date, _sort, _count, paging), bearer-token auth and structural validation of every resource with
fhir.resources' R4B models: it checks the Bundles we write as well as serving the searches.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from features.fhir import fhir_id, write_bundles
from tests.serving.servers import free_port, running_server

FHIR_TOKEN = "fhir-test-token"
ISSUER = "https://ehr.test.invalid"
KID = "ehr-key-1"
PATIENT_NAME = "Testfamilyname"
MRN = "MRN-4711-"


@contextmanager
def fhir_server(folder: Path):
    """sekmet-fhir on a free loopback port, bearer token :data:`FHIR_TOKEN`; yields its base."""
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    config = folder / "settings.yaml"
    config.write_text(
        json.dumps(
            {
                "base_url": base,
                "host": "127.0.0.1",
                "port": port,
                "data_dir": str(folder / "data"),
                "server_auth": {"types": ["bearer"], "tokens": [FHIR_TOKEN]},
                "simulator": {"enabled": False},
                "log_inbound": False,
            }
        )
    )
    cmd = [sys.executable, "-m", "uvicorn", "sekmet.main:app_factory", "--factory",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    env = dict(os.environ, SEKMET_CONFIG=str(config))
    with running_server(cmd, env, folder, f"{base}/metadata", folder / "fhir.log"):
        yield base


def load_bundles(base: str, files: list[Path]) -> None:
    """Load transaction Bundle files (``bonemet simulate --fhir``) into the FHIR server, each
    Patient given a name and a record number, as an EHR holds them."""
    for path in files:
        bundle = json.loads(path.read_text())
        # What an EHR holds and must never reach the service's logs or metrics.
        bundle["entry"][0]["resource"] |= {
            "name": [{"family": PATIENT_NAME, "given": ["Jane"]}],
            "identifier": [{"system": "urn:oid:1.2.3.4.5.1", "value": f"{MRN}{path.stem}"}],
        }
        answer = requests.post(base, json=bundle, timeout=30, headers={
            "Authorization": f"Bearer {FHIR_TOKEN}", "Content-Type": "application/fhir+json"})
        assert answer.status_code == 200, answer.text[:500]


def load_patients(base: str, cohort, ids: list[str], now: datetime) -> dict[str, str]:
    """Load patients of a simulated cohort (in memory); contract id -> FHIR id."""
    folder = Path(tempfile.mkdtemp(prefix="bonemet-fhir-"))
    write_bundles(cohort.patients[cohort.patients.patient_id.isin(ids)], cohort.measurements,
                  folder, now)
    load_bundles(base, [folder / f"{pid}.json" for pid in ids])
    return {pid: fhir_id(pid) for pid in ids}


def new_key():
    """An EC P-384 key pair and its public JWK Set (kid :data:`KID`)."""
    key = ec.generate_private_key(ec.SECP384R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    return key, {"keys": [public | {"kid": KID, "alg": "ES384", "use": "sig"}]}


class Ehr:
    """The CDS client: discovery, prefetch, signed calls."""

    def __init__(self, service: str, fhir: str, key: Any, iss: str = ISSUER):
        self.service, self.fhir, self.key, self.iss = service, fhir, key, iss

    def jwt(self, aud: str, lifetime: int = 60, jti: str | None = None, key: Any = None,
            iat: float | None = None) -> str:
        now = time.time() if iat is None else iat
        claims = {"iss": self.iss, "aud": aud, "iat": int(now), "exp": int(now) + lifetime,
                  "jti": jti or uuid.uuid4().hex}
        return jwt.encode(claims, key or self.key, algorithm="ES384",
                          headers={"kid": KID, "typ": "JWT"})

    def discover(self) -> dict:
        answer = requests.get(f"{self.service}/cds-services", timeout=10)
        assert answer.status_code == 200, answer.text
        (svc,) = [s for s in answer.json()["services"] if s["hook"] == "patient-view"]
        return svc

    def prefetch(self, templates: dict[str, str], patient: str, keys=None) -> dict:
        """Resolve the templates against the FHIR server, as an EHR does."""
        out = {}
        for key, template in templates.items():
            if keys is not None and key not in keys:
                continue
            query = template.replace("{{context.patientId}}", patient)
            answer = requests.get(f"{self.fhir}/{query}", timeout=30,
                                  headers={"Authorization": f"Bearer {FHIR_TOKEN}"})
            assert answer.status_code == 200, (key, answer.text[:300])
            out[key] = answer.json()
        return out

    def body(self, patient: str, prefetch: dict | None, server: bool) -> dict:
        body: dict[str, Any] = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
                                "context": {"userId": "Practitioner/1", "patientId": patient}}
        if prefetch is not None:
            body["prefetch"] = prefetch
        if server:
            body["fhirServer"] = self.fhir
            body["fhirAuthorization"] = {"access_token": FHIR_TOKEN, "token_type": "Bearer",
                                         "expires_in": 300, "scope": "patient/*.read",
                                         "subject": "bonemet"}
        return body

    def call(self, service_id: str, body: dict, token: str | None = None,
             path: str = "") -> requests.Response:
        url = f"{self.service}/cds-services/{service_id}{path}"
        if token is None:
            token = self.jwt(f"{self.service}/cds-services/{service_id}")
        return requests.post(url, json=body, timeout=60,
                             headers={"Authorization": f"Bearer {token}"})


def now_utc() -> datetime:
    return datetime.now(UTC)


def record_of(card: dict) -> dict:
    """The record the card was computed from, read back from its clinician link."""
    (link,) = [x for x in card["links"] if "/clinician?" in x["url"]]
    record = {}
    for k, v in parse_qsl(urlsplit(link["url"]).query):
        if k == "horizon_months":
            continue
        if k == "oc_measurements":
            record[k] = json.loads(v)
        elif v in ("true", "false"):
            record[k] = v == "true"
        elif k in ("patient_id", "menopausal_status", "er_status", "pr_status", "her2_status",
                   "disease_setting", "bone_targeted_therapy"):
            record[k] = v
        else:
            record[k] = float(v) if re.search(r"[.eE]", v) else int(v)
    return record

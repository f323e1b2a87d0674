"""The trust file and the JWT checks, in process (the service's own use is in
test_cds_hooks.py): a JWK Set named by jku is fetched only from an allowed URL, on loopback."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
import yaml

from serving.cds.trust import CdsTrust, TrustConfigError, TrustError
from tests.cds.ehr import KID, new_key

ISS = "https://ehr.test.invalid"
AUD = "http://127.0.0.1/cds-services/bone-metastasis-risk"


def token(key, headers=None, **claims) -> str:
    now = int(time.time())
    body = {"iss": ISS, "aud": AUD, "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex} | claims
    return "Bearer " + jwt.encode(body, key, algorithm="ES384",
                                  headers={"kid": KID} | (headers or {}))


@pytest.fixture(scope="module")
def jwks_server():
    """A loopback HTTP server answering the EHR's JWK Set at /jwks.json."""
    key, jwks = new_key()
    payload = json.dumps(jwks).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200 if self.path == "/jwks.json" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            if self.path == "/jwks.json":
                self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield key, f"http://127.0.0.1:{server.server_port}/jwks.json"
    server.shutdown()
    server.server_close()


def test_jku_on_the_allow_list_is_fetched_and_others_refused(tmp_path, jwks_server):
    key, url = jwks_server
    path = tmp_path / "trust.yaml"
    path.write_text(yaml.safe_dump({"clients": [{"iss": ISS, "jku": [url]}]}))
    trust = CdsTrust.from_file(path)
    client, claims = trust.verify(token(key, {"jku": url}), [AUD])
    assert client.iss == ISS and claims["aud"] == AUD
    with pytest.raises(TrustError, match="jku is not on the issuer's allow-list"):
        trust.verify(token(key, {"jku": url.replace("jwks", "other")}), [AUD])
    with pytest.raises(TrustError, match="no JWK Set configured"):
        trust.verify(token(key), [AUD])


def test_claims_and_replay(tmp_path):
    key, jwks = new_key()
    path = tmp_path / "trust.yaml"
    (tmp_path / "ehr.json").write_text(json.dumps(jwks))
    path.write_text(yaml.safe_dump({"clients": [{"iss": ISS, "jwks_file": "ehr.json"}]}))
    trust = CdsTrust.from_file(path)
    once = token(key, jti="fixed")
    trust.verify(once, [AUD])
    with pytest.raises(TrustError, match="replay"):
        trust.verify(once, [AUD])
    with pytest.raises(TrustError, match="lacks the jti claim"):
        trust.verify("Bearer " + jwt.encode({"iss": ISS, "aud": AUD, "iat": int(time.time()),
                                             "exp": int(time.time()) + 60}, key,
                                            algorithm="ES384", headers={"kid": KID}), [AUD])
    with pytest.raises(TrustError, match="kid is not a key"):
        trust.verify(token(key, {"kid": "other"}), [AUD])
    assert client_allows(trust)
    with pytest.raises(TrustError, match="no CDS client is trusted"):
        CdsTrust.from_file(None).verify(token(key), [AUD])


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"clients": [{"jwks": {"keys": []}}]}, "client 1 has no `iss`"),
        ({"clients": [{"iss": ISS}]}, "needs `jwks`, `jwks_file` or `jku`"),
        ({"clients": [{"iss": ISS, "jwks": {"k": 1}}]}, "needs a `keys` list"),
        ({"clients": [{"iss": ISS, "jku": "u"}, {"iss": ISS, "jku": "u"}]}, "listed twice"),
        ({"clients": [{"iss": ISS, "jwks_file": "missing.json"}]}, "jwks_file"),
    ],
)
def test_a_bad_trust_file_is_refused_naming_the_entry(tmp_path, doc, message):
    path = tmp_path / "trust.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(TrustConfigError, match=message):
        CdsTrust.from_file(path)


def client_allows(trust: CdsTrust) -> bool:
    """No fhir_servers list: any server; with one, only those prefixes."""
    from serving.cds.trust import TrustedClient

    (client,) = trust.clients.values()
    listed = TrustedClient(iss=ISS, jku=("u",), fhir_servers=("https://fhir.h.example/r4",))
    return (
        client.allows_fhir_server("https://anything.example/fhir")
        and listed.allows_fhir_server("https://fhir.h.example/r4/")
        and not listed.allows_fhir_server("http://169.254.169.254/")
    )

"""Benchmark: the CDS Hooks service's latency, data prefetched by the EHR vs fetched by the service.

One command:  .venv/bin/python -m benchmarks.bench_cds_hooks [--requests 50] [--patients 5]

Trains ``cox_ridge`` on 2,000 simulated patients into a temporary MLflow store (as
benchmarks/bench_serving.py), starts sekmet-fhir (the tests' FHIR server) on loopback with
``--patients`` simulated patients loaded as FHIR Bundles, and ``bonemet serve`` trusting the test
EHR's key. Then, for each path, ``--requests`` hook calls (each with a new signed JWT, patients in
turn, after ``--warmup`` calls):

* **prefetch**: the EHR sends every prefetch key filled (its own queries not timed: an EHR runs
  them before the hook);
* **server**: the EHR sends none; the service fetches the 8 queries from the FHIR server with the
  given bearer token (concurrently);
* **/predict**: the same patients' records sent to ``POST /predict`` directly, for reference.

Prints and writes medians and 90th percentiles to docs/benchmarks.md ("CDS Hooks").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from benchmarks.common import machine  # noqa: E402
from benchmarks.common import write_section as _write_section_of  # noqa: E402

SECTION = "## CDS Hooks: prefetch vs FHIR server path (benchmarks/bench_cds_hooks.py)"
SERVICE = "bone-metastasis-risk"


def _ms(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[int(0.9 * (len(ordered) - 1))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--patients", type=int, default=5)
    parser.add_argument("--n-patients", type=int, default=2000, help="training cohort size")
    parser.add_argument("--example", type=Path, help="write one hook request and answer (JSON)")
    args = parser.parse_args(argv)
    if min(args.requests, args.patients) < 1:
        parser.error("counts must be >= 1")

    import requests
    import yaml

    from benchmarks.bench_serving import build_store
    from features.simulate import simulate_cohort
    from tests.cds.ehr import ISSUER, Ehr, fhir_server, load_patients, new_key, now_utc, record_of
    from tests.serving.servers import free_port, running_server

    with tempfile.TemporaryDirectory(prefix="bench_cds_") as tmp:
        tmp = Path(tmp)
        os.environ["BENTOML_HOME"] = str(tmp / "data" / "bentoml")
        print(f"training cox_ridge on {args.n_patients} simulated patients ...", flush=True)
        version, _, _ = build_store(tmp, args.n_patients)
        cohort = simulate_cohort(max(40, args.patients * 4), seed=21)
        p = cohort.patients
        ids = p[~p.bone_metastasis_at_enrollment.astype(bool)].patient_id.tolist()
        ids = ids[: args.patients]
        key, jwks = new_key()
        trust = tmp / "trust.yaml"
        trust.write_text(yaml.safe_dump({"clients": [{"iss": ISSUER, "jwks": jwks}]}))
        drop = {"MLFLOW_TRACKING_URI", "BONEMET_API_TOKEN", "BONEMET_BENTO_MODEL"}
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env.update(
            BONEMET_DATA_DIR=str(tmp / "data"),
            BENTOML_HOME=str(tmp / "data" / "bentoml"),
            BONEMET_CDS_TRUST=str(trust),
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "training.cli", "serve", "--port", str(port)]
        with fhir_server(tmp) as fhir:
            fhir_ids = list(load_patients(fhir, cohort, ids, now_utc()).values())
            with running_server(cmd, env, tmp, f"{base}/readyz", tmp / "serve.log"):
                ehr = Ehr(base, fhir, key)
                templates = ehr.discover()["prefetch"]
                prefetched = {pid: ehr.prefetch(templates, pid) for pid in fhir_ids}
                session = requests.Session()
                aud = f"{base}/cds-services/{SERVICE}"

                def hook(pid: str, server: bool) -> tuple[float, dict]:
                    body = ehr.body(pid, None if server else prefetched[pid], server=server)
                    headers = {"Authorization": f"Bearer {ehr.jwt(aud)}"}
                    start = time.perf_counter()
                    answer = session.post(aud, json=body, headers=headers, timeout=60)
                    elapsed = (time.perf_counter() - start) * 1000
                    assert answer.status_code == 200, answer.text[:300]
                    return elapsed, answer.json()["cards"][0]

                times: dict[str, list[float]] = {"prefetch": [], "server": [], "predict": []}
                records = {}
                for k in range(args.warmup + args.requests):
                    pid = fhir_ids[k % len(fhir_ids)]
                    for path in ("server", "prefetch"):  # the card kept is the prefetch path's
                        elapsed, card = hook(pid, path == "server")
                        if k >= args.warmup:
                            times[path].append(elapsed)
                    records[pid] = record_of(card)
                    if args.example and k == 0:
                        body = ehr.body(pid, prefetched[pid], server=False)
                        args.example.write_text(json.dumps({"request": body, "cards": [card]},
                                                           indent=1))
                    body = {"patients": [records[pid]], "horizons_months": [12, 24, 36, 60]}
                    start = time.perf_counter()
                    answer = session.post(f"{base}/predict", json=body, timeout=60)
                    if k >= args.warmup:
                        times["predict"].append((time.perf_counter() - start) * 1000)
                    assert answer.status_code == 200, answer.text[:300]
    load = os.getloadavg()[0]
    rows = [
        "| path | median ms | p90 ms |",
        "|---|---|---|",
    ]
    labels = {
        "prefetch": "hook, every key prefetched by the EHR",
        "server": "hook, the service fetches the 8 queries from the FHIR server",
        "predict": "`POST /predict` of the same record (reference)",
    }
    for path, label in labels.items():
        median, p90 = _ms(times[path])
        rows.append(f"| {label} | {median:.1f} | {p90:.1f} |")
        print(f"{path:>9}: median {median:.1f} ms, p90 {p90:.1f} ms", flush=True)
    text = "\n".join(
        [
            SECTION,
            "",
            f"Machine: {machine()}. Model: cox_ridge version {version} trained on "
            f"{args.n_patients} simulated patients; {len(fhir_ids)} simulated patients in "
            f"sekmet-fhir 0.1.1 on loopback; {args.requests} calls per path after "
            f"{args.warmup} warm-up calls, one keep-alive client, a new ES384 JWT per call; "
            f"load average {load:.1f} at the end of the run (other work on the machine slows "
            "every row alike).",
            "",
            *rows,
            "",
            "Reading: the hook adds the JWT check, the mapping of the FHIR resources and the "
            "card (with its RiskAssessment) to the prediction; the server path adds the FHIR "
            "server's eight searches, run concurrently, so it is bounded by the FHIR server's "
            "slowest search, not by their sum. An EHR that prefetches saves the service that "
            "round trip.",
            "",
        ]
    )
    _write_section_of(text, SECTION)


if __name__ == "__main__":
    main()

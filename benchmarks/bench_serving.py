"""Benchmark: `bonemet serve` (BentoML) vs `mlflow models serve` on the same registered version.

One command:  .venv/bin/python -m benchmarks.bench_serving [--requests 300] [--clients 16]

Simulates the demo cohort (2,000 patients, seed 42), trains only the ``cox_ridge`` family into a
temporary MLflow store (small search, no bootstrap) and promotes it to ``champion``, so both
servers answer with the same version. Then, one server at a time on a free 127.0.0.1 port, one
API worker each:

* single-patient latency: ``--requests`` sequential requests on one keep-alive connection after
  ``--warmup`` warm-up requests (median and p99);
* throughput: ``--clients`` threads, each with its own keep-alive connection, send
  ``--throughput-requests`` requests in total (requests/s);
* a 1,000-patient batch: median of ``--batch-repeats`` requests.

`bonemet serve` gets ``POST /predict`` with the contract's request; `mlflow models serve` gets
``POST /invocations`` with the same patient records as ``{"dataframe_records": [...]}`` and the
same horizons as ``params``. Finally one single-patient request is profiled in process, step by
step through the service's own functions. Results go to docs/benchmarks.md (section "Serving").
Servers run in their own process groups with logs in files, and are always stopped (SIGTERM,
then SIGKILL).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from benchmarks.common import descendants, machine, proc_table  # noqa: E402
from benchmarks.common import write_section as _write_section_of  # noqa: E402

SECTION = "## Serving: bonemet serve vs mlflow models serve (benchmarks/bench_serving.py)"
HOST = "127.0.0.1"
HORIZONS = [12.0, 24.0, 36.0, 60.0]
READY_TIMEOUT_S = 180
REQUEST_TIMEOUT_S = 60
TARGET_LATENCY_MS = 5.0
TARGET_THROUGHPUT_RATIO = 3.0
TARGET_BATCH_MS = 200.0


def write_section(text: str) -> None:
    """Replace this benchmark's section of docs/benchmarks.md."""
    _write_section_of(text, SECTION)


# --------------------------------------------------------------------------- store and payloads


def build_store(tmp: Path, n_patients: int):
    """Train cox_ridge into ``tmp/data`` and promote it; return (version, contract records)."""
    from features.contract import load_cohort
    from features.records import contract_rows
    from features.schema import PREDICTOR_COLUMNS
    from features.simulate import simulate_cohort, write_cohort
    from training.config import Settings, TrainConfig
    from training.registry import promotion
    from training.runs.train import train
    from training.store import backend as tracking

    write_cohort(simulate_cohort(n_patients, seed=42), tmp / "cohort")
    cohort = load_cohort(tmp / "cohort" / "patients.csv", tmp / "cohort" / "oc_measurements.csv")
    settings = Settings(data_dir=tmp / "data")
    config = TrainConfig(
        families=("cox_ridge",), outer_folds=2, inner_folds=2, max_grid=1, n_bootstrap=0, n_jobs=1
    )
    t0 = time.perf_counter()
    result = train(cohort, config, settings, source="bench_serving")
    train_s = time.perf_counter() - t0
    tracking.configure(settings)
    version = str(result.challenger_version)
    promotion.promote(version, force=True, reason="benchmark")
    rows = contract_rows(cohort.patients[list(PREDICTOR_COLUMNS)])
    records = [
        {k: v for k, v in r.items() if v is not None} for r in rows.to_dict(orient="records")
    ]
    return version, records, train_s


def bodies(records: list[dict], batch_size: int) -> dict[str, dict[str, bytes]]:
    """Equivalent request bodies for both servers: one patient and a batch."""
    one = next(r for r in records if not r.get("bone_metastasis_at_enrollment"))
    batch = records[:batch_size]

    def enc(obj) -> bytes:
        return json.dumps(obj, allow_nan=False).encode()

    return {
        "bonemet": {
            "one": enc({"patients": [one], "horizons_months": HORIZONS}),
            "batch": enc({"patients": batch, "horizons_months": HORIZONS}),
        },
        "mlflow": {
            "one": enc({"dataframe_records": [one], "params": {"horizons_months": HORIZONS}}),
            "batch": enc({"dataframe_records": batch, "params": {"horizons_months": HORIZONS}}),
        },
    }


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _alive(known: set[tuple[int, str]]) -> list[int]:
    table = proc_table()
    return [pid for pid, started in known if table.get(pid, (0, None))[1] == started]


def _stop(proc: subprocess.Popen, known: set[tuple[int, str]]) -> None:
    """SIGTERM the server's process group, then SIGKILL whatever of it is left (by pid)."""
    known = known | descendants(proc.pid)
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while _alive(known) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in _alive(known):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@contextmanager
def running_server(cmd: list[str], env: dict, cwd: Path, port: int, ready_path: str, log: Path):
    """Start a server in its own process group, wait for ``ready_path``; always stop it.

    Yields the number of processes serving (the command and its descendants).
    """
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    known: set[tuple[int, str]] = set()
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            known |= descendants(proc.pid)
            if proc.poll() is not None:
                raise RuntimeError(f"{' '.join(cmd[2:5])} exited early; log:\n{log.read_text()}")
            try:
                conn = http.client.HTTPConnection(HOST, port, timeout=2)
                conn.request("GET", ready_path)
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {READY_TIMEOUT_S} s; log:\n{log.read_text()}")
            time.sleep(0.5)
        known |= descendants(proc.pid)
        yield 1 + len(_alive(known))
    finally:
        _stop(proc, known)


class Client:
    """One keep-alive HTTP/1.1 connection (http.client sets TCP_NODELAY)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None
        self.connections = 0

    def post(self, path: str, body: bytes | None, method: str = "POST") -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT_S)
                self.connections += 1
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
            except (http.client.HTTPException, OSError):
                self.close()
                if attempt:
                    raise
                continue
            if resp.will_close:
                self.close()
            return resp.status, data
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _check(status: int, data: bytes, what: str) -> None:
    if status != 200:
        raise RuntimeError(f"{what}: HTTP {status}: {data[:2000].decode(errors='replace')}")


def timed_ms(n: int, call, what: str) -> list[float]:
    """Milliseconds of ``n`` sequential ``call()`` (each must answer 200)."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        status, data = call()
        out.append((time.perf_counter() - t0) * 1000)
        _check(status, data, what)
    return out


def server_latencies(log: Path, start: int, end: int, path: str) -> list[float]:
    """Server-side latencies (ms) of ``path`` from the service's JSON audit lines, if any."""
    out = []
    with open(log, "rb") as f:
        f.seek(start)
        chunk = f.read(max(0, end - start))
    for line in chunk.decode(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("path") == path and isinstance(rec.get("latency_ms"), (int, float)):
            out.append(float(rec["latency_ms"]))
    return out


def measure(port: int, path: str, body: dict[str, bytes], args, log: Path, health: str) -> dict:
    """Single-patient latency, throughput with concurrent clients, batch latency.

    Also the median of ``GET health`` on the same connection: the server's fixed cost per
    request (routing, middlewares, HTTP) with no work, which also shows how fast the machine
    is at that moment.
    """
    out: dict = {"load": os.getloadavg()[0]}
    client = Client(port)
    try:
        status, data = client.post(path, body["one"])
        _check(status, data, "single-patient request")
        out["one_response"] = json.loads(data)
        for _ in range(args.warmup):
            _check(*client.post(path, body["one"]), "warm-up")
        time.sleep(0.2)
        log_start = log.stat().st_size
        out["single_ms"] = timed_ms(
            args.requests, lambda: client.post(path, body["one"]), "single-patient request"
        )
        out["single_connections"] = client.connections
        time.sleep(0.2)
        out["single_server_ms"] = server_latencies(log, log_start, log.stat().st_size, path)
        out["health_ms"] = timed_ms(
            args.requests, lambda: client.post(health, None, method="GET"), f"GET {health}"
        )

        status, data = client.post(path, body["batch"])  # warm-up
        _check(status, data, "batch request")
        out["batch_response"] = json.loads(data)
        out["batch_ms"] = timed_ms(
            args.batch_repeats, lambda: client.post(path, body["batch"]), "batch request"
        )
    finally:
        client.close()

    per_client = [args.throughput_requests // args.clients] * args.clients
    for i in range(args.throughput_requests % args.clients):
        per_client[i] += 1
    barrier = threading.Barrier(args.clients + 1)
    loaded: list[list[float]] = [[] for _ in range(args.clients)]
    errors: list[str] = []

    def work(k: int) -> None:
        c = Client(port)
        try:
            barrier.wait(timeout=60)
            for _ in range(per_client[k]):
                t0 = time.perf_counter()
                status, data = c.post(path, body["one"])
                loaded[k].append(time.perf_counter() - t0)
                if status != 200:
                    errors.append(f"HTTP {status}")
                    return
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(repr(err))
        finally:
            c.close()

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(args.clients)]
    for t in threads:
        t.start()
    barrier.wait(timeout=60)
    t0 = time.perf_counter()
    for t in threads:
        t.join(timeout=600)
    wall = time.perf_counter() - t0
    if errors or any(t.is_alive() for t in threads):
        raise RuntimeError(f"throughput run failed: {errors[:3] or 'clients still running'}")
    done = sum(len(x) for x in loaded)
    out["throughput_rps"] = done / wall
    out["throughput_n"] = done
    out["loaded_ms"] = [x * 1000 for xs in loaded for x in xs]
    return out


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


# --------------------------------------------------------------------------- in-process profile


#: The profile's step of the model's own arithmetic (RiskModel's features, estimator,
#: incidences and their intervals).
MODEL_STEP = "model: features, estimator, CIF, intervals"


def profile_single(tmp: Path, body: bytes, repeats: int) -> dict:
    """Time the service's steps for one single-patient request, in this process.

    Builds the real service object (the same class, model and BentoML store ``bonemet serve``
    used) and calls its ``predict`` while the functions it calls are wrapped with timers; the
    parse step is the call BentoML makes (``model_validate_json``), the last step the
    response's JSON dump. Discovers the method's arguments, so it follows service changes.
    """
    import inspect
    import types

    import pandas as pd

    from training.config import Settings
    from training.registry import bento
    from training.store import backend as tracking

    os.environ.pop("MLFLOW_TRACKING_URI", None)  # no registry-polling thread in this process
    settings = Settings(data_dir=tmp / "data")
    tracking.configure(settings)
    serving = bento.import_for_serving("models:/bone-metastasis-risk@champion", settings)
    for key, value in serving.environment().items():
        if key not in ("MLFLOW_TRACKING_URI", "BONEMET_FOLLOW_ALIAS"):
            os.environ[key] = value
    import serving.service as svc
    from training.artifact.risk_model import RiskModel

    service_cls = svc.BoneMetastasisService
    instance = service_cls.inner()

    # The API method is a coroutine that answers small requests inline with ``_answer``: time
    # that (the same work, without an event loop per call).
    def predict_fn(self, patients, horizons_months, ctx):
        return self._answer(patients, horizons_months, ctx, explain=False)

    params = list(inspect.signature(predict_fn).parameters.values())[1:]
    request_fields = set(svc.PredictRequest.model_fields)
    fake_ctx = types.SimpleNamespace(
        response=types.SimpleNamespace(headers={}, metadata={}, cookies=[], status_code=200),
        request=None,
        state={},
    )

    def call_args(req) -> dict:
        out = {}
        for p in params:
            if p.name in request_fields:
                out[p.name] = getattr(req, p.name)
            else:  # bentoml.Context
                out[p.name] = fake_ctx
        return out

    current: dict[str, float] = {}

    def timed(name, fn):
        def wrapper(*a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                current[name] = current.get(name, 0.0) + time.perf_counter() - t0

        return wrapper

    patches = [
        (svc, "check_prediction_rows", "service: contract check"),
        (svc, "check_measurement_records", "service: draws check"),
        (svc, "_apply_draws", "service: draws applied"),
        (RiskModel, "predict_batch", "model predict_batch"),
        (svc, "_treatment_benefits", "service: treatment benefit"),
        (RiskModel, "_predict_with_bounds", MODEL_STEP),
        (RiskModel, "warnings_for", "model: warnings"),
    ]
    saved = [(obj, name, obj.__dict__[name]) for obj, name, _ in patches if name in obj.__dict__]
    timings: dict[str, list[float]] = {}
    try:
        for obj, name, label in patches:
            if name in obj.__dict__:
                setattr(obj, name, timed(label, getattr(obj, name)))
        for k in range(repeats + 20):
            current.clear()
            t0 = time.perf_counter()
            req = svc.PredictRequest.model_validate_json(body)
            t1 = time.perf_counter()
            resp = predict_fn(instance, **call_args(req))
            t2 = time.perf_counter()
            if not hasattr(resp, "model_dump_json"):
                raise RuntimeError(f"service answered {getattr(resp, 'body', resp)!r:.500}")
            resp.model_dump_json()
            t3 = time.perf_counter()
            if k < 20:
                continue
            steps = {"parse (pydantic)": t1 - t0}
            steps.update((n, v) for n, v in current.items() if n.startswith("service: "))
            frame = current.get("model predict_batch", 0.0)
            inner = {n: v for n, v in current.items() if n.startswith("model: ")}
            steps.update(inner)
            steps["model: rest (batch arrays)"] = frame - sum(inner.values())
            steps["service: rest (records, response objects)"] = (
                (t2 - t1) - frame - sum(v for n, v in current.items() if n.startswith("service: "))
            )
            steps["response JSON dump"] = t3 - t2
            steps["total"] = t3 - t0
            for n, v in steps.items():
                timings.setdefault(n, []).append(v)
    finally:
        for obj, name, fn in saved:
            setattr(obj, name, fn)
    med = {n: statistics.median(v) * 1000 for n, v in timings.items()}
    rec = [json.loads(body)["patients"][0]]
    t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        pd.DataFrame.from_records(rec)
        t.append(time.perf_counter() - t0)
    return {
        "ms": med,
        "frame_ms": statistics.median(t) * 1000,
        "bento_workers": service_cls.config.get("workers", 1),
    }


# --------------------------------------------------------------------------- main


def run_profile(tmp: Path, body: bytes, repeats: int, env: dict) -> dict:
    """``profile_single`` in a fresh process: it imports the code the servers just ran."""
    (tmp / "one.json").write_bytes(body)
    out = tmp / "profile.json"
    root = Path(__file__).resolve().parent.parent  # the tree whose `benchmarks` this is
    cmd = [sys.executable, "-m", "benchmarks.bench_serving", "--profile-store", str(tmp)]
    cmd += ["--profile-repeats", str(repeats)]
    path = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    with open(tmp / "profile.log", "w") as log:
        try:
            proc = subprocess.run(
                cmd,
                env=dict(env, PYTHONPATH=path),
                cwd=root,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=600,
            )
        except subprocess.TimeoutExpired:
            return {"error": "timed out after 600 s"}
    if proc.returncode != 0 or not out.exists():
        lines = (tmp / "profile.log").read_text().strip().splitlines()
        return {"error": (lines[-1] if lines else f"exit {proc.returncode}")[:500]}
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-patients", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--throughput-requests", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-repeats", type=int, default=10)
    parser.add_argument("--profile-repeats", type=int, default=200)
    parser.add_argument("--keep-logs", type=Path, default=None, help="copy server logs here")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument("--profile-store", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when bonemet's single-patient median is >25%% worse than the stored "
        "figure of the previous release (benchmarks/serving_release.json)",
    )
    args = parser.parse_args()
    if args.profile_store is not None:  # the profiling subprocess (run_profile)
        store = args.profile_store
        prof = profile_single(store, (store / "one.json").read_bytes(), args.profile_repeats)
        (store / "profile.json").write_text(json.dumps(prof))
        return
    if min(args.requests, args.clients, args.throughput_requests, args.batch_repeats) < 1:
        parser.error("counts must be >= 1")
    if args.batch_size > 1000:
        parser.error("--batch-size: the API takes at most 1,000 patients")

    venv_bin = Path(sys.executable).parent
    results: dict[str, dict] = {}
    procs: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench_serving_") as tmp:
        tmp = Path(tmp)
        os.environ["BENTOML_HOME"] = str(tmp / "data" / "bentoml")  # read once, at import
        print(f"training cox_ridge on {args.n_patients} simulated patients ...", flush=True)
        version, records, train_s = build_store(tmp, args.n_patients)
        print(f"version {version} is champion (train {train_s:.0f} s)", flush=True)
        body = bodies(records, args.batch_size)

        drop = {"MLFLOW_TRACKING_URI", "BONEMET_API_TOKEN", "BONEMET_BENTO_MODEL"}
        base_env = {k: v for k, v in os.environ.items() if k not in drop}
        base_env.update(
            BONEMET_DATA_DIR=str(tmp / "data"),
            BENTOML_HOME=str(tmp / "data" / "bentoml"),
            OMP_WAIT_POLICY="PASSIVE",
            PATH=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        mlflow_env = dict(base_env, MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'data' / 'mlflow.db'}")
        servers = [
            (
                "bonemet",
                [sys.executable, "-m", "training.cli", "serve", "--port", "{port}"],
                base_env,
                "/readyz",
                "/predict",
                "/healthz",
            ),
            (
                "mlflow",
                [
                    sys.executable, "-m", "mlflow", "models", "serve",
                    "-m", "models:/bone-metastasis-risk@champion",
                    "--env-manager", "local", "--host", HOST, "--port", "{port}",
                    "--workers", "1",
                ],
                mlflow_env,
                "/ping",
                "/invocations",
                "/ping",
            ),
        ]  # fmt: skip
        for name, cmd, env, ready, path, health in servers:
            port = free_port()
            cmd = [c.replace("{port}", str(port)) for c in cmd]
            log = tmp / f"{name}.log"
            print(f"starting {name} on {HOST}:{port} ...", flush=True)
            try:
                with running_server(cmd, env, tmp, port, ready, log) as n_processes:
                    procs[name] = n_processes
                    results[name] = measure(port, path, body[name], args, log, health)
            finally:
                if args.keep_logs:
                    args.keep_logs.mkdir(parents=True, exist_ok=True)
                    if log.exists():
                        (args.keep_logs / log.name).write_text(log.read_text())
            r = results[name]
            print(
                f"  {name}: single median {statistics.median(r['single_ms']):.2f} ms, "
                f"{r['throughput_rps']:.1f} req/s, batch {statistics.median(r['batch_ms']):.0f} ms",
                flush=True,
            )
        print("profiling one single-patient request in process ...", flush=True)
        prof = run_profile(tmp, body["bonemet"]["one"], args.profile_repeats, base_env)

    text = report(args, version, results, procs, prof)
    print(text)
    if not args.no_write:
        write_section(text)
    if args.check:
        from benchmarks.regression import fail_on_regression

        fail_on_regression({"single_median_ms": statistics.median(results["bonemet"]["single_ms"])})


def agreement(results: dict) -> str:
    """Same answers from both servers? (risk scores of the batch)."""
    b = [p["risk_score"] for p in results["bonemet"]["batch_response"]["predictions"]]
    m = [p["risk_score"] for p in results["mlflow"]["batch_response"]["predictions"]]
    pairs = [(x, y) for x, y in zip(b, m, strict=True) if x is not None and y is not None]
    worst = max((abs(x - y) for x, y in pairs), default=0.0)
    return f"{len(pairs)} risk scores of the batch agree to {worst:.1e}"


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for pkg in ("bentoml", "mlflow", "uvicorn", "pandas", "pydantic"):
        try:
            out.append(f"{pkg} {version(pkg)}")
        except PackageNotFoundError:
            pass
    return ", ".join(out)


def report(args, version: str, results: dict, procs: dict, prof: dict) -> str:
    b, m = results["bonemet"], results["mlflow"]
    b_med, m_med = statistics.median(b["single_ms"]), statistics.median(m["single_ms"])
    b_p99, m_p99 = p99(b["single_ms"]), p99(m["single_ms"])
    b_fl, m_fl = statistics.median(b["health_ms"]), statistics.median(m["health_ms"])
    b_tp, m_tp = b["throughput_rps"], m["throughput_rps"]
    b_bt, m_bt = statistics.median(b["batch_ms"]), statistics.median(m["batch_ms"])
    b_ld, m_ld = statistics.median(b["loaded_ms"]), statistics.median(m["loaded_ms"])

    def met(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    workers = prof.get("bento_workers", 1)
    cmd = (
        f"`.venv/bin/python -m benchmarks.bench_serving --requests {args.requests} "
        f"--clients {args.clients} --throughput-requests {args.throughput_requests}`"
    )
    lines = [
        SECTION,
        "",
        f"Machine: {machine()}. Command: {cmd}. Both servers answer with the same registered "
        f"version ({version}, `cox_ridge` trained on {args.n_patients} simulated patients, "
        f"alias `champion`), one at a time on 127.0.0.1, with **one API worker each**: "
        f"`bonemet serve` (BentoML service workers = {workers}; {procs.get('bonemet', '?')} "
        "processes in all: the CLI, BentoML's arbiter, its worker; `POST /predict` answered by "
        "the gateway's direct route, the default) and `mlflow models serve "
        f"--env-manager local --workers 1` ({procs.get('mlflow', '?')} processes: the CLI and "
        f"one uvicorn process); {versions()}. Both servers set TCP_NODELAY on each accepted "
        "connection (checked once with strace for these versions), so no Nagle delay. Client: "
        "Python `http.client` keep-alive connections (TCP_NODELAY, one per client thread) on the "
        "same 2 cores as the server. Same patient records for "
        'both: `POST /predict {"patients": [...]}` vs `POST /invocations '
        '{"dataframe_records": [...], "params": {"horizons_months": [...]}}`, horizons '
        f"12/24/36/60 months; {agreement(results)}. 1-minute load average when each server's "
        f"measurement started: bonemet {b['load']:.1f}, mlflow {m['load']:.1f} (other work on "
        "the machine inflates and spreads the numbers; rerun on a quiet machine before "
        "comparing across commits).",
        "",
        "| metric | bonemet serve | mlflow models serve | bonemet / mlflow | target (issue 4) |",
        "|---|---|---|---|---|",
        f"| single patient, median ({args.requests} sequential on one keep-alive connection, "
        f"after {args.warmup} warm-up) | {b_med:.2f} ms | {m_med:.2f} ms | {b_med / m_med:.2f}x "
        f"| <= {TARGET_LATENCY_MS:g} ms: {met(b_med <= TARGET_LATENCY_MS)} |",
        f"| single patient, p99 | {b_p99:.2f} ms | {m_p99:.2f} ms | {b_p99 / m_p99:.2f}x | |",
        f"| floor: health check, median (`GET /healthz` / `GET /ping`, same connection, no "
        f"work) | {b_fl:.2f} ms | {m_fl:.2f} ms | {b_fl / m_fl:.2f}x | |",
        f"| throughput, {args.clients} concurrent clients ({b['throughput_n']} single-patient "
        f"requests) | {b_tp:.1f} req/s | {m_tp:.1f} req/s | {b_tp / m_tp:.2f}x "
        f"| >= {TARGET_THROUGHPUT_RATIO:g}x the peer: "
        f"{met(b_tp / m_tp >= TARGET_THROUGHPUT_RATIO)} |",
        f"| latency under that load, median | {b_ld:.1f} ms | {m_ld:.1f} ms | "
        f"{b_ld / m_ld:.2f}x | |",
        f"| {args.batch_size:,}-patient batch, median of {args.batch_repeats} | {b_bt:.0f} ms "
        f"| {m_bt:.0f} ms | {b_bt / m_bt:.2f}x | < {TARGET_BATCH_MS:g} ms: "
        f"{met(b_bt < TARGET_BATCH_MS)} |",
        "",
    ]
    server = statistics.median(b["single_server_ms"]) if b.get("single_server_ms") else None
    reconnects = {
        n: r["single_connections"] for n, r in results.items() if r["single_connections"] != 1
    }
    if reconnects:
        lines.append(
            f"Keep-alive was not held in the sequential run: connections opened {reconnects}."
        )
        lines.append("")
    lines += profile_lines(prof, b_med, server)
    return "\n".join(lines) + "\n"


def profile_lines(prof: dict, http_median: float, server_median: float | None) -> list[str]:
    if "error" in prof:
        return [f"In-process profile of one request failed: {prof['error']}.", ""]
    ms = dict(prof["ms"])
    total = ms.pop("total")
    model = ms.get(MODEL_STEP, 0.0)
    checks = sum(v for n, v in ms.items() if "check" in n)
    steps = "; ".join(
        f"{n.replace('service: ', 'service ').replace('model: ', 'model ')} {v:.2f}"
        for n, v in ms.items()
    )
    dominant = (
        "validation, not the model, dominates"
        if checks > model
        else "the model itself is the largest step"
    )
    return [
        f"Where a single-patient request goes (in process: the service's own `predict` on the "
        f"same model, its steps timed, medians in ms; {total:.1f} ms in all, against "
        + (
            f"{server_median:.1f} ms inside the server (its audit log, middleware to last byte) "
            "and "
            if server_median is not None
            else ""
        )
        + f"{http_median:.1f} ms at the client; the differences are BentoML's dispatch, uvicorn, "
        f"loopback and client): {steps}.",
        f"The model's arithmetic is {model:.1f} ms ({model / total:.0%}); the contract "
        f"checks take {checks:.1f} ms ({checks / total:.0%}) on the JSON records without pandas "
        f"(a one-row pandas DataFrame alone would cost {prof['frame_ms']:.2f} ms); the validated "
        "columns go to the logged RiskModel directly (no second check, no MLflow schema "
        f"enforcement): {dominant}.",
        "",
    ]


if __name__ == "__main__":
    main()

"""Benchmark: ``POST /predict`` by the gateway's direct route vs BentoML's route, one tree.

One command:

    .venv/bin/python -m benchmarks.bench_serving_routes [--extra-path DIR] [--requests 400]

The same tree, store and version served by ``bonemet serve`` several times at once, each server
measured in turn so the machine's load falls on all alike (as ``bench_serving_releases.py``):

* ``direct``: the default, the gateway answers ``POST /predict`` itself;
* ``bentoml``: ``BONEMET_DIRECT_PREDICT=0``, the request goes through BentoML's IO descriptor;
* with ``--extra-path DIR`` (a folder of packages, e.g. ``pip install --target DIR uvloop
  httptools``), both again with ``DIR`` on ``PYTHONPATH``: what a server package changes
  before it is a dependency (once installed, every variant has it).

Single patient: ``--requests`` rounds of one request to every server in turn on its own
keep-alive connection, then ``GET /healthz`` likewise (the stack's floor); throughput:
``--rounds`` rounds of ``--round-requests`` requests from ``--clients`` concurrent clients per
server in turn; a 1,000-patient batch: ``--batch-rounds`` rounds. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from benchmarks.bench_serving import Client, bodies, build_store, free_port, running_server
from benchmarks.bench_serving_releases import add_interleaved_options


def _throughput(port: int, body: bytes, clients: int, total: int) -> float:
    def work(n: int) -> None:
        c = Client(port)
        try:
            for _ in range(n):
                status, data = c.post("/predict", body)
                if status != 200:
                    raise RuntimeError(f"HTTP {status}: {data[:300]!r}")
        finally:
            c.close()

    threads = [threading.Thread(target=work, args=(total // clients,)) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return clients * (total // clients) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra-path", type=Path, default=None)
    add_interleaved_options(parser)
    args = parser.parse_args()
    root = Path(__file__).resolve().parent.parent
    variants = {"direct": {}, "bentoml": {"BONEMET_DIRECT_PREDICT": "0"}}
    if args.extra_path is not None:
        extra = {"PYTHONPATH": os.pathsep.join([str(root), str(args.extra_path.resolve())])}
        variants |= {f"{k} + {args.extra_path.name}": {**v, **extra} for k, v in variants.items()}
    with tempfile.TemporaryDirectory(prefix="bench_serving_routes_") as tmp, ExitStack() as stack:
        tmp = Path(tmp)
        os.environ["BENTOML_HOME"] = str(tmp / "data" / "bentoml")
        print(f"training cox_ridge on {args.n_patients} simulated patients ...", flush=True)
        _, records, _ = build_store(tmp, args.n_patients)
        body = bodies(records, 1000)["bonemet"]
        drop = ("MLFLOW_TRACKING_URI", "BONEMET_API_TOKEN", "BONEMET_BENTO_MODEL")
        base = {k: v for k, v in os.environ.items() if k not in drop}
        base.update(
            PYTHONPATH=str(root),
            OMP_WAIT_POLICY="PASSIVE",
            BONEMET_DATA_DIR=str(tmp / "data"),
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}",
        )
        ports = {}
        for name, extra in variants.items():
            port = free_port()
            cmd = [sys.executable, "-m", "training.cli", "serve", "--port", str(port)]
            stack.enter_context(
                running_server(cmd, dict(base, **extra), tmp, port, "/readyz", tmp / f"{port}.log")
            )
            ports[name] = port
        clients = {name: Client(port) for name, port in ports.items()}
        for _ in range(args.warmup):
            for c in clients.values():
                c.post("/predict", body["one"])
        loads = [os.getloadavg()[0]]
        single: dict[str, list[float]] = {n: [] for n in clients}
        health: dict[str, list[float]] = {n: [] for n in clients}
        for _ in range(args.requests):
            for name, c in clients.items():
                calls = (("/predict", body["one"], single), ("/healthz", None, health))
                for path, data, out in calls:
                    t0 = time.perf_counter()
                    status, answer = c.post(path, data, method="POST" if data else "GET")
                    out[name].append((time.perf_counter() - t0) * 1000)
                    if status != 200:
                        raise RuntimeError(f"{name} {path}: HTTP {status}: {answer[:300]!r}")
        rps: dict[str, list[float]] = {n: [] for n in clients}
        for _ in range(args.rounds):
            for name, port in ports.items():
                rps[name].append(
                    _throughput(port, body["one"], args.clients, args.round_requests)
                )
        loads.append(os.getloadavg()[0])
        batch: dict[str, list[float]] = {n: [] for n in clients}
        for _ in range(args.batch_rounds):
            for name, c in clients.items():
                t0 = time.perf_counter()
                status, answer = c.post("/predict", body["batch"])
                batch[name].append((time.perf_counter() - t0) * 1000)
                if status != 200:
                    raise RuntimeError(f"{name} batch: HTTP {status}: {answer[:300]!r}")
        loads.append(os.getloadavg()[0])
    ref = statistics.median(single["bentoml"]), statistics.median(rps["bentoml"])
    print(
        f"\nload average during the run: {min(loads):.1f}-{max(loads):.1f} on "
        f"{os.cpu_count()} cores; {args.requests} interleaved single-patient requests and "
        f"health checks per server, {args.rounds} interleaved throughput rounds of "
        f"{args.round_requests} requests from {args.clients} clients, {args.batch_rounds} "
        "rounds of a 1000-patient batch\n"
    )
    print("| route | single median | single p90 | `GET /healthz` median | throughput | "
          "batch median | median / bentoml | throughput / bentoml |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in clients:
        med, tp = statistics.median(single[name]), statistics.median(rps[name])
        print(
            f"| {name} | {med:.2f} ms | {statistics.quantiles(single[name], n=10)[8]:.2f} ms | "
            f"{statistics.median(health[name]):.2f} ms | {tp:.0f} req/s | "
            f"{statistics.median(batch[name]):.0f} ms | {med / ref[0]:.2f} | {tp / ref[1]:.2f} |"
        )
    found = {n: {"single_ms": statistics.median(single[n]),
                 "throughput_rps": statistics.median(rps[n])} for n in clients}  # fmt: skip
    print(json.dumps(found))


if __name__ == "__main__":
    main()

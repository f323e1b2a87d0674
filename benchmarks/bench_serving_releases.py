"""Benchmark: `bonemet serve` of several worktrees (e.g. the previous release and this one) and
`mlflow models serve`, all running at once, requests interleaved.

One command:

    .venv/bin/python -m benchmarks.bench_serving_releases --tree /tmp/rel --tree . \
        [--requests 400] [--rounds 3] [--clients 16] [--round-requests 400]

On a shared machine the load moves between two runs of ``bench_serving.py`` by more than the
difference being measured. Here every server is up at the same time and measured in turns, so
the machine's load falls on all of them alike:

* single patient: ``--requests`` rounds, each sending one request to every server in turn on
  its own keep-alive connection (median, p90);
* throughput: ``--rounds`` rounds, each giving every server in turn ``--round-requests``
  requests from ``--clients`` concurrent keep-alive clients (median of the rounds' req/s);
* a 1,000-patient batch: ``--batch-rounds`` rounds, each sending the same batch (the first
  ``--batch-size`` simulated patients) to every server in turn (median).

Each tree trains ``cox_ridge`` on ``--n-patients`` simulated patients with its own code (its own
``benchmarks.bench_serving.build_store``: a release's model is pickled with that release's
classes) into its own store and serves it with ``python -m training.cli serve``; the peer,
``mlflow models serve --env-manager local --workers 1``, serves the last tree's version. One
API worker each, no API token (as ``bench_serving.py``). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from benchmarks.bench_serving import HOST, Client, bodies, free_port, running_server

BUILD = (
    "import json, sys; from pathlib import Path; "
    "from benchmarks.bench_serving import build_store; "
    "tmp = Path(sys.argv[1]); _, records, _ = build_store(tmp, int(sys.argv[2])); "
    "(tmp / 'records.json').write_text(json.dumps(records))"
)


def commit(tree: Path) -> str:
    out = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)  # fmt: skip
    return out.stdout.strip() or "?"


def throughput(port: int, path: str, body: bytes, clients: int, total: int) -> float:
    """Requests per second of ``total`` requests from ``clients`` keep-alive clients."""
    share = [total // clients + (1 if k < total % clients else 0) for k in range(clients)]
    barrier = threading.Barrier(clients + 1)
    errors: list[str] = []

    def work(k: int) -> None:
        c = Client(port)
        try:
            barrier.wait(timeout=60)
            for _ in range(share[k]):
                status, _ = c.post(path, body)
                if status != 200:
                    errors.append(f"HTTP {status}")
                    return
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(repr(err))
        finally:
            c.close()

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    barrier.wait(timeout=60)
    t0 = time.perf_counter()
    for t in threads:
        t.join(timeout=600)
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"throughput run failed: {errors[:3]}")
    return total / wall


def add_interleaved_options(parser: argparse.ArgumentParser) -> None:
    """The sizes of an interleaved run (also ``bench_serving_routes.py``'s)."""
    parser.add_argument("--n-patients", type=int, default=1500)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--round-requests", type=int, default=400)
    parser.add_argument("--batch-rounds", type=int, default=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", type=Path, required=True)
    parser.add_argument(
        "--extra-path",
        action="append",
        type=Path,
        default=[],
        help="a folder of packages put after each tree on PYTHONPATH, the peer's too "
        "(e.g. a server package tried before it is a dependency; repeatable)",
    )
    add_interleaved_options(parser)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()
    venv_bin = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="bench_releases_") as tmp, ExitStack() as stack:
        tmp = Path(tmp)
        servers = []  # (name, port, path, body)
        base = {k: v for k, v in os.environ.items()
                if k not in ("MLFLOW_TRACKING_URI", "BONEMET_API_TOKEN", "BONEMET_BENTO_MODEL")}  # fmt: skip
        base.update(OMP_WAIT_POLICY="PASSIVE", PATH=f"{venv_bin}{os.pathsep}{base.get('PATH', '')}")
        records = None
        for i, tree in enumerate(t.resolve() for t in args.tree):
            store = tmp / f"tree{i}"
            store.mkdir()
            path = os.pathsep.join([str(tree), *map(str, args.extra_path)])
            env = dict(base, PYTHONPATH=path, BONEMET_DATA_DIR=str(store / "data"),
                       BENTOML_HOME=str(store / "data" / "bentoml"))  # fmt: skip
            print(f"training with {tree} ...", flush=True)
            subprocess.run([sys.executable, "-c", BUILD, str(store), str(args.n_patients)],
                           env=env, cwd=tree, check=True, capture_output=True)  # fmt: skip
            records = json.loads((store / "records.json").read_text())
            port = free_port()
            cmd = [sys.executable, "-m", "training.cli", "serve", "--port", str(port)]
            stack.enter_context(running_server(cmd, env, tree, port, "/readyz", store / "log"))
            name = f"bonemet serve, {tree.name}@{commit(tree)}"
            servers.append((name, port, "/predict", bodies(records, args.batch_size)["bonemet"]))
        port = free_port()
        cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m",
               "models:/bone-metastasis-risk@champion", "--env-manager", "local",
               "--host", HOST, "--port", str(port), "--workers", "1"]  # fmt: skip
        env = dict(base, MLFLOW_TRACKING_URI=f"sqlite:///{store / 'data' / 'mlflow.db'}")
        if args.extra_path:
            env["PYTHONPATH"] = path  # the last tree's, with the extra folders
        stack.enter_context(running_server(cmd, env, tmp, port, "/ping", tmp / "mlflow.log"))
        servers.append(("mlflow models serve (last tree's version)", port, "/invocations",
                        bodies(records, args.batch_size)["mlflow"]))  # fmt: skip

        clients = [Client(port) for _, port, _, _ in servers]
        single: list[list[float]] = [[] for _ in servers]
        loads = []
        for r in range(args.warmup + args.requests):
            for k, (name, _, path, body) in enumerate(servers):
                t0 = time.perf_counter()
                status, data = clients[k].post(path, body["one"])
                dt = time.perf_counter() - t0
                if status != 200:
                    raise RuntimeError(f"{name}: HTTP {status}: {data[:300]!r}")
                if r >= args.warmup:
                    single[k].append(dt * 1000)
            if r % 100 == 0:
                loads.append(os.getloadavg()[0])
        batch: list[list[float]] = [[] for _ in servers]
        for r in range(1 + args.batch_rounds):  # the first round warms up
            for k, (name, _, path, body) in enumerate(servers):
                t0 = time.perf_counter()
                status, data = clients[k].post(path, body["batch"])
                if status != 200:
                    raise RuntimeError(f"{name}: batch HTTP {status}: {data[:300]!r}")
                if r:
                    batch[k].append((time.perf_counter() - t0) * 1000)
            loads.append(os.getloadavg()[0])
        for c in clients:
            c.close()
        rps: list[list[float]] = [[] for _ in servers]
        for _ in range(args.rounds):
            for k, (_, port, path, body) in enumerate(servers):
                rps[k].append(
                    throughput(port, path, body["one"], args.clients, args.round_requests)
                )
            loads.append(os.getloadavg()[0])

    peer = statistics.median(rps[-1])
    print(
        f"\nload average during the run: {min(loads):.1f}-{max(loads):.1f} on "
        f"{os.cpu_count()} cores; {args.requests} interleaved single-patient requests per server, "
        f"{args.rounds} interleaved throughput rounds of {args.round_requests} requests from "
        f"{args.clients} clients, {args.batch_rounds} interleaved rounds of a "
        f"{args.batch_size}-patient batch\n"
    )
    print("| server | single median | single p90 | throughput (median of rounds) | / mlflow "
          "| batch median |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for k, (name, _, _, _) in enumerate(servers):
        s = sorted(single[k])
        print(
            f"| {name} | {statistics.median(s):.2f} ms | {s[int(0.9 * (len(s) - 1))]:.2f} ms | "
            f"{statistics.median(rps[k]):.0f} req/s | {statistics.median(rps[k]) / peer:.1f}x | "
            f"{statistics.median(batch[k]):.0f} ms |"
        )


if __name__ == "__main__":
    main()

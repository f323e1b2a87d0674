"""Benchmark: `bonemet serve --workers 1` vs `--workers 2` on the same registered version.

One command:  .venv/bin/python -m benchmarks.bench_serving_workers [--rounds 3] [--clients 16]

Trains ``cox_ridge`` on the demo cohort into a temporary store and promotes it (as
``benchmarks.bench_serving`` does), then starts ``bonemet serve --workers N`` for N = 1, 2,
alternately for ``--rounds`` rounds (so slow drift of the machine falls on both), one server at a
time on a free 127.0.0.1 port, and measures with the same client as ``bench_serving``:

* single-patient latency on one keep-alive connection (``--requests`` sequential requests after
  ``--warmup``): median and p99. With Nagle's algorithm on in a worker this median would jump by
  ~40 ms (the client's delayed ACK), so the benchmark also reads TCP_NODELAY on the server's end
  of ``--clients`` concurrent connections, in whichever worker accepted each;
* throughput: ``--clients`` threads, each with its own keep-alive connection, send
  ``--throughput-requests`` single-patient requests in total (requests/s), and the latency of
  those requests (median, p99);
* the CPU seconds the server's processes used over the measurement, and each worker's share
  (from /proc), and the resident memory of the server's process tree.

Each metric is the median over the rounds. Results go to docs/benchmarks.md (section "Serving
with one and two workers").
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from benchmarks.bench_serving import (  # noqa: E402
    HOST,
    bodies,
    build_store,
    free_port,
    measure,
    p99,
    running_server,
    versions,
)
from benchmarks.common import (  # noqa: E402
    accepted_socket,
    cpu_seconds,
    machine,
    processes,
    tcp_nodelay,
    tree_rss_mb,
    write_section,
)

SECTION = "## Serving with one and two workers (benchmarks/bench_serving_workers.py)"
WORKER_COUNTS = (1, 2)


def nodelay_by_worker(root: int, port: int, n: int) -> dict[int, list[bool]]:
    """TCP_NODELAY of the server's end of ``n`` concurrent connections, by accepting worker."""

    def connect(_):
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        conn.request("GET", "/readyz")
        conn.getresponse().read()
        return conn

    with ThreadPoolExecutor(n) as pool:
        conns = list(pool.map(connect, range(n)))
    out: dict[int, list[bool]] = {}
    try:
        for conn in conns:
            where = accepted_socket(root, port, conn.sock.getsockname()[1])
            if where is None:
                raise RuntimeError(f"no server process holds connection {conn.sock}")
            out.setdefault(where[0], []).append(tcp_nodelay(*where))
    finally:
        for conn in conns:
            conn.close()
    return out


def run_one(workers: int, tmp: Path, env: dict, body: dict, args) -> dict:
    """Start ``bonemet serve --workers N``, measure, stop it."""
    port = free_port()
    cmd = [sys.executable, "-m", "training.cli", "serve", "--port", str(port)]
    cmd += ["--workers", str(workers)]
    log = tmp / f"workers{workers}.log"
    with running_server(cmd, env, tmp, port, "/readyz", log) as n_processes:
        (root,) = processes(os.getpid(), "training.cli", "serve", "--port", str(port))
        pids = {root} | processes(root)
        worker_pids = processes(root, "_bentoml_impl.worker.service")
        try:
            nodelay = nodelay_by_worker(root, port, args.clients)
            nodelay_error = None
        except OSError as err:  # pidfd_getfd not allowed here: say so, measure anyway
            nodelay, nodelay_error = {}, str(err)
        cpu0 = {pid: cpu_seconds({pid}) for pid in pids}
        result = measure(port, "/predict", body, args, log, "/healthz")
        cpu = {pid: cpu_seconds({pid}) - before for pid, before in cpu0.items()}
        result["server_cpu_s"] = sum(cpu.values())
        result["worker_cpu_s"] = sorted((cpu[pid] for pid in worker_pids), reverse=True)
        result["rss_mb"] = tree_rss_mb(root)
    result.update(
        processes=n_processes,
        # how the workers took the concurrent connections (the kernel picks: per connection)
        conns_by_worker=sorted((len(nodelay.get(pid, [])) for pid in worker_pids), reverse=True),
        nodelay=nodelay,
        nodelay_error=nodelay_error,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-patients", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--throughput-requests", type=int, default=1600)
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()
    if min(args.rounds, args.requests, args.clients, args.throughput_requests) < 1:
        parser.error("counts must be >= 1")
    # measure() also times a batch; one small batch keeps that out of the way here.
    args.batch_size, args.batch_repeats = 1, 1

    venv_bin = Path(sys.executable).parent
    runs: dict[int, list[dict]] = {n: [] for n in WORKER_COUNTS}
    with tempfile.TemporaryDirectory(prefix="bench_workers_") as tmp:
        tmp = Path(tmp)
        os.environ["BENTOML_HOME"] = str(tmp / "data" / "bentoml")
        print(f"training cox_ridge on {args.n_patients} simulated patients ...", flush=True)
        version, records, _ = build_store(tmp, args.n_patients)
        body = bodies(records, 1)["bonemet"]
        drop = {
            "MLFLOW_TRACKING_URI",
            "BONEMET_API_TOKEN",
            "BONEMET_BENTO_MODEL",
            "BONEMET_WORKERS",
        }
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env.update(
            BONEMET_DATA_DIR=str(tmp / "data"),
            BENTOML_HOME=str(tmp / "data" / "bentoml"),
            OMP_WAIT_POLICY="PASSIVE",
            PATH=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        for k in range(args.rounds):
            for workers in WORKER_COUNTS:
                print(f"round {k + 1}: bonemet serve --workers {workers} ...", flush=True)
                r = run_one(workers, tmp, env, body, args)
                runs[workers].append(r)
                print(
                    f"  single median {statistics.median(r['single_ms']):.2f} ms, "
                    f"{r['throughput_rps']:.1f} req/s, load {r['load']:.1f}",
                    flush=True,
                )
    text = report(args, version, runs)
    print(text)
    if not args.no_write:
        write_section(text, SECTION)


def _median_of(runs: list[dict], metric) -> float:
    return statistics.median(metric(r) for r in runs)


def report(args, version: str, runs: dict[int, list[dict]]) -> str:
    metrics = [
        (
            f"single patient, median ({args.requests} sequential on one keep-alive connection)",
            lambda r: statistics.median(r["single_ms"]),
            "{:.2f} ms",
        ),
        ("single patient, p99", lambda r: p99(r["single_ms"]), "{:.2f} ms"),
        (
            "single patient, median inside the server (its audit log: middleware to last byte)",
            lambda r: statistics.median(r["single_server_ms"] or [float("nan")]),
            "{:.2f} ms",
        ),
        (
            f"throughput, {args.clients} concurrent clients ({args.throughput_requests} "
            "single-patient requests)",
            lambda r: r["throughput_rps"],
            "{:.1f} req/s",
        ),
        (
            "latency under that load, median",
            lambda r: statistics.median(r["loaded_ms"]),
            "{:.1f} ms",
        ),
        ("latency under that load, p99", lambda r: p99(r["loaded_ms"]), "{:.1f} ms"),
        (
            "server CPU over the whole measurement (all its processes)",
            lambda r: r["server_cpu_s"],
            "{:.1f} s",
        ),
        ("resident memory of the server's processes", lambda r: r["rss_mb"], "{:.0f} MB"),
    ]
    one, two = runs[1], runs[2]
    cmd = (
        f"`.venv/bin/python -m benchmarks.bench_serving_workers --rounds {args.rounds} "
        f"--requests {args.requests} --clients {args.clients} "
        f"--throughput-requests {args.throughput_requests}`"
    )
    loads = {n: ", ".join(f"{r['load']:.1f}" for r in rs) for n, rs in runs.items()}
    lines = [
        SECTION,
        "",
        f"Machine: {machine()}. Command: {cmd}. The same registered version ({version}, "
        f"`cox_ridge` trained on {args.n_patients} simulated patients, alias `champion`) served "
        "by `bonemet serve --workers 1` and `--workers 2`, one server at a time on 127.0.0.1, "
        f"alternately for {args.rounds} round(s); each number is the median over the rounds. "
        f"{versions()}. Processes in all: {one[0]['processes']} with one worker, "
        f"{two[0]['processes']} with two (the CLI, BentoML's arbiter, the workers). Client: "
        "Python `http.client` keep-alive connections (TCP_NODELAY), one thread each, on the "
        "same 2 cores as the server. 1-minute load average when each measurement started: "
        f"one worker {loads[1]}; two workers {loads[2]} (other work on the machine inflates and "
        "spreads the numbers).",
        "",
        "| metric | --workers 1 | --workers 2 | 2 / 1 |",
        "|---|---|---|---|",
    ]
    for label, metric, fmt in metrics:
        a, b = _median_of(one, metric), _median_of(two, metric)
        ratio = f"{b / a:.2f}x" if a and a == a else ""  # none for 0 or NaN
        lines.append(f"| {label} | {fmt.format(a)} | {fmt.format(b)} | {ratio} |")
    spread = "; ".join(
        f"round {k + 1}: " + " + ".join(f"{c:.1f}" for c in r["worker_cpu_s"]) + " s"
        for k, r in enumerate(two)
    )
    lines += [
        "",
        f"CPU of each of the two workers over the measurement (both must work for the second "
        f"to pay off): {spread}.",
        "",
        nodelay_line(runs),
        "",
    ]
    return "\n".join(lines) + "\n"


def nodelay_line(runs: dict[int, list[dict]]) -> str:
    """What was read of TCP_NODELAY on the servers' accepted connections."""
    parts = []
    for n, rs in runs.items():
        errors = [r["nodelay_error"] for r in rs if r["nodelay_error"]]
        if errors:
            parts.append(f"{n} worker(s): not read ({errors[0]})")
            continue
        conns = sum(len(v) for r in rs for v in r["nodelay"].values())
        on = sum(sum(v) for r in rs for v in r["nodelay"].values())
        spread = ", ".join("+".join(str(c) for c in r["conns_by_worker"]) for r in rs)
        parts.append(
            f"{n} worker(s): {on} of {conns} connections with TCP_NODELAY "
            f"(connections taken by each worker, round by round: {spread})"
        )
    return (
        "Nagle's algorithm: TCP_NODELAY read on the server's end of each of "
        "the concurrent connections opened before each throughput run (the socket copied from "
        "the worker that accepted it with `pidfd_getfd`): " + "; ".join(parts) + "."
    )


if __name__ == "__main__":
    main()

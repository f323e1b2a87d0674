"""Profile of one single-patient ``POST /predict`` through the whole stack, in process, per layer.

One command (compare trees, e.g. a release's worktree with this one, in the same run):

    .venv/bin/python benchmarks/profile_serving.py --tree /tmp/rel --tree . [--requests 2000]

For each tree, a fresh process with ``PYTHONPATH`` set to that tree trains ``cox_ridge`` with
the tree's own code (its ``benchmarks.bench_serving.build_store``, small cohort), imports the
champion for serving as ``bonemet serve`` does, builds the service's full ASGI application
(``BoneMetastasisService.to_asgi()``: BentoML's app with every middleware, the gateway
included) and calls it directly, without sockets, with the same single-patient body and a bearer
token (the audit line of each request goes to the worker's log, as a server's to its
stderr). What it measures, per tree:

* the in-process median CPU time of one request (no profiler; the thread's CPU time, which
  the machine's other work inflates much less than wall time, though it still shares caches);
* with ``--floor``, BentoML's floor on the same stack: the same app, gateway and request
  parsing with the handler answering a constant (the real answer, built once; on a tree
  whose gateway answers ``POST /predict`` directly, the floor of that route);
* with cProfile over ``--requests`` requests: Python function calls per request (deterministic:
  it does not depend on the load) and each layer's share of the profiled time. A layer is
  the file a function belongs to; time spent in C built-ins (``json.loads``, numpy's ufuncs,
  pydantic-core) is given to the layer of the Python function that called them.

Prints a markdown table (and ``--json`` writes the figures). The socket, HTTP parsing and the
server loop are not in it: ``benchmarks/bench_serving.py`` measures them from outside.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
TOKEN = "profile-token-0123456789abcdef0123456789"
HORIZONS = [12.0, 24.0, 36.0, 60.0]
#: (layer, substrings of a file path), first match wins.
LAYERS = (
    ("gateway middleware (serving/gateway.py, logs.py)", ("serving/gateway", "serving/logs")),
    ("interval computation (training/artifact/intervals.py)", ("artifact/intervals",)),
    ("service code (serving/service.py, schemas.py)", ("serving/",)),
    ("contract checks (features/)", ("features/",)),
    ("model code (training/)", ("training/",)),
    ("pydantic (parse, validate, dump)", ("pydantic",)),
    ("numpy / scipy / sklearn / sksurv", ("numpy", "scipy", "sklearn", "sksurv", "pandas")),
    ("MLflow pyfunc", ("mlflow",)),
    ("BentoML app and its middlewares", ("bentoml", "_bentoml")),
    ("Starlette / anyio / asyncio", ("starlette", "anyio", "asyncio", "sniffio")),
    ("stdlib (json, logging, uuid, ...)", ("/lib/python",)),
)


def layer_of(filename: str) -> str:
    for name, keys in LAYERS:
        if any(k in filename for k in keys):
            return name
    return "other"


# --------------------------------------------------------------------------- one tree (worker)


def build(tmp: Path, n_patients: int) -> bytes:
    """Train and promote cox_ridge with this tree's code; the single-patient body."""
    from benchmarks.bench_serving import build_store

    _, records, _ = build_store(tmp, n_patients)
    one = next(r for r in records if not r.get("bone_metastasis_at_enrollment"))
    return json.dumps({"patients": [one], "horizons_months": HORIZONS}).encode()


def import_for_serving(tmp: Path) -> None:
    from training.config import Settings

    try:
        from training.registry import bento
        from training.store import backend as tracking
    except ImportError:  # the layout of a month ago
        from training import bento, tracking
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # no alias follower in this process
    settings = Settings(data_dir=tmp / "data")
    tracking.configure(settings)
    serving = bento.import_for_serving("models:/bone-metastasis-risk@champion", settings)
    for key, value in serving.environment().items():
        if key not in ("MLFLOW_TRACKING_URI", "BONEMET_FOLLOW_ALIAS"):
            os.environ[key] = value


async def run(app, body: bytes, n: int, profile: cProfile.Profile | None) -> list[float]:
    """Lifespan startup, then ``n`` requests straight into the ASGI app."""
    events: asyncio.Queue = asyncio.Queue()
    started = asyncio.Event()

    async def l_receive():
        return await events.get()

    async def l_send(message):
        if message["type"].startswith("lifespan.startup"):
            if message["type"].endswith("failed"):
                raise RuntimeError(message.get("message"))
            started.set()

    life = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                   l_receive, l_send))  # fmt: skip
    await events.put({"type": "lifespan.startup"})
    await started.wait()
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"authorization", f"Bearer {TOKEN}".encode()),
    ]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/predict", "raw_path": b"/predict", "root_path": "",
        "query_string": b"", "headers": headers, "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 3000), "state": {},
    }  # fmt: skip
    times = []
    for _ in range(n):
        out = {}
        sent = False

        async def receive():
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            if message["type"] == "http.response.start":
                out["status"] = message["status"]
            elif message["type"] == "http.response.body":
                out["body"] = out.get("body", b"") + message.get("body", b"")

        t0 = time.thread_time()
        if profile is not None:
            profile.enable()
        await app(dict(scope, state={}), receive, send)
        if profile is not None:
            profile.disable()
        times.append(time.thread_time() - t0)
        if out.get("status") != 200:
            raise RuntimeError(f"status {out.get('status')}: {out.get('body', b'')[:300]!r}")
    await events.put({"type": "lifespan.shutdown"})
    await life
    return times


def worker(tmp: Path, n_patients: int, n: int) -> dict:
    tmp = Path(tmp)
    os.environ["BENTOML_HOME"] = str(tmp / "data" / "bentoml")
    body = build(tmp, n_patients)
    import_for_serving(tmp)
    os.environ["BONEMET_API_TOKEN"] = TOKEN
    import serving.service as svc

    app = svc.BoneMetastasisService.to_asgi(is_main=True)
    asyncio.run(run(app, body, 50, None))  # warm-up
    out = measured(app, body, n, tmp / "profile.pstats")
    # BentoML's floor on the same stack: the same app, gateway and request parsing, the
    # handler answering a constant (the real answer, built once) instead of checking the
    # contract and running the model.
    # The handler is ``_respond`` where the gateway answers ``POST /predict`` itself (both
    # routes call it), ``_answer`` in trees before that.
    inner = svc.BoneMetastasisService.inner
    handler = "_respond" if hasattr(inner, "_respond") else "_answer"
    real = getattr(inner, handler)
    constant: dict = {}

    def answer_constant(self, *args, **kwargs):
        if "answer" not in constant:
            constant["answer"] = real(self, *args, **kwargs)
        return constant["answer"]

    setattr(inner, handler, answer_constant)
    asyncio.run(run(app, body, 50, None))
    out["floor"] = measured(app, body, n, tmp / "floor.pstats")
    return out


def measured(app, body: bytes, n: int, dump: Path) -> dict:
    """Median CPU time of a request without the profiler, then calls and layer shares with."""
    plain = asyncio.run(run(app, body, n, None))
    prof = cProfile.Profile()
    asyncio.run(run(app, body, n, prof))
    stats = pstats.Stats(prof)
    prof.dump_stats(dump)
    per_layer: dict[str, float] = {}
    layer_calls: dict[str, float] = {}
    calls = 0
    for (filename, _, _), (_, nc, tt, _, callers) in stats.stats.items():
        calls += nc
        if filename != "~":
            per_layer[layer_of(filename)] = per_layer.get(layer_of(filename), 0.0) + tt
            layer_calls[layer_of(filename)] = layer_calls.get(layer_of(filename), 0) + nc / n
            continue
        for (cfile, _, _), c in callers.items():  # built-in: its callers' layers
            key = layer_of(cfile) if cfile != "~" else "other"
            per_layer[key] = per_layer.get(key, 0.0) + c[2]
            layer_calls[key] = layer_calls.get(key, 0) + c[1] / n
    total = sum(per_layer.values())
    top = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:40]
    return {
        "top": [f"{tt / n * 1e6:8.1f} us {nc / n:6.1f}x {f}:{ln}({fn})"
                for (f, ln, fn), (_, nc, tt, _, _) in top],  # fmt: skip
        "median_ms": statistics.median(plain) * 1000,
        "calls_per_request": calls / n,
        "layer_calls": layer_calls,
        "share": {k: v / total for k, v in per_layer.items()},
        "profiled_ms_per_request": total / n * 1000,
    }


# --------------------------------------------------------------------------- driver


def table(results: dict[str, dict]) -> str:
    names = list(results)
    head = "| layer | " + " | ".join(
        f"{n}: calls | {n}: time share | {n}: ms (est.)" for n in names
    ) + " |"
    lines = [head, "|---|" + "---:|---:|---:|" * len(names)]
    layers = [n for n, _ in LAYERS] + ["other"]
    for layer in layers:
        cells = []
        for n in names:
            r = results[n]
            s = r["share"].get(layer, 0.0)
            calls = r.get("layer_calls", {}).get(layer, 0)
            cells += [f"{calls:.0f}", f"{s * 100:.1f} %", f"{s * r['median_ms']:.3f}"]
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    calls = [c for n in names for c in (f"**{results[n]['calls_per_request']:.0f}**", "", "")]
    median = [c for n in names for c in ("", "", f"**{results[n]['median_ms']:.3f} ms**")]
    lines.append("| **Python calls per request** (deterministic) | " + " | ".join(calls) + " |")
    lines.append("| **in-process median CPU time, no profiler** | " + " | ".join(median) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", type=Path, help="a worktree (repeatable)")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--n-patients", type=int, default=600)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--top", action="store_true", help="print the costliest functions")
    parser.add_argument("--keep", type=Path, default=None, help="copy each tree's pstats here")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when the last tree's calls per request are >25%% above the stored figure "
        "of the previous release (benchmarks/serving_release.json)",
    )
    parser.add_argument(
        "--floor", action="store_true", help="also show each tree's constant-answer floor"
    )
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        out = worker(args.worker, args.n_patients, args.requests)
        (args.worker / "profile.json").write_text(json.dumps(out))
        return
    results = {}
    for tree in args.tree or [Path.cwd()]:
        tree = tree.resolve()
        with tempfile.TemporaryDirectory(prefix="profile_serving_") as tmp:
            env = dict(os.environ, PYTHONPATH=str(tree), OMP_WAIT_POLICY="PASSIVE")
            for key in ("MLFLOW_TRACKING_URI", "BONEMET_API_TOKEN", "BONEMET_BENTO_MODEL"):
                env.pop(key, None)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", tmp]
            cmd += ["--requests", str(args.requests), "--n-patients", str(args.n_patients)]
            print(f"profiling {tree} ...", flush=True)
            with open(Path(tmp) / "log", "w") as log:
                proc = subprocess.run(cmd, env=env, cwd=tree, stdout=log, stderr=subprocess.STDOUT)
            if proc.returncode != 0:
                sys.exit(f"{tree}: worker failed:\n{(Path(tmp) / 'log').read_text()[-3000:]}")
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                for kind in ("profile", "floor"):
                    if (Path(tmp) / f"{kind}.pstats").exists():
                        (args.keep / f"{tree.name}.{kind}.pstats").write_bytes(
                            (Path(tmp) / f"{kind}.pstats").read_bytes()
                        )
            found = json.loads((Path(tmp) / "profile.json").read_text())
            name = f"{tree.name}@{_commit(tree)}"
            floor = found.pop("floor", None)
            results[name] = found
            if floor is not None and args.floor:
                results[f"{name} floor"] = floor
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(table(results))
    if args.top:
        for name, r in results.items():
            print(f"\n{name}: functions by own time per request\n" + "\n".join(r["top"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.check:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from benchmarks.regression import fail_on_regression

        last = list(results.values())[-1]
        fail_on_regression({"python_calls_per_request": last["calls_per_request"]})


def _commit(tree: Path) -> str:
    out = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)  # fmt: skip
    return out.stdout.strip() or "?"


if __name__ == "__main__":
    main()

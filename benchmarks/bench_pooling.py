"""Benchmark: do the pooled O/E estimates recover the simulated between-site heterogeneity?

One command:  .venv/bin/python -m benchmarks.bench_pooling [--draws 20] [--sites 8]
[--patients-per-site 300] [--method REML]

Each draw simulates ``--sites`` random sites (features.simulate.sites.random_sites: log hazard
ratio of bone metastasis sd 0.25, of death sd 0.20, case mix and follow-up varying) and measures
at every site the model that predicts each patient's true incidence in the *reference*
population (the same patients simulated with every site at the reference parameters: same seed,
same covariates and draws). The true O/E of a site is the mean true 24-month incidence over the
mean reference incidence in a large sample of its patients (``--truth-patients-per-site``); its
spread over all sites of all draws is the true heterogeneity (tau^2 of log O/E). Per draw, ``bonemet evaluate --by``'s statistics
(training.validation.groups.group_metrics, pool_table) estimate tau^2, the pooled O/E with its
interval and the prediction interval for a new site; the table says how often the intervals
cover the truth: the CI the population's mean true log O/E, the prediction interval the true O/E
of each site of the *next* draw (new sites). Writes docs/benchmarks.md (section "pooling").
"""

from __future__ import annotations

import argparse
import math
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

SECTION = "## pooling: heterogeneity recovered over repeated draws (benchmarks/bench_pooling.py)"


def _site_log_oe(sites, n: int, seed: int):
    """Per site: log(mean true incidence / mean reference incidence) over ``n`` patients, the
    truth of each site's O/E in its population when ``n`` is large."""
    import dataclasses

    import numpy as np

    from features.simulate.sites import simulate_sites

    reference = tuple(dataclasses.replace(s, hr_bone_metastasis=1.0, hr_death=1.0) for s in sites)
    data = simulate_sites(n, seed, sites, 1)
    ref = simulate_sites(n, seed, reference, 1)
    free = ~data.patients["bone_metastasis_at_enrollment"].astype(bool).to_numpy()
    labels = data.patients.loc[free, "site_id"].to_numpy(object)
    true = data.truth.loc[free, "cif_bm_24m"].to_numpy()
    pred = ref.truth.loc[free, "cif_bm_24m"].to_numpy()
    logs = [math.log(true[labels == s.site_id].mean() / pred[labels == s.site_id].mean())
            for s in sites]
    return np.array(logs), data, ref, free


def one_draw(seed: int, k: int, per_site: int, method: str, truth_per_site: int):
    from features.simulate.sites import random_sites
    from training.models.competing import make_target
    from training.validation.groups import group_metrics
    from training.validation.pooling import pool_table

    sites = random_sites(k, seed)
    # The truth: each site's population O/E, from a large sample of its own patients. (The
    # patients of the sample below would give a truth conditional on their covariates, whose
    # spread is smaller than the sampling variance the Aalen-Johansen estimator reports.)
    true_log_oe = _site_log_oe(sites, k * truth_per_site, seed + 10**6)[0]
    _, data, ref, free = _site_log_oe(sites, k * per_site, seed)
    p = data.patients[free]
    y = make_target(p["event"].to_numpy(object), p["time_days"].to_numpy(float))
    pred = ref.truth.loc[free, "cif_bm_24m"].to_numpy()
    labels = p["site_id"].to_numpy(object)
    table = group_metrics(y, pred, {24: pred}, labels, horizons=(24,), headline=24, n_boot=50)
    pooled = pool_table(table, "site_id", method=method, metrics=("oe_ratio_24m",))
    return true_log_oe, pooled["oe_ratio_24m"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--sites", type=int, default=8)
    parser.add_argument("--patients-per-site", type=int, default=300)
    parser.add_argument("--truth-patients-per-site", type=int, default=3000)
    parser.add_argument("--method", default="REML", choices=("REML", "DL"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    import numpy as np

    from benchmarks.common import machine, write_section

    t0 = time.perf_counter()
    draws = [
        one_draw(
            1000 + i, args.sites, args.patients_per_site, args.method,
            args.truth_patients_per_site,
        )
        for i in range(args.draws + 1)  # the last one only provides new sites
    ]
    seconds = time.perf_counter() - t0
    all_true = np.concatenate([d[0] for d in draws])
    true_tau2 = float(np.var(all_true, ddof=1))
    true_mean = float(np.mean(all_true))
    est = [d[1]["analysis_scale"] for d in draws[:-1]]
    tau2 = np.array([e["tau2"] for e in est])
    ci = np.mean([e["ci_low"] <= true_mean <= e["ci_high"] for e in est])
    pi = np.mean(
        [
            np.mean((e["pi_low"] <= nxt[0]) & (nxt[0] <= e["pi_high"]))
            for e, nxt in zip(est, draws[1:], strict=True)
        ]
    )
    mean_est = np.mean([e["estimate"] for e in est])
    lines = [
        SECTION,
        "",
        f"{machine()}. `python -m benchmarks.bench_pooling --draws {args.draws} --sites "
        f"{args.sites} --patients-per-site {args.patients_per_site} --truth-patients-per-site "
        f"{args.truth_patients_per_site} --method {args.method}` "
        f"({seconds / 60:.1f} min). The model predicts each patient's true incidence in the "
        "reference population; the sites differ at random (features.simulate.sites."
        "SITE_SPREAD), so the truth of log O/E per site is known. Coverage is over draws; "
        "each draw pools its sites with REML and Hartung-Knapp (the default of "
        "`bonemet evaluate --by`).",
        "",
        "| quantity | truth | estimated (mean over draws) | coverage of 95 % interval |",
        "|---|---|---|---|",
        f"| log O/E at 24 months, mean over sites | {true_mean:.3f} | {mean_est:.3f} | "
        f"CI {100 * ci:.0f} % |",
        f"| tau^2 of log O/E | {true_tau2:.4f} | {np.mean(tau2):.4f} (median "
        f"{np.median(tau2):.4f}; 0 in {np.mean(tau2 == 0) * 100:.0f} % of draws) | |",
        f"| O/E of a new site | | | prediction interval {100 * pi:.0f} % |",
        "",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()

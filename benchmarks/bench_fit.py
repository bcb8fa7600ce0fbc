"""The fit with the emulator against the fit with the full HR simulation, on the same mock with the same dynesty
settings and seed: wall time, likelihood calls, time per call and posterior medians side by side; then a recovery
study over several mocks with the emulator (all 18 parameters free).

    python benchmarks/bench_fit.py [--nlive 60] [--free 6] [--mocks 4] [--workers 2]

The simulator fit is slow by construction (that is the point); ``--free`` limits both fits of the first part to
the first k parameters of a fixed list (the rest held at the truth) so that it finishes in minutes.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import machine_line  # noqa: E402

from galsr.fitting import fit  # noqa: E402
from galsr.mock import example_parameters, make_mock  # noqa: E402
from galsr.simulator import HR_GRID, PARAM_NAMES, ParameterSpace  # noqa: E402

ORDER = ("log10_disc2_mass", "inclination", "orientation", "log10_disc1_mass", "log10_bulge_mass", "ML_d2",
         "log10_disc2_radius", "k2", "log10_halo_fraction", "x0", "y0", "ML_b", "ML_d1", "k1", "gamma",
         "log10_bulge_radius", "log10_disc1_radius", "concentration")


def _run(galaxy, forward, free, args):
    fixed = {n: float(galaxy.truth[i]) for i, n in enumerate(PARAM_NAMES) if n not in free}
    return fit(galaxy, forward=forward, nlive=args.nlive, workers=args.workers, fixed=fixed, seed=args.seed,
               dlogz=args.dlogz)


def speed_comparison(args):
    galaxy = make_mock(example_parameters(), seed=1, snr=30.0, grid=HR_GRID)
    free = ORDER[: args.free]
    runs = {f: _run(galaxy, f, free, args) for f in ("emulator", "simulator")}
    print(f"\n== same mock, same settings (nlive {args.nlive}, dlogz {args.dlogz}, seed {args.seed}, "
          f"{args.workers} workers), {len(free)} free parameters ==")
    print(f"{'':<26}{'emulator':>20}{'simulator':>20}")
    rows = [("wall time [s]", "wall_time_s", "{:.1f}"), ("likelihood calls", "n_likelihood_calls", "{:d}"),
            ("model call [ms]", "forward_model_latency_ms", "{:.2f}")]
    for label, key, fmt in rows:
        print(f"{label:<26}" + "".join(f"{fmt.format(runs[f].run[key]):>20}" for f in runs))
    for name in free:
        e, s = (runs[f].summary["parameters"][name] for f in ("emulator", "simulator"))
        print(f"{name:<26}{e['median']:>9.4f} ± {(e['p84'] - e['p16']) / 2:<8.2g}"
              f"{s['median']:>9.4f} ± {(s['p84'] - s['p16']) / 2:<8.2g}  truth {e['truth']:.4f}")
    speed = runs["simulator"].run["wall_time_s"] / runs["emulator"].run["wall_time_s"]
    print(f"fit speed-up (wall time): {speed:.1f} x")
    return {f: {"run": runs[f].run, "summary": runs[f].summary} for f in runs}


def recovery_study(args):
    space = ParameterSpace()
    truths = space.sample_lhs(args.mocks, seed=args.seed + 100)
    rel, in68, in95 = [], [], []
    for k, truth in enumerate(truths):
        galaxy = make_mock(truth, seed=k, snr=30.0)
        res = _run(galaxy, "emulator", PARAM_NAMES, args)
        for j, name in enumerate(PARAM_NAMES):
            e = res.summary["parameters"][name]
            width = space.bounds[j, 1] - space.bounds[j, 0]
            rel.append(abs(e["median"] - truth[j]) / width)
            in68.append(e["p16"] <= truth[j] <= e["p84"])
        lo, hi = np.percentile(res.equal_samples, [2.5, 97.5], axis=0)
        in95 += list((lo <= truth) & (truth <= hi))
    print(f"\n== recovery: {args.mocks} random mocks (S/N 30), all 18 parameters free, emulator ==")
    print(f"median |median - truth| / prior width: {100 * np.median(rel):.2f} %")
    print(f"true values inside the 68 % interval: {100 * np.mean(in68):.0f} %; inside 95 %: {100 * np.mean(in95):.0f} %")
    return {"median_rel_error_of_prior_width": float(np.median(rel)), "in68": float(np.mean(in68)),
            "in95": float(np.mean(in95))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nlive", type=int, default=60)
    ap.add_argument("--dlogz", type=float, default=0.5)
    ap.add_argument("--free", type=int, default=6, help="free parameters in the speed comparison (default 6)")
    ap.add_argument("--mocks", type=int, default=3, help="mocks in the recovery study (0: skip)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the numbers here")
    args = ap.parse_args()
    print(machine_line())
    out = {"speed": speed_comparison(args)}
    if args.mocks:
        out["recovery"] = recovery_study(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2, default=str)


if __name__ == "__main__":
    main()

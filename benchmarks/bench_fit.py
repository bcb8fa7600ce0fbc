"""The fit with the emulator + its simulator-exact finish (galsr.finish) against the fit with the full HR
simulation, on the same mock with the same dynesty settings and seed: end-to-end wall time (emulator run + finish
against the simulator run), likelihood calls, time per call and posterior medians side by side; then a recovery
study over several mocks with the emulator (all 18 parameters free).

    python benchmarks/bench_fit.py [--nlive N] [--free 6] [--mocks 4] [--workers 2] [--emulator FILE]

Sampler settings: galsr.fitting.DEFAULTS unless --nlive / --dlogz are given; the mock has the default MaNGA-like
noise (galsr.noise) at S/N 30.
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

from galsr.finish import finish_fit  # noqa: E402
from galsr.fitting import fit  # noqa: E402
from galsr.mock import example_parameters, make_mock  # noqa: E402
from galsr.simulator import HR_GRID, PARAM_NAMES, ParameterSpace  # noqa: E402
from galsr.simulator.fileio import write_text_atomic  # noqa: E402

ORDER = ("log10_disc2_mass", "inclination", "orientation", "log10_disc1_mass", "log10_bulge_mass", "ML_d2",
         "log10_disc2_radius", "k2", "log10_halo_fraction", "x0", "y0", "ML_b", "ML_d1", "k1", "gamma",
         "log10_bulge_radius", "log10_disc1_radius", "concentration")


def _run(galaxy, forward, free, args):
    fixed = {n: float(galaxy.truth[i]) for i, n in enumerate(PARAM_NAMES) if n not in free}
    return fit(galaxy, forward=forward, emulator=args.emulator, nlive=args.nlive, workers=args.workers, fixed=fixed,
               seed=args.seed, dlogz=args.dlogz)


def speed_comparison(args):
    galaxy = make_mock(example_parameters(), seed=1, snr=30.0, grid=HR_GRID)
    free = ORDER[: args.free]
    runs = {f: _run(galaxy, f, free, args) for f in ("emulator", "simulator")}
    runs["emulator + finish"] = finish_fit(runs["emulator"], workers=args.workers, seed=args.seed)
    fin = runs["emulator + finish"].summary["finish"]
    wall = {"emulator": runs["emulator"].run["wall_time_s"], "simulator": runs["simulator"].run["wall_time_s"]}
    wall["emulator + finish"] = wall["emulator"] + fin["wall_time_s"]
    s0 = runs["simulator"].settings
    print(f"\n== same mock, same settings (nlive {s0['nlive']}, {s0['sample']} {s0['walks'] or 'default steps'}, dlogz {s0['dlogz']}, "
          f"seed {s0['seed']}, {args.workers} workers), {len(free)} free parameters ==")
    names = ("emulator", "emulator + finish", "simulator")
    print(f"{'':<26}" + "".join(f"{n:>22}" for n in names))
    print(f"{'wall time [s]':<26}" + "".join(f"{wall[n]:>22.1f}" for n in names))
    calls = {n: runs[n].run["n_likelihood_calls"] for n in names}
    print(f"{'likelihood calls':<26}" + "".join(f"{calls[n]:>22,d}" for n in names))
    print(f"{'exact evaluations':<26}{0:>22d}{fin['n_exact']:>22,d}{calls['simulator']:>22,d}")
    print(f"{'model call [ms]':<26}" + "".join(f"{runs[n].run['forward_model_latency_ms']:>22.2f}" for n in names))
    for name in free:
        cells = []
        for n in names:
            e = runs[n].summary["parameters"][name]
            cells.append(f"{e['median']:.4f} ± {(e['p84'] - e['p16']) / 2:.2g}")
        print(f"{name:<26}" + "".join(f"{c:>22}" for c in cells) + f"  truth {e['truth']:.4f}")
    print(f"finish: {fin['method']}, ESS {fin['ess']:.0f}, {fin['n_exact']} exact evaluations in "
          f"{fin['wall_time_s']:.1f} s, clipped {fin['clipped']}")
    speed = wall["simulator"] / wall["emulator + finish"]
    print(f"end-to-end speed-up, emulator + finish against simulator only (wall time): {speed:.1f} x "
          f"(emulator alone: {wall['simulator'] / wall['emulator']:.1f} x)")
    return {n: {"run": runs[n].run, "summary": runs[n].summary, "wall_time_s": wall[n]} for n in names} | \
        {"speed_up_end_to_end": speed}


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
    print(f"\n== recovery: {args.mocks} random mocks (S/N 30), all 18 parameters free, emulator (no finish) ==")
    print(f"median |median - truth| / prior width: {100 * np.median(rel):.2f} %")
    print(f"true values inside the 68 % interval: {100 * np.mean(in68):.0f} %; inside 95 %: {100 * np.mean(in95):.0f} %")
    return {"median_rel_error_of_prior_width": float(np.median(rel)), "in68": float(np.mean(in68)),
            "in95": float(np.mean(in95))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nlive", type=int, help="live points (default: galsr.fitting.DEFAULTS)")
    ap.add_argument("--dlogz", type=float, help="stopping criterion (default: galsr.fitting.DEFAULTS)")
    ap.add_argument("--free", type=int, default=6, help="free parameters in the speed comparison (default 6)")
    ap.add_argument("--mocks", type=int, default=3, help="mocks in the recovery study (0: skip)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the numbers here")
    ap.add_argument("--emulator", help="emulator file (default: the shipped one)")
    args = ap.parse_args()
    print(machine_line())
    out = {"speed": speed_comparison(args)}
    if args.mocks:
        out["recovery"] = recovery_study(args)
    if args.json:
        write_text_atomic(args.json, json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()

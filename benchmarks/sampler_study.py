"""Which dynesty settings converge? A measurement with the exact forward model, so the emulator cannot be blamed.

    python benchmarks/sampler_study.py --out DIR [--mocks 3] [--free 18] [--configs NAME ...] [--seed 0]

Mocks drawn from the prior (seeded) on the cheap 20 x 20 LR grid (2" pixels, the simulator at ~0.2 ms per model),
S/N 30 with the MaNGA-like noise of galsr.noise, fitted with the full simulation on that same grid (one worker),
all parameters free by default. Each sampler configuration (random walks with more steps, rslice, dynesty's dynamic
sampler, nlive from ~3 to 10 x ndim) is run on every mock with the same seed. Reported per configuration: likelihood
calls, wall time, the share of truths inside the 68 % and 95 % intervals over all mocks x free parameters, and the
worst "miss" = ln L at the truth minus the best ln L the sampler found (> 0 means the sampler never reached the
truth's likelihood: it missed the mode; a converged run finds ~ ndim / 2 above the truth). One JSON per (mock,
configuration) in DIR, written atomically; a rerun skips the finished ones and prints the table.
"""
import argparse
import glob
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import machine_line  # noqa: E402

from galsr.forward_models import SimulatorForward  # noqa: E402
from galsr.likelihood import FitData, log_likelihood_of_parameters  # noqa: E402
from galsr.mock import make_mock  # noqa: E402
from galsr.prior import Prior, prior_transform  # noqa: E402
from galsr.simulator import LR_GRID, PARAM_NAMES, ParameterSpace  # noqa: E402
from galsr.simulator.fileio import write_json_atomic  # noqa: E402

#: name -> (dynamic?, sample, steps (walks or slices; None = dynesty's default), nlive per dimension)
CONFIGS = {
    "rwalk15-n3.3": (False, "rwalk", 15, None),  # the previous default: nlive 60, 15 steps
    "rwalk38-n5": (False, "rwalk", 38, 5),  # dynesty's 'auto' for 10-20 dims: walks = ndim + 20
    "rslice-n5": (False, "rslice", None, 5),  # slices = 3 + ndim
    "rwalk50-n10": (False, "rwalk", 50, 10),  # the FAQ's guidance for 15-25 dims
    "rslice-n10": (False, "rslice", None, 10),
    "dynamic-rslice-n5": (True, "rslice", None, 5),  # + 2 batches aimed at the posterior
}


def run_config(galaxy, free, name, seed, dlogz=0.5):
    """One sampler run; returns a dict of the measured numbers."""
    import dynesty

    dynamic, sample, steps, per_dim = CONFIGS[name]
    fixed = {n: float(galaxy.truth[i]) for i, n in enumerate(PARAM_NAMES) if n not in free}
    prior = Prior(ParameterSpace(redshift=galaxy.redshift), fixed=fixed)
    data, model = FitData(galaxy), SimulatorForward(galaxy.grid, galaxy.redshift)
    model.set_num_threads(1)
    nlive = 60 if per_dim is None else int(per_dim * prior.ndim)
    kw = dict(bound="multi", sample=sample, rstate=np.random.default_rng(seed),
              logl_args=(prior, data, model), ptform_args=(prior,))
    kw["walks" if sample == "rwalk" else "slices"] = steps
    t0 = time.time()
    if dynamic:
        sampler = dynesty.DynamicNestedSampler(log_likelihood_of_parameters, prior_transform, prior.ndim, **kw)
        sampler.run_nested(nlive_init=nlive, nlive_batch=nlive, dlogz_init=dlogz, maxbatch=2, use_stop=False,
                           print_progress=False)
    else:
        sampler = dynesty.NestedSampler(log_likelihood_of_parameters, prior_transform, prior.ndim, nlive=nlive,
                                        **kw)
        sampler.run_nested(dlogz=dlogz, print_progress=False)
    wall = time.time() - t0
    res = sampler.results
    from dynesty.utils import quantile

    w = np.exp(res.logwt - res.logz[-1])
    w /= w.sum()
    truth = galaxy.truth[prior.free_index]
    in68, in95 = [], []
    for j in range(prior.ndim):
        q = quantile(res.samples[:, j], [0.025, 0.16, 0.84, 0.975], weights=w)
        in68.append(bool(q[1] <= truth[j] <= q[2]))
        in95.append(bool(q[0] <= truth[j] <= q[3]))
    logl_truth = log_likelihood_of_parameters(truth, prior, data, model)
    return {"config": name, "nlive": nlive, "ndim": prior.ndim, "ncall": int(np.sum(res.ncall)), "wall_s": wall,
            "logz": float(res.logz[-1]), "in68": in68, "in95": in95, "logl_truth": float(logl_truth),
            "logl_max": float(np.max(res.logl)), "miss": float(logl_truth - np.max(res.logl))}


def table(out_dir, configs):
    """The study's table (str) from the JSON files in ``out_dir``."""
    rows = ["| configuration | nlive | runs | likelihood calls (median) | wall time per fit [s] | in 68 % | in 95 % "
            "| worst miss (ln L) |", "|---|---|---|---|---|---|---|---|"]
    for name in configs:
        rs = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(out_dir, f"*_{name}.json")))]
        if not rs:
            continue
        in68 = np.concatenate([r["in68"] for r in rs])
        in95 = np.concatenate([r["in95"] for r in rs])
        n = len(in68)
        e68, e95 = (100 * np.sqrt(p * (1 - p) / n) for p in (in68.mean(), in95.mean()))
        rows.append(f"| {name} | {rs[0]['nlive']} | {len(rs)} | {int(np.median([r['ncall'] for r in rs])):,} | "
                    f"{np.median([r['wall_s'] for r in rs]):.0f} | {100 * in68.mean():.0f} +- {e68:.0f} % | "
                    f"{100 * in95.mean():.0f} +- {e95:.0f} % | {max(r['miss'] for r in rs):+.1f} |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for the per-run JSON files")
    ap.add_argument("--mocks", type=int, default=3)
    ap.add_argument("--free", type=int, default=18, help="free parameters (the first k of PARAM_NAMES' order)")
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--snr", type=float, default=30.0)
    ap.add_argument("--only", type=int, nargs="+", help="run only these mock indices (0-based)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    print(machine_line(), flush=True)
    free = PARAM_NAMES[: args.free]
    truths = ParameterSpace().sample_lhs(args.mocks, seed=args.seed + 1000)
    for k, truth in enumerate(truths):
        if args.only and k not in args.only:
            continue
        galaxy = make_mock(truth, seed=args.seed + k, snr=args.snr, grid=LR_GRID)
        for name in args.configs:
            path = os.path.join(args.out, f"mock{k:02d}_{name}.json")
            if os.path.exists(path):
                continue
            r = run_config(galaxy, free, name, args.seed)
            r["mock"] = k
            write_json_atomic(path, r)
            print(f"mock {k} {name}: {r['ncall']} calls, {r['wall_s']:.0f} s, in68 {sum(r['in68'])}/{r['ndim']}, "
                  f"miss {r['miss']:+.1f}", flush=True)
    print(table(args.out, args.configs))


if __name__ == "__main__":
    main()

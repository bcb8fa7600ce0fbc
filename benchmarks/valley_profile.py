"""The exact likelihood's profile along one parameter of a coverage mock, and the bulge scale along it.

    python benchmarks/valley_profile.py --out DIR --mock K [--free all] [--parameter gamma]
                                        [--values 1.0 1.12 1.25 1.4 1.58 1.75] [--seed 0] [--snr 30]

DIR is a folder of benchmarks/bench_coverage.py whose mock K has a finished emulator fit (its checkpoint in
DIR/<free>/checkpoints). The exact best fit is found as the finish finds it (galsr.laplace.exact_laplace from the
emulator run's best sample, steps scaled by its posterior widths); then, for each value, the parameter is held there
and the others are refitted by the same least squares, once from the best fit and once from the truth. Printed and
written to DIR/<free>/profile_mock<K>_<parameter>.json: 2 (ln L(best fit) - ln L) of each refit (negative where the
refit climbs above the best fit: the best fit had stopped short), the bulge's log10 radius, gamma and
s = log10 a + log10(3 - gamma) (galsr.coordinates), which an unresolved bulge's valley holds constant.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import bench_coverage  # noqa: E402

from galsr.simulator import PARAM_NAMES  # noqa: E402
from galsr.simulator.fileio import write_json_atomic  # noqa: E402

#: Exact evaluations allowed per refit.
REFIT_EVALUATIONS = 1500


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--mock", type=int, required=True)
    ap.add_argument("--free", choices=("six", "all"), default="all")
    ap.add_argument("--parameter", default="gamma", choices=PARAM_NAMES)
    ap.add_argument("--values", type=float, nargs="+", default=[1.0, 1.12, 1.25, 1.4, 1.58, 1.75])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--snr", type=float, default=30.0)
    args = ap.parse_args()

    from galsr.coordinates import BulgeScale
    from galsr.finish import exact_best_fit
    from galsr.forward_models import SimulatorForward
    from galsr.laplace import exact_laplace

    free = PARAM_NAMES if args.free == "all" else bench_coverage.SIX
    truth, galaxy, fixed = bench_coverage.mock_galaxy(args.mock, free, args.seed, args.snr)
    out = os.path.join(args.out, args.free)
    emu, _ = bench_coverage.sampled(out, args.mock, galaxy, "emulator", 1, fixed, args.seed)
    prior = emu.prior
    if args.parameter not in prior.free_names:
        sys.exit(f"--parameter {args.parameter} is fixed in the {args.free}-free fits; free: {prior.free_names}")
    residuals, _, (best, cov, n_best) = exact_best_fit(emu, SimulatorForward(galaxy.grid, galaxy.redshift))
    sd = np.sqrt(np.diag(cov))
    free_truth = truth[prior.free_index]

    def logl(x):
        return -0.5 * float(np.sum(residuals(x) ** 2))

    top = logl(best)
    coords = BulgeScale(prior.free_names)
    i = prior.free_names.index(args.parameter)
    rows = []
    print(f"mock {args.mock}: exact best fit in {n_best} simulations; 2 (ln L(best) - ln L(truth)) = "
          f"{2 * (top - logl(free_truth)):.2f}")
    for value in args.values:
        for start_name, start in (("best fit", best), ("truth", free_truth)):
            guess = np.array(start, dtype=np.float64)
            guess[i] = value
            rest, _, used = exact_laplace(lambda z, v=value: residuals(np.insert(z, i, v)), np.delete(guess, i),
                                          np.delete(sd, i), np.delete(prior.lo, i), np.delete(prior.hi, i),
                                          REFIT_EVALUATIONS)
            x = np.insert(rest, i, value)
            row = {"value": value, "from": start_name, "two_delta_lnl": round(2 * (top - logl(x)), 3),
                   "simulations": int(used), "parameters": dict(zip(prior.free_names, map(float, x)))}
            if coords.active:
                row["bulge_scale_s"] = float(coords.to_sampling(x)[coords.radius])
            rows.append(row)
            print(f"{args.parameter} = {value:.3f} from the {start_name}: 2 dln L {row['two_delta_lnl']:8.2f}, "
                  + (f"log10 a {x[coords.radius]:.4f}, gamma {x[coords.slope]:.4f}, s {row['bulge_scale_s']:.4f}, "
                     if coords.active else "") + f"{used} simulations", flush=True)
    write_json_atomic(os.path.join(out, f"profile_mock{args.mock:03d}_{args.parameter}.json"),
                      {"mock": args.mock, "parameter": args.parameter, "best_fit": dict(zip(prior.free_names,
                                                                                           map(float, best))),
                       "best_fit_simulations": int(n_best), "rows": rows})


if __name__ == "__main__":
    main()

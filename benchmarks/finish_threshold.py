"""How low may the effective sample size of a reweighted posterior go? A toy measurement for galsr.finish.ESS_MIN.

    python benchmarks/finish_threshold.py [--n 2000] [--dim 6] [--reps 300] [--seed 0]

An "emulator" posterior N(0, I) in ``dim`` dimensions, ``n`` equal-weight samples (the finish's cap), reweighted to
the "exact" posterior N(delta e_1, s^2 I) (shifted by delta sigma along one axis, widths wrong by a factor s) with
galsr.finish.reweight. For each (delta, s): the median Kish ESS and the RMS error, in units of the exact sigma, of
the reweighted 16 / 50 / 84 % quantiles of the shifted coordinate, over ``reps`` repetitions. The threshold is the
smallest ESS above which every case keeps its RMS quantile error below 0.15 sigma.
"""
import argparse
import math

import numpy as np
from dynesty.utils import quantile
from scipy.stats import norm

from galsr.finish import reweight


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--dim", type=int, default=6)
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    qs = np.array([0.16, 0.5, 0.84])
    rows = []
    for s in (0.7, 1.0, 1.3):
        for delta in (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5):
            ess, err = [], []
            truth = delta + s * norm.ppf(qs)
            for _ in range(args.reps):
                x = rng.standard_normal((args.n, args.dim))
                old = -0.5 * np.sum(x**2, axis=1)
                mu = np.zeros(args.dim)
                mu[0] = delta
                new = -0.5 * np.sum((x - mu) ** 2, axis=1) / s**2 - args.dim * math.log(s)
                rw = reweight(np.full(args.n, -math.log(args.n)), 0.0, old, new, clip=True)
                w = np.exp(rw.logwt - rw.logz)
                ess.append(rw.ess)
                err.append((np.array(quantile(x[:, 0], qs, weights=w)) - truth) / s)
            rms = float(np.sqrt(np.mean(np.square(err))))
            rows.append((s, delta, float(np.median(ess)), rms))
            print(f"width x {s:<4} shift {delta:<4} sigma: median ESS {np.median(ess):7.0f}   RMS quantile error "
                  f"{rms:.3f} sigma", flush=True)
    bad = [r[2] for r in rows if r[3] > 0.15]
    print(f"largest median ESS with an RMS quantile error > 0.15 sigma: {max(bad) if bad else 0:.0f}")


if __name__ == "__main__":
    main()

"""Is an emulator confidently wrong on whole galaxies? Per galaxy drawn from the fit's prior, the emulator's maps
against the converged simulation in units of what a fit allows for them:

    X = sum over the usable pixels of (emulator - simulation)^2 / (s_data^2 + s_emulator^2), divided by their number,

with the data errors of `galsr mock` (MaNGA-like floors, --snr) and the emulator's own predicted errors. For an
emulator whose errors are honest, X is below 1 (its error variance over the total); a galaxy with X >> 1 is one where
a fit with that emulator is pulled by errors it was not told about. Pixel quantiles (bench_centre.py) cannot show
this: it concentrates in a minority of galaxies (compact, massive components whose dispersion reaches thousands of
km/s, which the prior box allows).

    python benchmarks/bench_galaxy_error.py MODEL.galsr [MODEL2.galsr ...] [--n 300] [--seed 0] [--snr 30]

Galaxies: bench_coverage.py's mock draws (galsr.prior.Prior.sample, seed 10000 x seed + k), so the same galaxies as
the coverage benchmark's first --n mocks.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import machine_line  # noqa: E402
from bench_coverage import mock_truth  # noqa: E402

from galsr.emulator import Emulator  # noqa: E402
from galsr.likelihood import FitData  # noqa: E402
from galsr.mock import make_mock  # noqa: E402
from galsr.simulator import simulate  # noqa: E402

#: Classes of galaxies by the largest dispersion on their map [km/s].
SIGMA_CLASSES = ((0, 300), (300, 1000), (1000, np.inf))


def galaxy_x(emu, data, exact):
    """X (float) of one galaxy: the emulator's maps against ``exact`` (4, n, n) in units of data (FitData) and
    emulator errors."""
    maps, errors = emu.predict(data.truth, return_error=True)
    total = 0.0
    for (_, m, v), (_, x, _) in zip(data.fit.terms(maps, errors), data.fit.terms(exact, None)):
        total += float(np.sum((m - x) ** 2 / v))
    return total / data.fit.n_pixels


class _Mock:
    """A mock's FitData and truth."""

    def __init__(self, k, seed, snr):
        galaxy = make_mock(mock_truth(k, seed), seed=k, snr=snr)
        self.fit, self.truth = FitData(galaxy), galaxy.truth


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="emulator files")
    ap.add_argument("--n", type=int, default=300, help="galaxies (default 300)")
    ap.add_argument("--seed", type=int, default=0, help="bench_coverage.py's seed of the draws (default 0)")
    ap.add_argument("--snr", type=float, default=30.0)
    args = ap.parse_args()
    print(machine_line())
    emus = {os.path.basename(m): Emulator.load(m, num_threads=1) for m in args.models}
    first = next(iter(emus.values()))
    xs, top = {name: [] for name in emus}, []
    for k in range(args.n):
        mock = _Mock(k, args.seed, args.snr)
        exact = simulate(mock.truth[None], first.hr_grid, first.redshift)[0]
        top.append(float(exact[2].max()))
        for name, emu in emus.items():
            xs[name].append(galaxy_x(emu, mock, exact))
    top = np.array(top)
    print(f"\n{args.n} galaxies from the fit's prior (seed {args.seed}), S/N {args.snr:g}; X per galaxy\n")
    head = "| model | galaxies | X median | p90 | p99 | max | share X > 1 |"
    print(head + "\n" + "|---" * (head.count("|") - 1) + "|")
    for name, x in xs.items():
        x = np.array(x)
        for lo, hi in ((0, np.inf),) + SIGMA_CLASSES:
            sel = (top >= lo) & (top < hi)
            if not sel.any():
                continue
            label = "all" if hi == np.inf and lo == 0 else f"max sigma {lo:g}-{hi:g} km/s"
            q = np.percentile(x[sel], [50, 90, 99])
            print(f"| {name} | {label} ({sel.sum()}) | {q[0]:.3g} | {q[1]:.3g} | {q[2]:.3g} | {x[sel].max():.3g} | "
                  f"{np.mean(x[sel] > 1):.2f} |")


if __name__ == "__main__":
    main()

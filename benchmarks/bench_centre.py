"""Emulators side by side where a fit looks: errors by distance from the galaxy centre, calibration of their
predicted errors, and speed against the converged simulation, all on the same held-out galaxies in one run.

    python benchmarks/bench_centre.py MODEL.galsr [MODEL2.galsr ...] [--n 512] [--seed 31] [--repeats 3]

Galaxies are drawn from the prior with the physical cuts (Latin hypercube, --seed; use a seed that no training or
calibration set used). For each emulator file: the region table (median / p95 error per channel in bands of
distance from the centre, in LR pixels; shares of pixels within 1 and 2 predicted sigma) and its latency at
batch 1 on one thread with its error prediction, measured alternately with the converged HR simulation (median of
per-call times); bicubic up-sampling of the LR maps is the reference row.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import machine_line  # noqa: E402

from galsr.emulator import Emulator  # noqa: E402
from galsr.emulator.latency import paired_call_times  # noqa: E402
from galsr.simulator import ParameterSpace, simulate  # noqa: E402
from galsr.training.region_metrics import format_region_table, region_summaries  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="emulator files")
    ap.add_argument("--n", type=int, default=512, help="held-out galaxies (default 512)")
    ap.add_argument("--seed", type=int, default=31, help="their draw (default 31)")
    ap.add_argument("--repeats", type=int, default=3, help="timing repeats over 64 galaxies (default 3)")
    args = ap.parse_args()
    print(machine_line())
    emus = {os.path.basename(m): Emulator.load(m, num_threads=1) for m in args.models}
    first = next(iter(emus.values()))
    params = ParameterSpace(bounds=first.bounds, redshift=first.redshift).sample_lhs(args.n, seed=args.seed)
    truth = simulate(params, first.hr_grid, first.redshift)
    summaries = region_summaries(list(emus.items()), params, lambda a, b: truth[a:b])
    print(f"\n{args.n} held-out galaxies (seed {args.seed}); pixels brighter than 1e-3 of the peak\n")
    print(format_region_table(summaries))
    items = list(params[:64])
    fns = [lambda p: simulate(p, first.hr_grid, first.redshift)]
    fns += [(lambda e: (lambda p: e.predict(p, return_error=True)))(e) for e in emus.values()]
    times = np.median(paired_call_times(fns, items, repeats=args.repeats), axis=1) * 1e3
    print(f"\nbatch 1, one thread, median per call: converged HR simulation {times[0]:.3f} ms")
    for (label, emu), t in zip(emus.items(), times[1:]):
        print(f"  {label}: {t:.3f} ms with errors -> speed-up {times[0] / t:.1f} x")


if __name__ == "__main__":
    main()

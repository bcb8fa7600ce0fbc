"""Quadrature rules for the emulator's central patch, side by side: the error a fit feels and the time it costs.

    python benchmarks/bench_patch_rule.py [--n 128] [--seed 77] [--repeats 5]

A fit adds up the error that all of a galaxy's patch pixels share, and for a compact galaxy (bulge and inner disc of
tens of pc) the patch holds the whole galaxy: a shared error of 2.5 % in dispersion over its 64 bright pixels moved
an emulator fit's posterior 170 sigma. So each rule is judged per galaxy by the median signed error over the
patch's bright pixels (> 1e-3 of the galaxy's peak) against the converged HR simulation: brightness in dex, velocity
in km/s, dispersion and M/L relative; the table gives the median and 90th percentile of its absolute value over
``--n`` prior galaxies (Latin hypercube with the physical cuts, ``--seed``), and the shared error of one compact
galaxy (galsr.simulator.COMPACT_GALAXY). Time: the emulator's simulation call (LR maps + patch, one galaxy,
one thread), median over the galaxies and repeats, the rules alternating (galsr.emulator.latency).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import machine_line, set_threads  # noqa: E402

from galsr.emulator import Emulator  # noqa: E402
from galsr.emulator.latency import paired_call_times  # noqa: E402
from galsr.simulator import COMPACT_GALAXY, ParameterSpace, as_param_array, simulate  # noqa: E402
from galsr.simulator.centre_patch import (LEGACY_PATCH_RULE, PATCH_RULE, read_patch,  # noqa: E402
                                          simulate_with_patch)
from galsr.simulator.fit_units import residual_in_fit_units  # noqa: E402
from galsr.simulator.render import CONVERGED_RULE, QuadratureRule  # noqa: E402

RULES = {"previous (block 1, polar 8 x 2)": LEGACY_PATCH_RULE,
         "block 1, polar 12 x 2": QuadratureRule(block_max=1, polar_r=12, polar_phi=2, psf_truncation=2.0),
         "block 2, polar 8 x 2": QuadratureRule(block_max=2, polar_r=8, polar_phi=2, psf_truncation=2.0),
         "shipped (block 2, polar 12 x 2)": PATCH_RULE,
         "block 2, polar 16 x 4": QuadratureRule(block_max=2, polar_r=16, polar_phi=4, psf_truncation=2.0),
         "converged rule on the patch's grid": CONVERGED_RULE}


def shared_errors(patches, reference):
    """(N, 4) median signed error over each galaxy's bright patch pixels: B in dex, v in km/s, sigma and M/L
    relative."""
    res = residual_in_fit_units(patches, reference)
    for c in (2, 3):
        res[:, c] = res[:, c] / np.abs(reference[:, c])
    peak = np.nanmax(reference[:, 0].reshape(len(reference), -1), axis=1)
    bright = reference[:, 0] > 1e-3 * peak[:, None, None]
    return np.array([[np.median(res[g, c][bright[g]]) for c in range(4)] for g in range(len(reference))])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--seed", type=int, default=77)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    set_threads(1)
    print(machine_line(), flush=True)
    emu = Emulator.default()
    hr, lr, npatch, z = emu.hr_grid, emu.lr_grid, emu.centre_patch, emu.redshift
    params = np.vstack([as_param_array(COMPACT_GALAXY)[0],
                        ParameterSpace(bounds=emu.bounds, redshift=z).sample_lhs(args.n, seed=args.seed)])
    converged = simulate(params, hr, z)
    fns = [lambda p, r=rule: simulate_with_patch(p[None], lr, hr, npatch, z, r) for rule in RULES.values()]
    times = paired_call_times(fns, list(params), repeats=args.repeats)
    print(f"{args.n} prior galaxies (seed {args.seed}) + the compact one; shared error = median signed error over "
          f"a galaxy's bright patch pixels; |shared| median / p90")
    print("| rule | B [dex] | v [km/s] | sigma | M/L | compact galaxy: B, sigma, M/L | LR + patch [ms] |")
    print("|---|---|---|---|---|---|---|")
    for (name, rule), t in zip(RULES.items(), times):
        _, patches, origins = simulate_with_patch(params, lr, hr, npatch, z, rule)
        ref = np.stack([read_patch(m, o, npatch) for m, o in zip(converged, origins)])
        s = shared_errors(patches, ref)
        a = np.abs(s[1:])
        med, p90 = np.median(a, axis=0), np.percentile(a, 90, axis=0)
        print(f"| {name} | {med[0]:.4f} / {p90[0]:.4f} | {med[1]:.3f} / {p90[1]:.3f} | "
              f"{100 * med[2]:.2f} / {100 * p90[2]:.2f} % | {100 * med[3]:.3f} / {100 * p90[3]:.3f} % | "
              f"{s[0, 0]:+.4f} dex, {100 * s[0, 2]:+.2f} %, {100 * s[0, 3]:+.2f} % | {1e3 * np.median(t):.3f} |",
              flush=True)


if __name__ == "__main__":
    main()

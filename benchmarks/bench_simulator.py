"""Simulator speed: per-galaxy median time for the LR grid, the HR grid at oversample 1 and the converged HR grid,
at batch 1 and batch 64, with 1 and 2 numba threads.

    python benchmarks/bench_simulator.py [--repeats 21]

Target (issue #2): <= 3 ms for HR oversample 1 and <= 0.3 ms for LR, single thread. For scale: the independent
implementation's CPU path needs 3.0 s for one 80 x 80 map with PSF.
"""
import argparse
import os
import sys

import numba

sys.path.insert(0, os.path.dirname(__file__))
from _timing import machine_line, set_threads  # noqa: E402

from galsr.emulator.latency import latency_ms  # noqa: E402
from galsr.simulator import HR_GRID, LR_GRID, ParameterSpace, simulate  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=21)
    args = ap.parse_args()
    params = ParameterSpace().sample_lhs(64, seed=1)
    grids = [("LR 20x20, oversample 1", LR_GRID), ("HR 80x80, oversample 1", HR_GRID.with_oversample(1, 0)),
             (f"HR 80x80, converged (oversample {HR_GRID.oversample}, zoom {HR_GRID.centre_zoom})", HR_GRID)]
    print(machine_line())
    print(f"{'grid':<46} {'threads':>7} {'batch 1 [ms]':>13} {'batch 64 [ms/galaxy]':>21}")
    threads = [1, 2] if numba.config.NUMBA_NUM_THREADS >= 2 else [1]
    for label, grid in grids:
        simulate(params[:2], grid)  # compile
        for nt in threads:
            set_threads(nt)
            i = iter(range(10**9))
            t1 = latency_ms(lambda: simulate(params[next(i) % 64], grid), repeats=args.repeats, warmup=2)
            t64 = latency_ms(lambda: simulate(params, grid), repeats=max(3, args.repeats // 5), warmup=1)
            print(f"{label:<46} {nt:>7} {t1:>13.3f} {t64 / 64:>21.3f}")


if __name__ == "__main__":
    main()

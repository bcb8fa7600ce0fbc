"""Dataset generation throughput at the default grids: galaxy pairs per second with 1 and 2 workers, numba threads
versus a process pool, and the time this implies for 16,384 pairs (target: under 10 minutes on 2 cores).

    python benchmarks/bench_generate.py [--n 256] [--repeats 3]
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import machine_line  # noqa: E402

from galsr.simulator import generate_dataset  # noqa: E402


def timed_generation(n, seed, workers, backend):
    """Seconds to generate ``n`` pairs at the default grids into a temporary file (removed afterwards)."""
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        generate_dataset(os.path.join(d, "bench.h5"), n, seed, workers=workers, backend=backend, progress=False)
        return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=256, help="pairs per timed run (default 256)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(machine_line())
    timed_generation(16, 0, 1, "threads")  # compile / warm caches
    print(f"{'backend':<10} {'workers':>7} {'pairs/s (median)':>17} {'16,384 pairs [min]':>19}")
    for backend in ("threads", "processes"):
        for workers in (1, 2):
            t = np.median([timed_generation(args.n, 100 + r, workers, backend) for r in range(args.repeats)])
            rate = args.n / t
            print(f"{backend:<10} {workers:>7} {rate:>17.1f} {16384 / rate / 60:>19.1f}")


if __name__ == "__main__":
    main()

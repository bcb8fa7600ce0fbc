"""Build simulator/data/dehnen_tables.npz: ln I, ln J, ln Icyl, ln Jcyl of the Dehnen bulge on a (gamma, ln s) grid.

Run from the repository root:  python scripts/make_bulge_tables.py  [--workers 2]
Direct quadrature (simulator.bulge_quadrature); about a minute on 2 cores. The tests compare the interpolated
tables with fresh quadrature off the nodes.
"""
import argparse
import os
import sys
import time
from multiprocessing import Pool

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from galsr.simulator.bulge_quadrature import dehnen_I, dehnen_Icyl, dehnen_J, dehnen_Jcyl  # noqa: E402

LOG10_S_MIN, LOG10_S_MAX, PER_DECADE = -9.0, 3.0, 40
GAMMA_MIN, GAMMA_MAX, GAMMA_STEP = 0.0, 2.4, 0.025


def _row(gamma):
    s = 10.0 ** np.linspace(LOG10_S_MIN, LOG10_S_MAX, int(round((LOG10_S_MAX - LOG10_S_MIN) * PER_DECADE)) + 1)
    return np.array([[np.log(fn(si, gamma)) for si in s] for fn in (dehnen_I, dehnen_J, dehnen_Icyl, dehnen_Jcyl)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "simulator", "data",
                                                  "dehnen_tables.npz"))
    args = ap.parse_args()
    n_s = int(round((LOG10_S_MAX - LOG10_S_MIN) * PER_DECADE)) + 1
    gammas = np.linspace(GAMMA_MIN, GAMMA_MAX, int(round((GAMMA_MAX - GAMMA_MIN) / GAMMA_STEP)) + 1)
    t0 = time.time()
    with Pool(args.workers) as pool:
        rows = pool.map(_row, gammas)
    tab = np.stack(rows, axis=1)  # (4, n_gamma, n_s)
    assert np.all(np.isfinite(tab)), "non-finite table entry"
    ln_s = np.log(10.0) * np.linspace(LOG10_S_MIN, LOG10_S_MAX, n_s)
    tmp = args.out + ".tmp.npz"
    np.savez_compressed(tmp, ln_s=ln_s, gamma=gammas, ln_I=tab[0], ln_J=tab[1], ln_Icyl=tab[2], ln_Jcyl=tab[3])
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: {len(gammas)} gammas x {n_s} radii in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()

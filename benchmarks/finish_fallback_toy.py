"""Does the finish's exact fallback (galsr.finish.adaptive_importance) reach an exact posterior that is narrower than
and offset from the emulator's? A Gaussian toy with the prior of the coverage benchmark's six free parameters.

    python benchmarks/finish_fallback_toy.py [--seed 1]

The "emulator" posterior: 3,000 equal-weight samples of N(truth + shift x sigma_emu, sigma_emu^2), widths 0.03-3 %
of the prior ranges. The "exact" likelihood: N(truth, (sigma_emu / narrow)^2). Printed per (narrow, shift): the
fallback's Kish ESS, rounds, and the largest |weighted mean - truth| in exact sigma.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from bench_coverage import SIX, mock_truth  # noqa: E402

from galsr.finish import adaptive_importance  # noqa: E402
from galsr.prior import Prior  # noqa: E402
from galsr.simulator import PARAM_NAMES  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    truth = mock_truth(0, 0)
    prior = Prior(fixed={n: float(truth[i]) for i, n in enumerate(PARAM_NAMES) if n not in SIX})
    t = truth[prior.free_index]
    sig_emu = 1e-3 * (prior.hi - prior.lo) * np.array([1, 3, 10, 30, 1, 0.3])
    for narrow in (1, 5, 20):
        for shift in (0, 2, 4):
            sig = sig_emu / narrow

            def evaluate(x, sig=sig):
                return -0.5 * np.sum(((x - t) / sig) ** 2, axis=1)

            rng = np.random.default_rng(args.seed)
            theta0 = t + shift * sig_emu + sig_emu * rng.standard_normal((3000, len(t)))
            x, _, logw, _, _, ess, rounds, _ = adaptive_importance(evaluate, prior, theta0, np.zeros(3000), seed=0)
            w = np.exp(logw - logw.max())
            w /= w.sum()
            print(f"exact {narrow:>2} x narrower, {shift} emulator sigma away: ESS {ess:6.0f} after {rounds} rounds, "
                  f"max |mean - truth| = {np.max(np.abs((w @ x - t) / sig)):.2f} exact sigma", flush=True)


if __name__ == "__main__":
    main()

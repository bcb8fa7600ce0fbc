"""Can one Gaussian 1-sigma per pixel describe the emulator's errors? The shipped error model against a richer,
per-pixel one, on galaxies neither saw.

    python benchmarks/calibration_shape.py [MODEL.galsr] [--n-fit 512] [--n-test 512] [--seed 41]

The richer model predicts ln|residual| per channel by least squares on per-pixel features: ln of the shipped
model's sigma, the 18 normalised parameters, ln of the local gradient and curvature of the emulated map (log10 for
brightness) and ln|map - its median| (|v| for the velocity), with squares of the last ones; it is then rescaled per
distance band with the shipped calibration's rule (galsr.emulator.error_model.fit_scale). For both models the table
gives, per band and channel, the share of pixels within 0.5 / 1 / 2 / 3 predicted sigma (Gaussian: 38 / 68 / 95 /
99.7 %) and the scatter of ln|residual / sigma| (Gaussian: 1.11). If the richer model brings the scatter down to the
Gaussian value and the shares still differ, no per-pixel Gaussian scale can meet 68 % and 95 % at once: the
residuals' shape, not their scale, is what is off.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _timing import machine_line  # noqa: E402

from galsr.emulator import Emulator  # noqa: E402
from galsr.emulator.error_model import fit_scale  # noqa: E402
from galsr.training.error_calibration import held_out_residuals  # noqa: E402
from galsr.training.region_metrics import BANDS, CHANNELS, band_label, centre_distance  # noqa: E402

LEVELS = (0.5, 1.0, 2.0, 3.0)
#: Pixels drawn per channel for the least-squares fit (all pixels would need gigabytes).
FIT_PIXELS = 400_000


def features(emulator, params, sigma):
    """Per-pixel regressors (N, 4, n, n, k) for parameter rows (N, 18) and the shipped model's sigma (N, 4, n, n)."""
    maps = emulator(params).astype(np.float64)
    maps[:, 0] = np.log10(np.maximum(maps[:, 0], 1e-30))
    gy, gx = np.gradient(maps, axis=(2, 3))
    grad = np.log(np.hypot(gx, gy) + 1e-9)
    curv = np.log(np.abs(np.gradient(gx, axis=3) + np.gradient(gy, axis=2)) + 1e-9)
    dev = np.abs(maps - np.median(maps.reshape(len(maps), 4, -1), axis=2)[:, :, None, None])
    dev[:, 1] = np.abs(maps[:, 1])
    dev = np.log(dev + 1e-3)
    lo, hi = emulator.bounds[:, 0], emulator.bounds[:, 1]
    norm = np.broadcast_to(((params - lo) / (hi - lo))[:, None, None, None, :], sigma.shape + (params.shape[1],))
    return np.concatenate([np.stack([np.log(sigma), grad, curv, dev, grad**2, dev**2], -1), norm],
                          -1).astype(np.float32)


def shape_table(res, sigma, bright, dist):
    """Rows per band: per channel the shares within LEVELS sigma [%] and the scatter of ln|res / sigma|."""
    rows = []
    for band in BANDS:
        sel = bright & (dist >= band[0]) & (dist < band[1])
        cells = []
        for c in range(len(CHANNELS)):
            z = res[:, c][sel] / sigma[:, c][sel]
            shares = "/".join(f"{100 * np.mean(z <= k):.0f}" for k in LEVELS)
            cells.append(f"{shares} ({np.std(np.log(np.maximum(z, 1e-12))):.2f})")
        rows.append(f"| {band_label(band)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def held_out_set(emulator, n, seed):
    """dict of ``n`` prior galaxies drawn with ``seed`` that no training or calibration used: params (n, 18),
    |residual| (n, 4, n_hr, n_hr) in the fit's units, bright-pixel mask, the shipped model's sigma and the
    distance from the centre [LR pixels] of every pixel."""
    params, res, bright, _ = held_out_residuals(emulator, n, seed, units=("fit",) * len(CHANNELS))
    sigma = emulator.predict(params, return_error=True)[1]
    dist = centre_distance(params, emulator.hr_grid, emulator.lr_grid.pixel_kpc)
    return dict(params=params, res=res, bright=bright, sigma=sigma, dist=dist)


def rescale_by_band(fit, test, key):
    """Scale the sigma ``test[key]`` in place by the shipped calibration's rule (``fit_scale``) per distance band
    and channel, fitted on the galaxies ``fit`` (their residuals over ``fit[key]``)."""
    for band in BANDS:
        sel_f = fit["bright"] & (fit["dist"] >= band[0]) & (fit["dist"] < band[1])
        sel_t = (test["dist"] >= band[0]) & (test["dist"] < band[1])
        for c in range(len(CHANNELS)):
            test[key][:, c][sel_t] *= fit_scale(fit["res"][:, c][sel_f] / fit[key][:, c][sel_f])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", help="emulator file (default: the shipped one)")
    ap.add_argument("--n-fit", type=int, default=512, help="galaxies the richer model is fitted on")
    ap.add_argument("--n-test", type=int, default=512, help="galaxies it is judged on")
    ap.add_argument("--seed", type=int, default=41, help="their draws: seed and seed + 1 (not a training seed)")
    args = ap.parse_args()
    print(machine_line())
    emu = Emulator.load(args.model, num_threads=1) if args.model else Emulator.default(num_threads=1)
    sets = []
    for n, seed in ((args.n_fit, args.seed), (args.n_test, args.seed + 1)):
        s = held_out_set(emu, n, seed)
        s["x"] = features(emu, s["params"], s["sigma"])
        sets.append(s)
    fit, test = sets
    rng = np.random.default_rng(args.seed)
    for s in sets:
        s["richer"] = np.empty(s["sigma"].shape)
    for c in range(len(CHANNELS)):
        x = fit["x"][:, c][fit["bright"]]
        y = np.log(np.maximum(fit["res"][:, c][fit["bright"]], 1e-12))
        pick = rng.choice(len(y), size=min(FIT_PIXELS, len(y)), replace=False)
        design = np.c_[np.ones(len(pick)), x[pick]]
        beta = np.linalg.lstsq(design, y[pick], rcond=None)[0]
        for s in sets:
            flat = s["x"][:, c].reshape(-1, design.shape[1] - 1)
            s["richer"][:, c] = np.exp(np.c_[np.ones(len(flat)), flat] @ beta).reshape(s["sigma"][:, c].shape)
    rescale_by_band(fit, test, "richer")
    print_tables(args.n_test, args.seed + 1, test, (("shipped error model", "sigma"),
                                                    ("per-pixel log-linear model", "richer")))


def print_tables(n, seed, test, models):
    """Print the shape table of the test galaxies ``test`` for each (label, key of its sigma) in ``models``."""
    header = ("| distance [LR px] | " + " | ".join(CHANNELS) + " |\n|---|" + "---|" * len(CHANNELS))
    print(f"\n{n} test galaxies (seed {seed}); shares within 0.5/1/2/3 sigma [%] (Gaussian 38/68/95/99.7) and, in "
          f"brackets, the scatter of ln|residual / sigma| (Gaussian 1.11)\n")
    for label, key in models:
        print(f"{label}:\n{header}\n{shape_table(test['res'], test[key], test['bright'], test['dist'])}\n")


if __name__ == "__main__":
    main()

"""Emulator errors by distance from the galaxy centre, and how honest its predicted errors are there.

A galaxy's bulge and the steepest part of its discs sit within a few LR pixels of its centre (x0, y0): that is where
the LR point samples miss structure and where a fit draws most of its information, so a single error figure over
all pixels hides what matters. Pixels are grouped by their distance from the centre in LR pixels, in ``BANDS``, and
only pixels brighter than ``BRIGHT_FRACTION`` of the galaxy's peak brightness count (the faint edge of the field
is irrelevant to a fit). Per band and channel: the median and 95th percentile of the error (relative for
brightness, dispersion and M/L; km/s for velocity) and, given predicted 1-sigma errors in the fit's units
(galsr.simulator.fit_units), the share of pixels whose error is within 1 and 2 predicted sigma (68.3 % and 95.4 %
for a calibrated Gaussian error).
"""
import math

import numpy as np

from galsr.simulator import PARAM_NAMES
from galsr.simulator.fit_units import residual_in_fit_units

#: Distance bands from the galaxy centre, in LR pixels: [lo, hi).
BANDS = ((0.0, 1.0), (1.0, 2.0), (2.0, 4.0), (4.0, math.inf))
#: Pixels fainter than this fraction of the galaxy's peak brightness are left out.
BRIGHT_FRACTION = 1e-3
CHANNELS = ("B", "v", "sigma", "ML")
X0, Y0 = PARAM_NAMES.index("x0"), PARAM_NAMES.index("y0")


def band_label(band):
    lo, hi = band
    return f">= {lo:g}" if math.isinf(hi) else f"{lo:g}-{hi:g}"


def centre_distance(params, hr_grid, lr_pixel_kpc):
    """Distance [LR pixels] of every HR pixel centre from each galaxy's centre: (N, n, n) float64 for parameter
    rows (N, 18) (x0, y0 in kpc); ``lr_pixel_kpc`` is the LR pixel size in kpc."""
    c = hr_grid.centres
    p = np.atleast_2d(params)
    dx = c[None, None, :] - p[:, X0, None, None]
    dy = c[None, :, None] - p[:, Y0, None, None]
    return np.hypot(dx, dy) / lr_pixel_kpc


class RegionAccumulator:
    """Collects per-band errors over batches of galaxies; :meth:`summary` gives the table.

    Args:
        hr_grid: simulator.Grid of the maps; lr_pixel_kpc: float, LR pixel size in kpc (the distance unit).
    """

    def __init__(self, hr_grid, lr_pixel_kpc):
        self.hr_grid, self.lr_pixel_kpc = hr_grid, float(lr_pixel_kpc)
        self.errors = [[[] for _ in CHANNELS] for _ in BANDS]
        self.within = [[[] for _ in CHANNELS] for _ in BANDS]  # per pixel: |residual| / predicted sigma
        self.n_galaxies = 0

    def update(self, pred, truth, params, sigma=None):
        """Add galaxies: predicted and true physical maps (N, 4, n, n), their parameters (N, 18) and, optionally,
        predicted 1-sigma errors (N, 4, n, n) in the fit's units (dex for brightness)."""
        pred, truth = np.asarray(pred, dtype=np.float64), np.asarray(truth, dtype=np.float64)
        dist = centre_distance(params, self.hr_grid, self.lr_pixel_kpc)
        peak = truth[:, 0].reshape(len(truth), -1).max(axis=1)
        bright = truth[:, 0] > BRIGHT_FRACTION * peak[:, None, None]
        err = np.abs(pred - truth)
        for c, name in enumerate(CHANNELS):
            if name != "v":
                err[:, c] /= np.maximum(np.abs(truth[:, c]), 1e-300)
        pulls = None
        if sigma is not None:
            pulls = np.abs(residual_in_fit_units(pred, truth)) / np.asarray(sigma, dtype=np.float64)
        for b, (lo, hi) in enumerate(BANDS):
            sel = bright & (dist >= lo) & (dist < hi)
            for c in range(len(CHANNELS)):
                self.errors[b][c].append(err[:, c][sel])
                if pulls is not None:
                    self.within[b][c].append(pulls[:, c][sel])
        self.n_galaxies += len(pred)

    def summary(self):
        """{"bands": [label, ...], "n_galaxies", per band label: {channel: {"median", "p95", "n_pixels"[, "within_1sigma",
        "within_2sigma"]}}}; errors relative for B, sigma, M/L and in km/s for v; shares as fractions."""
        out = {"bands": [band_label(b) for b in BANDS], "n_galaxies": self.n_galaxies,
               "error_units": {c: "km/s" if c == "v" else "relative" for c in CHANNELS}, "by_band": {}}
        for b, band in enumerate(BANDS):
            row = {}
            for c, name in enumerate(CHANNELS):
                e = np.concatenate(self.errors[b][c]) if self.errors[b][c] else np.empty(0)
                entry = {"n_pixels": int(e.size)}
                if e.size:
                    entry["median"], entry["p95"] = (float(v) for v in np.percentile(e, [50, 95]))
                if self.within[b][c]:
                    z = np.concatenate(self.within[b][c])
                    if z.size:
                        entry["within_1sigma"] = float(np.mean(z <= 1.0))
                        entry["within_2sigma"] = float(np.mean(z <= 2.0))
                row[name] = entry
            out["by_band"][band_label(band)] = row
        return out


def region_summaries(emulators, params, truth_of, block=256):
    """Region summaries {label: RegionAccumulator.summary()} of whole emulators (LR simulation, network, central patch,
    predicted errors) and of bicubic up-sampling of the first one's LR maps ("bicubic"), on galaxies ``params``
    (N, 18) whose true HR maps ``truth_of(start, stop)`` returns for rows [start, stop).

    Args:
        emulators: list of (label, galsr.Emulator), all on the same grids.
    """
    import torch

    from galsr.emulator.architectures import build_model

    first = emulators[0][1]
    bicubic = build_model("bicubic", channels=len(first.channels))
    accs = {label: RegionAccumulator(emu.hr_grid, emu.lr_grid.pixel_kpc) for label, emu in emulators}
    accs["bicubic"] = RegionAccumulator(first.hr_grid, first.lr_grid.pixel_kpc)
    for start in range(0, len(params), block):
        p = params[start:start + block]
        truth = truth_of(start, start + len(p))
        for label, emu in emulators:
            maps, err = emu.predict(p, return_error=True)
            accs[label].update(maps, truth, p, err)
        x = torch.from_numpy(first.transform.forward(first.simulate_lr(p)).astype(np.float32))
        with torch.inference_mode():
            accs["bicubic"].update(first.transform.inverse(bicubic(x).double()).numpy(), truth, p)
    return {label: acc.summary() for label, acc in accs.items()}


def format_region_table(summaries):
    """Markdown table of one or more region summaries ({label: RegionAccumulator.summary()}): per band, median and
    p95 per channel, and the calibration shares where present."""
    lines = ["| model | distance [LR px] | " + " | ".join(
        f"{c} median / p95 [{'km/s' if c == 'v' else '%'}]" for c in CHANNELS) + " | within 1 / 2 sigma (B, v, sigma, M/L) [%] |",
        "|---|---|" + "---|" * len(CHANNELS) + "---|"]
    for label, s in summaries.items():
        for band in s["bands"]:
            row = s["by_band"][band]
            cells = []
            for c in CHANNELS:
                e = row[c]
                if "median" not in e:
                    cells.append("-")
                elif c == "v":
                    cells.append(f"{e['median']:.3g} / {e['p95']:.3g}")
                else:
                    cells.append(f"{100 * e['median']:.3g} / {100 * e['p95']:.3g}")
            cal = ", ".join(f"{100 * row[c]['within_1sigma']:.0f}/{100 * row[c]['within_2sigma']:.0f}"
                            for c in CHANNELS if "within_1sigma" in row[c]) or "-"
            lines.append(f"| {label} | {band} | " + " | ".join(cells) + f" | {cal} |")
    return "\n".join(lines)

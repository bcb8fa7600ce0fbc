"""Fitting the emulator's per-galaxy error model (galsr.emulator.error_model.BinnedErrorModel) on galaxies it was
not trained on, and writing it into the emulator file.

Galaxies are drawn from the prior (Latin hypercube with the physical cuts, seeded), simulated on the converged HR
grid and emulated; the absolute residuals in the fit's units (brightness in dex) of pixels brighter than
``BRIGHT_FRACTION`` of the peak are grouped by the model's bins, and each cell gets ``fit_scale`` of its residuals.
A cell with fewer than ``MIN_PIXELS`` residuals borrows from its neighbours in sampling offset, then in bulge size
(pooled), so no cell rests on a handful of pixels. The pixels of the emulator's central patch, if any, have bins of
their own.
"""
import numpy as np

from galsr.emulator.error_model import BULGE_EDGES, DISTANCE_EDGES, OFFSET_EDGES, BinnedErrorModel, fit_scale
from galsr.simulator import ParameterSpace, simulate
from galsr.simulator.fit_units import residual_in_fit_units
from galsr.training.region_metrics import BRIGHT_FRACTION

MIN_PIXELS = 200
#: Galaxies simulated and emulated at once.
BLOCK = 256


def held_out_residuals(emulator, n, seed, progress=False):
    """(params (n, 18), |residual| (n, 4, n_hr, n_hr) in the fit's units, bright-pixel mask (n, n_hr, n_hr)) of
    ``n`` prior galaxies drawn with ``seed``: the emulator against the converged HR simulation."""
    from tqdm import tqdm

    params = ParameterSpace(bounds=emulator.bounds, redshift=emulator.redshift).sample_lhs(int(n), seed=int(seed))
    res, bright = [], []
    for start in tqdm(range(0, len(params), BLOCK), desc="simulate + emulate", disable=not progress or None):
        p = params[start:start + BLOCK]
        truth = simulate(p, emulator.hr_grid, emulator.redshift)
        res.append(np.abs(residual_in_fit_units(emulator(p), truth)).astype(np.float32))
        peak = truth[:, 0].reshape(len(p), -1).max(axis=1)
        bright.append(truth[:, 0] > BRIGHT_FRACTION * peak[:, None, None])
    return params, np.concatenate(res), np.concatenate(bright)


def fit_binned_error_model(emulator, params, abs_residuals, bright):
    """A BinnedErrorModel fitted to held-out residuals (see the module docstring)."""
    patch = emulator.centre_patch
    n_b, n_o, n_d = len(BULGE_EDGES) + 1, len(OFFSET_EDGES) + 1, len(DISTANCE_EDGES) * (2 if patch else 1)
    n_c = abs_residuals.shape[1]
    probe = BinnedErrorModel(np.ones((n_b, n_o, n_c, n_d)), emulator.hr_grid, emulator.lr_grid, centre_patch=patch)
    bulge, offset, dist = probe.bins(params)
    cells = {}  # (b, o, c, d) -> list of arrays
    for g in range(len(params)):
        sel = bright[g]
        d = dist[g][sel]
        for c in range(n_c):
            r = abs_residuals[g, c][sel]
            order = np.argsort(d, kind="stable")
            ds, rs = d[order], r[order]
            cuts = np.searchsorted(ds, np.arange(n_d + 1))
            for k in range(n_d):
                if cuts[k + 1] > cuts[k]:
                    cells.setdefault((bulge[g], offset[g], c, k), []).append(rs[cuts[k]:cuts[k + 1]])
    table = np.empty((n_b, n_o, n_c, n_d))
    for c in range(n_c):
        for k in range(n_d):
            everything = [a for (b, o, cc, kk), v in cells.items() if cc == c and kk == k for a in v]
            overall = np.concatenate(everything) if everything else np.zeros(1)
            for b in range(n_b):
                same_bulge = [a for o in range(n_o) for a in cells.get((b, o, c, k), [])]
                for o in range(n_o):
                    for pool in (cells.get((b, o, c, k), []), same_bulge):
                        if sum(len(a) for a in pool) >= MIN_PIXELS:
                            table[b, o, c, k] = fit_scale(np.concatenate(pool))
                            break
                    else:
                        table[b, o, c, k] = fit_scale(overall)
    floor = 1e-6  # a cell of exact zeros (a constant channel) must still give a positive sigma
    return BinnedErrorModel(np.maximum(table, floor), emulator.hr_grid, emulator.lr_grid, centre_patch=patch)


def calibrate(emulator_path, out_path, n=2048, seed=20261129, progress=False, overwrite=False):
    """Fit a BinnedErrorModel for the emulator in ``emulator_path`` on ``n`` held-out prior galaxies drawn with
    ``seed`` and write the emulator with it to ``out_path`` (atomically); returns the model."""
    import os

    from galsr.emulator import Emulator
    from galsr.emulator.file_format import load_emulator, save_emulator

    if os.path.exists(out_path) and not overwrite and os.path.abspath(out_path) != os.path.abspath(emulator_path):
        raise ValueError(f"{out_path} exists; allow overwriting it to replace it")
    ef = load_emulator(emulator_path)
    emulator = Emulator(ef, num_threads=None)
    params, res, bright = held_out_residuals(emulator, n, seed, progress)
    model = fit_binned_error_model(emulator, params, res, bright)
    meta_em, tensors_em = model.to_file()
    meta = dict(ef.metadata, error_model=dict(meta_em, n_galaxies=int(n), seed=int(seed)))
    save_emulator(out_path, model_name=ef.model_name, hparams=ef.hparams, state_dict=ef.state_dict, metadata=meta,
                  tensors=dict(ef.tensors, **tensors_em))
    return model

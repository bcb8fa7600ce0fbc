"""Fitting the emulator's per-galaxy error model (galsr.emulator.error_model.BinnedErrorModel) on galaxies it was
not trained on, and writing it into the emulator file.

Galaxies are drawn from the prior (Latin hypercube with the physical cuts, seeded), simulated on the converged HR
grid and emulated; the absolute residuals of pixels brighter than ``BRIGHT_FRACTION`` of the peak, in each
channel's table unit (galsr.emulator.error_model.UNITS, scaled by the emulated maps as a fit's call will be), are
grouped by the model's bins, and each cell gets ``fit_scale`` of them. A cell with fewer than ``MIN_PIXELS``
residuals borrows from its neighbours in sampling offset, then in bulge size (pooled), so no cell rests on a handful
of pixels. The pixels of the emulator's central patch, if any, have bins of their own.

With a central patch the table is fitted on the galaxies whose ring ratio (the network against the patch on the
patch's border ring, relative to its median; see error_model) is below 2 in that channel, and every ring bin then
gets a factor per channel and distance bin: ``fit_scale`` of the residuals over the interpolated table's sigma, of
the galaxies in that bin (all distance bins pooled where one has too few pixels; a ring bin with too few pixels
even then takes the factors of the bin below).
"""
import numpy as np

from galsr.emulator.error_model import (BULGE_EDGES, DISTANCE_EDGES, OFFSET_EDGES, RING_CENTRES, RING_EDGES, UNITS,
                                        BinnedErrorModel, fit_scale, ring_mismatch, table_scale)
from galsr.simulator import ParameterSpace, simulate
from galsr.simulator.centre_patch import PATCH_RULE, patch_origin, rule_to_dict
from galsr.simulator.fit_units import residual_in_fit_units
from galsr.training.region_metrics import BRIGHT_FRACTION

MIN_PIXELS = 200
#: Galaxies simulated and emulated at once.
BLOCK = 256


def held_out_residuals(emulator, n, seed, units=UNITS, progress=False):
    """(params (n, 18), |residual| (n, 4, n_hr, n_hr) in the table's ``units``, bright-pixel mask (n, n_hr, n_hr),
    ring mismatch (n, 4) in the same units or None without a central patch) of ``n`` prior galaxies drawn with
    ``seed``: the emulator against the converged HR simulation."""
    from tqdm import tqdm

    params = ParameterSpace(bounds=emulator.bounds, redshift=emulator.redshift).sample_lhs(int(n), seed=int(seed))
    res, bright, rings = [], [], []
    for start in tqdm(range(0, len(params), BLOCK), desc="simulate + emulate", disable=not progress or None):
        p = params[start:start + BLOCK]
        truth = simulate(p, emulator.hr_grid, emulator.redshift)
        emulated, under = emulator.emulate(p, keep_network=True)
        scale = table_scale(emulated, units)
        res.append((np.abs(residual_in_fit_units(emulated, truth)) / scale).astype(np.float32))
        if under is not None:
            rings.append(ring_mismatch(under, emulated, patch_origin(p, emulator.hr_grid, emulator.centre_patch),
                                       units))
        peak = truth[:, 0].reshape(len(p), -1).max(axis=1)
        bright.append(truth[:, 0] > BRIGHT_FRACTION * peak[:, None, None])
    return params, np.concatenate(res), np.concatenate(bright), (np.concatenate(rings) if rings else None)


def _cell_table(n_b, n_o, n_c, n_d, bulge, offset, dist, abs_residuals, bright, use):
    """(n_b, n_o, n_c, n_d) ``fit_scale`` per cell over the galaxies ``use`` (n, n_c) bool marks per channel."""
    cells = {}  # (b, o, c, d) -> list of arrays
    for g in range(len(bulge)):
        sel = bright[g]
        d = dist[g][sel]
        order = np.argsort(d, kind="stable")
        cuts = np.searchsorted(d[order], np.arange(n_d + 1))
        for c in range(n_c):
            if not use[g, c]:
                continue
            rs = abs_residuals[g, c][sel][order]
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
    return table


def _ring_factors(model, params, dist, abs_residuals, bright, ring_bin):
    """(n_ring, C, n_d) factors: ``fit_scale`` of residual / the table's sigma over the galaxies in each ring bin."""
    n_c, n_d = abs_residuals.shape[1], model.table.shape[3]
    ratios = {}  # (k, c, d) -> list of arrays
    for g, row in enumerate(params):
        sel = bright[g]
        d = dist[g][sel]
        order = np.argsort(d, kind="stable")
        ds = d[order]
        cuts = np.searchsorted(ds, np.arange(n_d + 1))
        sigma = model.galaxy_table(row)[ds]  # (pixels, C), the table without a ring term
        for c in range(n_c):
            r = abs_residuals[g, c][sel][order] / sigma[:, c]
            for k in range(n_d):
                if cuts[k + 1] > cuts[k]:
                    ratios.setdefault((ring_bin[g, c], c, k), []).append(r[cuts[k]:cuts[k + 1]])
    factors = np.ones((len(RING_CENTRES), n_c, n_d))
    for k in range(len(RING_CENTRES)):
        for c in range(n_c):
            pooled = [a for d in range(n_d) for a in ratios.get((k, c, d), [])]
            if sum(len(a) for a in pooled) < MIN_PIXELS:  # too few galaxies this far out: the bin below's factors
                factors[k, c] = factors[k - 1, c] if k else 1.0
                continue
            for d in range(n_d):
                cell = ratios.get((k, c, d), [])
                factors[k, c, d] = fit_scale(np.concatenate(cell if sum(len(a) for a in cell) >= MIN_PIXELS
                                                            else pooled))
    return factors


def fit_binned_error_model(emulator, params, abs_residuals, bright, units=UNITS, rings=None):
    """A BinnedErrorModel fitted to held-out residuals in table ``units`` (see the module docstring); ``rings``
    (n, C) the galaxies' ring mismatch (with a central patch) or None."""
    patch = emulator.centre_patch
    n_b, n_o, n_d = len(BULGE_EDGES) + 1, len(OFFSET_EDGES) + 1, len(DISTANCE_EDGES) * (2 if patch else 1)
    n_c = abs_residuals.shape[1]
    probe = BinnedErrorModel(np.ones((n_b, n_o, n_c, n_d)), emulator.hr_grid, emulator.lr_grid, centre_patch=patch)
    bulge, offset, dist = probe.bins(params)
    use = np.ones((len(params), n_c), dtype=bool)
    ring = {}
    if rings is not None:
        reference = np.maximum(np.median(rings, axis=0), 1e-12)
        ring_bin = np.stack([np.digitize(np.log10(np.maximum(rings[:, c] / reference[c], 1e-12)), RING_EDGES)
                             for c in range(n_c)], axis=1)
        use = ring_bin == 0  # the table describes the galaxies whose network agrees with the patch
    table = _cell_table(n_b, n_o, n_c, n_d, bulge, offset, dist, abs_residuals, bright, use)
    floor = 1e-6  # a cell of exact zeros (a constant channel) must still give a positive sigma
    model = BinnedErrorModel(np.maximum(table, floor), emulator.hr_grid, emulator.lr_grid, centre_patch=patch,
                             units=units)
    if rings is not None:
        ring = dict(ring_reference=reference,
                    ring_factors=_ring_factors(model, params, dist, abs_residuals, bright, ring_bin))
        model = BinnedErrorModel(model.table, emulator.hr_grid, emulator.lr_grid, centre_patch=patch, units=units,
                                 **ring)
    return model


def calibrate(emulator_path, out_path, n=2048, seed=20261129, progress=False, overwrite=False, units=UNITS,
              ring=True):
    """Fit a BinnedErrorModel for the emulator in ``emulator_path`` on ``n`` held-out prior galaxies drawn with
    ``seed`` and write the emulator with it to ``out_path`` (atomically); returns the model. ``ring``: fit the ring
    term (emulators with a central patch)."""
    import os

    from galsr.emulator import Emulator
    from galsr.emulator.file_format import load_emulator, save_emulator

    if os.path.exists(out_path) and not overwrite and os.path.abspath(out_path) != os.path.abspath(emulator_path):
        raise ValueError(f"{out_path} exists; allow overwriting it to replace it")
    ef = load_emulator(emulator_path)
    emulator = Emulator(ef, num_threads=None)
    emulator.patch_rule = PATCH_RULE  # calibrate for this release's patch rule; the file records it below
    params, res, bright, rings = held_out_residuals(emulator, n, seed, units, progress)
    model = fit_binned_error_model(emulator, params, res, bright, units, rings if ring else None)
    meta_em, tensors_em = model.to_file()
    meta = dict(ef.metadata, error_model=dict(meta_em, n_galaxies=int(n), seed=int(seed)))
    meta["patch_rule"] = rule_to_dict(PATCH_RULE) if emulator.centre_patch else None
    stale = ("error_model_ring_reference", "error_model_ring_factors")  # a previous calibration's ring term
    tensors = {k: v for k, v in ef.tensors.items() if k not in stale}
    save_emulator(out_path, model_name=ef.model_name, hparams=ef.hparams, state_dict=ef.state_dict, metadata=meta,
                  tensors=dict(tensors, **tensors_em))
    return model

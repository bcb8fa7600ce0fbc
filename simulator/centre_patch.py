"""The central HR patch: the few HR pixels around a galaxy's centre, simulated directly (docs/physics.md#the-centre-patch).

Within about two LR pixels of the centre (x0, y0), a bulge or disc core smaller than an LR pixel is hit or missed by
the LR point samples, so no network can recover it from them (galsr's first emulator: 18 % median brightness error
there). Those pixels are cheap to simulate exactly: an ``npatch`` x ``npatch`` block of HR pixels (npatch even) placed
on the HR pixel grid so that the centre lies within half a pixel of the block's middle, simulated as its own small grid
(the galaxy moved by a whole number of HR pixels, so that its centre sits near the small grid's middle; every map is a
function of the offset from the centre) with a lighter quadrature than the converged HR grid (``PATCH_RULE``): one
evaluation point per pixel, the adaptive centre block at Gauss-Legendre order 2 over the 5 x 5 cells around the
centre, a 12 x 2 polar rule for the innermost square, and the PSF kernels truncated at 2 sigma: about a fifth of the
converged grid's work per pixel, and about 1 % from it in brightness at the centre (benchmarks/bench_centre.py
measures it). The rule is chosen by the error a fit feels most: the one shared by a galaxy's whole patch (the
median signed error), which for a galaxy that fits inside the patch adds up over every pixel instead of averaging
out (docs/physics.md#the-centre-patch). The LR maps and the patch come from one numba call per galaxy
(``simulate_with_patch``), which sets the galaxy up once for both.
"""
import dataclasses
from functools import lru_cache

import numpy as np

from galsr.simulator.grid import Grid
from galsr.simulator.params import PARAM_NAMES
from galsr.simulator.render import QuadratureRule
from galsr.simulator.simulate import simulate_pair

X0, Y0 = PARAM_NAMES.index("x0"), PARAM_NAMES.index("y0")
#: Gauss-Legendre order of the patch's adaptive centre block (the converged HR grid uses 4).
PATCH_ZOOM = 2
#: The patch's lighter quadrature (the converged HR grid: simulator.render.CONVERGED_RULE). An emulator file records
#: the rule its error model was calibrated with ("patch_rule"); ``galsr calibrate`` brings a file to this one.
PATCH_RULE = QuadratureRule(block_max=2, polar_r=12, polar_phi=2, psf_truncation=2.0)
#: The rule of emulator files that record none (calibrated before the rule was stored).
LEGACY_PATCH_RULE = QuadratureRule(block_max=1, polar_r=8, polar_phi=2, psf_truncation=2.0)


def check_npatch(npatch, hr_npix, allow_zero=False):
    """``npatch`` as an int: even, >= 2 (or 0 = no patch, with ``allow_zero``) and <= hr_npix (ValueError naming the
    value otherwise)."""
    ok = isinstance(npatch, (int, np.integer)) and not isinstance(npatch, bool) and npatch % 2 == 0 \
        and (2 <= npatch <= hr_npix or (allow_zero and npatch == 0))
    if not ok:
        raise ValueError(f"centre patch size must be an even number of HR pixels in [2, {hr_npix}]"
                         f"{' or 0' if allow_zero else ''}, got {npatch!r}")
    return int(npatch)


def rule_to_dict(rule):
    """The plain-JSON form of a QuadratureRule (what an emulator file stores)."""
    return dataclasses.asdict(rule)


def rule_from_dict(d):
    """The QuadratureRule stored as ``d`` (rule_to_dict's form), or LEGACY_PATCH_RULE for None; ValueError naming
    what is wrong (missing or unknown keys, a non-integer count, a value out of range)."""
    if d is None:
        return LEGACY_PATCH_RULE
    want = tuple(f.name for f in dataclasses.fields(QuadratureRule))
    if not isinstance(d, dict) or set(d) != set(want):
        raise ValueError(f"patch_rule must be an object with keys {list(want)}, got {d!r}")
    ints = all(isinstance(d[k], int) and not isinstance(d[k], bool) for k in want if k != "psf_truncation")
    t = d["psf_truncation"]
    if not ints or isinstance(t, bool) or not isinstance(t, (int, float)):
        raise ValueError(f"patch_rule: block_max, polar_r, polar_phi must be integers and psf_truncation a number, "
                         f"got {d!r}")
    return QuadratureRule(**dict(d, psf_truncation=float(t)))  # its own range check names the rule


def patch_origin(params, hr_grid, npatch):
    """(row, column) (N, 2) int64 of the patch's first HR pixel for parameter rows (N, 18): the HR pixel corner
    nearest the centre (x0, y0) is the patch's middle. The patch may reach past the map's edge (see paste_patch)."""
    p = np.atleast_2d(np.asarray(params, dtype=np.float64))
    k = np.rint(p[:, [Y0, X0]] / hr_grid.pixel_kpc).astype(np.int64)  # whole HR pixels from the sky origin
    return k + (hr_grid.npix - npatch) // 2


def patch_mask(params, hr_grid, npatch):
    """Boolean (N, n, n): the HR pixels each galaxy's patch covers (the pixels the emulator simulates directly)."""
    origin = patch_origin(params, hr_grid, npatch)
    idx = np.arange(hr_grid.npix)
    rows = (idx[None, :] >= origin[:, :1]) & (idx[None, :] < origin[:, :1] + npatch)
    cols = (idx[None, :] >= origin[:, 1:]) & (idx[None, :] < origin[:, 1:] + npatch)
    return rows[:, :, None] & cols[:, None, :]


def patch_slices(origin, npatch, n):
    """((rows, columns) of the map, (rows, columns) of the patch) as slices: the part of a patch of ``npatch`` HR
    pixels with its first pixel at ``origin`` (row, column) that falls on an n x n map (possibly empty)."""
    r0, c0 = int(origin[0]), int(origin[1])
    rs, re = max(r0, 0), max(min(r0 + npatch, n), max(r0, 0))
    cs, ce = max(c0, 0), max(min(c0 + npatch, n), max(c0, 0))
    return (slice(rs, re), slice(cs, ce)), (slice(rs - r0, re - r0), slice(cs - c0, ce - c0))


def paste_patch(maps, patch, origin):
    """Write ``patch`` (C, P, P) into ``maps`` (C, n, n) in place with its first pixel at ``origin`` (row, column),
    leaving out whatever falls outside the map."""
    (mr, mc), (pr, pc) = patch_slices(origin, patch.shape[-1], maps.shape[-1])
    maps[:, mr, mc] = patch[:, pr, pc]
    return maps


def read_patch(maps, origin, npatch):
    """A copy (C, P, P) of what ``maps`` (C, n, n) holds where a patch at ``origin`` would go; NaN off the map."""
    out = np.full(maps.shape[:-2] + (npatch, npatch), np.nan)
    (mr, mc), (pr, pc) = patch_slices(origin, npatch, maps.shape[-1])
    out[:, pr, pc] = maps[:, mr, mc]
    return out


def patch_reach_lr(npatch, hr_per_lr=4):
    """Distance from the centre [LR pixels] out to which the patch covers every pixel: half its side less the half
    pixel by which the centre can miss the patch's middle."""
    return (npatch / 2.0 - 0.5) / hr_per_lr if npatch > 1 else 0.0


@lru_cache(maxsize=8)
def patch_grid(hr_grid, npatch):
    """The small Grid (npatch x npatch HR pixels around the sky origin, one evaluation point per pixel, adaptive
    centre at PATCH_ZOOM) that a patch is simulated on."""
    return Grid(npatch, hr_grid.pixel_kpc, hr_grid.psf_fwhm_pho_kpc, hr_grid.psf_fwhm_kin_kpc, 1, PATCH_ZOOM)


def simulate_with_patch(params, lr_grid, hr_grid, npatch, redshift, rule=PATCH_RULE):
    """The emulator's two simulations of validated parameter rows (N, 18) in one call per galaxy: (LR maps
    (N, 4, n_lr, n_lr), exactly simulator.simulate's on ``lr_grid``; central patches (N, 4, P, P) on ``hr_grid``'s
    pixels with quadrature ``rule``; origins (N, 2) int64 for paste_patch), float64 in the units of
    simulator.simulate. Each galaxy is moved by the whole HR pixels between the map's middle and its patch's middle,
    so that its patch is a small grid centred on the sky origin; the two share the galaxy's setup
    (simulator.simulate.simulate_pair)."""
    p = np.atleast_2d(params)
    origins = patch_origin(p, hr_grid, npatch)
    shifts = (origins[:, ::-1] - (hr_grid.npix - npatch) // 2) * hr_grid.pixel_kpc  # (x, y) kpc
    lr, patches = simulate_pair(p, lr_grid, patch_grid(hr_grid, npatch), shifts, redshift, rule_b=rule)
    return lr, patches, origins

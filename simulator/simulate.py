"""The public entry point: parameters -> the four maps on a grid (docs/physics.md#maps)."""
from functools import lru_cache

import numpy as np

from galsr.simulator import bulge, disc
from galsr.simulator.constants import G
from galsr.simulator.cosmology import check_redshift, rho_crit
from galsr.simulator.grid import Grid
from galsr.simulator.params import ParameterSpace
from galsr.simulator.psf import binned_kernel
from galsr.simulator.render import (CONVERGED_RULE, QuadratureRule, render_batch, render_one, render_with_patch,
                                    render_with_patch_batch)

_SPACES = {}


def _space(redshift):
    if redshift not in _SPACES:
        _SPACES[redshift] = ParameterSpace(redshift=redshift)
    return _SPACES[redshift]


@lru_cache(maxsize=32)
def _kernel_arguments(grid, rule):
    """The grid's part of the numba call: sizes, padding, pixel-binned PSF kernels and the centre's quadrature
    (cached per grid and rule)."""
    s = grid.oversample
    k_pho, k_kin = grid.psf_kernel("pho", rule.psf_truncation), grid.psf_kernel("kin", rule.psf_truncation)
    k_pho = np.ones(1) if k_pho is None else k_pho
    k_kin = np.ones(1) if k_kin is None else k_kin
    pad = max(len(k_pho), len(k_kin)) // 2
    return (grid.npix, grid.pixel_kpc, s, pad, binned_kernel(k_pho, s), binned_kernel(k_kin, s),
            grid.psf_sigma("pho") or 0.0, grid.psf_sigma("kin") or 0.0, grid.centre_zoom) + rule.numba_arguments()


def simulate(params, grid, redshift=0.03, check=True, rule=CONVERGED_RULE):
    """Simulate the four maps of one or more galaxies.

    Parameters
    ----------
    params : array (18,) or (N, 18), or dict {name: value}
        Parameters in the order of ``simulator.PARAM_NAMES`` (log10 Msun, log10 kpc, kpc, rad; docs/physics.md#parameters-and-prior).
    grid : Grid
        The sky grid (pixel size in kpc, PSF FWHMs in kpc, sub-sampling).
    redshift : float
        Sets the critical density of the NFW halo (the grid is already in kpc).
    check : bool
        Validate parameters against the prior box (NaN, bounds). The physical cuts are not enforced here.
    rule : simulator.render.QuadratureRule
        Quadrature of the adaptive centre and reach of the PSF kernels (default: the converged HR grid's; the
        emulator's central patch uses a lighter one, simulator.centre_patch).

    Returns
    -------
    maps : float64 array (4, n, n) for one galaxy, (N, 4, n, n) for a batch: brightness [Lsun/kpc^2],
        line-of-sight velocity [km/s], velocity dispersion [km/s], mass-to-light ratio [Msun/Lsun]; [iy, ix],
        x and y ascending (``grid.centres``).
    """
    if not isinstance(grid, Grid):
        raise ValueError(f"grid must be a simulator.Grid, got {type(grid).__name__}")
    if not isinstance(rule, QuadratureRule):
        raise ValueError(f"rule must be a simulator.render.QuadratureRule, got {type(rule).__name__}")
    z = check_redshift(redshift)
    space = _space(z)
    arr = space.validate(params) if check else np.atleast_2d(np.asarray(params, dtype=np.float64))
    single = np.ndim(params) == 1 or isinstance(params, dict)
    arr = np.ascontiguousarray(arr)
    out = np.empty((arr.shape[0], 4, grid.npix, grid.npix))
    args = _kernel_arguments(grid, rule) + _constants(z)
    if arr.shape[0] == 1:  # no thread launch for the batch-1 latency that a sampler pays
        render_one(arr[0], *args, out[0])
    else:
        render_batch(arr, *args, out)
    return out[0] if single else out


def _constants(z):
    """The model's part of the numba call: critical density, G and the bulge and disc tables."""
    return (rho_crit(z), G, bulge.TABLES, bulge.GAMMA0, bulge.DGAMMA, bulge.LN_S0, bulge.DLN_S, disc.LN_G_TABLE,
            disc.LN_Y0, disc.DLN_Y)


def simulate_pair(params, grid_a, grid_b, shifts, redshift=0.03, rule_a=CONVERGED_RULE, rule_b=CONVERGED_RULE):
    """Validated parameter rows (N, 18) on two grids in one numba call per galaxy: (maps (N, 4, n_a, n_a) on
    ``grid_a``, exactly simulate()'s; maps (N, 4, n_b, n_b) on ``grid_b`` with each galaxy moved by -``shifts``
    (N, 2) (x, y kpc)). Each galaxy's setup (derived parameters, bulge tables, the v_int^2 table, a third of a small
    grid's cost) is made once, for grid_a, so grid_a must reach as far from the galaxy as grid_b's points (as an LR
    grid does for a central patch); within that, grid_b's maps differ from simulate()'s only by the table's
    interpolation (< 1e-6)."""
    z = check_redshift(redshift)
    arr = np.ascontiguousarray(params, dtype=np.float64)
    shifts = np.ascontiguousarray(shifts, dtype=np.float64)
    out_a = np.empty((arr.shape[0], 4, grid_a.npix, grid_a.npix))
    out_b = np.empty((arr.shape[0], 4, grid_b.npix, grid_b.npix))
    ga, gb = _kernel_arguments(grid_a, rule_a), _kernel_arguments(grid_b, rule_b)
    if arr.shape[0] == 1:
        render_with_patch(arr[0], ga, gb, shifts[0, 0], shifts[0, 1], *_constants(z), out_a[0], out_b[0])
    else:
        render_with_patch_batch(arr, ga, gb, shifts, *_constants(z), out_a, out_b)
    return out_a, out_b

"""From parameters to the four PSF-convolved maps of one grid (numba; batched over galaxies with prange).

Per galaxy: evaluate the four fields of simulator.fields on the padded evaluation grid (spacing h = dx / s),
convolve them separably with pixel-binned kernels (brightness and Sigma with the photometric PSF; brightness,
the velocity moment and the second moment with the kinematic PSF), which averages s x s sub-points per pixel, and
form  B = (B)_P,  v = (B v)_K / (B)_K,  sigma = sqrt((B v^2 + B sigma^2)_K / (B)_K - v^2),
M/L = (Sigma)_P / (B)_P.

Centre. Without zoom (LR grids, oversample-1 checks) the evaluation point nearest (x0, y0) takes the cylinder
averages of the bulge (r_c = h / sqrt 2), as docs/physics.md#grids-and-convergence says. The midpoint rule of a grid is poor where the
profile changes on the scale of h (a bulge of a = 0.01 kpc is a point at h = 0.15 kpc and its R^-3 wings are
steep), and moving a point-like bulge to the nearest grid point shifts it by up to h / 2; together these made
plain oversampling converge slowly. With zoom n > 0 (converged HR grids) the (2c+1)^2 evaluation cells around the
centre (c from :func:`block_radius`: out to 30 a and 8 projected disc scale lengths) are integrated instead with
n x n Gauss-Legendre per piece, the square of side h/3 centred on the galaxy in polar coordinates (ln R
Gauss-Legendre down to 1e-7 of its side, then the exact cylinder content), and these pieces enter the convolution
at their exact positions with the exact pixel integral of the PSF (simulator.psf.pixel_weights).
"""
import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from galsr.simulator.bulge import bulge_slice
from galsr.simulator.fields import (SC_DLN_S, SC_DLN_Y, SC_G, SC_LN_S0, SC_LN_Y0, derived_parameters, point_fields,
                     vint2_table)
from galsr.simulator.psf import convolve_binned, pixel_weights

_R_MIN = 1e-7  # innermost radius of the polar square, in units of its side (inside: the cylinder rule)
_MAX_GL = 12


@njit(cache=True)
def _deposit_lattice(vals, wy, wx, out):
    """out += wy @ vals @ wx.T  (vals (Q, Q) lattice values, wy / wx (npix, Q) pixel weights)."""
    npix, q = wy.shape
    tmp = np.zeros((q, npix))
    for n in range(q):
        for m in range(q):
            v = vals[n, m]
            if v != 0.0:
                for px in range(npix):
                    tmp[n, px] += v * wx[px, m]
    for py in range(npix):
        for n in range(q):
            w = wy[py, n]
            if w != 0.0:
                for px in range(npix):
                    out[py, px] += w * tmp[n, px]


def _gauss_legendre_01(n):
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w




@dataclass(frozen=True)
class QuadratureRule:
    """How finely the adaptive centre is integrated (with the grid's ``centre_zoom`` Gauss-Legendre order):
    ``block_max`` the largest block radius in evaluation cells, ``polar_r`` x ``polar_phi`` the ln R and per-octant
    angular Gauss-Legendre nodes of the innermost square, ``psf_truncation`` the reach of the sampled PSF kernel in
    Gaussian sigmas. ``CONVERGED_RULE`` is what the converged HR grid uses (docs/physics.md#grids-and-convergence)."""

    block_max: int = 6
    polar_r: int = 24
    polar_phi: int = 4
    psf_truncation: float = 6.0

    def __post_init__(self):
        if not (1 <= self.block_max <= 6 and 1 <= self.polar_r <= 64 and 1 <= self.polar_phi <= 16
                and 2.0 <= self.psf_truncation <= 10.0):
            raise ValueError(f"quadrature rule out of range: {self}")

    def numba_arguments(self):
        """(block_max, ln R nodes, ln R weights, angle nodes, angle weights) as render_one takes them."""
        ur, wr = _gauss_legendre_01(self.polar_r)
        up, wp = _gauss_legendre_01(self.polar_phi)
        return (int(self.block_max), ur, wr, up, wp)


#: The rule of the converged HR grid.
CONVERGED_RULE = QuadratureRule()
# unit Gauss-Legendre rules of 1.._MAX_GL nodes, row n holding the n-node rule (zero padded)
_GL_U_BLOCK = np.zeros((_MAX_GL + 1, _MAX_GL))
_GL_W_BLOCK = np.zeros((_MAX_GL + 1, _MAX_GL))
for _n in range(1, _MAX_GL + 1):
    _GL_U_BLOCK[_n, :_n], _GL_W_BLOCK[_n, :_n] = _gauss_legendre_01(_n)


@njit(cache=True)
def _intervals_nodes(lo, cuts, hi, u, w, nodes, weights):
    """Gauss-Legendre nodes/weights (unit rule u, w) on the consecutive intervals lo | cuts... | hi."""
    n = u.shape[0]
    k = 0
    a = lo
    for j in range(cuts.shape[0] + 1):
        b = cuts[j] if j < cuts.shape[0] else hi
        for i in range(n):
            nodes[k] = a + (b - a) * u[i]
            weights[k] = (b - a) * w[i]
            k += 1
        a = b


@njit(cache=True)
def _polar_square(d, sl, series, totals, dtab, vtab, sc, side, ur, wr, up, wp, cen):
    """Integrals (4,) of the fields over the square of ``side`` (kpc) centred on the galaxy centre, in polar
    coordinates: ln R Gauss-Legendre out to the square's edge in each direction, Gauss-Legendre per octant in
    angle (the edge distance is smooth within an octant), and the exact cylinder content below R_min."""
    vals = np.empty(4)
    half = 0.5 * side
    r_min = _R_MIN * side
    cen[:] = 0.0
    for octant in range(8):
        axis = (octant + 1) // 2 * (0.5 * math.pi)  # the square's edge normal nearest this octant
        phi0 = octant * 0.25 * math.pi
        for ip in range(up.shape[0]):
            phi = phi0 + 0.25 * math.pi * up[ip]
            r_max = half / abs(math.cos(phi - axis))
            t0, t1 = math.log(r_min), math.log(r_max)
            cph, sph = math.cos(phi), math.sin(phi)
            for ir in range(ur.shape[0]):
                rad = math.exp(t0 + (t1 - t0) * ur[ir])
                wgt = 0.25 * math.pi * wp[ip] * (t1 - t0) * wr[ir] * rad * rad
                point_fields(d[15] + rad * cph, d[16] + rad * sph, d, sl, series, totals, dtab, vtab, sc, False, 0.0, vals)
                for f in range(4):
                    cen[f] += wgt * vals[f]
    # the cylinder rule gives the content of the innermost disc of radius r_min exactly (Sigma_avg * pi r_min^2)
    point_fields(d[15], d[16], d, sl, series, totals, dtab, vtab, sc, True, r_min, vals)
    for f in range(4):
        cen[f] += math.pi * r_min * r_min * vals[f]


@njit(cache=True)
def _block_cuts(centre, cell, c, h, w):
    """Interval edges inside the block along one axis: the evaluation-cell edges out to +-(c + 1/2) h from the
    cell centre ``cell``, except that the middle 3 cells are cut at the galaxy ``centre`` +- w/2, +- 3w/2."""
    cuts = np.empty(2 * (c - 1) + 4)
    k = 0
    for j in range(c - 1):
        cuts[k] = cell - (c - 0.5 - j) * h
        k += 1
    for off in (-1.5, -0.5, 0.5, 1.5):
        cuts[k] = centre + off * w
        k += 1
    for j in range(c - 1):
        cuts[k] = cell + (1.5 + j) * h
        k += 1
    return cuts


@njit(cache=True)
def block_radius(d, h, max_block):
    """Evaluation cells c on each side of the central one that the adaptive block covers: out to 30 bulge scale
    radii and 8 projected disc scale lengths (where the grid's midpoint rule would still be inaccurate), at least
    1 and at most ``max_block``."""
    reach = max(30.0 * d[1], 8.0 * d[5] * d[19], 8.0 * d[9] * d[19], 1.5 * h)
    return min(max(int(math.ceil(reach / h - 0.5)), 1), max_block)


@njit(cache=True)
def _centre_block(d, sl, series, totals, dtab, vtab, sc, xc, yc, h, c, n_gl, dx, s, edge0,
                  npix, sig_pho, sig_kin, src, ur, wr, up, wp, acc):
    """Add to ``acc`` the (2c+1)^2 evaluation cells around the one nearest the centre (xc, yc), integrated
    accurately enough for cusps and tiny discs and deposited at their exact positions (module docstring).

    The middle 3 x 3 cells are cut along x = x0 +- h/6, x0 +- h/2 (likewise y): the middle piece, a square of
    side h/3 centred on the galaxy, is integrated in polar coordinates and deposited at the centre; every other
    piece by n_gl x n_gl Gauss-Legendre, all deposited as one tensor lattice.
    """
    x0, y0 = d[15], d[16]
    w = h / 3.0
    u, wu = _GL_U_BLOCK[n_gl, :n_gl], _GL_W_BLOCK[n_gl, :n_gl]
    n_int = 2 * (c - 1) + 5
    mid = c + 1
    nq = n_int * n_gl
    xs, wxs, ys, wys = np.empty(nq), np.empty(nq), np.empty(nq), np.empty(nq)
    _intervals_nodes(xc - (c + 0.5) * h, _block_cuts(x0, xc, c, h, w), xc + (c + 0.5) * h, u, wu, xs, wxs)
    _intervals_nodes(yc - (c + 0.5) * h, _block_cuts(y0, yc, c, h, w), yc + (c + 0.5) * h, u, wu, ys, wys)
    lat = np.zeros((4, nq, nq))
    vals = np.empty(4)
    inv_cell = 1.0 / (h * h)  # contents are in units of one evaluation cell, like the regular grid's values
    for n in range(nq):
        for m in range(nq):
            if n // n_gl == mid and m // n_gl == mid:
                continue
            point_fields(xs[m], ys[n], d, sl, series, totals, dtab, vtab, sc, False, 0.0,
                         vals)
            for f in range(4):
                lat[f, n, m] = wxs[m] * wys[n] * inv_cell * vals[f]
    cen = np.empty(4)
    _polar_square(d, sl, series, totals, dtab, vtab, sc, w, ur, wr, up, wp, cen)
    wx, wy = np.empty((npix, nq)), np.empty((npix, nq))
    cx, cy, one = np.empty((npix, 1)), np.empty((npix, 1)), np.empty(1)
    for c in range(5):
        sig = sig_pho if c < 2 else sig_kin
        pixel_weights(xs, sig, dx, s, edge0, npix, wx)
        pixel_weights(ys, sig, dx, s, edge0, npix, wy)
        _deposit_lattice(lat[src[c]], wy, wx, acc[c])
        one[0] = x0
        pixel_weights(one, sig, dx, s, edge0, npix, cx)
        one[0] = y0
        pixel_weights(one, sig, dx, s, edge0, npix, cy)
        content = cen[src[c]] * inv_cell
        for py in range(npix):
            for px in range(npix):
                acc[c, py, px] += cy[py, 0] * cx[px, 0] * content


@njit(cache=True)
def galaxy_state(p, h, half_extent, rho_crit, G, tables, gamma0, dgamma, ln_s0, dln_s, dtab, ln_y0, dln_y):
    """What every grid of one galaxy ``p`` (18,) shares: (derived parameters, bulge slice, series and totals, the
    scalar vector sc, the ln v_int^2 table) for evaluation points at spacing ``h`` out to ``half_extent`` kpc from
    the sky origin along each axis (the table covers their disc-plane radii; closer in or farther out the lookup
    evaluates v_int^2 directly)."""
    d = derived_parameters(p, rho_crit)
    sl, series, totals = bulge_slice(d[2], tables, gamma0, dgamma)
    sc = np.zeros(7)
    sc[SC_LN_S0], sc[SC_DLN_S], sc[SC_LN_Y0], sc[SC_DLN_Y], sc[SC_G] = ln_s0, dln_s, ln_y0, dln_y, G
    # the farthest disc-plane radius of any evaluation point bounds the galaxy's v_int^2 table
    reach = math.sqrt(2.0) * (half_extent + max(abs(d[15]), abs(d[16])) + h) / d[19]
    vtab = vint2_table(d, sc, dtab, 1e-4 * h, reach)
    return d, sl, series, totals, sc, vtab


@njit(cache=True)
def first_point(npix, dx, s, pad):
    """(spacing h, coordinate of evaluation point 0 on both axes) of a grid, kpc."""
    h = dx / s
    return h, -(npix * s - 1) / 2.0 * h - pad * h


@njit(cache=True)
def render_grid(d, sl, series, totals, sc, vtab, dtab, npix, dx, s, pad, k_pho, k_kin, sig_pho, sig_kin, zoom,
                max_block, ur, wr, up, wp, out):
    """Maps (4, npix, npix) of a galaxy whose galaxy_state is given into ``out``; see the module docstring."""
    h, x_first = first_point(npix, dx, s, pad)
    nf = npix * s + 2 * pad
    edge0 = -npix * dx / 2.0
    jcx = int(round((d[15] - x_first) / h))
    jcy = int(round((d[16] - x_first) / h))
    has_centre = 0 <= jcx < nf and 0 <= jcy < nf
    cb = block_radius(d, h, max_block)
    block = zoom > 0 and has_centre and cb <= jcx < nf - cb and cb <= jcy < nf - cb

    fields = np.zeros((4, nf, nf))
    vals = np.empty(4)
    rc = h / math.sqrt(2.0)
    for iy in range(nf):
        y = x_first + iy * h
        for ix in range(nf):
            if block and abs(iy - jcy) <= cb and abs(ix - jcx) <= cb:
                continue
            central = has_centre and (not block) and iy == jcy and ix == jcx
            point_fields(x_first + ix * h, y, d, sl, series, totals, dtab, vtab, sc, central, rc, vals)
            for f in range(4):
                fields[f, iy, ix] = vals[f]

    # the five convolved, pixel-binned sums: B_P, Sigma_P, B_K, (Bv)_K, (B v^2 + B sigma^2)_K
    acc = np.zeros((5, npix, npix))
    src = (0, 1, 0, 2, 3)
    for c in range(5):
        kern = k_pho if c < 2 else k_kin  # already pixel-binned (psf.binned_kernel)
        convolve_binned(fields[src[c]], kern, pad - (kern.shape[0] - s) // 2, s, npix, acc[c])

    if block:
        _centre_block(d, sl, series, totals, dtab, vtab, sc, x_first + jcx * h,
                      x_first + jcy * h, h, cb, zoom, dx, s, edge0, npix, sig_pho, sig_kin, src, ur, wr, up, wp,
                      acc)

    for py in range(npix):
        for px in range(npix):
            bp, bk = acc[0, py, px], acc[2, py, px]
            v = acc[3, py, px] / bk
            out[0, py, px] = bp
            out[1, py, px] = v
            out[2, py, px] = math.sqrt(max(acc[4, py, px] / bk - v * v, 0.0))
            out[3, py, px] = acc[1, py, px] / bp


@njit(cache=True)
def render_one(p, npix, dx, s, pad, k_pho, k_kin, sig_pho, sig_kin, zoom, max_block, ur, wr, up, wp, rho_crit, G,
               tables, gamma0, dgamma, ln_s0, dln_s, dtab, ln_y0, dln_y, out):
    """Maps (4, npix, npix) of one galaxy ``p`` (18,) into ``out``; see the module docstring (max_block, ur, wr,
    up, wp: QuadratureRule.numba_arguments)."""
    h, x_first = first_point(npix, dx, s, pad)
    d, sl, series, totals, sc, vtab = galaxy_state(p, h, -x_first, rho_crit, G, tables, gamma0, dgamma, ln_s0,
                                                   dln_s, dtab, ln_y0, dln_y)
    render_grid(d, sl, series, totals, sc, vtab, dtab, npix, dx, s, pad, k_pho, k_kin, sig_pho, sig_kin, zoom,
                max_block, ur, wr, up, wp, out)


@njit(cache=True)
def render_with_patch(p, grid_a, grid_b, shift_x, shift_y, rho_crit, G, tables, gamma0, dgamma, ln_s0, dln_s, dtab,
                      ln_y0, dln_y, out_a, out_b):
    """One galaxy on two grids in one call, sharing its galaxy_state (the v_int^2 table is the costly part): grid
    ``grid_a`` into ``out_a``, and ``grid_b`` with the galaxy moved by (-shift_x, -shift_y) kpc into ``out_b``. Each
    grid is the tuple (npix, dx, s, pad, k_pho, k_kin, sig_pho, sig_kin, zoom, max_block, ur, wr, up, wp); grid_a's
    table must reach grid_b's points (as an LR grid's does for a central patch: the table is grid_a's, so out_a is
    exactly render_one's)."""
    npix, dx, s, pad = grid_a[0], grid_a[1], grid_a[2], grid_a[3]
    h, x_first = first_point(npix, dx, s, pad)
    d, sl, series, totals, sc, vtab = galaxy_state(p, h, -x_first, rho_crit, G, tables, gamma0, dgamma, ln_s0,
                                                   dln_s, dtab, ln_y0, dln_y)
    render_grid(d, sl, series, totals, sc, vtab, dtab, npix, dx, s, pad, grid_a[4], grid_a[5], grid_a[6], grid_a[7],
                grid_a[8], grid_a[9], grid_a[10], grid_a[11], grid_a[12], grid_a[13], out_a)
    d2 = d.copy()
    d2[15] -= shift_x
    d2[16] -= shift_y
    render_grid(d2, sl, series, totals, sc, vtab, dtab, grid_b[0], grid_b[1], grid_b[2], grid_b[3], grid_b[4],
                grid_b[5], grid_b[6], grid_b[7], grid_b[8], grid_b[9], grid_b[10], grid_b[11], grid_b[12], grid_b[13],
                out_b)


@njit(cache=True, parallel=True)
def render_with_patch_batch(params, grid_a, grid_b, shifts, rho_crit, G, tables, gamma0, dgamma, ln_s0, dln_s, dtab,
                            ln_y0, dln_y, out_a, out_b):
    """render_with_patch over the rows of ``params`` (N, 18) and ``shifts`` (N, 2) (x, y kpc), in parallel."""
    for i in prange(params.shape[0]):
        render_with_patch(params[i], grid_a, grid_b, shifts[i, 0], shifts[i, 1], rho_crit, G, tables, gamma0, dgamma,
                          ln_s0, dln_s, dtab, ln_y0, dln_y, out_a[i], out_b[i])


@njit(cache=True, parallel=True)
def render_batch(params, npix, dx, s, pad, k_pho, k_kin, sig_pho, sig_kin, zoom, max_block, ur, wr, up, wp, rho_crit,
                 G, tables, gamma0, dgamma, ln_s0, dln_s, dtab, ln_y0, dln_y, out):
    """render_one over the rows of ``params`` (N, 18) into ``out`` (N, 4, npix, npix), galaxies in parallel."""
    for i in prange(params.shape[0]):
        render_one(params[i], npix, dx, s, pad, k_pho, k_kin, sig_pho, sig_kin, zoom, max_block, ur, wr, up, wp,
                   rho_crit, G,
                   tables, gamma0, dgamma, ln_s0, dln_s, dtab, ln_y0, dln_y, out[i])

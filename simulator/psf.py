"""Separable Gaussian PSF on the padded evaluation grid, and the same PSF for points off that grid (numba).

The kernel is the Gaussian sampled at the evaluation spacing h and normalised to unit sum (docs/physics.md#psf), truncated
at >= 6 sigma. A point at an arbitrary position X (the adaptive centre of render.py) enters with the exact pixel
integral of the continuous Gaussian, the limit to which the sampled kernel converges as the sub-sampling grows.
"""
import math

import numpy as np
from numba import njit

#: The PSF kernel reaches this many Gaussian sigmas (docs/physics.md#psf: no closer than 6).
PSF_TRUNCATION_SIGMAS = 6.0


def binned_kernel(kernel, s):
    """The kernel followed by the mean over s consecutive points: convolving with it at stride s gives the PSF
    convolution already averaged over each pixel's s sub-points (length len(kernel) + s - 1)."""
    return np.convolve(kernel, np.full(s, 1.0 / s))


@njit(cache=True)
def convolve_binned(field, kernel, offset, s, n_out, out):
    """Separable convolution of ``field`` (n, n) with the pixel-binned ``kernel`` at stride ``s``:
    out[P, Q] = sum_{t, u} kernel[t] kernel[u] field[P s + offset + t, Q s + offset + u]  (n_out x n_out).
    """
    nk = kernel.shape[0]
    tmp = np.zeros((field.shape[0], n_out))
    for iy in range(field.shape[0]):  # along x, every row
        for px in range(n_out):
            acc = 0.0
            base = px * s + offset
            for t in range(nk):
                acc += kernel[t] * field[iy, base + t]
            tmp[iy, px] = acc
    for py in range(n_out):  # along y, rows vectorised
        base = py * s + offset
        for t in range(nk):
            w = kernel[t]
            for px in range(n_out):
                out[py, px] += w * tmp[base + t, px]


@njit(cache=True)
def pixel_weights(coords, sigma, dx, s, edge0, npix, out):
    """Weights (npix, len(coords)) with which a point at each of ``coords`` (kpc) enters each output pixel along
    one axis, for a field whose evaluation cells are s times smaller than the pixels (dx, kpc).

    The weight is (1 / s) times the fraction of the Gaussian PSF (``sigma`` kpc) that falls in the pixel, i.e. the
    exact pixel average of the continuous convolution (what oversampling converges to). sigma <= 0 means no PSF:
    the point lands in the pixel that contains it. ``edge0`` is the lower edge (kpc) of the first pixel.
    """
    out[:, :] = 0.0
    for m in range(coords.shape[0]):
        if sigma <= 0.0:
            p = int(math.floor((coords[m] - edge0) / dx))
            if 0 <= p < npix:
                out[p, m] = 1.0 / s
            continue
        scale = 1.0 / (math.sqrt(2.0) * sigma)
        lo = math.erf((edge0 - coords[m]) * scale)
        for p in range(npix):
            hi = math.erf((edge0 + (p + 1) * dx - coords[m]) * scale)
            out[p, m] = 0.5 * (hi - lo) / s
            lo = hi


def sampled_kernel(sigma, h, truncation=PSF_TRUNCATION_SIGMAS):
    """Unit-sum Gaussian of ``sigma`` (kpc) sampled at spacing ``h`` (kpc) out to >= ``truncation`` sigma (6 by
    default); [1.] for None."""
    if sigma is None:
        return np.ones(1)
    half = int(math.ceil(truncation * sigma / h))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) * h / sigma) ** 2)
    return k / k.sum()

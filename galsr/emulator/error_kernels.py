"""numba kernels of the per-galaxy error model's per-pixel work (galsr.emulator.error_model), one galaxy at a time:
a fit calls the emulator one galaxy at a time, where numpy's per-call overhead on a few small arrays would cost
more than the arithmetic.

Unit codes per channel (error_model.UNITS): ``FIT`` the fit's linear unit (km/s, Msun/Lsun), ``FIT_DEX`` the fit's
unit of the brightness (dex), ``DEX`` relative (ln 10 x |value|), ``AMPLITUDE`` the galaxy's largest |value| of
the channel on the map.
"""
import math

import numpy as np
from numba import njit

from galsr.simulator.fit_units import LN10

FIT, FIT_DEX, DEX, AMPLITUDE = 0, 1, 2, 3
#: Smallest amplitude [km/s] an AMPLITUDE channel is scaled by (a face-on disc's velocity field is near 0).
AMPLITUDE_FLOOR = 1.0


@njit(cache=True)
def amplitudes(maps, codes):
    """(C,) the galaxy's largest |value| per AMPLITUDE channel of its maps (C, n, n) (at least AMPLITUDE_FLOOR;
    1 for the other channels)."""
    c_n, n, m = maps.shape
    out = np.ones(c_n)
    for c in range(c_n):
        if codes[c] == AMPLITUDE:
            amp = AMPLITUDE_FLOOR
            for i in range(n):
                for j in range(m):
                    amp = max(amp, abs(maps[c, i, j]))
            out[c] = amp
    return out


@njit(cache=True, inline="always")
def _scale(code, value, amp):
    """The factor from the table's unit to the fit's at one pixel of value ``value``."""
    if code == DEX:
        return LN10 * abs(value)
    if code == AMPLITUDE:
        return amp
    return 1.0


@njit(cache=True)
def unit_scale(maps, codes):
    """(C, n, n) factors from the table's units to the fit's for one galaxy's maps (C, n, n) in physical units."""
    c_n, n, m = maps.shape
    amp = amplitudes(maps, codes)
    out = np.empty((c_n, n, m))
    for c in range(c_n):
        for i in range(n):
            for j in range(m):
                out[c, i, j] = _scale(codes[c], maps[c, i, j], amp[c])
    return out


@njit(cache=True)
def ring_rms(under, maps, codes, amp, r0, c0, width):
    """(C,) RMS over the border ring (``width`` pixels) of a patch whose first pixel is at (r0, c0) of the difference
    between the network's values under it ``under`` (C, P, P) and the maps (C, n, n) that carry the patch, in
    table units (``amp`` (C,) from :func:`amplitudes`); pixels off the map are left out."""
    c_n, p = under.shape[0], under.shape[1]
    n = maps.shape[1]
    out = np.zeros(c_n)
    for c in range(c_n):
        total, count = 0.0, 0
        for a in range(p):
            for b in range(p):
                if width <= a < p - width and width <= b < p - width:
                    continue
                i, j = r0 + a, c0 + b
                if i < 0 or j < 0 or i >= n or j >= n:
                    continue
                if codes[c] == FIT_DEX:
                    d = math.log10(under[c, a, b]) - math.log10(maps[c, i, j])
                else:
                    d = under[c, a, b] - maps[c, i, j]
                d /= _scale(codes[c], maps[c, i, j], amp[c])
                total += d * d
                count += 1
        out[c] = math.sqrt(total / count) if count else 0.0
    return out


@njit(cache=True)
def gather_errors(table, dist, maps, codes, amp):
    """(C, n, n) 1-sigma errors in the fit's units: the galaxy's table (n_distance, C) in table units at each pixel's
    distance bin ``dist`` (n, n), scaled by the maps (C, n, n) as the channel's unit ``codes`` says."""
    c_n, n, m = maps.shape
    out = np.empty((c_n, n, m))
    for c in range(c_n):
        for i in range(n):
            for j in range(m):
                out[c, i, j] = table[dist[i, j], c] * _scale(codes[c], maps[c, i, j], amp[c])
    return out


@njit(cache=True)
def add_ring(log_sigma, log_ring, ratio, centres):
    """Add to ``log_sigma`` (n_distance, C) in place the ring factors ``log_ring`` (n_ring, n_distance, C) (ln) at
    each channel's log10 ring ratio ``ratio`` (C,), interpolated linearly between ``centres`` (n_ring,) and clamped
    at both ends."""
    n_r = len(centres)
    for c in range(log_sigma.shape[1]):
        q = math.log10(max(ratio[c], 1e-12))
        k = 0
        while k < n_r - 2 and q >= centres[k + 1]:
            k += 1
        w = min(max((q - centres[k]) / (centres[k + 1] - centres[k]), 0.0), 1.0)
        for d in range(log_sigma.shape[0]):
            log_sigma[d, c] += (1.0 - w) * log_ring[k, d, c] + w * log_ring[k + 1, d, c]

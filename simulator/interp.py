"""Cubic (4-point Lagrange) interpolation on uniform 1-D tables, in numba."""
import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def stencil(n, x0, dx, x):
    """First node index and the 4 Lagrange weights of the cubic through the nodes around ``x``.

    Nodes are x0 + k dx, k = 0..n-1. The stencil is clamped to the table, so an ``x`` slightly outside
    extrapolates with the edge cubic and never reads past the ends.
    """
    u = (x - x0) / dx
    i = int(np.floor(u)) - 1
    if i < 0:
        i = 0
    elif i > n - 4:
        i = n - 4
    t = u - i
    w0 = -(t - 1.0) * (t - 2.0) * (t - 3.0) / 6.0
    w1 = t * (t - 2.0) * (t - 3.0) / 2.0
    w2 = -t * (t - 1.0) * (t - 3.0) / 2.0
    w3 = t * (t - 1.0) * (t - 2.0) / 6.0
    return i, w0, w1, w2, w3


@njit(cache=True, inline="always")
def lagrange4(table, x0, dx, x):
    """Cubic interpolation of the 1-D ``table`` (nodes x0 + k dx) at ``x``."""
    i, w0, w1, w2, w3 = stencil(table.shape[0], x0, dx, x)
    return w0 * table[i] + w1 * table[i + 1] + w2 * table[i + 2] + w3 * table[i + 3]

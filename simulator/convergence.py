"""The HR convergence criterion of docs/physics.md#grids-and-convergence: does doubling the sub-sampling change the maps?

``map_changes(a, b)`` compares two sets of maps (N, 4, n, n): for brightness, dispersion and M/L the relative
change; for the velocity, which crosses zero, the change relative to the local rms line-of-sight speed
sqrt(v^2 + sigma^2). It returns per galaxy and map the median change over all pixels and the maximum over pixels
brighter than ``bright`` times the galaxy's peak brightness.
"""
import numpy as np


def relative_changes(a, b):
    """Per-pixel change (N, 4, n, n) of maps ``b`` against reference ``a`` (see module docstring)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # sigma = 0 exactly gives inf: a real change
        out = np.abs(b / a - 1.0)
    out[:, 1] = np.abs(b[:, 1] - a[:, 1]) / np.sqrt(a[:, 1] ** 2 + a[:, 2] ** 2)
    return out


def map_changes(a, b, bright=1e-3):
    """(median (N, 4), bright-pixel maximum (N, 4)) of :func:`relative_changes`."""
    rel = relative_changes(a, b)
    med = np.median(rel.reshape(rel.shape[0], 4, -1), axis=2)
    peak = a[:, 0].reshape(a.shape[0], -1).max(axis=1)
    mask = a[:, 0] >= bright * peak[:, None, None]
    mx = np.array([[rel[i, c][mask[i]].max() for c in range(4)] for i in range(a.shape[0])])
    return med, mx


def converged(a, b, median_tol=1e-3, max_tol=1e-2, bright=1e-3):
    """True when the change from ``a`` to ``b`` meets the criterion of docs/physics.md#grids-and-convergence for every galaxy and map."""
    med, mx = map_changes(a, b, bright)
    return bool((med <= median_tol).all() and (mx <= max_tol).all())

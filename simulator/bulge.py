"""Dehnen (1993) bulge: projected density and isotropic dispersion from shipped quadrature tables.

The tables (simulator/data/dehnen_tables.npz, built by scripts/make_bulge_tables.py from
simulator.bulge_quadrature) hold ln I, ln J, ln Icyl, ln Jcyl on a grid of (gamma, ln s), s = R / a. For one
galaxy, :func:`bulge_slice` interpolates them (cubic in gamma) to that gamma once; :func:`bulge_IJ` and
:func:`bulge_cylinder` then interpolate in ln s (cubic) per evaluation point. Below the smallest tabulated s the
logs are extended linearly (the local power law); above the largest, the large-s series are summed.
"""
import math
import os

import numpy as np
from numba import njit

from galsr.simulator.constants import G as G_KPC
from galsr.simulator.interp import stencil

N_SERIES = 8
_TABLE_FILE = os.path.join(os.path.dirname(__file__), "data", "dehnen_tables.npz")


def load_tables(path=_TABLE_FILE):
    """Return (ln_s0, dln_s, gamma0, dgamma, tables (4, n_gamma, n_s)) from the shipped npz."""
    with np.load(path) as d:
        ln_s, gam = d["ln_s"], d["gamma"]
        tables = np.ascontiguousarray(np.stack([d["ln_I"], d["ln_J"], d["ln_Icyl"], d["ln_Jcyl"]]))
    # Jcyl ~ s^(5-2g) / (5-2g) at small s: interpolating ln Jcyl + ln(5-2g) in gamma removes that pole near g=2.5
    tables[3] += np.log(5.0 - 2.0 * gam)[:, None]
    return float(ln_s[0]), float(ln_s[1] - ln_s[0]), float(gam[0]), float(gam[1] - gam[0]), tables


LN_S0, DLN_S, GAMMA0, DGAMMA, TABLES = load_tables()


@njit(cache=True)
def _beta(p, q):
    return math.exp(math.lgamma(p) + math.lgamma(q) - math.lgamma(p + q))


@njit(cache=True)
def bulge_slice(gamma, tables, gamma0, dgamma):
    """Tables at one ``gamma``: (4, n_s) array of ln I, ln J, ln Icyl, ln Jcyl, plus the large-s series.

    Returns (slice (4, n_s), series (4, N_SERIES), totals (2,) = [Icyl(inf), Jcyl(inf)]).
    """
    n_g, n_s = tables.shape[1], tables.shape[2]
    i, w0, w1, w2, w3 = stencil(n_g, gamma0, dgamma, gamma)
    sl = np.empty((4, n_s))
    for q in range(4):
        for j in range(n_s):
            sl[q, j] = (w0 * tables[q, i, j] + w1 * tables[q, i + 1, j] + w2 * tables[q, i + 2, j]
                        + w3 * tables[q, i + 3, j])
    p = 5.0 - 2.0 * gamma
    for j in range(n_s):
        sl[3, j] -= math.log(p)
    series = np.empty((4, N_SERIES))
    bi, bj = 1.0, 1.0  # generalised binomials C(gamma - 4, k), C(2 gamma - 7, k)
    for k in range(N_SERIES):
        if k > 0:
            bi *= (gamma - 4.0 - k + 1.0) / k
            bj *= (2.0 * gamma - 7.0 - k + 1.0) / k
        ci = bi * 0.5 * _beta((3.0 + k) / 2.0, 0.5) / (2.0 * math.pi)
        cj = bj * 0.5 * _beta((4.0 + k) / 2.0, 1.5) / (2.0 * math.pi)
        series[0, k] = ci  # I ~ sum ci s^(-3-k)
        series[1, k] = cj  # J ~ sum cj s^(-4-k)
        series[2, k] = 2.0 * math.pi * ci / (1.0 + k)  # Icyl ~ Icyl(inf) - sum s^(-1-k)
        series[3, k] = 2.0 * math.pi * cj / (2.0 + k)  # Jcyl ~ Jcyl(inf) - sum s^(-2-k)
    totals = np.array([1.0 / (3.0 - gamma), 1.0 / (3.0 * p * (p + 1.0))])
    return sl, series, totals


@njit(cache=True, inline="always")
def _table_pair(sl, q, ln_s0, dln, ln_s):
    """exp of rows q and q + 1 of the slice at ln_s (one stencil for both)."""
    if ln_s < ln_s0:  # below the table: the local power law of the first two nodes
        t = (ln_s - ln_s0) / dln
        return (math.exp(sl[q, 0] + (sl[q, 1] - sl[q, 0]) * t),
                math.exp(sl[q + 1, 0] + (sl[q + 1, 1] - sl[q + 1, 0]) * t))
    i, w0, w1, w2, w3 = stencil(sl.shape[1], ln_s0, dln, ln_s)
    a = w0 * sl[q, i] + w1 * sl[q, i + 1] + w2 * sl[q, i + 2] + w3 * sl[q, i + 3]
    b = w0 * sl[q + 1, i] + w1 * sl[q + 1, i + 1] + w2 * sl[q + 1, i + 2] + w3 * sl[q + 1, i + 3]
    return math.exp(a), math.exp(b)


@njit(cache=True)
def bulge_IJ(s, sl, series, ln_s0, dln):
    """Dimensionless I(s), J(s) (see simulator.bulge_quadrature) for s > 0."""
    ln_s = math.log(s)
    if ln_s > ln_s0 + (sl.shape[1] - 1) * dln:
        inv = 1.0 / s
        si, sj, pw = 0.0, 0.0, inv * inv * inv
        for k in range(N_SERIES):
            si += series[0, k] * pw
            sj += series[1, k] * pw * inv
            pw *= inv
        return si, sj
    return _table_pair(sl, 0, ln_s0, dln, ln_s)


@njit(cache=True)
def bulge_cylinder(s, sl, series, totals, ln_s0, dln):
    """Dimensionless cylinder mass Icyl(s) and pressure Jcyl(s) within s = R / a."""
    ln_s = math.log(s)
    if ln_s > ln_s0 + (sl.shape[1] - 1) * dln:
        inv = 1.0 / s
        ti, tj, pw = 0.0, 0.0, inv
        for k in range(N_SERIES):
            ti += series[2, k] * pw
            tj += series[3, k] * pw * inv
            pw *= inv
        return totals[0] - ti, totals[1] - tj
    return _table_pair(sl, 2, ln_s0, dln, ln_s)


@njit(cache=True, inline="always")
def bulge_vc2(r, mass, a, gamma, G):
    """Circular velocity squared (km/s)^2 of the Dehnen bulge at radius r (kpc): G M r^(2-g) / (r+a)^(3-g)."""
    return G * mass * r ** (2.0 - gamma) / (r + a) ** (3.0 - gamma)


def bulge_profiles(R, log10_mass, log10_radius, gamma, G=G_KPC):
    """Sigma_b (Msun/kpc^2) and sigma_b^2 ((km/s)^2) at sky radii R (kpc), for tests and plots (numpy in/out)."""
    mass, a = 10.0**log10_mass, 10.0**log10_radius
    sl, series, totals = bulge_slice(float(gamma), TABLES, GAMMA0, DGAMMA)
    R = np.atleast_1d(np.asarray(R, dtype=np.float64))
    IJ = np.array([bulge_IJ(r / a, sl, series, LN_S0, DLN_S) for r in R])
    sigma = (3.0 - gamma) * mass / a**2 * IJ[:, 0]
    return sigma, G * mass / a * IJ[:, 1] / IJ[:, 0]

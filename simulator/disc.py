"""Razor-thin exponential discs (Freeman 1970): circular velocity from a table of y^2 [I0 K0 - I1 K1].

g(y) = y^2 [I0(y) K0(y) - I1(y) K1(y)] is universal (y = r / 2 R_d), so it is tabulated once at import from
exponentially scaled Bessel functions (scipy.special.i0e ... k1e; the scalings cancel in the products) on a
uniform grid in ln y and interpolated cubically in ln g. Beyond Y_SERIES the difference cancels, so the asymptotic
series 1/(4y) + 9/(32 y^3) + 675/(512 y^5) is used; below the table the small-y limit y^2 (ln(2/y) - gamma_E - 1/2).
"""
import math

import numpy as np
from numba import njit
from scipy import special

from galsr.simulator.constants import G as G_KPC
from galsr.simulator.interp import lagrange4

LN_Y0, LN_Y1, N_Y = math.log(1e-7), math.log(24.0), 1400
Y_SERIES = 20.0
EULER_GAMMA = 0.5772156649015329


def freeman_g_exact(y):
    """y^2 [I0 K0 - I1 K1] from scipy's scaled Bessel functions (numpy; accurate for y <~ 30)."""
    y = np.asarray(y, dtype=np.float64)
    return y * y * (special.i0e(y) * special.k0e(y) - special.i1e(y) * special.k1e(y))


def _make_table():
    ln_y = np.linspace(LN_Y0, LN_Y1, N_Y)
    return np.log(freeman_g_exact(np.exp(ln_y))), (LN_Y1 - LN_Y0) / (N_Y - 1)


LN_G_TABLE, DLN_Y = _make_table()


@njit(cache=True, inline="always")
def freeman_g(y, ln_g_table, ln_y0, dln_y):
    """g(y) = y^2 [I0 K0 - I1 K1](y) for y >= 0 (numba)."""
    if y >= Y_SERIES:
        iy2 = 1.0 / (y * y)
        return (0.25 + iy2 * (9.0 / 32.0 + iy2 * (675.0 / 512.0))) / y
    if y <= 0.0:
        return 0.0
    ln_y = math.log(y)
    if ln_y < ln_y0:
        return y * y * (math.log(2.0 / y) - EULER_GAMMA - 0.5)
    return math.exp(lagrange4(ln_g_table, ln_y0, dln_y, ln_y))


@njit(cache=True, inline="always")
def disc_vc2(r, mass, rd, G, ln_g_table, ln_y0, dln_y):
    """Circular velocity squared (km/s)^2 at disc-plane radius r (kpc) of a disc of mass (Msun), scale rd (kpc)."""
    return 2.0 * G * mass / rd * freeman_g(0.5 * r / rd, ln_g_table, ln_y0, dln_y)


def disc_vc2_numpy(r, mass, rd, G=G_KPC):
    """Vectorised :func:`disc_vc2` for tests and plots."""
    r = np.atleast_1d(np.asarray(r, dtype=np.float64))
    return np.array([disc_vc2(ri, mass, rd, G, LN_G_TABLE, LN_Y0, DLN_Y) for ri in r])

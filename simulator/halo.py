"""NFW dark halo: circular velocity with a finite limit at r = 0 (docs/physics.md#halo)."""
import math

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def nfw_mu(x):
    """ln(1 + x) - x / (1 + x), with its series below x = 1e-3 (the difference cancels there)."""
    if x < 1e-3:
        return x * x * (0.5 - x * (2.0 / 3.0 - x * 0.75))
    return math.log1p(x) - x / (1.0 + x)


@njit(cache=True)
def r200_kpc(m200, rho_crit):
    """Virial radius r_200 (kpc) of a halo of mass M_200 (Msun) at critical density rho_crit (Msun/kpc^3): the
    sphere of mean density 200 rho_crit (scalars or arrays)."""
    return np.cbrt(3.0 * m200 / (4.0 * math.pi * 200.0 * rho_crit))


@njit(cache=True, inline="always")
def nfw_vc2(r, m200, rs, c, G):
    """Circular velocity squared (km/s)^2 at radius r (kpc) of an NFW halo (M_200 Msun, r_s kpc, c = r_200/r_s).

    G M_200 / r * mu(r / r_s) / mu(c); at r = 0 the limit is 0 (mu(x) / x -> x / 2)."""
    x = r / rs
    if x < 1e-12:
        return 0.0
    return G * m200 / rs * (nfw_mu(x) / x) / nfw_mu(c)

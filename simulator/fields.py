"""Point-wise fields of the galaxy model at one sky position (docs/physics.md#observables).

For each evaluation point the four fields that the PSF convolutions act on:
  0: B_tot = B_b + B_d1 + B_d2                                   [Lsun/kpc^2]
  1: Sigma_tot = Sigma_b + Sigma_d1 + Sigma_d2                   [Msun/kpc^2]
  2: B_d1 v_1 + B_d2 v_2                                         [Lsun/kpc^2 km/s]
  3: B_b sigma_b^2 + sum_j B_dj (sigma_dj^2 + v_j^2)             [Lsun/kpc^2 (km/s)^2]
"""
import math

import numpy as np
from numba import njit

from galsr.simulator.bulge import bulge_cylinder, bulge_IJ, bulge_vc2
from galsr.simulator.disc import disc_vc2
from galsr.simulator.halo import nfw_vc2, r200_kpc
from galsr.simulator.interp import lagrange4

N_DERIVED = 21
R_AT_CENTRE = 1e-6
# 8-point Gauss-Legendre nodes and weights on [0, 1], for averages over the central cylinder
_GL_X, _GL_W = np.polynomial.legendre.leggauss(8)
GL_U = 0.5 * (_GL_X + 1.0)
GL_W = 0.5 * _GL_W


@njit(cache=True)
def derived_parameters(p, rho_crit):
    """Physical quantities of one parameter row (18,) as a vector (N_DERIVED,):
    [M_b, a, gamma, ML_b, M_d1, R_d1, ML_d1, k1, M_d2, R_d2, ML_d2, k2, M_200, r_s, c, x0, y0,
     cos theta, sin theta, cos i, sin i] in Msun, kpc, rad."""
    d = np.empty(N_DERIVED)
    d[0] = 10.0 ** p[0]
    d[1] = 10.0 ** p[1]
    d[2] = p[2]
    d[3] = p[3]
    d[4] = 10.0 ** p[4]
    d[5] = 10.0 ** p[5]
    d[6] = p[6]
    d[7] = p[7]
    d[8] = 10.0 ** p[8]
    d[9] = 10.0 ** p[9]
    d[10] = p[10]
    d[11] = p[11]
    m200 = 10.0 ** p[12] * (d[0] + d[4] + d[8])
    d[12] = m200
    d[13] = r200_kpc(m200, rho_crit) / p[13]
    d[14] = p[13]
    d[15] = p[14]
    d[16] = p[15]
    d[17] = math.cos(p[16])
    d[18] = math.sin(p[16])
    d[19] = math.cos(p[17])
    d[20] = math.sin(p[17])
    return d


@njit(cache=True, inline="always")
def vint2(r, d, G, dtab, ln_y0, dln_y):
    """Total circular velocity squared (km/s)^2 at disc-plane radius r (kpc): bulge + discs + halo."""
    return (bulge_vc2(r, d[0], d[1], d[2], G) + disc_vc2(r, d[4], d[5], G, dtab, ln_y0, dln_y)
            + disc_vc2(r, d[8], d[9], G, dtab, ln_y0, dln_y) + nfw_vc2(r, d[12], d[13], d[14], G))


#: Layout of the scalar vector ``sc`` handed to :func:`point_fields`.
SC_LN_S0, SC_DLN_S, SC_LN_Y0, SC_DLN_Y, SC_G, SC_LN_R0, SC_DLN_R = range(7)
N_VTAB = 256  # nodes of the per-galaxy table of ln v_int^2 in ln r


@njit(cache=True)
def vint2_table(d, sc, dtab, r_min, r_max):
    """ln v_int^2 on N_VTAB nodes uniform in ln r from r_min to r_max (kpc); writes ln r0, d ln r into ``sc``."""
    ln0, ln1 = math.log(r_min), math.log(r_max)
    step = (ln1 - ln0) / (N_VTAB - 1)
    tab = np.empty(N_VTAB)
    for k in range(N_VTAB):
        tab[k] = math.log(vint2(math.exp(ln0 + k * step), d, sc[SC_G], dtab, sc[SC_LN_Y0], sc[SC_DLN_Y]))
    sc[SC_LN_R0] = ln0
    sc[SC_DLN_R] = step
    return tab


@njit(cache=True, inline="always")
def _vint2_lookup(r, d, sc, dtab, vtab):
    """v_int^2 at r from the galaxy's table (cubic in ln r), directly outside its range."""
    ln_r = math.log(r)
    if ln_r < sc[SC_LN_R0] or ln_r > sc[SC_LN_R0] + (N_VTAB - 1) * sc[SC_DLN_R]:
        return vint2(r, d, sc[SC_G], dtab, sc[SC_LN_Y0], sc[SC_DLN_Y])
    return math.exp(lagrange4(vtab, sc[SC_LN_R0], sc[SC_DLN_R], ln_r))


@njit(cache=True)
def point_fields(x, y, d, sl, series, totals, dtab, vtab, sc, central, rc, out):
    """Write the four fields at sky position (x, y) kpc into ``out`` (4,).

    ``d``: derived parameters; ``sl, series, totals``: the bulge tables at this gamma (simulator.bulge);
    ``dtab``: the Freeman table; ``vtab``: this galaxy's ln v_int^2 table (:func:`vint2_table`); ``sc``: scalars
    (SC_* indices). ``central``: this is the evaluation point nearest the centre; the bulge Sigma and Sigma sigma^2 are replaced by
    their averages over the cylinder of radius ``rc`` (kpc). If that point also lies (within R_AT_CENTRE rc) on the
    centre itself, v_int^2 and the disc rotation terms are cylinder means too (cos(phi) -> 0, cos^2(phi) -> 1/2),
    which keeps every map finite for any gamma.
    """
    G = sc[SC_G]
    ln_s0, dln_s = sc[SC_LN_S0], sc[SC_DLN_S]
    mb, a, gam, mlb = d[0], d[1], d[2], d[3]
    dx, dy = x - d[15], y - d[16]
    xr = dx * d[17] + dy * d[18]
    yd = (dy * d[17] - dx * d[18]) / d[19]
    r = math.sqrt(xr * xr + yd * yd)
    if central:
        area = math.pi * rc * rc
        icyl, jcyl = bulge_cylinder(rc / a, sl, series, totals, ln_s0, dln_s)
        sig_b = (3.0 - gam) * mb * icyl / area
        press_b = (3.0 - gam) * G * mb * mb / a * jcyl / area
    else:
        s = math.sqrt(dx * dx + dy * dy) / a
        if s < 1e-300:
            s = 1e-300
        ii, jj = bulge_IJ(s, sl, series, ln_s0, dln_s)
        sig_b = (3.0 - gam) * mb / (a * a) * ii
        press_b = (3.0 - gam) * G * mb * mb / (a * a * a) * jj
    if central and r < R_AT_CENTRE * rc:
        # exactly at the centre v_int^2 diverges for gamma > 2 and phi is undefined: use the cylinder means
        v2 = 0.0
        for k in range(GL_U.shape[0]):
            v2 += GL_W[k] * vint2(rc * math.sqrt(GL_U[k]), d, G, dtab, sc[SC_LN_Y0], sc[SC_DLN_Y])
        cphi, c2phi = 0.0, 0.5
    else:
        rr = r if r > 1e-12 else 1e-12
        v2 = _vint2_lookup(rr, d, sc, dtab, vtab)
        cphi = xr / rr
        c2phi = cphi * cphi
    ci, si = d[19], d[20]
    sig1 = d[4] / (2.0 * math.pi * d[5] * d[5]) * math.exp(-r / d[5]) / ci
    sig2 = d[8] / (2.0 * math.pi * d[9] * d[9]) * math.exp(-r / d[9]) / ci
    bb, b1, b2 = sig_b / mlb, sig1 / d[6], sig2 / d[10]
    k1, k2 = d[7], d[11]
    out[0] = bb + b1 + b2
    out[1] = sig_b + sig1 + sig2
    out[2] = (b1 * k1 + b2 * k2) * si * cphi * math.sqrt(v2)
    rot = si * si * c2phi
    out[3] = press_b / mlb + v2 * (b1 * ((1.0 - k1 * k1) / 3.0 + k1 * k1 * rot)
                                   + b2 * ((1.0 - k2 * k2) / 3.0 + k2 * k2 * rot))

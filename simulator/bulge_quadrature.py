"""Direct quadrature of the Dehnen projection integrals (docs/physics.md#bulge).

Slow, exact reference used to build the shipped tables (scripts/make_bulge_tables.py) and by the tests.
All quantities are dimensionless (s = R / a):

- I(s)    = 1/(2 pi) int_s^inf x^(1-g) (1+x)^(g-4) (x^2 - s^2)^(-1/2) dx         Sigma_b = (3-g) M_b / a^2 I
- J(s)    = 1/(2 pi) int_s^inf x^(1-2g) (1+x)^(2g-7) (x^2 - s^2)^(+1/2) dx        Sigma_b sigma_b^2 = (3-g) G M_b^2 / a^3 J
- Icyl(S) = 2 pi int_0^S I(t) t dt   (cylinder mass  M_cyl = (3-g) M_b Icyl; Icyl(inf) = 1 / (3-g))
- Jcyl(S) = 2 pi int_0^S J(t) t dt   (cylinder "pressure" P_cyl = (3-g) G M_b^2 / a Jcyl)

The substitution x = s cosh(u) removes the endpoint singularities; the cylinder integrals are written with the
order of integration swapped, so each value is a single smooth one-dimensional integral.
"""
import math

import numpy as np
from scipy import integrate
from scipy.special import beta

_OPTS = dict(epsabs=0.0, epsrel=1e-11, limit=400)


def _g(x, gamma):
    return x ** (1.0 - gamma) * (1.0 + x) ** (gamma - 4.0)


def _f(x, gamma):
    return x ** (1.0 - 2.0 * gamma) * (1.0 + x) ** (2.0 * gamma - 7.0)


def _u_break(s):
    """u at which x = s cosh(u) reaches 1 (where the integrands change power law)."""
    return math.acosh(max(1.0 / s, 1.0)) if s < 1.0 else 0.0


def _quad_u(func, s):
    """int_0^inf func(u) du, split where x = s cosh u crosses 1 and where the integrand has decayed."""
    ub = _u_break(s)
    total = 0.0
    edges = [0.0, ub, ub + 5.0, ub + 40.0, ub + 200.0]
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi > lo:
            total += integrate.quad(func, lo, hi, **_OPTS)[0]
    return total


def dehnen_I(s, gamma):
    """I(s) by quadrature (scalar)."""
    s = float(s)
    return _quad_u(lambda u: _g(s * math.cosh(u), gamma), s) / (2.0 * math.pi)


def dehnen_J(s, gamma):
    """J(s) by quadrature (scalar)."""
    s = float(s)
    return _quad_u(lambda u: _f(s * math.cosh(u), gamma) * (s * math.sinh(u)) ** 2, s) / (2.0 * math.pi)


def dehnen_Icyl(s, gamma):
    """Icyl(S) = M_cyl / ((3 - gamma) M_b) by quadrature (scalar)."""
    s = float(s)
    inner = (s / (1.0 + s)) ** (3.0 - gamma) / (3.0 - gamma)
    outer = _quad_u(lambda u: _g(s * math.cosh(u), gamma) * s * s * math.exp(-u) * math.sinh(u), s)
    return inner + outer


def _pressure_inner(s, gamma):
    """(1/3) int_0^S x^(4-2g) (1+x)^(2g-7) dx.

    With t = x / (1 + x) this is (1/3) int_0^(S/(1+S)) t^(4-2g) (1-t) dt, in closed form."""
    t = s / (1.0 + s)
    p = 5.0 - 2.0 * gamma
    return (t**p / p - t ** (p + 1.0) / (p + 1.0)) / 3.0


def dehnen_Jcyl(s, gamma):
    """Jcyl(S) = P_cyl a / ((3 - gamma) G M_b^2) by quadrature (scalar)."""
    s = float(s)

    def outer(u):
        ch, sh = math.cosh(u), math.sinh(u)
        # x^3 - (x^2 - S^2)^(3/2) = S^3 e^-u (ch^2 + ch sh + sh^2), free of cancellation
        return _f(s * ch, gamma) * s**4 * math.exp(-u) * (ch * ch + ch * sh + sh * sh) * sh

    return _pressure_inner(s, gamma) + _quad_u(outer, s) / 3.0


# ---- large-s series (s >> 1): (1 + 1/x)^p expanded term by term ---------------------------------------------
N_SERIES = 8


def _binomial(p, n):
    """Generalised binomial coefficients C(p, k), k = 0..n-1 (valid for negative integer p too)."""
    out = np.ones(n)
    for k in range(1, n):
        out[k] = out[k - 1] * (p - k + 1) / k
    return out


def _series_terms(gamma):
    k = np.arange(N_SERIES)
    binom = _binomial
    ci = binom(gamma - 4.0, N_SERIES) * 0.5 * beta((3.0 + k) / 2.0, 0.5) / (2.0 * math.pi)  # I ~ sum ci s^(-3-k)
    cj = binom(2.0 * gamma - 7.0, N_SERIES) * 0.5 * beta((4.0 + k) / 2.0, 1.5) / (2.0 * math.pi)  # J ~ sum cj s^(-4-k)
    return k, ci, cj


def large_s_coefficients(gamma):
    """Coefficients (N_SERIES,) of the s >> 1 expansions, returned as arrays (ci, cj, ci_cyl, cj_cyl):
    I ~ sum ci s^(-3-k); J ~ sum cj s^(-4-k); Icyl ~ 1/(3-g) - sum ci_cyl s^(-1-k);
    Jcyl ~ Jcyl(inf) - sum cj_cyl s^(-2-k), with ci_cyl = 2 pi ci / (1 + k), cj_cyl = 2 pi cj / (2 + k)."""
    k, ci, cj = _series_terms(gamma)
    return ci, cj, 2.0 * math.pi * ci / (1.0 + k), 2.0 * math.pi * cj / (2.0 + k)


def dehnen_Jcyl_total(gamma):
    """Jcyl(inf) = (1/3) int_0^inf x^(4-2g) (1+x)^(2g-7) dx = B(5 - 2g, 2) / 3 (Beta function)."""
    return beta(5.0 - 2.0 * gamma, 2.0) / 3.0


# ---- closed forms for gamma = 1 (Hernquist 1990), for tests ---------------------------------------------------
def hernquist_I(s):
    """I(s) for gamma = 1: Sigma a^2 / (2 M) with Hernquist's projected density (his eq. 32-33)."""
    s = np.asarray(s, dtype=np.float64)
    out = np.empty_like(s)
    lo, hi, one = s < 1 - 1e-6, s > 1 + 1e-6, np.abs(s - 1) <= 1e-6
    x = s[lo]
    X = np.arccosh(1.0 / x) / np.sqrt(1.0 - x * x)
    out[lo] = ((2.0 + x * x) * X - 3.0) / (2.0 * math.pi * (1.0 - x * x) ** 2)
    x = s[hi]
    X = np.arccos(1.0 / x) / np.sqrt(x * x - 1.0)
    out[hi] = ((2.0 + x * x) * X - 3.0) / (2.0 * math.pi * (1.0 - x * x) ** 2)
    out[one] = 2.0 / (15.0 * math.pi)
    return out / 2.0


def hernquist_radial_pressure(x):
    """rho sigma_r^2 for gamma = 1 in units of G M^2 / a^4 (isotropic Jeans solution, Hernquist eq. 10)."""
    x = float(x)
    rho = 1.0 / (2.0 * math.pi * x * (1.0 + x) ** 3)
    if x > 300.0:  # the closed form cancels catastrophically; its large-x limit sigma_r^2 -> 1/(5x) (G M / a)
        sig2 = 1.0 / (5.0 * x) - 1.0 / (5.0 * x * x)
    else:
        sig2 = (12.0 * x * (1.0 + x) ** 3 * math.log((1.0 + x) / x)
                - x / (1.0 + x) * (25.0 + 52.0 * x + 42.0 * x * x + 12.0 * x**3)) / 12.0
    return rho * sig2

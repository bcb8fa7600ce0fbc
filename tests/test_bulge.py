"""Dehnen bulge: shipped tables against direct quadrature, Hernquist closed forms, limits (docs/physics.md#bulge)."""
import math

import numpy as np
import pytest
from scipy import integrate

from galsr.simulator.bulge import DGAMMA, DLN_S, GAMMA0, LN_S0, TABLES, bulge_cylinder, bulge_IJ, bulge_profiles, bulge_slice
from galsr.simulator.bulge_quadrature import (dehnen_I, dehnen_Icyl, dehnen_J, dehnen_Jcyl, hernquist_I,
                                        hernquist_radial_pressure)


def _interp(s, gamma):
    sl, series, totals = bulge_slice(gamma, TABLES, GAMMA0, DGAMMA)
    i, j = bulge_IJ(s, sl, series, LN_S0, DLN_S)
    ic, jc = bulge_cylinder(s, sl, series, totals, LN_S0, DLN_S)
    return np.array([i, j, ic, jc])


def test_tables_match_quadrature_off_the_nodes():
    rng = np.random.default_rng(2024)
    # inside the table, beyond it (large-s series) and below it (power-law extension); gamma up to the bound
    log_s = np.concatenate([rng.uniform(-8.5, 2.9, 30), rng.uniform(3.1, 6.0, 6), [-8.9, 2.999]])
    gammas = np.concatenate([rng.uniform(0.0, 2.4, 36), [2.4, 0.0]])
    worst = 0.0
    for ls, g in zip(log_s, gammas):
        s = 10.0**ls
        exact = np.array([dehnen_I(s, g), dehnen_J(s, g), dehnen_Icyl(s, g), dehnen_Jcyl(s, g)])
        worst = max(worst, np.max(np.abs(_interp(s, g) / exact - 1.0)))
    assert worst < 1e-4


@pytest.mark.parametrize("s", [1e-4, 0.05, 0.7, 1.0, 3.0, 40.0, 2e3])
def test_hernquist_surface_density_closed_form(s):
    i = _interp(s, 1.0)[0]
    assert i == pytest.approx(hernquist_I(np.array([s]))[0], rel=1e-5)


@pytest.mark.parametrize("s", [0.01, 0.5, 2.0, 20.0])
def test_hernquist_dispersion_from_jeans_pressure(s):
    """J from the table equals the projection of Hernquist's isotropic rho sigma_r^2 (a different integral)."""
    # Sigma sigma_p^2 = 2 int_R^inf p(r) r dr / sqrt(r^2 - R^2); in units G M^2 / a^3 that is (3 - 1) J(s)
    proj = 2.0 * integrate.quad(lambda u: hernquist_radial_pressure(s * math.cosh(u)) * s * math.cosh(u),
                                0.0, 60.0, limit=400, epsrel=1e-10)[0]
    assert 2.0 * _interp(s, 1.0)[1] == pytest.approx(proj, rel=1e-5)


@pytest.mark.parametrize("gamma", [0.0, 0.8, 1.5, 2.4])
def test_projected_mass_tends_to_total_mass(gamma):
    mass = [(3.0 - gamma) * _interp(s, gamma)[2] for s in (1.0, 1e2, 1e4, 1e6)]
    assert np.all(np.diff(mass) > 0)
    assert mass[-1] == pytest.approx(1.0, abs=1e-5)
    assert mass[0] < 0.9


def test_cylinder_mass_is_the_integral_of_the_surface_density():
    gamma, a, logm = 1.7, 0.5, 10.0
    R = np.geomspace(1e-6, 2.0, 4000)
    sigma, _ = bulge_profiles(R, logm, math.log10(a), gamma)
    m_num = integrate.trapezoid(2 * math.pi * R * sigma, R)
    m_cyl = (3.0 - gamma) * 10**logm * _interp(2.0 / a, gamma)[2]
    assert m_num == pytest.approx(m_cyl, rel=2e-3)


def test_dispersion_is_finite_and_sane_beyond_the_table():
    # the reference code returned uninitialised memory for s > 1e3; here the large-s series takes over smoothly
    R = np.array([0.99e3, 1.01e3, 1e5]) * 0.01
    _, sig2 = bulge_profiles(R, 11.0, -2.0, 0.3)
    assert np.all(np.isfinite(sig2)) and np.all(sig2 > 0)
    assert sig2[0] == pytest.approx(sig2[1], rel=0.05)
    # isotropic Jeans at large radius: sigma_p^2 -> G M / (a s) x const, never the reference's 1e4-1e6 km/s
    assert math.sqrt(sig2[0]) < 300.0


def test_dispersion_not_inflated_like_the_reference_code():
    """The reference code's sigma^2 was too large by (3-g)(1+s)^(4-2g); ours matches quadrature directly."""
    a, gamma, logm = 0.01, 0.1, 10.0
    R = np.array([0.005, 0.05, 0.5])
    _, sig2 = bulge_profiles(R, logm, math.log10(a), gamma)
    exact = [4.299e-6 * 10**logm / a * dehnen_J(r / a, gamma) / dehnen_I(r / a, gamma) for r in R]
    np.testing.assert_allclose(sig2, exact, rtol=1e-4)

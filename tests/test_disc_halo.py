"""Freeman disc circular velocity and the NFW halo (docs/physics.md)."""
import math

import numpy as np
import pytest
from scipy import special

from galsr.simulator.constants import G
from galsr.simulator.disc import LN_G_TABLE, LN_Y0, DLN_Y, Y_SERIES, disc_vc2_numpy, freeman_g
from galsr.simulator.halo import nfw_vc2


def _g(y):
    return np.array([freeman_g(v, LN_G_TABLE, LN_Y0, DLN_Y) for v in np.atleast_1d(y)])


def _g_scipy(y):
    y = np.asarray(y, dtype=np.float64)
    return y * y * (special.i0e(y) * special.k0e(y) - special.i1e(y) * special.k1e(y))


def test_disc_velocity_against_scipy_bessel():
    rng = np.random.default_rng(5)
    y = np.concatenate([10 ** rng.uniform(-7, math.log10(20.0), 400), [1e-7, 0.5, 1.0, 2.15, 19.999]])
    np.testing.assert_allclose(_g(y), _g_scipy(y), rtol=1e-6)


def test_disc_velocity_large_y_branch():
    # scipy's scaled Bessel products keep ~1e-9 relative accuracy on their difference up to y ~ 1e4
    y = np.geomspace(Y_SERIES, 1e4, 200)
    np.testing.assert_allclose(_g(y), _g_scipy(y), rtol=1e-4)
    # and the branch point has no jump
    assert _g(Y_SERIES * (1 - 1e-9))[0] == pytest.approx(_g(Y_SERIES)[0], rel=1e-6)


def test_disc_velocity_physical_values():
    # peak of the Freeman curve: v^2 max at r = 2.15 R_d, v_max^2 = 0.3870 G M / R_d
    r = np.linspace(1.5, 3.0, 3001)
    v2 = disc_vc2_numpy(r, 1e10, 1.0)
    assert r[np.argmax(v2)] == pytest.approx(2.15, abs=0.01)
    assert v2.max() / (G * 1e10) == pytest.approx(0.3870, rel=2e-3)
    # far out the disc is a point mass
    assert disc_vc2_numpy([500.0], 1e10, 1.0)[0] == pytest.approx(G * 1e10 / 500.0, rel=2e-5)
    assert disc_vc2_numpy([0.0], 1e10, 1.0)[0] == 0.0


def test_nfw_against_formula_and_centre_limit():
    m200, rs, c = 1e12, 20.0, 10.0
    mu = lambda x: math.log1p(x) - x / (1 + x)  # noqa: E731
    for r in (1e-3, 0.1, 1.0, 10.0, 200.0):
        assert nfw_vc2(r, m200, rs, c, G) == pytest.approx(G * m200 / r * mu(r / rs) / mu(c), rel=1e-9)
    # r -> 0: v^2 -> G M200 r / (2 rs^2 mu(c)) -> 0, continuously and never NaN
    assert nfw_vc2(0.0, m200, rs, c, G) == 0.0
    tiny = nfw_vc2(1e-9, m200, rs, c, G)
    assert tiny == pytest.approx(G * m200 * 1e-9 / (2 * rs**2 * mu(c)), rel=1e-6)
    # at r_200 the circular velocity is sqrt(G M200 / r200)
    assert nfw_vc2(c * rs, m200, rs, c, G) == pytest.approx(G * m200 / (c * rs), rel=1e-12)

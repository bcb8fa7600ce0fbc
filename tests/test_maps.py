"""Maps: shapes, symmetries, limits, light conservation, the centre, and bad input."""
import math

import numpy as np
import pytest

from conftest import galaxy
from galsr.simulator import HR_GRID, LR_GRID, PARAM_NAMES, Grid, simulate

SMALL = Grid(24, 0.5, psf_fwhm_pho_kpc=0.8, psf_fwhm_kin_kpc=1.5)
SMALL_ZOOM = Grid(24, 0.5, psf_fwhm_pho_kpc=0.8, psf_fwhm_kin_kpc=1.5, oversample=2, centre_zoom=4)


def test_shapes_units_and_batch_consistency(random_params):
    one = simulate(random_params[0], SMALL)
    assert one.shape == (4, 24, 24) and one.dtype == np.float64
    batch = simulate(random_params, SMALL)
    assert batch.shape == (len(random_params), 4, 24, 24)
    np.testing.assert_array_equal(batch[0], one)
    assert np.all(np.isfinite(batch))
    assert np.all(batch[:, 0] > 0) and np.all(batch[:, 2] >= 0)
    ml = batch[:, 3]
    assert np.all(ml >= 0.1 - 1e-9) and np.all(ml <= 20 + 1e-9)  # a light-weighted mean of the components' M/L


def test_dict_input_equals_vector():
    p = galaxy()
    np.testing.assert_array_equal(simulate(dict(zip(PARAM_NAMES, p)), SMALL), simulate(p, SMALL))


@pytest.mark.parametrize("grid", [Grid(25, 0.5), Grid(25, 0.5, 0.8, 1.5),
                                  Grid(25, 0.5, 0.8, 1.5, oversample=3, centre_zoom=4)])
def test_point_symmetry_about_the_centre(grid):
    """Rotating the sky by 180 degrees about a galaxy centred on an evaluation point (odd grids, odd
    sub-sampling): B, sigma, M/L even, v odd."""
    m = simulate(galaxy(x0=0.0, y0=0.0), grid)
    rot = m[:, ::-1, ::-1]
    for c in (0, 2, 3):
        np.testing.assert_allclose(rot[c], m[c], rtol=1e-9)
    np.testing.assert_allclose(rot[1], -m[1], rtol=1e-9, atol=1e-9 * np.abs(m[1]).max())


def test_receding_side_along_position_angle():
    theta = 0.5
    m = simulate(galaxy(x0=0.0, y0=0.0, orientation=theta), SMALL)
    c = SMALL.centres
    ix = np.argmin(np.abs(c - 3.0 * math.cos(theta)))
    iy = np.argmin(np.abs(c - 3.0 * math.sin(theta)))
    assert m[1, iy, ix] > 20.0 and m[1, -1 - iy, -1 - ix] < -20.0


def test_no_rotation_gives_zero_velocity():
    m = simulate(galaxy(k1=0.01, k2=0.01), SMALL, check=True)
    m0 = simulate(galaxy(k1=0.0, k2=0.0), SMALL, check=False)
    assert np.abs(m0[1]).max() == 0.0
    assert np.abs(m[1]).max() > 0.0
    face_on = simulate(galaxy(inclination=0.0), SMALL, check=False)
    assert np.abs(face_on[1]).max() < 1e-9


def test_dispersion_holds_the_full_second_moment():
    """Cold, fully rotating discs (k = 1) still show dispersion where the PSF mixes opposite velocities."""
    m = simulate(galaxy(k1=1.0, k2=1.0, log10_bulge_mass=8.5, ML_b=20.0, x0=0.0, y0=0.0), SMALL)
    no_psf = simulate(galaxy(k1=1.0, k2=1.0, log10_bulge_mass=8.5, ML_b=20.0, x0=0.0, y0=0.0), Grid(24, 0.5))
    centre = (slice(10, 14), slice(10, 14))
    assert m[2][centre].mean() > 3.0 * no_psf[2][centre].mean()


def test_psf_conserves_light():
    compact = galaxy(x0=0.0, y0=0.0, log10_disc1_radius=-0.5, log10_disc2_radius=-0.2, log10_bulge_radius=-1.0)
    big = Grid(60, 0.5, 0.8, 1.5)
    total_psf = simulate(compact, big)[0].sum()
    total_raw = simulate(compact, Grid(60, 0.5))[0].sum()
    assert total_psf == pytest.approx(total_raw, rel=2e-3)


@pytest.mark.parametrize("grid", [SMALL, SMALL_ZOOM, Grid(24, 0.5)])
@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 2.4])
def test_finite_when_a_point_sits_on_the_centre(grid, gamma):
    # x0 = y0 = 0.25 kpc is exactly an evaluation point of these even grids (pixel centres at +-0.25, ...)
    m = simulate(galaxy(x0=0.25, y0=0.25, gamma=gamma, log10_bulge_radius=-2.0), grid)
    assert np.all(np.isfinite(m))
    assert np.all(m[0] > 0)


def test_lr_grid_covers_the_hr_field():
    assert LR_GRID.field_kpc == pytest.approx(HR_GRID.field_kpc)
    assert HR_GRID.npix == 80 and LR_GRID.npix == 20
    assert HR_GRID.pixel_kpc == pytest.approx(0.5 * 0.6006502, rel=1e-6)
    np.testing.assert_allclose(HR_GRID.centres.reshape(20, 4).mean(axis=1), LR_GRID.centres)


@pytest.mark.parametrize("bad, message", [
    (dict(gamma=2.5), "gamma"),
    (dict(inclination=float("nan")), "inclination"),
    (dict(x0=-3.0), "x0"),
])
def test_bad_parameters_name_the_parameter(bad, message):
    with pytest.raises(ValueError, match=message):
        simulate(galaxy(**bad), SMALL)


def test_bad_shapes_and_names():
    with pytest.raises(ValueError, match=r"shape \(18,\)"):
        simulate(np.zeros(17), SMALL)
    with pytest.raises(ValueError, match="unknown parameter"):
        simulate({**dict(zip(PARAM_NAMES, galaxy())), "bulge_mass": 1.0}, SMALL)
    with pytest.raises(ValueError, match="missing parameter"):
        simulate({"gamma": 1.0}, SMALL)


@pytest.mark.parametrize("kwargs, message", [
    (dict(npix=1, pixel_kpc=0.5), "npix"),
    (dict(npix=10, pixel_kpc=-0.5), "pixel_kpc"),
    (dict(npix=10, pixel_kpc=0.5, psf_fwhm_pho_kpc=0.0), "psf_fwhm_pho_kpc"),
    (dict(npix=10, pixel_kpc=0.5, oversample=0), "oversample"),
])
def test_bad_grids(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Grid(**kwargs)

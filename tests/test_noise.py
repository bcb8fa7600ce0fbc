"""The mock noise model: per-map systematic floors and the S/N ceiling on a hand-made map."""
import math

import numpy as np
import pytest

from galsr.noise import MANGA, NoiseModel, mock_errors


def _maps():
    """Hand-made noiseless maps (4, 1, 4): brightness rising 1 -> 10^4 (reference = median of the bright half)."""
    b = np.array([[1.0, 100.0, 1e4, 1e4]])
    return np.stack([b, np.full_like(b, 50.0), np.full_like(b, 120.0), np.full_like(b, 2.0)])


def test_floor_free_model_is_the_statistical_errors():
    maps, snr = _maps(), 30.0
    err, mask = mock_errors(maps, snr, NoiseModel.none())
    pix_snr = snr * np.sqrt(maps[0] / 1e4)  # ref = 1e4
    np.testing.assert_allclose(err[0], maps[0] / pix_snr)
    np.testing.assert_allclose(err[1], np.maximum(2.0, 10.0 / pix_snr * snr / 3.0))
    np.testing.assert_allclose(err[2], 1.2 * err[1])
    np.testing.assert_allclose(err[3], 0.05 * maps[3] * snr / pix_snr)
    np.testing.assert_array_equal(mask, pix_snr < 3)


def test_floors_add_in_quadrature_and_dominate_bright_pixels():
    maps = _maps()
    noise = NoiseModel(floor_flux=0.03, floor_vel=3.0, floor_sigma=5.0, floor_ml_dex=0.1, snr_max=None)
    err, _ = mock_errors(maps, 1e6, noise)  # statistical flux error negligible in bright pixels
    bright = (0, 3)
    assert err[0][bright] / maps[0][bright] == pytest.approx(0.03, rel=1e-6)
    stat_v = 10.0 / 3.0  # the statistical velocity error at the reference brightness, whatever the S/N
    assert err[1][bright] == pytest.approx(math.hypot(stat_v, 3.0))
    assert err[2][bright] == pytest.approx(math.hypot(1.2 * stat_v, 5.0))
    assert err[3][bright] / maps[3][bright] == pytest.approx(math.hypot(0.05, math.log(10) * 0.1))  # 5 % stat.
    base, _ = mock_errors(maps, 1e6, NoiseModel.none())
    np.testing.assert_allclose(err[0] ** 2, base[0] ** 2 + (0.03 * maps[0]) ** 2)
    assert np.all(err >= base)


def test_snr_ceiling_caps_statistical_snr_but_not_the_mask():
    maps = _maps()
    capped, mask = mock_errors(maps, 1000.0, NoiseModel(0.0, 0.0, 0.0, 0.0, snr_max=50.0))
    free, mask_free = mock_errors(maps, 1000.0, NoiseModel.none())
    snr_capped = maps[0] / capped[0]
    assert snr_capped.max() == pytest.approx(50.0)  # bright pixels (S/N 1000) capped at 50
    assert snr_capped[0, 0] == pytest.approx(10.0)  # faint pixel (S/N 10) untouched
    np.testing.assert_array_equal(mask, mask_free)


def test_faint_pixels_are_masked_on_their_uncapped_snr():
    maps = _maps()
    _, mask = mock_errors(maps, 30.0, MANGA)
    assert mask.tolist() == [[True, False, False, False]]  # S/N 0.3, 3, 30, 30


def test_bad_noise_settings_are_refused():
    with pytest.raises(ValueError, match="floor_vel"):
        NoiseModel(floor_vel=-1.0)
    with pytest.raises(ValueError, match="snr_max"):
        NoiseModel(snr_max=0.0)

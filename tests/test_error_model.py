"""The emulator's per-galaxy error model: table lookups, calibration, the emulator file and the likelihood."""
import math

import numpy as np
import pytest

from galsr.emulator import Emulator
from galsr.emulator.error_model import (BULGE_EDGES, DISTANCE_EDGES, OFFSET_EDGES, BinnedErrorModel,
                                        StaticErrorModel, error_model_from_file, fit_scale)
from galsr.simulator import EXAMPLE_GALAXY, HR_GRID, LR_GRID, PARAM_NAMES, ParameterSpace
from galsr.training.train import train
from tiny_data import write_tiny_dataset

SHAPE = (len(BULGE_EDGES) + 1, len(OFFSET_EDGES) + 1, 4, len(DISTANCE_EDGES))


def test_binned_lookup_follows_the_centre_and_the_bins():
    table = np.random.default_rng(0).uniform(0.1, 1.0, SHAPE)
    model = BinnedErrorModel(table, HR_GRID, LR_GRID)
    p = np.array([EXAMPLE_GALAXY[n] for n in PARAM_NAMES])
    err = model.predict(p)[0]
    assert err.shape == (4, 80, 80) and np.all(np.isfinite(err)) and np.all(err > 0)
    # the pixel nearest the centre takes the innermost distance bin, a corner pixel the outermost
    ix = int(np.argmin(np.abs(HR_GRID.centres - p[PARAM_NAMES.index("x0")])))
    iy = int(np.argmin(np.abs(HR_GRID.centres - p[PARAM_NAMES.index("y0")])))
    b, o, _ = model.bins(p)
    np.testing.assert_array_equal(err[:, iy, ix], table[b[0], o[0], :, 0])
    np.testing.assert_array_equal(err[:, 0, 79], table[b[0], o[0], :, -1])
    # moving the centre by 2 HR pixels moves the error pattern with it
    shifted = p.copy()
    shifted[PARAM_NAMES.index("x0")] += 2 * HR_GRID.pixel_kpc
    moved = model.predict(shifted)[0]
    np.testing.assert_array_equal(moved[:, 20:60, 22:62], err[:, 20:60, 20:60])
    # a bulge ten times larger falls in another size bin
    big = p.copy()
    big[PARAM_NAMES.index("log10_bulge_radius")] += 1.0
    assert model.bins(big)[0][0] != b[0]


def test_fit_scale_matches_a_gaussian():
    r = np.abs(np.random.default_rng(1).normal(0.0, 2.5, 200_000))
    assert fit_scale(r) == pytest.approx(2.5, rel=0.01)


def test_refusals():
    with pytest.raises(ValueError, match="shape"):
        BinnedErrorModel(np.ones((2, 2, 4, 3)), HR_GRID, LR_GRID)
    with pytest.raises(ValueError, match="finite and > 0"):
        BinnedErrorModel(np.zeros(SHAPE), HR_GRID, LR_GRID)
    meta, tensors = BinnedErrorModel(np.ones(SHAPE), HR_GRID, LR_GRID).to_file()
    with pytest.raises(ValueError, match="bin edges"):
        error_model_from_file({"error_model": dict(meta, distance_edges=[0, 1])}, tensors, HR_GRID, LR_GRID)
    with pytest.raises(ValueError, match="error_model_table is missing"):
        error_model_from_file({"error_model": meta}, {}, HR_GRID, LR_GRID)
    with pytest.raises(ValueError, match="unknown error model kind"):
        error_model_from_file({"error_model": {"kind": "magic"}}, tensors, HR_GRID, LR_GRID)
    static = error_model_from_file({}, {"error_maps": __import__("torch").ones(4, 5, 5)}, HR_GRID, LR_GRID)
    assert isinstance(static, StaticErrorModel) and static.predict(np.zeros((3, 18))).shape == (3, 4, 5, 5)


def test_calibrated_emulator_saves_loads_and_predicts(tmp_path):
    from galsr.training.error_calibration import calibrate

    data = write_tiny_dataset(tmp_path / "tiny.h5", n=24, seed=1)
    train(data, tmp_path / "m.galsr", {"batch_size": 8, "n0": 8, "ni": 4, "m": 1}, epochs=1, seed=0, progress=False)
    model = calibrate(tmp_path / "m.galsr", tmp_path / "cal.galsr", n=40, seed=3)
    emu = Emulator.load(tmp_path / "cal.galsr")  # weights_only loading, as every emulator file
    assert emu.error_model.kind == "binned"
    np.testing.assert_allclose(emu.error_model.table, model.table, rtol=1e-6)
    params = ParameterSpace().sample_lhs(3, seed=9)
    maps, err = emu.predict(params, return_error=True)
    assert maps.shape == err.shape and np.all(np.isfinite(err)) and np.all(err > 0)
    np.testing.assert_array_equal(maps, emu(params))
    one_maps, one_err = emu.predict(params[1], return_error=True)
    np.testing.assert_array_equal(one_err, err[1])
    assert emu.metadata["error_model"]["n_galaxies"] == 40
    with pytest.raises(ValueError, match="exists"):
        calibrate(tmp_path / "m.galsr", tmp_path / "cal.galsr", n=40, seed=3)
    # the uncalibrated file keeps its static error maps
    assert Emulator.load(tmp_path / "m.galsr").error_model.kind == "static"


def test_likelihood_log_determinant_by_hand():
    """Two usable pixels of one map: ln L = -1/2 sum[(d-m)^2/s^2 + ln(2 pi s^2)], s^2 = data^2 + model^2."""
    from galsr.galaxy import Galaxy
    from galsr.likelihood import FitData, log_likelihood, normalised_residuals
    from galsr.simulator import Grid

    grid = Grid(2, 1.0)
    nan = np.full((2, 2), np.nan)
    maps = np.stack([nan, np.array([[10.0, -5.0], [np.nan, np.nan]]), nan, nan])
    errors = np.stack([nan, np.array([[3.0, 4.0], [np.nan, np.nan]]), nan, nan])
    data = FitData(Galaxy(maps, errors, np.zeros((2, 2), bool), grid, 0.03))
    model = np.zeros((4, 2, 2))
    model[1] = [[12.0, -5.0], [0.0, 0.0]]
    model_err = np.zeros((4, 2, 2))
    model_err[1] = [[4.0, 3.0], [0.0, 0.0]]
    s2 = np.array([9.0 + 16.0, 16.0 + 9.0])
    expected = -0.5 * ((2.0**2) / s2[0] + 0.0 + math.log(2 * math.pi * s2[0]) + math.log(2 * math.pi * s2[1]))
    assert log_likelihood(data, model, model_err) == pytest.approx(expected, rel=1e-12)
    # without model errors only the data's variances count
    no_model = -0.5 * (4.0 / 9.0 + math.log(2 * math.pi * 9.0) + math.log(2 * math.pi * 16.0))
    assert log_likelihood(data, model, None) == pytest.approx(no_model, rel=1e-12)
    # with a perfect model, claiming a larger model error is penalised by the determinant term, not rewarded
    exact = np.nan_to_num(maps)
    assert log_likelihood(data, exact, model_err * 10) < log_likelihood(data, exact, model_err)
    # the normalised residuals the exact best fit works on: (d - m) / s, ln L = norm - 1/2 sum r^2
    np.testing.assert_allclose(normalised_residuals(data, model, model_err), [-2.0 / 5.0, 0.0])
    np.testing.assert_allclose(normalised_residuals(data, model, None), [-2.0 / 3.0, 0.0])


def test_brightness_is_compared_in_flux_with_the_model_error_turned_from_dex():
    """Flux noise is Gaussian in flux: d = 100 +- 5, model 110 with a model error of 0.01 dex = 110 ln10 0.01 in
    flux; ln L = -1/2 [(d - m)^2 / s^2 + ln(2 pi s^2)], s^2 = 5^2 + (110 ln10 0.01)^2."""
    from galsr.galaxy import Galaxy
    from galsr.likelihood import FitData, log_likelihood, normalised_residuals
    from galsr.simulator import Grid

    maps, errors = np.full((4, 2, 2), np.nan), np.full((4, 2, 2), np.nan)
    maps[0, 0, 0], errors[0, 0, 0] = 100.0, 5.0
    data = FitData(Galaxy(maps, errors, np.zeros((2, 2), bool), Grid(2, 1.0), 0.03))
    model = np.full((4, 2, 2), 110.0)
    err = np.full((4, 2, 2), 0.01)
    s2 = 25.0 + (110.0 * math.log(10.0) * 0.01) ** 2
    assert log_likelihood(data, model, err) == pytest.approx(-0.5 * (100.0 / s2 + math.log(2 * math.pi * s2)),
                                                            rel=1e-12)
    assert log_likelihood(data, model) == pytest.approx(-0.5 * (100.0 / 25.0 + math.log(2 * math.pi * 25.0)),
                                                        rel=1e-12)
    np.testing.assert_allclose(normalised_residuals(data, model, err), [-10.0 / math.sqrt(s2)])

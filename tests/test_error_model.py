"""The emulator's per-galaxy error model: table lookups, calibration, the emulator file and the likelihood."""
import math

import numpy as np
import pytest

from galsr.emulator import Emulator
from galsr.emulator.error_model import (BULGE_CENTRES, BULGE_EDGES, DISTANCE_EDGES, OFFSET_EDGES, BinnedErrorModel,
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
    own = model.galaxy_table(p)
    np.testing.assert_array_equal(err[:, iy, ix], own[0])
    np.testing.assert_array_equal(err[:, 0, 79], own[-1])
    # moving the centre by one LR pixel (4 HR pixels: the same sampling offset) moves the error pattern with it
    shifted = p.copy()
    shifted[PARAM_NAMES.index("x0")] += 4 * HR_GRID.pixel_kpc
    moved = model.predict(shifted)[0]
    np.testing.assert_allclose(moved[:, 20:60, 24:64], err[:, 20:60, 20:60], rtol=1e-12)
    # a bulge ten times larger falls in another size bin
    big = p.copy()
    big[PARAM_NAMES.index("log10_bulge_radius")] += 1.0
    assert model.bins(big)[0][0] != model.bins(p)[0][0]


def test_binned_errors_interpolate_between_bins():
    """At a bin's centre a galaxy gets that cell; between centres ln sigma is linear in the bulge size, so the
    errors change smoothly across a bin edge instead of jumping (a step of tens in ln L for a fit)."""
    table = np.random.default_rng(0).uniform(0.1, 1.0, SHAPE)
    model = BinnedErrorModel(table, HR_GRID, LR_GRID)
    p = np.array([EXAMPLE_GALAXY[n] for n in PARAM_NAMES])
    j = PARAM_NAMES.index("log10_bulge_radius")
    lr_dex = np.log10(LR_GRID.pixel_kpc)
    x0, y0 = LR_GRID.centres[7], LR_GRID.centres[11]  # the centre on an LR sample point: offset 0, the first offset bin
    p[PARAM_NAMES.index("x0")], p[PARAM_NAMES.index("y0")] = x0, y0
    # offset 0 lies below the first offset centre (0.1): clamped to the first offset bin
    for b, centre in enumerate(BULGE_CENTRES):
        p[j] = centre + lr_dex
        np.testing.assert_allclose(model.galaxy_table(p), table[b, 0].T, rtol=1e-12)
    # halfway between two centres: the geometric mean of the two cells
    p[j] = 0.5 * (BULGE_CENTRES[2] + BULGE_CENTRES[3]) + lr_dex
    np.testing.assert_allclose(model.galaxy_table(p), np.sqrt(table[2, 0] * table[3, 0]).T, rtol=1e-12)
    # across the edge at -0.5 (between those centres): no jump
    below, above = p.copy(), p.copy()
    below[j], above[j] = -0.5 - 1e-9 + lr_dex, -0.5 + 1e-9 + lr_dex
    np.testing.assert_allclose(model.predict(below), model.predict(above), rtol=1e-6)
    assert model.bins(below)[0][0] != model.bins(above)[0][0]


def test_table_units_scale_with_the_maps():
    """A table in "dex" gives errors in proportion to the map's value (ln 10 x |value| x table), "amplitude" in
    proportion to the galaxy's largest |value|; the brightness stays in dex."""
    from galsr.emulator.error_model import table_scale

    rng = np.random.default_rng(3)
    maps = np.stack([rng.uniform(1.0, 1e4, (80, 80)), rng.uniform(-250.0, 180.0, (80, 80)),
                     rng.uniform(50.0, 3000.0, (80, 80)), rng.uniform(0.5, 9.0, (80, 80))])[None]
    scale = table_scale(maps, ("fit", "amplitude", "dex", "dex"))
    np.testing.assert_array_equal(scale[0, 0], 1.0)
    np.testing.assert_allclose(scale[0, 1], np.abs(maps[0, 1]).max())
    np.testing.assert_allclose(scale[0, 2:], math.log(10.0) * maps[0, 2:])
    table = np.random.default_rng(0).uniform(0.1, 1.0, SHAPE)
    model = BinnedErrorModel(table, HR_GRID, LR_GRID, units=("fit", "amplitude", "dex", "dex"))
    plain = BinnedErrorModel(table, HR_GRID, LR_GRID)
    p = np.array([EXAMPLE_GALAXY[n] for n in PARAM_NAMES])
    np.testing.assert_allclose(model.predict(p, maps), plain.predict(p) * scale, rtol=1e-12)
    # twice the dispersion, twice its error; the face-on limit keeps a floor of 1 km/s
    doubled = maps.copy()
    doubled[:, 2] *= 2
    np.testing.assert_allclose(model.predict(p, doubled)[0, 2], 2 * model.predict(p, maps)[0, 2], rtol=1e-12)
    still = maps.copy()
    still[:, 1] = 0.0
    assert np.all(table_scale(still, model.units)[0, 1] == 1.0)
    with pytest.raises(ValueError, match="needs the emulated maps"):
        model.predict(p)
    with pytest.raises(ValueError, match="units must be one of"):
        BinnedErrorModel(table, HR_GRID, LR_GRID, units=("fit", "km/s", "dex", "dex"))


def test_ring_mismatch_and_its_factor():
    """The network-versus-patch mismatch is the RMS over the patch's border ring only (in table units), and a
    galaxy whose mismatch is q times the calibration's median gets the ring bins' factors, interpolated in log q."""
    from galsr.emulator.error_model import RING_CENTRES, RING_WIDTH, ring_mismatch, table_scale

    npatch, n = 16, 80
    shape = SHAPE[:3] + (2 * len(DISTANCE_EDGES),)
    rng = np.random.default_rng(4)
    maps = np.stack([rng.uniform(1.0, 1e4, (n, n)), rng.uniform(-250.0, 180.0, (n, n)),
                     rng.uniform(50.0, 300.0, (n, n)), rng.uniform(0.5, 9.0, (n, n))])[None]
    units = ("fit", "amplitude", "dex", "dex")
    scale = table_scale(maps, units)
    origin = np.array([[30, 31]])
    window = maps[0][:, 30:46, 31:47]
    ring = np.ones((npatch, npatch), dtype=bool)
    ring[RING_WIDTH:-RING_WIDTH, RING_WIDTH:-RING_WIDTH] = False
    under = window.copy()
    under[0][ring] *= 10 ** 0.01  # +0.01 dex of brightness on the ring
    under[1][ring] += 0.02 * np.abs(maps[0, 1]).max()  # 2 % of the velocity amplitude
    under[2][ring] *= 1.03  # 3 % of the dispersion: 0.03 / ln 10 in the table's "dex"
    under[3][~ring] *= 5.0  # inside the ring: ignored
    got = ring_mismatch(under[None], maps, origin, units)[0]
    np.testing.assert_allclose(got[:2], [0.01, 0.02], rtol=1e-9)
    np.testing.assert_allclose(got[2], 0.03 / math.log(10.0), rtol=1e-9)
    assert got[3] == 0.0
    # half the patch off the map's left edge: only the ring pixels on the map count
    off = ring_mismatch(under[None], maps, np.array([[30, -8]]), units)[0]
    assert np.all(np.isfinite(off))
    # ring factors: q = 1 -> the table's own bin (factor 1 here), q at the third centre (10) -> that bin's factor
    table = rng.uniform(0.1, 1.0, shape)
    factors = np.ones((len(RING_CENTRES), 4, shape[-1]))
    factors[2], factors[3] = 7.0, 9.0
    model = BinnedErrorModel(table, HR_GRID, LR_GRID, centre_patch=npatch, units=units,
                             ring_reference=np.full(4, 0.01), ring_factors=factors)
    p = np.array([EXAMPLE_GALAXY[n] for n in PARAM_NAMES])
    base = model.galaxy_table(p)
    np.testing.assert_allclose(model.galaxy_table(p, np.full(4, 0.01)), base, rtol=1e-12)
    np.testing.assert_allclose(model.galaxy_table(p, np.full(4, 0.1)), 7.0 * base, rtol=1e-12)
    between = model.galaxy_table(p, np.full(4, 0.01 * 10 ** 1.3))  # halfway between the centres 1.0 and 1.6
    np.testing.assert_allclose(between, math.sqrt(63.0) * base, rtol=1e-12)
    np.testing.assert_allclose(model.galaxy_table(p, np.full(4, 1e-5)), base, rtol=1e-12)  # below q = 1: clamped
    with pytest.raises(ValueError, match="ring term needs a central patch"):
        BinnedErrorModel(table[..., :len(DISTANCE_EDGES)], HR_GRID, LR_GRID, ring_reference=np.ones(4),
                         ring_factors=factors)


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
    ring = dict(ring_reference=np.ones(4), ring_factors=np.ones((4, 4, 2 * len(DISTANCE_EDGES))))
    meta_r, tensors_r = BinnedErrorModel(np.ones(SHAPE[:3] + (2 * len(DISTANCE_EDGES),)), HR_GRID, LR_GRID, 16,
                                         **ring).to_file()
    assert error_model_from_file({"error_model": meta_r}, tensors_r, HR_GRID, LR_GRID, 16).ring_reference is not None
    with pytest.raises(ValueError, match="ring width or bins differ"):
        error_model_from_file({"error_model": dict(meta_r, ring_edges=[0.5])}, tensors_r, HR_GRID, LR_GRID, 16)
    with pytest.raises(ValueError, match="error_model_ring_factors"):
        error_model_from_file({"error_model": meta_r}, {k: v for k, v in tensors_r.items() if "factors" not in k},
                              HR_GRID, LR_GRID, 16)
    with pytest.raises(ValueError, match="units must be one of"):
        error_model_from_file({"error_model": dict(meta, units=["fit"] * 3)}, tensors, HR_GRID, LR_GRID)
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
    # a model value that is not finite at a usable pixel gives -inf, with or without model errors; one at a pixel
    # outside the likelihood changes nothing (float32 maps, as a network gives, are read as they are)
    broken = model.copy()
    broken[1, 0, 1] = np.nan
    assert log_likelihood(data, broken, model_err) == -math.inf and log_likelihood(data, broken) == -math.inf
    model[1, 1, 0] = np.nan
    assert log_likelihood(data, model.astype(np.float32), model_err) == pytest.approx(expected, rel=1e-12)
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

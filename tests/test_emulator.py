"""galsr.emulator.Emulator: LR simulation -> transform -> network -> inverse, on a tiny trained model."""
import numpy as np
import pytest
import torch

from galsr.emulator import Emulator, default_path
from galsr.simulator import EXAMPLE_GALAXY, PARAM_NAMES, Grid, ParameterSpace, simulate
from tiny_data import write_tiny_dataset
from galsr.training.train import train
from galsr.emulator.transform import MapTransform


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    d = tmp_path_factory.mktemp("emu")
    data = write_tiny_dataset(d / "tiny.h5", n=24, seed=1)
    train(data, d / "m.galsr", {"batch_size": 8, "n0": 12, "ni": 6, "m": 2}, epochs=2, seed=0, progress=False)
    return Emulator.load(d / "m.galsr")


def test_shapes_units_and_inputs(emulator):
    one = emulator(EXAMPLE_GALAXY)
    n = emulator.hr_grid.npix
    assert one.shape == (4, n, n) and one.dtype == np.float64 and np.all(np.isfinite(one))
    assert np.all(one[0] > 0)
    vec = np.array([EXAMPLE_GALAXY[k] for k in PARAM_NAMES])
    np.testing.assert_array_equal(emulator(vec), one)
    batch = ParameterSpace().sample_lhs(5, seed=3)
    out = emulator(batch)
    assert out.shape == (5, 4, n, n)
    tf = emulator.transform  # batch and single runs agree to float32 rounding (in normalised units)
    np.testing.assert_allclose(tf.forward(out[2:3]), tf.forward(emulator(batch[2])[None]), rtol=0, atol=3e-6)
    assert emulator.error_maps.shape == (4, n, n) and np.all(emulator.error_maps >= 0)
    assert emulator.param_names == PARAM_NAMES and emulator.bounds.shape == (18, 2)
    assert emulator.metadata["val_metrics"]["n_parameters"] == emulator.n_parameters


def test_matches_the_plain_pipeline(emulator):
    """Fast inference layers give the numbers of transform -> saved network -> inverse transform."""
    params = ParameterSpace().sample_lhs(3, seed=8)
    lr = simulate(params, emulator.lr_grid, emulator.redshift)
    tf = MapTransform.from_dict(emulator.metadata["transform"])
    with torch.no_grad():
        y = emulator._model(torch.from_numpy(tf.forward(lr)).float())
    np.testing.assert_allclose(tf.forward(emulator(params)), y.double().numpy(), rtol=0, atol=3e-6)


def test_refuses_bad_parameters_and_grids(emulator):
    with pytest.raises(ValueError, match="parameter gamma = 9 .* outside its bounds"):
        emulator(dict(EXAMPLE_GALAXY, gamma=9.0))
    with pytest.raises(ValueError, match="missing parameter"):
        emulator({"gamma": 1.0})
    with pytest.raises(ValueError, match="shape"):
        emulator(np.zeros(5))
    emulator.check_grid(emulator.hr_grid)
    with pytest.raises(ValueError, match="does not match the emulator's HR grid"):
        emulator.check_grid(Grid(80, 0.25))
    with pytest.raises(ValueError, match="LR maps must have shape"):
        emulator.super_resolve(np.ones((1, 4, 3, 3)))
    with pytest.raises(ValueError, match="num_threads"):
        emulator.set_num_threads(0)


def test_default_path_is_inside_the_package():
    assert default_path().replace("\\", "/").endswith("galsr/data/default.galsr")


def test_shipped_default_emulator():
    import os

    from galsr.simulator import HR_GRID, LR_GRID

    assert os.path.getsize(default_path()) < 1_000_000  # a few hundred kB inside the package
    emu = Emulator.default()
    assert emu.hr_grid == HR_GRID and emu.lr_grid == LR_GRID and emu.redshift == pytest.approx(0.03)
    vm = emu.metadata["val_metrics"]  # the full validation metrics of the shipped model
    assert vm["l1"] > 0 and set(vm["median_error"]) == {"B", "v", "sigma", "ML"} and emu.metadata["data_fingerprint"]
    maps = emu(EXAMPLE_GALAXY)
    assert maps.shape == (4, 80, 80) and np.all(np.isfinite(maps)) and np.all(maps[0] > 0)
    assert emu.error_maps.shape == (4, 80, 80)


def test_shipped_default_is_accurate_at_galaxy_centres():
    """Within one LR pixel of the centre, where the LR-only emulator was 20 % off in brightness (median), on prior
    galaxies no training or calibration used: the targets of the centre patch (B, sigma, M/L median <= 2 %, p95 <=
    10 %; v median <= 2 km/s, p95 <= 15 km/s)."""
    from galsr.simulator import ParameterSpace, simulate
    from galsr.training.region_metrics import RegionAccumulator

    emu = Emulator.default()
    params = ParameterSpace().sample_lhs(24, seed=77)
    acc = RegionAccumulator(emu.hr_grid, emu.lr_grid.pixel_kpc)
    acc.update(emu(params), simulate(params, emu.hr_grid), params)
    centre = acc.summary()["by_band"]["0-1"]
    for name in ("B", "sigma", "ML"):
        assert centre[name]["median"] <= 0.02 and centre[name]["p95"] <= 0.10, (name, centre[name])
    assert centre["v"]["median"] <= 2.0 and centre["v"]["p95"] <= 15.0, centre["v"]

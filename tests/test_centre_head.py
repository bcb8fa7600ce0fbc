"""The emulator's centre head: inputs wired to the centre and the parameters, the same numbers on every path,
saved and loaded with the emulator file, errors blended in and calibrated."""
import numpy as np
import pytest
import torch

from galsr.emulator import Emulator
from galsr.emulator.centre_head import CentreHead
from galsr.simulator import EXAMPLE_GALAXY, HR_GRID, LR_GRID, PARAM_BOUNDS, PARAM_NAMES, ParameterSpace
from galsr.training.centre_training import train_centre_head
from galsr.training.train import train
from tiny_data import TINY_HR, write_tiny_dataset

X0, Y0 = PARAM_NAMES.index("x0"), PARAM_NAMES.index("y0")


def _head(seed=0):
    torch.manual_seed(seed)
    head = CentreHead(4, 20, 16, 2, HR_GRID.centres, LR_GRID.centres, PARAM_BOUNDS)
    torch.nn.init.normal_(head.out.weight, std=0.2)  # a trained-looking head: non-zero output
    return head.eval()


def test_coordinates_follow_the_centre():
    head = _head()
    p = np.array([[EXAMPLE_GALAXY[n] for n in PARAM_NAMES]])
    rows, cols, pix, gal = head.features(p)
    # the crop is centred on the centre's HR pixel; dx, dy are the pixel offsets from the exact centre [LR px]
    lr_px = LR_GRID.pixel_kpc
    np.testing.assert_allclose(pix[0, 3, 5, 0], (HR_GRID.centres[cols[0] + 5] - p[0, X0]) / lr_px, rtol=1e-5)
    np.testing.assert_allclose(pix[0, 3, 5, 1], (HR_GRID.centres[rows[0] + 3] - p[0, Y0]) / lr_px, rtol=1e-5)
    assert pix[0, ..., 2].min() < 0.5 * HR_GRID.pixel_kpc / lr_px * 1.5  # some pixel sits on the centre
    moved = p.copy()
    moved[0, X0] += 3 * HR_GRID.pixel_kpc  # three HR pixels to the right: the crop moves with it
    r2, c2, pix2, gal2 = head.features(moved)
    assert r2[0] == rows[0] and c2[0] == cols[0] + 3
    np.testing.assert_allclose(pix2[0, ..., :3], pix[0, ..., :3], atol=1e-5)
    # the offset of the centre from its LR sample point is a galaxy feature, in LR pixels within [-0.5, 0.5)
    assert -0.5 <= gal[0, X0] < 0.5 and gal2[0, X0] == pytest.approx(
        (gal[0, X0] + 3 * HR_GRID.pixel_kpc / lr_px + 0.5) % 1.0 - 0.5, abs=1e-5)


def test_batch_and_single_paths_agree_and_parameters_matter():
    head = _head()
    params = ParameterSpace().sample_lhs(4, seed=2)
    y = torch.rand(4, 4, 80, 80)
    with torch.no_grad():
        out, info = head(y, params)
        one = y[2:3].numpy().copy()
        info1 = head.correct_one(one, params[2:3], head.numpy_weights())
    np.testing.assert_allclose(one, out[2:3].numpy(), atol=2e-6)
    np.testing.assert_allclose(info1.log_sigma, info.log_sigma[2:3].numpy(), atol=2e-6)
    # outside the crop the maps are untouched; inside they change
    mask = torch.zeros(80, 80, dtype=torch.bool)
    mask[info.rows[0]:info.rows[0] + 20, info.cols[0]:info.cols[0] + 20] = True
    assert torch.equal(out[0][:, ~mask], y[0][:, ~mask]) and not torch.equal(out[0][:, mask], y[0][:, mask])
    # the same network output with another bulge mass: another correction (the LR maps need not change)
    other = params.copy()
    other[:, PARAM_NAMES.index("log10_bulge_mass")] += 0.5
    with torch.no_grad():
        out2, _ = head(y, other)
    assert not torch.allclose(out2, out)


def test_trained_head_saves_loads_and_predicts_errors(tmp_path):
    from galsr.training.error_calibration import calibrate

    data = write_tiny_dataset(tmp_path / "tiny.h5", n=24, seed=1)
    train(data, tmp_path / "m.galsr", {"batch_size": 8, "n0": 8, "ni": 4, "m": 1}, epochs=1, seed=0, progress=False)
    rec = train_centre_head(tmp_path / "m.galsr", data, tmp_path / "h.galsr", epochs=2, seed=0,
                            head={"crop": 8, "hidden": 8, "layers": 1})
    assert rec["epochs_run"] == 2 and rec["best_val_l1_crop"] > 0
    emu = Emulator.load(tmp_path / "h.galsr")
    assert emu.centre_head is not None and emu.hr_grid == TINY_HR
    params = ParameterSpace().sample_lhs(3, seed=4)
    maps, err = emu.predict(params, return_error=True)
    assert np.all(np.isfinite(maps)) and np.all(np.isfinite(err)) and np.all(err > 0)
    single, err1 = emu.predict(params[1], return_error=True)  # the numpy batch-1 path
    np.testing.assert_allclose(single, maps[1], rtol=2e-5)
    np.testing.assert_allclose(err1, err[1], rtol=2e-5)
    with pytest.raises(ValueError, match="pass the parameters"):
        emu.super_resolve(emu.simulate_lr(params))
    cal = calibrate(tmp_path / "h.galsr", tmp_path / "c.galsr", n=30, seed=5)
    assert cal.head_factors is not None and np.all(cal.head_factors > 0)
    emu_c = Emulator.load(tmp_path / "c.galsr")
    np.testing.assert_allclose(emu_c.error_model.head_factors, cal.head_factors, rtol=1e-6)
    assert np.all(emu_c.predict(params, return_error=True)[1] > 0)


def test_cli_trains_and_calibrates_a_head(tmp_path, capsys):
    from galsr.cli import main

    data = write_tiny_dataset(tmp_path / "tiny.h5", n=24, seed=1)
    train(data, tmp_path / "m.galsr", {"batch_size": 8, "n0": 8, "ni": 4, "m": 1}, epochs=1, seed=0, progress=False)
    assert main(["train-head", str(tmp_path / "m.galsr"), data, "--out", str(tmp_path / "h.galsr"), "--epochs", "1",
                 "--crop", "8", "--hidden", "8", "--layers", "1"]) == 0
    assert main(["calibrate", str(tmp_path / "h.galsr"), "--out", str(tmp_path / "c.galsr"), "--n", "20"]) == 0
    assert Emulator.load(tmp_path / "c.galsr").error_model.kind == "binned"
    # an existing output is refused with one line; a crop larger than the grid names the problem
    assert main(["train-head", str(tmp_path / "m.galsr"), data, "--out", str(tmp_path / "h.galsr")]) == 2
    assert main(["train-head", str(tmp_path / "m.galsr"), data, "--out", str(tmp_path / "x.galsr"),
                 "--crop", "40"]) == 2
    err = capsys.readouterr().err
    assert "exists" in err and "crop 40 is larger than the HR grid" in err

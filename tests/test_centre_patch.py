"""The central patch: its geometry, its simulation against the converged grid, the emulator pasting it, the network
trained around it and the error model's patch bins."""
import numpy as np
import pytest
import torch

from galsr.emulator import Emulator
from galsr.emulator.error_model import DISTANCE_EDGES, RING_CENTRES, BinnedErrorModel
from galsr.simulator import COMPACT_GALAXY, EXAMPLE_GALAXY, HR_GRID, LR_GRID, PARAM_NAMES, as_param_array, simulate
from galsr.simulator.centre_patch import (LEGACY_PATCH_RULE, PATCH_RULE, check_npatch, paste_patch, patch_grid,
                                          patch_mask, patch_origin, patch_reach_lr, patch_slices, rule_from_dict,
                                          rule_to_dict, simulate_with_patch)
from galsr.simulator.render import CONVERGED_RULE, QuadratureRule
from galsr.training.metrics import with_patch
from galsr.training.train import train
from tests.tiny_data import TINY_HR, write_tiny_dataset

X0, Y0 = PARAM_NAMES.index("x0"), PARAM_NAMES.index("y0")
DX = HR_GRID.pixel_kpc


def galaxy(x0=0.0, y0=0.0):
    p = as_param_array(EXAMPLE_GALAXY)[0][0].copy()
    p[X0], p[Y0] = x0, y0
    return p


def test_patch_sits_on_the_centre_and_moves_with_it():
    # centre just right of and above the sky origin (an HR pixel corner): the patch is the middle 16 x 16
    origin = patch_origin(galaxy(0.3 * DX, 0.2 * DX), HR_GRID, 16)
    assert origin.tolist() == [[32, 32]]
    # one HR pixel further in x: one column further; 0.6 pixel: rounds to the next corner too
    assert patch_origin(galaxy(1.3 * DX, 0.2 * DX), HR_GRID, 16).tolist() == [[32, 33]]
    assert patch_origin(galaxy(0.6 * DX, -2.6 * DX), HR_GRID, 16).tolist() == [[29, 33]]
    mask = patch_mask(np.stack([galaxy(0.3 * DX, 0.2 * DX), galaxy(-39.0 * DX, 0.0)]), HR_GRID, 16)
    assert mask[0].sum() == 256 and mask[0, 32:48, 32:48].all()
    # a centre one pixel in from the field's edge: the part of the patch inside the map (columns 0-8)
    assert mask[1].sum() == 16 * 9 and mask[1][:, :9].any(axis=0).all() and not mask[1][:, 9:].any()
    # every pixel centre within the patch's reach of the centre is in it, for centres anywhere in a pixel
    rng = np.random.default_rng(0)
    for _ in range(20):
        x0, y0 = rng.uniform(-3, 3, 2)
        d = np.hypot(HR_GRID.centres[None, :] - x0, HR_GRID.centres[:, None] - y0) / LR_GRID.pixel_kpc
        m = patch_mask(galaxy(x0, y0), HR_GRID, 16)[0]
        assert m[d <= patch_reach_lr(16)].all()


def test_patch_size_is_checked():
    assert check_npatch(16, 80) == 16 and check_npatch(0, 80, allow_zero=True) == 0
    for bad in (15, 0, -2, 82, 2.0, True):
        with pytest.raises(ValueError, match="even number of HR pixels"):
            check_npatch(bad, 80)


def test_patch_simulation_is_close_to_the_converged_grid_and_moves_exactly():
    params = np.stack([galaxy(0.37, -0.21), galaxy(-1.1, 0.8)])
    params[1, PARAM_NAMES.index("log10_bulge_radius")] = -1.8  # a bulge far smaller than an LR pixel
    truth = simulate(params, HR_GRID)
    lr, patches, origins = simulate_with_patch(params, LR_GRID, HR_GRID, 16, 0.03)
    assert patches.shape == (2, 4, 16, 16)
    # the LR maps are exactly simulate()'s; the patch is a small grid of its own, with the galaxy moved
    np.testing.assert_array_equal(lr, simulate(params, LR_GRID))
    moved = params.copy()
    moved[:, X0] -= (origins[:, 1] - 32) * DX
    moved[:, Y0] -= (origins[:, 0] - 32) * DX
    np.testing.assert_allclose(patches, simulate(moved, patch_grid(HR_GRID, 16), rule=PATCH_RULE), rtol=1e-6)
    one = simulate_with_patch(params[1:], LR_GRID, HR_GRID, 16, 0.03)  # batch 1 (no threads): the same numbers
    np.testing.assert_array_equal(one[1][0], patches[1])
    for g in range(2):
        r, c = origins[g]
        ref = truth[g][:, r:r + 16, c:c + 16]
        rel_b = np.abs(patches[g, 0] / ref[0] - 1)
        assert np.median(rel_b) < 0.01 and rel_b.max() < 0.05
        assert np.abs(patches[g, 1] - ref[1]).max() < 10.0  # km/s, at the steepest velocity gradient
        assert np.median(np.abs(patches[g, 2] / ref[2] - 1)) < 0.01
    # the same galaxy moved by whole HR pixels: the same patch, three steps further
    moved = params[:1].copy()
    moved[0, X0] += 3 * DX
    _, p2, o2 = simulate_with_patch(moved, LR_GRID, HR_GRID, 16, 0.03)
    assert o2[0, 1] == origins[0, 1] + 3 and o2[0, 0] == origins[0, 0]
    np.testing.assert_allclose(p2[0], patches[0], rtol=1e-6)


def test_patch_error_shared_by_a_compact_galaxy_is_small():
    # a fit adds up the error all of a galaxy's pixels share; here every bright pixel is in the patch. The median
    # signed error over them: dispersion -2.5 % and M/L -0.5 % with the earlier rule (block 1, polar 8 x 2)
    params = as_param_array(COMPACT_GALAXY)[0]
    truth = simulate(params, HR_GRID)[0]
    _, patches, origins = simulate_with_patch(params, LR_GRID, HR_GRID, 16, 0.03)
    r, c = origins[0]
    ref = truth[:, r:r + 16, c:c + 16]
    bright = ref[0] > 1e-3 * truth[0].max()
    assert bright.sum() > 0.95 * (truth[0] > 1e-3 * truth[0].max()).sum()  # the galaxy is in the patch
    shared = np.median(patches[0][:, bright] / ref[:, bright] - 1, axis=1)
    assert abs(shared[2]) < 0.01 and abs(shared[3]) < 0.004, shared


def test_quadrature_rule_default_is_the_converged_one_and_is_checked():
    p = galaxy(0.1, 0.2)
    np.testing.assert_array_equal(simulate(p, LR_GRID), simulate(p, LR_GRID, rule=CONVERGED_RULE))
    with pytest.raises(ValueError, match="quadrature rule"):
        QuadratureRule(block_max=0)
    with pytest.raises(ValueError, match="QuadratureRule"):
        simulate(p, LR_GRID, rule="fine")


def test_paste_patch_clips_at_the_edges():
    maps = np.zeros((1, 6, 6))
    patch = np.arange(16.0).reshape(1, 4, 4)
    paste_patch(maps, patch, (-2, 4))
    assert maps[0, :2, 4:].tolist() == [[8.0, 9.0], [12.0, 13.0]] and maps.sum() == 42.0


def test_masked_loss_ignores_the_patch():
    pred = torch.zeros(1, 2, 4, 4, requires_grad=True)
    target = torch.ones(1, 2, 4, 4)
    mask = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    mask[..., 1:3, 1:3] = True
    loss = torch.mean(torch.abs(with_patch(pred, target, mask) - target))
    loss.backward()
    assert float(loss.detach()) == pytest.approx(24 / 32)
    assert torch.all(pred.grad[..., 1:3, 1:3] == 0) and torch.all(pred.grad[..., 0, :] != 0)
    assert with_patch(pred, target, None) is pred


def test_emulator_pastes_its_patch_and_calibrates_patch_bins(tmp_path):
    from galsr.training.error_calibration import calibrate

    data = write_tiny_dataset(tmp_path / "tiny.h5", n=24, seed=1)
    cfg = {"batch_size": 8, "n0": 8, "ni": 4, "m": 1, "centre_patch": 6}
    train(data, tmp_path / "m.galsr", cfg, epochs=1, seed=0, progress=False)
    emu = Emulator.load(tmp_path / "m.galsr")
    assert emu.centre_patch == 6 and emu.metadata["centre_patch"] == 6
    assert emu.patch_rule == PATCH_RULE and emu.metadata["patch_rule"] == rule_to_dict(PATCH_RULE)
    params = np.stack([galaxy(0.4, -0.3), galaxy(-1.9, 1.7)])
    maps = emu(params)
    net = emu.super_resolve(emu.simulate_lr(params))
    _, patches, origins = simulate_with_patch(params, emu.lr_grid, TINY_HR, 6, emu.redshift)
    mask = patch_mask(params, TINY_HR, 6)
    for g in range(2):
        r, c = origins[g]
        np.testing.assert_array_equal(maps[g][:, r:r + 6, c:c + 6], patches[g])
        np.testing.assert_array_equal(maps[g][:, ~mask[g]], net[g][:, ~mask[g]])
    # the error model keeps separate bins for the patch pixels, and refuses a file calibrated without the patch
    cal = calibrate(tmp_path / "m.galsr", tmp_path / "c.galsr", n=30, seed=5)
    assert cal.centre_patch == 6 and cal.table.shape[-1] == 2 * len(DISTANCE_EDGES)
    dist = cal.bins(params)[2]
    assert np.all(dist[mask] >= len(DISTANCE_EDGES)) and np.all(dist[~mask] < len(DISTANCE_EDGES))
    emu_c = Emulator.load(tmp_path / "c.galsr")
    maps_c, err = emu_c.predict(params, return_error=True)
    assert np.all(np.isfinite(err)) and np.all(err > 0)
    np.testing.assert_array_equal(maps_c, maps)
    # the ring term is stored and read back (weights_only), and the network's values under the patch are its own
    assert emu_c.error_model.ring_factors.shape == (len(RING_CENTRES), 4, 2 * len(DISTANCE_EDGES))
    np.testing.assert_allclose(emu_c.error_model.ring_reference, cal.ring_reference, rtol=1e-6)
    _, under = emu_c.emulate(params, keep_network=True)
    for g in range(2):
        r, c = origins[g]
        (mr, mc), (pr, pc) = patch_slices(origins[g], 6, TINY_HR.npix)
        np.testing.assert_array_equal(under[g][:, pr, pc], net[g][:, mr, mc])
    with pytest.raises(ValueError, match="central patch"):
        BinnedErrorModel(cal.table, TINY_HR, emu.lr_grid, centre_patch=0)


def test_patch_rule_is_the_files_own(tmp_path):
    from galsr.emulator.file_format import load_emulator, save_emulator
    from galsr.training.error_calibration import calibrate

    data = write_tiny_dataset(tmp_path / "tiny.h5", n=24, seed=1)
    train(data, tmp_path / "m.galsr", {"batch_size": 8, "n0": 8, "ni": 4, "m": 1, "centre_patch": 6}, epochs=1,
          seed=0, progress=False)
    ef = load_emulator(tmp_path / "m.galsr")
    # a file from before the rule was recorded keeps the rule it was calibrated with
    old = dict(ef.metadata)
    del old["patch_rule"]
    save_emulator(tmp_path / "old.galsr", model_name=ef.model_name, hparams=ef.hparams, state_dict=ef.state_dict,
                  metadata=old, tensors=ef.tensors)
    emu_old = Emulator.load(tmp_path / "old.galsr")
    assert emu_old.patch_rule == LEGACY_PATCH_RULE != PATCH_RULE
    params = galaxy(0.4, -0.3)
    _, legacy, origin = simulate_with_patch(params, emu_old.lr_grid, TINY_HR, 6, emu_old.redshift,
                                            LEGACY_PATCH_RULE)
    r, c = origin[0]
    np.testing.assert_array_equal(emu_old(params)[:, r:r + 6, c:c + 6], legacy[0])
    current = simulate_with_patch(params, emu_old.lr_grid, TINY_HR, 6, emu_old.redshift)[1]
    assert np.abs(current - legacy).max() > 0  # the two rules differ on this galaxy
    # recalibrating brings it to this release's rule, and says so in the file
    calibrate(tmp_path / "old.galsr", tmp_path / "new.galsr", n=30, seed=5)
    emu_new = Emulator.load(tmp_path / "new.galsr")
    assert emu_new.patch_rule == PATCH_RULE and emu_new.metadata["patch_rule"] == rule_to_dict(PATCH_RULE)
    # a hostile rule is refused with a line naming it
    for bad, match in (({"block_max": 2}, "keys"), (dict(rule_to_dict(PATCH_RULE), polar_r="12"), "integers"),
                       (dict(rule_to_dict(PATCH_RULE), polar_r=True), "integers"),
                       (dict(rule_to_dict(PATCH_RULE), block_max=99), "out of range"), ([1, 2], "keys")):
        save_emulator(tmp_path / "bad.galsr", model_name=ef.model_name, hparams=ef.hparams, state_dict=ef.state_dict,
                      metadata=dict(ef.metadata, patch_rule=bad), tensors=ef.tensors)
        with pytest.raises(ValueError, match=match) as info:
            Emulator.load(tmp_path / "bad.galsr")
        assert "bad.galsr" in str(info.value)
    assert rule_from_dict(rule_to_dict(PATCH_RULE)) == PATCH_RULE and rule_from_dict(None) == LEGACY_PATCH_RULE


def test_training_refuses_an_odd_patch(tmp_path):
    data = write_tiny_dataset(tmp_path / "tiny.h5", n=12, seed=2)
    with pytest.raises(ValueError, match="even number of HR pixels"):
        train(data, tmp_path / "m.galsr", {"n0": 8, "ni": 4, "m": 1, "centre_patch": 5}, epochs=1, progress=False)

"""training.metrics: physical residuals, report errors and the 4-pixel periodic (checkerboard) measure."""
import numpy as np
import pytest
import torch

from galsr.training.metrics import periodic_fraction, report_errors, residual_units


def test_periodic_fraction_separates_patterns_from_noise():
    gen = torch.Generator().manual_seed(0)
    tile = torch.randn(1, 1, 4, 4, generator=gen, dtype=torch.float64)
    tiled = tile.repeat(1, 1, 20, 20)
    noise = torch.randn(64, 1, 80, 80, generator=gen, dtype=torch.float64)
    assert periodic_fraction(tiled).item() == pytest.approx(1.0)
    # white noise: expectation (16 - 1) / (80^2 - 1)
    assert float(periodic_fraction(noise).mean()) == pytest.approx(15 / 6399, rel=0.2)
    mixed = periodic_fraction(noise[:1] + 0.5 * tiled / tiled.std())
    assert 0.1 < mixed.item() < 0.4
    with pytest.raises(ValueError, match="do not tile"):
        periodic_fraction(torch.zeros(1, 1, 10, 10))


def test_a_stride_4_kernel_9_transposed_conv_leaves_a_checkerboard():
    """Uneven overlap (9 is not a multiple of 4): a constant input gives a 4-periodic output."""
    tconv = torch.nn.ConvTranspose2d(1, 1, 9, stride=4, padding=3, output_padding=1, bias=False)
    torch.nn.init.constant_(tconv.weight, 1.0)
    with torch.no_grad():
        out = tconv(torch.ones(1, 1, 20, 20))[..., 8:-8, 8:-8].double()  # interior, away from the edges
    assert out.shape[-1] == 64 and periodic_fraction(out).item() > 0.99


def test_residual_units_and_report_errors():
    hr = torch.tensor([[[[100.0]], [[10.0]], [[50.0]], [[2.0]]]], dtype=torch.float64)
    sr = torch.tensor([[[[110.0]], [[12.0]], [[45.0]], [[2.2]]]], dtype=torch.float64)
    ch = ("B", "v", "sigma", "ML")
    res = residual_units(sr.clone(), hr, ch).flatten().numpy()
    np.testing.assert_allclose(res, [np.log10(1.1), 2.0, -5.0, 0.2], atol=1e-12)
    err = report_errors(sr, hr, ch).flatten().numpy()
    np.testing.assert_allclose(err, [0.1, 2.0, 0.1, 0.1], atol=1e-12)

"""The inference rewrites give the same numbers as the layers they replace."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from galsr.emulator.fast_layers import BicubicUpsample, FlatNet, pixel_shuffle, subpixel_from_transposed


@pytest.mark.parametrize("c_in, c_out, k, r, p", [(60, 16, 9, 2, 4), (16, 4, 9, 2, 4), (56, 4, 9, 4, 3),
                                                   (8, 3, 5, 2, 2), (6, 2, 4, 2, 1)])
def test_subpixel_equals_transposed(c_in, c_out, k, r, p):
    torch.manual_seed(0)
    op = r - k + 2 * p
    tconv = nn.ConvTranspose2d(c_in, c_out, k, stride=r, padding=p, output_padding=op)
    x = torch.randn(3, c_in, 7, 9)
    with torch.no_grad():
        ref = tconv(x)
        got = subpixel_from_transposed(tconv)(x)
    assert got.shape == ref.shape == (3, c_out, 7 * r, 9 * r)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_bicubic_matrix_equals_interpolate():
    x = torch.randn(2, 4, 20, 20)
    ref = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
    torch.testing.assert_close(BicubicUpsample(20, 4)(x), ref, rtol=1e-5, atol=1e-5)
    # other sizes fall back to interpolate
    y = torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(BicubicUpsample(20, 4)(y), F.interpolate(y, scale_factor=4, mode="bicubic",
                                                                          align_corners=False))


def test_rejects_what_it_cannot_rewrite():
    with pytest.raises(TypeError):
        subpixel_from_transposed(nn.Conv2d(2, 2, 3))
    with pytest.raises(ValueError, match="exactly its stride"):
        subpixel_from_transposed(nn.ConvTranspose2d(2, 2, 9, stride=2, padding=4))


@pytest.mark.parametrize("shape, r", [((1, 16, 40, 40), 2), ((3, 64, 20, 20), 4), ((2, 12, 5, 7), 2)])
def test_pixel_shuffle_equals_torch(shape, r):
    x = torch.randn(*shape)
    torch.testing.assert_close(pixel_shuffle(x, r), F.pixel_shuffle(x, r), rtol=0, atol=0)


def test_flatnet_equals_the_chain_it_replaces():
    torch.manual_seed(1)
    chain = nn.Sequential(nn.Sequential(nn.Conv2d(4, 8, 5, padding=2), nn.PReLU(8)),
                          subpixel_from_transposed(nn.ConvTranspose2d(8, 6, 9, stride=2, padding=4,
                                                                      output_padding=1)),
                          nn.PReLU(6), nn.ZeroPad2d(1), nn.Conv2d(6, 8, 3), nn.ZeroPad2d((1, 0, 1, 0)),
                          nn.Conv2d(8, 8, 2), nn.PixelShuffle(2))
    flat = FlatNet(chain)
    # symmetric pads are merged into the convolution that follows; the asymmetric one stays a pad
    assert [fn.__name__ for fn, _ in flat.ops].count("pad") == 1
    x = torch.randn(2, 4, 10, 10)
    with torch.no_grad():
        torch.testing.assert_close(flat(x), chain(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="no functional form for Linear"):
        FlatNet(nn.Linear(2, 2))


def test_without_onednn_switches_off_for_the_call_only():
    import torch

    from galsr.emulator.fast_layers import WithoutOneDNN

    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen.append(torch.backends.mkldnn.enabled)
            if x is None:
                raise RuntimeError("boom")
            return x

    before = torch.backends.mkldnn.enabled
    wrapped = WithoutOneDNN(Probe())
    assert wrapped(torch.ones(1)) is not None and seen == [False]
    assert torch.backends.mkldnn.enabled == before
    try:
        wrapped(None)
    except RuntimeError:
        pass
    assert torch.backends.mkldnn.enabled == before and seen == [False, False]

"""Networks: shapes for any x4 size, parameter counts, registry, initialisation, the fast inference copy."""
import pytest
import torch

from galsr.emulator.architectures import (MODEL_REGISTRY, FSRCNN, ISRCNN, Bicubic, bicubic_upsample, build_model,
                             inference_model, n_parameters)


@pytest.mark.parametrize("name, kwargs", [("isrcnn", {}), ("isrcnn", {"bicubic_skip": False}),
                                          ("isrcnn", {"two_stage_upsampling": False}),
                                          ("isrcnn", {"per_channel_images": True}), ("fsrcnn", {}),
                                          ("bicubic", {})])
@pytest.mark.parametrize("n", [20, 5, 13])
def test_output_shape_is_four_times_input(name, kwargs, n):
    model = build_model(name, **kwargs)
    with torch.no_grad():
        y = model(torch.rand(3, 4, n, n))
    assert y.shape == (3, 4, 4 * n, 4 * n)


def test_parameter_counts():
    # thesis eq. 4.1 for n0 = 60, ni = 16, m = 8 (+ biases and PReLU slopes): ~110k, the thesis's "~120k" scale
    assert n_parameters(build_model("isrcnn")) == 109_860
    assert 100_000 < n_parameters(build_model("isrcnn", ni=18)) < 130_000
    assert n_parameters(build_model("fsrcnn")) == 30_620
    assert n_parameters(build_model("bicubic")) == 0
    # one-channel-per-image mode: 1-channel convolutions at both ends
    assert n_parameters(build_model("isrcnn", per_channel_images=True)) < 109_860


def test_registry_and_bad_hyperparameters():
    assert set(MODEL_REGISTRY) == {"isrcnn", "fsrcnn", "bicubic"}
    assert isinstance(build_model("fsrcnn"), FSRCNN) and isinstance(build_model("bicubic"), Bicubic)
    # training-config keys that are not network hyperparameters are ignored
    m = build_model("isrcnn", n0=8, ni=4, m=1, lr=0.1, batch_size=3)
    assert (m.n0, m.ni, m.m) == (8, 4, 1)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("edsr")
    with pytest.raises(ValueError, match="ni must be an integer >= 1"):
        ISRCNN(ni=0)
    with pytest.raises(ValueError, match="expected 4 channels"):
        build_model("isrcnn")(torch.rand(1, 3, 20, 20))


def test_untrained_bicubic_skip_net_is_bicubic_and_kaiming():
    torch.manual_seed(0)
    model = ISRCNN()
    x = torch.rand(2, 4, 20, 20)
    with torch.no_grad():
        torch.testing.assert_close(model(x), bicubic_upsample(x))
    w = model.extract[0].weight
    expected = (2.0 / ((1 + 0.25 ** 2) * w[0].numel())) ** 0.5  # Kaiming normal for PReLU(0.25)
    assert w.std().item() == pytest.approx(expected, rel=0.1)
    assert all(float(m.bias.detach().abs().max()) == 0 for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    # FSRCNN: small random reconstruction layer (reference implementation), no skip
    f = FSRCNN()
    assert 0 < f.upsample[-1].weight.std().item() < 2e-3


def test_seeded_init_is_reproducible():
    torch.manual_seed(5)
    a = ISRCNN().state_dict()
    torch.manual_seed(5)
    b = ISRCNN().state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kwargs", [{}, {"two_stage_upsampling": False, "bicubic_skip": False},
                                    {"per_channel_images": True}])
def test_inference_model_gives_the_same_numbers(kwargs):
    torch.manual_seed(1)
    model = build_model("isrcnn", **kwargs).eval()
    for p in model.parameters():  # non-trivial weights everywhere (the last layer starts at zero)
        p.data.normal_(0, 0.05)
    fast = inference_model(model, 20)
    for n in (20, 6):
        x = torch.rand(2, 4, n, n)
        with torch.inference_mode():
            torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-5)
    assert set(model.state_dict()) != set(fast.state_dict())  # the original keeps the saved layout

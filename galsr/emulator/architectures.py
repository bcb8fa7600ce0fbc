"""Super-resolution networks in normalised map space: iSRCNN (thesis ch. 4), FSRCNN and bicubic baselines.

Every model maps normalised LR maps (N, C, n, n) to normalised HR maps (N, C, 4n, 4n) (scale 4 for all n).
``build_model(name, **hparams)`` builds any of them by name (configs, ablation, BOHB); ``MODEL_REGISTRY`` lists them.

With ``per_channel_images=True`` (the thesis's "one channel per image" mode) the network sees each map as its own
1-channel image: (N, C, n, n) is folded to (N C, 1, n, n) inside ``forward`` and unfolded on output, so callers
always pass and receive (N, C, ...) tensors.
"""
import numbers

import torch.nn as nn
import torch.nn.functional as F

#: Up-sampling factor of every model (LR 20 x 20 -> HR 80 x 80).
SCALE = 4
#: [low, high] of the integer hyperparameters, checked before any layer is built: an emulator file or config
#: naming n0 = 200000 is refused instead of allocating its weights (the thesis's sizes are 60 / 16 / 8).
HPARAM_LIMITS = {"n0": (1, 512), "ni": (1, 512), "m": (0, 64), "channels": (1, 16)}


def bicubic_upsample(x, scale=SCALE):
    """Bicubic up-sampling (align_corners=False) of (N, C, n, n) by ``scale``, the residual base of iSRCNN."""
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


class BicubicSkip(nn.Module):
    """Parameter-free module form of ``bicubic_upsample`` (so inference can swap in a faster equal one)."""

    def forward(self, x):
        return bicubic_upsample(x)


def _conv_prelu(c_in, c_out, k):
    return [nn.Conv2d(c_in, c_out, k, padding=k // 2), nn.PReLU(c_out)]


def _transposed(c_in, c_out, stride, k=9):
    """ConvTranspose2d with kernel k whose output is exactly ``stride`` times its input."""
    pad = (k - stride + 1) // 2
    return nn.ConvTranspose2d(c_in, c_out, k, stride=stride, padding=pad, output_padding=stride - k + 2 * pad)


class _FoldChannels(nn.Module):
    """Base: optional folding of channels into the batch (``per_channel_images``)."""

    def __init__(self, channels, per_channel_images):
        super().__init__()
        self.channels = int(channels)
        self.per_channel_images = bool(per_channel_images)
        self.net_channels = 1 if self.per_channel_images else self.channels

    def forward(self, x):
        if x.ndim != 4 or x.shape[-1] != x.shape[-2]:
            raise ValueError(f"expected normalised LR maps (N, C, n, n), got shape {tuple(x.shape)}")
        if self.per_channel_images:
            n, c, h, w = x.shape
            y = self._forward(x.reshape(n * c, 1, h, w))
            return y.reshape(n, c, y.shape[-2], y.shape[-1])
        if x.shape[1] != self.channels:
            raise ValueError(f"expected {self.channels} channels, got shape {tuple(x.shape)}")
        return self._forward(x)


class ISRCNN(_FoldChannels):
    """improved SRCNN (thesis Fig. 4.1): extraction 5x5 (C -> n0) + PReLU, shrinking 1x1 (n0 -> ni) + PReLU,
    m x [3x3 ni -> ni + PReLU] with a skip around the mapping block, expanding 1x1 (ni -> n0) + PReLU, then
    reconstruction by transposed 9x9 convolutions, and the output added to the bicubic up-sampling of the input.

    Args:
        n0: int, channels of the extraction/expanding layers (thesis 60).
        ni: int, channels of the shrinking/mapping layers (thesis 16).
        m: int >= 0, number of mapping layers (thesis 8).
        bicubic_skip: bool, residual learning on bicubic up-sampling (ablation "Bi").
        two_stage_upsampling: bool, two stride-2 transposed convs (n0 -> ni, PReLU, ni -> C) instead of one
            stride-4 (n0 -> C) (ablation "Tr").
        channels: int, map channels C (4: B, v, sigma, M/L).
        per_channel_images: bool, run each channel as its own 1-channel image (thesis section 6.1).
        mapping_skip: bool, the skip connection around the mapping block (False only for FSRCNN).
        residual_scale: float > 0, constant factor on the network's output before it is added to the bicubic
            up-sampling (residual scaling as in EDSR; 1 = the thesis's network).
    """

    def __init__(self, n0=60, ni=16, m=8, bicubic_skip=True, two_stage_upsampling=True, channels=4,
                 per_channel_images=False, mapping_skip=True, residual_scale=1.0):
        super().__init__(channels, per_channel_images)
        for name, v in (("n0", n0), ("ni", ni), ("m", m), ("channels", channels)):
            lo, hi = HPARAM_LIMITS[name]
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not float(v).is_integer() \
                    or not lo <= v <= hi:
                raise ValueError(f"{type(self).__name__}: {name} must be an integer >= {lo} and <= {hi}, got {v!r}")
        self.n0, self.ni, self.m = int(n0), int(ni), int(m)
        self.bicubic_skip, self.two_stage_upsampling = bool(bicubic_skip), bool(two_stage_upsampling)
        self.mapping_skip = bool(mapping_skip)
        self.residual_scale = float(residual_scale)
        if not self.residual_scale > 0:
            raise ValueError(f"{type(self).__name__}: residual_scale must be > 0, got {residual_scale!r}")
        c = self.net_channels
        self.extract = nn.Sequential(*_conv_prelu(c, self.n0, 5))
        self.shrink = nn.Sequential(*_conv_prelu(self.n0, self.ni, 1))
        self.mapping = nn.Sequential(*[layer for _ in range(self.m) for layer in _conv_prelu(self.ni, self.ni, 3)])
        self.expand = nn.Sequential(*_conv_prelu(self.ni, self.n0, 1))
        if self.two_stage_upsampling:
            self.upsample = nn.Sequential(_transposed(self.n0, self.ni, 2), nn.PReLU(self.ni),
                                          _transposed(self.ni, c, 2))
        else:
            self.upsample = nn.Sequential(_transposed(self.n0, c, SCALE))
        self.bicubic = BicubicSkip()
        init_weights(self)

    def _forward(self, x):
        f = self.shrink(self.extract(x))
        g = self.mapping(f)
        f = f + g if self.mapping_skip else g
        y = self.upsample(self.expand(f))
        if self.residual_scale != 1.0:
            y = y * self.residual_scale
        return y + self.bicubic(x) if self.bicubic_skip else y

    def hparams(self):
        """Constructor arguments as a JSON-able dict (what the emulator file stores)."""
        return {"n0": self.n0, "ni": self.ni, "m": self.m, "bicubic_skip": self.bicubic_skip,
                "two_stage_upsampling": self.two_stage_upsampling, "channels": self.channels,
                "per_channel_images": self.per_channel_images, "residual_scale": self.residual_scale}


class FSRCNN(ISRCNN):
    """FSRCNN (Dong, Loy & Tang 2016) for C-channel maps: d = 56, s = 12, m = 4, one 9x9 stride-4 transposed
    convolution, no skip connections and no bicubic residual (the thesis's baseline and ablation corner)."""

    def __init__(self, n0=56, ni=12, m=4, channels=4, per_channel_images=False, **ignored):
        unknown = set(ignored) - {"bicubic_skip", "two_stage_upsampling", "mapping_skip"}
        if unknown:
            raise ValueError(f"FSRCNN: unknown hyperparameter(s) {sorted(unknown)}")
        super().__init__(n0, ni, m, bicubic_skip=False, two_stage_upsampling=False, channels=channels,
                         per_channel_images=per_channel_images, mapping_skip=False)

    def hparams(self):
        return {"n0": self.n0, "ni": self.ni, "m": self.m, "channels": self.channels,
                "per_channel_images": self.per_channel_images}


class Bicubic(_FoldChannels):
    """Plain bicubic up-sampling by 4 (no parameters); per-channel by construction."""

    def __init__(self, channels=4, per_channel_images=False, **ignored):
        super().__init__(channels, False)

    def _forward(self, x):
        return bicubic_upsample(x)

    def hparams(self):
        return {"channels": self.channels}


def inference_model(model, n_lr=20):
    """A copy of ``model`` (eval mode) giving the same numbers faster on a CPU at batch 1: transposed convolutions
    as sub-pixel convolutions and the bicubic skip as two matrix products for n_lr x n_lr inputs
    (training.fast_layers), each block run as direct functional calls (FlatNet), all with oneDNN off
    (WithoutOneDNN). Its state_dict differs from the model's: keep the original for saving."""
    import copy

    from galsr.emulator.fast_layers import BicubicUpsample, FlatNet, WithoutOneDNN, subpixel_from_transposed

    fast = copy.deepcopy(model).eval()
    if isinstance(fast, ISRCNN):
        fast.upsample = nn.Sequential(*[subpixel_from_transposed(layer) if isinstance(layer, nn.ConvTranspose2d)
                                        else layer for layer in fast.upsample])
        for name in ("extract", "shrink", "mapping", "expand", "upsample"):
            setattr(fast, name, FlatNet(getattr(fast, name)))
        if fast.bicubic_skip:
            fast.bicubic = BicubicUpsample(n_lr, SCALE)
    for p in fast.parameters():
        p.requires_grad_(False)
    return WithoutOneDNN(fast)


def init_weights(model):
    """Kaiming (He) normal initialisation of every (transposed) convolution for PReLU(0.25), zero biases; the
    last reconstruction layer drawn from N(0, 0.001) as in FSRCNN, or zero with a bicubic skip (the untrained
    network is then exactly bicubic up-sampling, and training only ever adds a learned residual)."""
    convs = [mod for mod in model.modules() if isinstance(mod, (nn.Conv2d, nn.ConvTranspose2d))]
    for mod in convs:
        # fan of a transposed conv: inputs reaching one output pixel = C_in k^2 / stride^2
        if isinstance(mod, nn.ConvTranspose2d):
            fan = mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1] / (mod.stride[0] * mod.stride[1])
            std = (2.0 / ((1 + 0.25 ** 2) * fan)) ** 0.5
            nn.init.normal_(mod.weight, 0.0, std)
        else:
            nn.init.kaiming_normal_(mod.weight, a=0.25, nonlinearity="leaky_relu")
        nn.init.zeros_(mod.bias)
    if convs:
        if getattr(model, "bicubic_skip", False):
            nn.init.zeros_(convs[-1].weight)  # start exactly at bicubic; gradients still reach this layer
        else:
            nn.init.normal_(convs[-1].weight, 0.0, 1e-3)


MODEL_REGISTRY = {"isrcnn": ISRCNN, "fsrcnn": FSRCNN, "bicubic": Bicubic}

#: Hyperparameter names each model accepts (other keys of a training config are ignored by build_model).
MODEL_HPARAMS = {
    "isrcnn": ("n0", "ni", "m", "bicubic_skip", "two_stage_upsampling", "channels", "per_channel_images",
               "residual_scale"),
    "fsrcnn": ("n0", "ni", "m", "channels", "per_channel_images"),
    "bicubic": ("channels",),
}


def model_hparams(name, config):
    """The subset of ``config`` (dict) that ``build_model(name, ...)`` takes."""
    check_model_name(name)
    return {k: config[k] for k in MODEL_HPARAMS[name] if k in config}


def check_model_name(name):
    """Raise ValueError unless ``name`` is in MODEL_REGISTRY."""
    if name not in MODEL_REGISTRY:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(MODEL_REGISTRY)}")


def build_model(name, **hparams):
    """Build the model ``name`` ("isrcnn", "fsrcnn", "bicubic") with ``hparams``; extra training-config keys
    that are not hyperparameters of the network (lr, batch_size, ...) are ignored."""
    check_model_name(name)
    return MODEL_REGISTRY[name](**model_hparams(name, hparams))


def n_parameters(model):
    """Number of trainable parameters (int)."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))

"""Inference-time rewrites that give the same numbers faster on a CPU at batch 1.

PyTorch's CPU ConvTranspose2d and bicubic ``interpolate`` are slow for the small images of the emulator
(measured: 0.8 ms of a 1.6 ms forward pass in transposed convolutions, 0.24 ms in the bicubic skip). Both are
linear maps with an exact cheaper form:

- a transposed convolution of stride r is r^2 ordinary convolutions on the input, one per output phase, i.e. one
  convolution with r^2 times the output channels followed by PixelShuffle(r) (sub-pixel convolution);
- bicubic up-sampling by r is separable: Y = A X A^T with a fixed (r n, n) matrix A.

``subpixel_from_transposed`` and ``BicubicUpsample`` build these from trained weights; the training graph keeps
the architecture of the design (transposed convolutions, F.interpolate). ``FlatNet`` then runs a chain of such
layers as direct functional calls on stored tensors: at batch 1 the nn.Module call machinery and separate padding
copies cost as much as the smaller convolutions themselves.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


def subpixel_from_transposed(tconv):
    """An nn.Sequential (pad, Conv2d, PixelShuffle) equal to ``tconv`` (nn.ConvTranspose2d, square stride r,
    square kernel k, padding p, output_padding r - 1 + ... such that the output is exactly r times the input)."""
    if not isinstance(tconv, nn.ConvTranspose2d):
        raise TypeError(f"expected nn.ConvTranspose2d, got {type(tconv).__name__}")
    (r, r2), (p, p2) = tconv.stride, tconv.padding
    if r != r2 or p != p2 or tconv.groups != 1 or tconv.dilation != (1, 1):
        raise ValueError("only square, ungrouped, undilated transposed convolutions are supported")
    k = tconv.kernel_size[0]
    if (k - 2 * p + tconv.output_padding[0]) != r:
        raise ValueError(f"transposed convolution does not scale by exactly its stride {r}")
    w = tconv.weight.detach()  # (C_in, C_out, k, k)
    c_in, c_out = w.shape[0], w.shape[1]
    # output index r*i + phase collects x[i - t] * w[r t + phase + p] for kernel taps inside [0, k)
    taps = {ph: [t for t in range(-k, k + 1) if 0 <= r * t + ph + p < k] for ph in range(r)}
    t_min = min(min(v) for v in taps.values())
    t_max = max(max(v) for v in taps.values())
    size = t_max - t_min + 1
    weight = torch.zeros(c_out * r * r, c_in, size, size, dtype=w.dtype)
    out_idx = torch.arange(c_out) * r * r
    for ry in range(r):
        for rx in range(r):
            for ty in taps[ry]:
                for tx in taps[rx]:
                    weight[out_idx + ry * r + rx, :, t_max - ty, t_max - tx] = w[:, :, r * ty + ry + p,
                                                                                   r * tx + rx + p].T
    conv = nn.Conv2d(c_in, c_out * r * r, size, padding=0, bias=tconv.bias is not None)
    conv.weight.data.copy_(weight)
    if tconv.bias is not None:
        conv.bias.data.copy_(tconv.bias.detach().repeat_interleave(r * r))
    return nn.Sequential(nn.ZeroPad2d((t_max, -t_min, t_max, -t_min)), conv, nn.PixelShuffle(r))


def bicubic_matrix(n, scale):
    """(scale n, n) matrix A with A x = F.interpolate(x, scale_factor=scale, mode="bicubic") along one axis."""
    basis = torch.eye(n, dtype=torch.float64).reshape(n, 1, 1, n)
    up = F.interpolate(basis, scale_factor=(1, scale), mode="bicubic", align_corners=False)
    return up.reshape(n, n * scale).T.contiguous()


class BicubicUpsample(nn.Module):
    """Bicubic up-sampling (align_corners=False) of (N, C, n, n) images by ``scale`` as two matrix products."""

    def __init__(self, n, scale):
        super().__init__()
        self.register_buffer("a", bicubic_matrix(n, scale).float())

    def forward(self, x):
        if x.shape[-1] != self.a.shape[1] or x.shape[-2] != self.a.shape[1]:
            return F.interpolate(x, scale_factor=self.a.shape[0] // self.a.shape[1], mode="bicubic",
                                 align_corners=False)
        return self.a @ x @ self.a.T


def pixel_shuffle(x, r):
    """F.pixel_shuffle(x, r) as a view and one strided copy: 2.5x faster than torch's CPU kernel on the
    emulator's (1, 16, 40, 40) and (1, 64, 20, 20) tensors (measured 23 vs 60 us)."""
    n, c, h, w = x.shape
    c_out = c // (r * r)
    return x.reshape(n, c_out, r, r, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c_out, h * r, w * r)


def _functional_ops(layers):
    """[(fn, args)] with ``x = fn(x, *args)`` equal to running ``layers`` (Conv2d, PReLU, ZeroPad2d, PixelShuffle,
    nested nn.Sequential) in order; a symmetric zero padding is merged into the convolution that follows it."""
    def flatten(mods):
        for mod in mods:
            yield from (flatten(mod) if isinstance(mod, nn.Sequential) else [mod])

    ops, pad = [], None
    for layer in flatten(layers):
        if isinstance(layer, nn.ZeroPad2d):
            pad = tuple(layer.padding)
            continue
        conv = isinstance(layer, nn.Conv2d) and layer.stride == (1, 1) and layer.groups == 1 \
            and layer.dilation == (1, 1) and layer.padding_mode == "zeros"
        padding = layer.padding if conv else None
        if conv and pad is not None and len(set(pad)) == 1 and padding == (0, 0):
            padding, pad = (pad[0], pad[0]), None
        if pad is not None:
            ops.append((F.pad, (pad,)))
            pad = None
        if conv:
            bias = None if layer.bias is None else layer.bias.detach().contiguous()
            ops.append((F.conv2d, (layer.weight.detach().contiguous(), bias, 1, padding)))
        elif isinstance(layer, nn.PReLU):
            ops.append((F.prelu, (layer.weight.detach().contiguous(),)))
        elif isinstance(layer, nn.PixelShuffle):
            ops.append((pixel_shuffle, (layer.upscale_factor,)))
        else:
            raise TypeError(f"no functional form for {type(layer).__name__}")
    if pad is not None:
        ops.append((F.pad, (pad,)))
    return ops


class FlatNet(nn.Module):
    """A chain of layers (see ``_functional_ops``) run as direct functional calls; same numbers as the chain."""

    def __init__(self, *layers):
        super().__init__()
        self.ops = _functional_ops(layers)

    def forward(self, x):
        for fn, args in self.ops:
            x = fn(x, *args)
        return x


class WithoutOneDNN(nn.Module):
    """Runs ``module`` with PyTorch's oneDNN (mkldnn) convolutions switched off, and the switch restored after.

    On the emulator's 20 x 20 images torch's own convolutions (im2col + GEMM) beat oneDNN's: measured on 2 x86_64
    cores, one thread, the shipped 16/8/2 network takes 0.30 instead of 0.36 ms at batch 1 and 15 % less per galaxy
    at batch 64, with the same numbers to 1e-6. The switch is process-wide while the call runs (PyTorch has no
    per-call setting), so it is set and restored around each call, which costs well under a microsecond.
    """

    def __init__(self, module):
        super().__init__()
        self.module = module

    def forward(self, x):
        onednn = torch.backends.mkldnn.enabled
        torch.backends.mkldnn.enabled = False
        try:
            return self.module(x)
        finally:
            torch.backends.mkldnn.enabled = onednn

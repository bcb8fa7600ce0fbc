"""Losses and error measures of super-resolved maps, in normalised and in physical units.

Physical error conventions (what reports and the fit likelihood use):
- per-pixel "residual units": brightness in dex (log10 SR - log10 HR), the other channels in their physical unit
  (km/s for v and sigma, Msun/Lsun for M/L); the emulator's ``error_maps`` are RMS residuals in these units;
- per-pixel "report errors": relative |SR/HR - 1| for brightness, sigma and M/L, absolute km/s for velocity.
"""
import math

import numpy as np
import torch

from galsr.simulator.fit_units import brightness_to_dex

#: Channels whose report error is absolute (km/s) rather than relative.
ABSOLUTE_CHANNELS = ("v",)
#: Per-channel error samples kept for quantiles (a deterministic stride through the pixels beyond this).
MAX_QUANTILE_SAMPLES = 2_000_000


def l1(pred, target):
    """Mean absolute error (torch scalar) of normalised maps: the training loss (thesis eq. 6.1)."""
    return torch.mean(torch.abs(pred - target))


def psnr_from_mse(mse, data_range=1.0):
    """PSNR [dB] = 10 log10(range^2 / MSE) of normalised maps (range 1)."""
    return float("inf") if mse <= 0 else 10.0 * math.log10(data_range ** 2 / mse)


def residual_units(sr_phys, hr_phys, channels):
    """Per-pixel residual SR - HR (torch, same shape) in the fit's units (galsr.simulator.fit_units: dex for
    brightness "B", physical units otherwise)."""
    res = sr_phys - hr_phys
    if "B" in channels:
        i = channels.index("B")
        res[:, i] = brightness_to_dex(sr_phys[:, i]) - brightness_to_dex(hr_phys[:, i])
    return res


#: Period (HR pixels) of the residual pattern that evaluation reports: the up-sampling factor, whose stride-4
#: transposed convolutions with 9x9 kernels overlap unevenly.
PATTERN_PERIOD = 4


def periodic_fraction(residual, period=PATTERN_PERIOD):
    """Share of each residual map's variance in a pattern repeating every ``period`` pixels (torch (B, C) from
    (B, C, n, n) with n a multiple of the period): the checkerboard of uneven transposed-convolution overlap
    (kernel 9, stride 4) shows up here. A residual without such a pattern gives about (period^2 - 1) / (n^2 - 1)."""
    b, c, n, m = residual.shape
    if n % period or m % period:
        raise ValueError(f"maps of {n} x {m} pixels do not tile into periods of {period}")
    d = residual - residual.mean(dim=(2, 3), keepdim=True)
    pattern = d.reshape(b, c, n // period, period, m // period, period).mean(dim=(2, 4))
    periodic = pattern.pow(2).sum(dim=(2, 3)) * (n // period) * (m // period)
    return periodic / d.pow(2).sum(dim=(2, 3)).clamp_min(1e-300)


def report_errors(sr_phys, hr_phys, channels):
    """Per-pixel report errors (torch): |SR/HR - 1| for all channels but velocity, |SR - HR| km/s for velocity."""
    err = torch.abs(sr_phys - hr_phys)
    for i, name in enumerate(channels):
        if name not in ABSOLUTE_CHANNELS:
            err[:, i] = err[:, i] / torch.abs(hr_phys[:, i]).clamp_min(1e-30)
    return err


class ErrorAccumulator:
    """Accumulates, over batches of normalised (SR, HR) maps, the normalised L1 and MSE, the per-pixel mean
    squared residual (for ``error_maps``) and, optionally, per-channel report-error samples (for quantiles).

    Args:
        transform: training.transform.MapTransform (to physical units).
        quantiles: bool, keep report-error samples (median, 95th percentile).
        expected_pixels: int or None, total pixels per channel expected (sets the sampling stride).
    """

    def __init__(self, transform, quantiles=False, expected_pixels=None):
        self.transform = transform
        self.channels = tuple(transform.channels)
        self.quantiles = quantiles
        self.stride = max(1, int(math.ceil((expected_pixels or 0) / MAX_QUANTILE_SAMPLES)))
        self.n = 0
        self.n_values = 0
        self.abs_sum = 0.0
        self.sq_sum = 0.0
        self.abs_sum_channel = np.zeros(len(self.channels))
        self.res_sq = None
        self.samples = [[] for _ in self.channels]
        self.periodic = []

    def update(self, sr_norm, hr_norm):
        """Add a batch (B, C, n, n) of normalised SR and HR maps (torch)."""
        sr_norm, hr_norm = sr_norm.detach().double(), hr_norm.detach().double()
        d = sr_norm - hr_norm
        self.n += d.shape[0]
        self.n_values += d.numel()
        self.abs_sum += float(torch.abs(d).sum())
        self.sq_sum += float((d * d).sum())
        self.abs_sum_channel += torch.abs(d).sum(dim=(0, 2, 3)).numpy()
        if d.shape[-1] % PATTERN_PERIOD == 0 and d.shape[-2] % PATTERN_PERIOD == 0:
            self.periodic.append(periodic_fraction(d).numpy())
        sr, hr = self.transform.inverse(sr_norm), self.transform.inverse(hr_norm)
        res = residual_units(sr, hr, self.channels)
        sq = (res * res).sum(dim=0)
        self.res_sq = sq if self.res_sq is None else self.res_sq + sq
        if self.quantiles:
            err = report_errors(sr, hr, self.channels)
            for i in range(len(self.channels)):
                self.samples[i].append(err[:, i].reshape(-1)[:: self.stride].float().numpy())

    @property
    def l1(self):
        return self.abs_sum / max(self.n_values, 1)

    def error_maps(self):
        """(C, n, n) float32 tensor: per-pixel RMS residual (dex for brightness, physical otherwise)."""
        return torch.sqrt(self.res_sq / max(self.n, 1)).float()

    def summary(self):
        """Plain-JSON metrics: l1, psnr, l1 per channel and (with quantiles) median / p95 report errors."""
        out = {"l1": self.l1, "psnr_db": psnr_from_mse(self.sq_sum / max(self.n_values, 1)), "n_galaxies": self.n,
               "l1_per_channel": dict(zip(self.channels, (self.abs_sum_channel / max(self.n_values, 1)
                                                            * len(self.channels)).tolist()))}
        if self.quantiles and self.n:
            med, p95 = {}, {}
            for name, chunks in zip(self.channels, self.samples):
                values = np.concatenate(chunks)
                med[name], p95[name] = (float(v) for v in np.percentile(values, [50, 95]))
            out["median_error"], out["p95_error"] = med, p95
            out["error_units"] = {c: ("km/s" if c in ABSOLUTE_CHANNELS else "relative") for c in self.channels}
        if self.periodic:
            out["periodic_fraction_median"] = dict(zip(self.channels,
                                                       np.median(np.concatenate(self.periodic), axis=0).tolist()))
        rms = self.error_maps().reshape(len(self.channels), -1).pow(2).mean(dim=1).sqrt()
        out["rms_residual"] = dict(zip(self.channels, rms.tolist()))
        return out


def with_patch(pred, target, mask):
    """``pred`` with the central-patch pixels (``mask``, boolean broadcastable, or None) taken from ``target``: the
    emulator simulates those pixels directly, so the network is neither trained nor judged on them."""
    return pred if mask is None else torch.where(mask, target, pred)


@torch.inference_mode()
def evaluate_model(model, dataset, transform=None, batch_size=256, quantiles=False):
    """Run ``model`` over a training.data.PairDataset (its central patch, if any, taken as exact: ``with_patch``);
    returns the filled ErrorAccumulator."""
    transform = transform or dataset.transform
    acc = ErrorAccumulator(transform, quantiles=quantiles,
                           expected_pixels=len(dataset) * int(np.prod(dataset.hr_shape[1:])))
    was_training = model.training
    model.eval()
    for start in range(0, len(dataset), batch_size):
        idx = np.arange(start, min(start + batch_size, len(dataset)))
        x, y = dataset.batch(idx)
        acc.update(with_patch(model(x), y, dataset.patch_masks(idx)), y)
    model.train(was_training)
    return acc

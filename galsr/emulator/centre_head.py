"""A parameter-aware correction of the emulator's maps at the galaxy centre, with its own error prediction.

Why: the LR maps are point samples at 2" pixel centres, so a bulge or disc core smaller than an LR pixel is hit or
missed and the super-resolution network cannot know its shape; but the emulator is called with the parameters,
which say exactly where the centre is and what sits there. The head works on a square crop of ``crop`` x ``crop``
HR pixels around the centre (x0, y0): for every pixel of the crop a small MLP sees

- where the pixel is relative to the exact centre, in LR pixels: dx, dy, r, and in the galaxy's own frame the
  coordinate along the major axis and the de-projected one along the minor axis, with their radius; and the shape
  a point source would have there, exp(-r^2 / 2 s^2), for the photometric and the kinematic PSF widths s and for
  the photometric PSF widened by the bulge radius (what a small bulge looks like through the PSF: the features a
  small MLP cannot easily build from r alone, since the PSF core is a quarter of an LR pixel wide); and a sketch
  of the brightness there in the network's normalised units: a Gaussian bulge of the bulge's light and radius seen
  through the photometric PSF plus the two exponential discs, inclined (a rough but right-scaled estimate that
  the MLP only has to correct);
- the galaxy: its 18 parameters normalised to [0, 1] by the emulator's bounds (x0, y0 replaced by the centre's
  offset from its nearest LR sample point, in LR pixels: what decides hit or miss), cos and sin of the orientation;
- the network's own output at that pixel (normalised maps);

and returns a correction of the normalised maps and the log of the 1-sigma error that remains, per channel. The
correction fades to zero at the crop's border (``taper``), so the maps stay continuous. The first layer is split
into a per-pixel and a per-galaxy part (the galaxy features are added once per galaxy, not copied to every pixel).
The grids and bounds are construction arguments, not weights: the emulator file stores them in its metadata.
"""
import math
from dataclasses import dataclass

import numpy as np
import torch
from numba import njit
import torch.nn as nn
import torch.nn.functional as F

from galsr.simulator import PARAM_NAMES

X0, Y0 = PARAM_NAMES.index("x0"), PARAM_NAMES.index("y0")
THETA, INCL = PARAM_NAMES.index("orientation"), PARAM_NAMES.index("inclination")
BULGE_RADIUS = PARAM_NAMES.index("log10_bulge_radius")
N_PIXEL_FEATURES = 11  # dx, dy, r, x', y' (de-projected), R', taper, three Gaussian profiles of r, log10 B sketch
#: Column of each pixel feature.
R_COL, TAPER_COL = 2, 6
N_GALAXY_FEATURES = len(PARAM_NAMES) + 2  # normalised parameters (x0, y0 -> sampling offsets), cos and sin theta


class CentreHead(nn.Module):
    """Correction and error of normalised HR maps in a crop around the galaxy centre.

    Args:
        channels: int, map channels (4).
        crop: int, even side of the crop in HR pixels (e.g. 20 = 5 LR pixels).
        hidden: int, width of the MLP; layers: int, hidden layers (>= 1).
        hr_centres: sequence (n_hr,) of HR pixel-centre coordinates [kpc]; lr_centres: (n_lr,) LR ones [kpc].
        bounds: (18, 2) parameter bounds of the emulator (normalisation of the galaxy features).
        psf_fwhm_kpc: (photometric, kinematic) PSF FWHM of the HR maps [kpc] (None: a point, 0).
        brightness_norm: (lo, scale) of the emulator's normalisation of log10 brightness (MapTransform).
    """

    def __init__(self, channels, crop, hidden, layers, hr_centres, lr_centres, bounds, psf_fwhm_kpc=(None, None),
                 brightness_norm=(0.0, 1.0)):
        super().__init__()
        if crop < 4 or crop % 2:
            raise ValueError(f"crop must be an even number >= 4, got {crop}")
        if layers < 1 or hidden < 1:
            raise ValueError(f"hidden and layers must be >= 1, got {hidden}, {layers}")
        self.channels, self.crop, self.hidden, self.layers = int(channels), int(crop), int(hidden), int(layers)
        self._hr = np.asarray(hr_centres, dtype=np.float64)
        lr = np.asarray(lr_centres, dtype=np.float64)
        if len(self._hr) < crop:
            raise ValueError(f"crop {crop} is larger than the HR grid ({len(self._hr)} pixels)")
        bounds = np.asarray(bounds, dtype=np.float64).reshape(len(PARAM_NAMES), 2)
        self._lo, self._span, self._lr0 = bounds[:, 0], bounds[:, 1] - bounds[:, 0], float(lr[0])
        self.lr_pixel = float(lr[1] - lr[0])
        self.hr_pixel = float(self._hr[1] - self._hr[0])
        # PSF sigmas in LR pixels (a floor of a tenth of an HR pixel keeps the profiles finite without a PSF)
        self._b_norm = (float(brightness_norm[0]), float(brightness_norm[1]))
        self._psf_sigma = tuple(max((f or 0.0) / (2.0 * math.sqrt(2.0 * math.log(2.0))), 0.1 * self.hr_pixel)
                                / self.lr_pixel for f in psf_fwhm_kpc)
        self.pixel_in = nn.Linear(N_PIXEL_FEATURES + self.channels, hidden)
        self.galaxy_in = nn.Linear(N_GALAXY_FEATURES, hidden, bias=False)
        self.body = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers - 1))
        self.out = nn.Linear(hidden, 2 * self.channels)
        nn.init.zeros_(self.out.weight)  # starts as the identity: no correction, error exp(bias)
        nn.init.zeros_(self.out.bias)

    @property
    def hparams(self):
        return {"channels": self.channels, "crop": self.crop, "hidden": self.hidden, "layers": self.layers}

    def features(self, params):
        """Inputs of the MLP for parameter rows (N, 18) (numpy float64): crop origins (rows, cols) (N,) int64,
        pixel features (N, crop, crop, 7) float32 (dx, dy, r, the galaxy-frame x' along the major axis, the
        de-projected y' along the minor one, their radius R' [LR pixels], and the taper) and galaxy features
        (N, 20) float32. One compiled kernel serves training (all galaxies at once) and the emulator's calls."""
        p = np.ascontiguousarray(np.atleast_2d(params), dtype=np.float64)
        return _crop_features(p, self._hr, self._lr0, self.lr_pixel, self.hr_pixel, self._lo, self._span,
                              self.crop, self._psf_sigma[0], self._psf_sigma[1], self._b_norm[0], self._b_norm[1])

    def numpy_weights(self):
        """The MLP as float32 numpy arrays [(W.T, b), ...] for :meth:`correct_one` (taken once, after training)."""
        layers = [self.pixel_in, *self.body, self.out]
        ws = [(lin.weight.detach().numpy().T.copy(), lin.bias.detach().numpy().copy()) for lin in layers]
        return ws, self.galaxy_in.weight.detach().numpy().T.copy()

    def correct_one(self, y, params, weights):
        """Batch-1 inference in numpy, in place: ``y`` (1, C, n, n) float32 normalised maps (a numpy view of the
        network's output) are corrected in the crop; returns the CropInfo (log sigma as numpy). ``weights`` from
        :meth:`numpy_weights`. Same numbers as :meth:`forward` (tests/test_centre_head.py)."""
        rows, cols, pix, gal = self.features(params)
        window = (slice(None), slice(None), slice(int(rows[0]), int(rows[0]) + self.crop),
                  slice(int(cols[0]), int(cols[0]) + self.crop))
        patch = y[window]
        layers, w_gal = weights
        (w, b), hidden, (w_out, b_out) = layers[0], layers[1:-1], layers[-1]
        h = np.concatenate([pix, patch.transpose(0, 2, 3, 1)], axis=-1) @ w + (b + gal @ w_gal)[:, None, None]
        with np.errstate(over="ignore"):  # exp(-h) = inf for very negative h gives SiLU's limit 0
            h = h / (1.0 + np.exp(-h))  # SiLU
            for w, b in hidden:
                h = h @ w + b
                h = h / (1.0 + np.exp(-h))
        o = (h @ w_out + b_out).transpose(0, 3, 1, 2)
        patch += o[:, : self.channels] * pix[..., TAPER_COL][:, None]
        return CropInfo(rows, cols, o[:, self.channels:], pix[..., R_COL], pix[..., TAPER_COL])

    def mlp(self, pix, patch, gal):
        """The MLP's output (N, 2C, crop, crop): the correction of the normalised maps (first C channels, before
        the taper) and the log of their remaining 1-sigma error, from pixel features (N, crop, crop, 7), the
        network's output in the crop (N, C, crop, crop) and galaxy features (N, 20). The error is read from the
        hidden features without passing gradients back into them, so learning the error never disturbs the
        correction (the mean first, then its variance: Seitzer et al. 2022)."""
        h = self.pixel_in(torch.cat([pix, patch.permute(0, 2, 3, 1)], dim=-1))
        h = F.silu(h + self.galaxy_in(gal)[:, None, None])
        for layer in self.body:
            h = F.silu(layer(h))
        c = self.channels
        mean = F.linear(h, self.out.weight[:c], self.out.bias[:c])
        log_sigma = F.linear(h.detach(), self.out.weight[c:], self.out.bias[c:])
        return torch.cat([mean, log_sigma], dim=-1).permute(0, 3, 1, 2)

    def forward(self, y, params):
        """Corrected normalised maps (N, C, n, n) (a new tensor) and a ``CropInfo`` of the crop (its origin, the
        log of the predicted 1-sigma error of the normalised maps (N, C, crop, crop), the pixels' distance from the
        centre [LR pixels] and the taper (N, crop, crop)) for the network's normalised float32 output ``y`` and
        physical parameters ``params`` (N, 18) (numpy)."""
        rows, cols, pix, gal = self.features(params)
        pix, gal = torch.from_numpy(pix), torch.from_numpy(gal)
        if len(y) == 1:  # a fit's call: plain slices, much cheaper than gathers
            r0, c0 = int(rows[0]), int(cols[0])
            window = (slice(None), slice(None), slice(r0, r0 + self.crop), slice(c0, c0 + self.crop))
        else:
            steps = torch.arange(self.crop)
            window = (torch.arange(len(y))[:, None, None, None], torch.arange(self.channels)[None, :, None, None],
                      (torch.from_numpy(rows)[:, None] + steps)[:, None, :, None],
                      (torch.from_numpy(cols)[:, None] + steps)[:, None, None, :])
        patch = y[window]  # (N, C, crop, crop)
        o = self.mlp(pix, patch, gal)
        out = y.clone()
        out[window] = patch + o[:, : self.channels] * pix[..., TAPER_COL][:, None]
        return out, CropInfo(rows, cols, o[:, self.channels:], pix[..., R_COL], pix[..., TAPER_COL])


@dataclass
class CropInfo:
    """Where the centre head worked: crop origins (N,) numpy int (rows, cols), log sigma (N, C, crop, crop) of the
    normalised maps, distance from the centre [LR pixels] and taper weight (N, crop, crop) (torch)."""

    rows: np.ndarray
    cols: np.ndarray
    log_sigma: torch.Tensor
    distance: torch.Tensor
    taper: torch.Tensor


@njit(cache=True)
def _crop_features(p, hr, lr0, lr_pixel, hr_pixel, lo, span, crop, s_pho, s_kin, b_lo, b_scale):
    """See CentreHead.features: one pass over the galaxies and the crop's pixels."""
    n_gal, n_hr = p.shape[0], hr.shape[0]
    rows = np.empty(n_gal, np.int64)
    cols = np.empty(n_gal, np.int64)
    pix = np.empty((n_gal, crop, crop, N_PIXEL_FEATURES), np.float32)
    gal = np.empty((n_gal, N_GALAXY_FEATURES), np.float32)
    edge = 0.5 * crop * hr_pixel / lr_pixel  # taper: 1 out to 0.75 LR px inside the crop's edge, then to 0
    for g in range(n_gal):
        x0, y0 = p[g, X0], p[g, Y0]
        r0 = min(max(int(np.rint((y0 - hr[0]) / hr_pixel)) - crop // 2 + 1, 0), n_hr - crop)
        c0 = min(max(int(np.rint((x0 - hr[0]) / hr_pixel)) - crop // 2 + 1, 0), n_hr - crop)
        rows[g], cols[g] = r0, c0
        c, s = math.cos(p[g, THETA]), math.sin(p[g, THETA])
        ici = 1.0 / max(math.cos(p[g, INCL]), 0.05)
        a = 10.0 ** p[g, BULGE_RADIUS] / lr_pixel
        w_pho, w_kin, w_bulge = 0.5 / s_pho ** 2, 0.5 / s_kin ** 2, 0.5 / (s_pho ** 2 + a * a)
        kpc2 = lr_pixel * lr_pixel  # brightness sketch in Lsun / kpc^2, radii in kpc
        bulge_peak = 10.0 ** p[g, 0] / p[g, 3] * w_bulge / (math.pi * kpc2)
        discs = ((10.0 ** p[g, 4] / p[g, 6], 10.0 ** p[g, 5]), (10.0 ** p[g, 8] / p[g, 10], 10.0 ** p[g, 9]))
        for i in range(crop):
            dy = (hr[r0 + i] - y0) / lr_pixel
            for j in range(crop):
                dx = (hr[c0 + j] - x0) / lr_pixel
                r = math.sqrt(dx * dx + dy * dy)
                xp = dx * c + dy * s
                yp = (dy * c - dx * s) * ici
                t = min(max((r - (edge - 0.75)) / 0.75, 0.0), 1.0)
                f = pix[g, i, j]
                f[0], f[1], f[2], f[3], f[4] = dx, dy, r, xp, yp
                f[5] = math.sqrt(xp * xp + yp * yp)
                f[6] = 0.5 * (1.0 + math.cos(math.pi * t))
                f[7], f[8], f[9] = math.exp(-w_pho * r * r), math.exp(-w_kin * r * r), math.exp(-w_bulge * r * r)
                b = bulge_peak * f[9]
                rk = f[5] * lr_pixel
                for lum, rd in discs:
                    b += lum / (2.0 * math.pi * rd * rd) * math.exp(-rk / rd) * ici
                f[10] = (math.log10(max(b, 1e-30)) - b_lo) / b_scale
        for k in range(p.shape[1]):
            gal[g, k] = (p[g, k] - lo[k]) / span[k]
        for k in (X0, Y0):  # the centre's offset from its nearest LR sample point, in LR pixels
            gal[g, k] = ((p[g, k] - lr0 + 0.5 * lr_pixel) % lr_pixel) / lr_pixel - 0.5
        gal[g, N_GALAXY_FEATURES - 2], gal[g, N_GALAXY_FEATURES - 1] = c, s
    return rows, cols, pix, gal


def load_centre_head(meta, tensors, hr_grid, lr_grid, bounds, path):
    """The CentreHead an emulator file describes (metadata "centre_head" with its hyperparameters, weights as
    tensors "centre_head.<name>"), in eval mode; ValueError naming ``path`` when it does not fit."""
    cfg = meta["centre_head"]
    try:
        head = CentreHead(len(meta["transform"]["channels"]), int(cfg["crop"]), int(cfg["hidden"]),
                          int(cfg["layers"]), hr_grid.centres, lr_grid.centres, bounds,
                          (hr_grid.psf_fwhm_pho_kpc, hr_grid.psf_fwhm_kin_kpc), brightness_norm(meta["transform"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: invalid centre_head metadata ({exc})") from None
    state = {k[len("centre_head."):]: v for k, v in tensors.items() if k.startswith("centre_head.")}
    reference = head.state_dict()
    if set(state) != set(reference) or any(state[k].shape != reference[k].shape for k in reference):
        raise ValueError(f"{path}: centre_head weights do not match its hyperparameters {cfg}")
    head.load_state_dict(state)
    return head.eval()


def brightness_norm(transform_dict):
    """(lo, scale) of the brightness channel in a MapTransform's JSON description (its log10 normalisation)."""
    i = list(transform_dict["channels"]).index("B")
    return transform_dict["lo"][i], transform_dict["hi"][i] - transform_dict["lo"][i]

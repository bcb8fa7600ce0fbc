"""The emulator's prediction of its own error: 1-sigma per pixel, per galaxy, in the fit's units
(galsr.simulator.fit_units: brightness in dex, v and sigma in km/s, M/L in Msun/Lsun).

Two models, one interface (``predict(params) -> (N, 4, n, n)``, ``to_file() -> (metadata dict, tensors dict)``):

- ``StaticErrorModel``: one RMS map over validation galaxies, the same for every galaxy (what older emulator files
  hold). It ignores where a galaxy's centre is, so it understates the error at the centres of small bulges.
- ``BinnedErrorModel``: a calibrated table of the error scale by what drives it: the channel, the pixel's distance
  from the galaxy centre in LR pixels, the bulge radius in LR pixels (a bulge smaller than an LR pixel is hit or
  missed by the LR point samples) and how far the centre sits from its nearest LR sample point. Each cell holds the
  scale that makes 68.3 % of held-out residuals in the cell fall within 1 sigma and 95.4 % within 2 sigma as
  closely as one Gaussian scale can (``fit_scale``); it is fitted by galsr.training.error_calibration.
"""
import bisect
import math

import numpy as np
import torch

from galsr.simulator import PARAM_NAMES
from galsr.simulator.fit_units import BRIGHTNESS, LN10

X0, Y0 = PARAM_NAMES.index("x0"), PARAM_NAMES.index("y0")
BULGE_RADIUS = PARAM_NAMES.index("log10_bulge_radius")
#: Distance from the galaxy centre [LR pixels]: bin edges (the last bin is open).
DISTANCE_EDGES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.0, 10.0)
#: log10(bulge radius / LR pixel): bin edges (open at both ends).
BULGE_EDGES = (-1.5, -1.0, -0.5, 0.0, 0.5)
#: Distance of the centre from its nearest LR sample point [LR pixels, 0 .. 0.71]: bin edges (open at the top).
OFFSET_EDGES = (0.2, 0.4)


def fit_scale(abs_residuals):
    """The Gaussian 1-sigma (float) that best matches the 68.3 % and 95.4 % quantiles of ``abs_residuals``: the
    geometric mean of q68.3 and q95.4 / 2, so that heavy tails widen it and a compact core narrows it."""
    q68, q95 = np.percentile(abs_residuals, [68.27, 95.45])
    return float(math.sqrt(max(q68, 1e-30) * max(q95 / 2.0, 1e-30)))


class _ErrorModel:
    """What both error models share: the centre head's own error prediction inside its crop."""

    #: (C, n_distance) calibration factors on the errors inside the centre head's crop, by distance from the
    #: centre (None: 1).
    head_factors = None

    def with_head(self, err, info, maps, transform):
        """``err`` (N, C, n, n) with the centre head's predicted errors blended in over its crop (weight: the head's
        taper), converted from normalised to the fit's units, the crop then scaled by ``head_factors``; a new
        array."""
        err = np.array(err, dtype=np.float64)
        sig = np.exp(np.asarray(info.log_sigma, dtype=np.float64)) * transform.scale[None, :, None, None]
        taper = np.asarray(info.taper, dtype=np.float64)
        dist = np.digitize(np.asarray(info.distance, dtype=np.float64), DISTANCE_EDGES) - 1
        crop = sig.shape[-1]
        for g in range(len(err)):
            window = (g, slice(None), slice(int(info.rows[g]), int(info.rows[g]) + crop),
                      slice(int(info.cols[g]), int(info.cols[g]) + crop))
            s = sig[g]
            for c in range(len(transform.channels)):
                if transform.is_log[c] and c != BRIGHTNESS:  # dex of a linear-units channel -> its own units
                    s[c] *= LN10 * maps[window][c]
            blended = taper[g] * s + (1.0 - taper[g]) * err[window]
            if self.head_factors is not None:
                blended *= np.take_along_axis(self.head_factors, np.broadcast_to(
                    dist[g].reshape(1, -1), (len(s), dist[g].size)), axis=1).reshape(s.shape)
            err[window] = blended
        return err


class StaticErrorModel(_ErrorModel):
    """The same per-pixel error map (C, n, n) for every galaxy."""

    kind = "static"

    def __init__(self, error_maps):
        self.error_maps = np.asarray(error_maps, dtype=np.float64)

    def predict(self, params):
        """(N, C, n, n) float64 errors for parameter rows (N, 18) (a read-only broadcast view)."""
        return np.broadcast_to(self.error_maps, (len(np.atleast_2d(params)),) + self.error_maps.shape)

    def to_file(self):
        return {"kind": self.kind}, {}


class BinnedErrorModel(_ErrorModel):
    """Error scale by channel, distance from the centre, bulge size and sampling offset (see the module docstring).

    Args:
        table: (n_bulge, n_offset, C, n_distance) float64 1-sigma values in the fit's units.
        hr_grid, lr_grid: simulator.Grid of the emulator's output and input.
    """

    kind = "binned"

    def __init__(self, table, hr_grid, lr_grid, head_factors=None):
        self.table = np.asarray(table, dtype=np.float64)
        if head_factors is not None:
            self.head_factors = np.asarray(head_factors, dtype=np.float64)
            if self.head_factors.shape != (self.table.shape[2], len(DISTANCE_EDGES)) or not (
                    np.all(np.isfinite(self.head_factors)) and np.all(self.head_factors > 0)):
                raise ValueError(f"head factors must be finite, > 0 and of shape "
                                 f"{(self.table.shape[2], len(DISTANCE_EDGES))}")
        shape = (len(BULGE_EDGES) + 1, len(OFFSET_EDGES) + 1, self.table.shape[2], len(DISTANCE_EDGES))
        if self.table.shape != shape:
            raise ValueError(f"error model table has shape {self.table.shape}, expected {shape}")
        if not (np.all(np.isfinite(self.table)) and np.all(self.table > 0)):
            raise ValueError("error model table must be finite and > 0")
        self.hr_centres = np.asarray(hr_grid.centres, dtype=np.float64)
        self.lr_centres = np.asarray(lr_grid.centres, dtype=np.float64)
        self.lr_pixel = float(lr_grid.pixel_kpc)
        self._log_lr_pixel = math.log10(self.lr_pixel)
        self._by_distance = np.ascontiguousarray(np.moveaxis(self.table, 3, 2))  # (bulge, offset, distance, C)
        # distance bins around a centre on a grid of half HR pixels, twice the field wide: any centre's map is a
        # strided slice of it
        n = len(self.hr_centres)
        self._template_centre = 2 * n
        k = (np.arange(4 * n) - 2 * n) * 0.5 * (self.hr_centres[1] - self.hr_centres[0]) / self.lr_pixel
        self._template = (np.digitize(np.hypot(k[None, :], k[:, None]), DISTANCE_EDGES) - 1).astype(np.intp)

    def bins(self, params):
        """(bulge bin (N,), offset bin (N,), distance bin (N, n, n)) of parameter rows (N, 18). The distance bin map
        is a slice of a template at half-pixel resolution (the centre rounded to 1/2 HR pixel, 1/8 LR pixel), so it
        costs no arithmetic per pixel."""
        p = np.atleast_2d(params)
        n, t0 = len(self.hr_centres), self._template_centre
        half = 0.5 * (self.hr_centres[1] - self.hr_centres[0])
        bulge, offset, dist = [], [], []
        for row in p:  # a handful of scalars per galaxy: plain Python is cheaper than numpy here
            bulge.append(bisect.bisect_right(BULGE_EDGES, row[BULGE_RADIUS] - self._log_lr_pixel))
            off = math.hypot(*(((row[k] - self.lr_centres[0]) / self.lr_pixel + 0.5) % 1.0 - 0.5 for k in (X0, Y0)))
            offset.append(bisect.bisect_right(OFFSET_EDGES, off))
            kx = round((row[X0] - self.hr_centres[0]) / half)
            ky = round((row[Y0] - self.hr_centres[0]) / half)
            dist.append(self._template[t0 - ky:t0 - ky + 2 * n:2, t0 - kx:t0 - kx + 2 * n:2])
        return np.array(bulge), np.array(offset), np.stack(dist)

    def predict(self, params):
        """(N, C, n, n) float64 1-sigma errors for parameter rows (N, 18)."""
        bulge, offset, dist = self.bins(params)
        n = dist.shape[-1]
        # np.take along the first axis of a (distance, channel) table is the fastest gather numpy offers here
        return np.stack([np.take(self._by_distance[b, o], d.ravel(), axis=0).T.reshape(-1, n, n)
                         for b, o, d in zip(bulge, offset, dist)])

    def to_file(self):
        meta = {"kind": self.kind, "distance_edges": list(DISTANCE_EDGES), "bulge_edges": list(BULGE_EDGES),
                "offset_edges": list(OFFSET_EDGES)}
        tensors = {"error_model_table": torch.from_numpy(self.table).float()}
        if self.head_factors is not None:
            tensors["error_model_head_factors"] = torch.from_numpy(self.head_factors).float()
        return meta, tensors


def error_model_from_file(meta, tensors, hr_grid, lr_grid):
    """The error model an emulator file describes (metadata "error_model", absent in older files: static)."""
    info = meta.get("error_model") or {"kind": "static"}
    kind = info.get("kind") if isinstance(info, dict) else None
    if kind == "static":
        return StaticErrorModel(tensors["error_maps"].double().numpy())
    if kind == "binned":
        edges = (list(DISTANCE_EDGES), list(BULGE_EDGES), list(OFFSET_EDGES))
        if (info.get("distance_edges"), info.get("bulge_edges"), info.get("offset_edges")) != edges:
            raise ValueError("error model: bin edges differ from this galsr's; recalibrate the emulator")
        if "error_model_table" not in tensors:
            raise ValueError("error model: tensor error_model_table is missing")
        factors = tensors.get("error_model_head_factors")
        return BinnedErrorModel(tensors["error_model_table"].double().numpy(), hr_grid, lr_grid,
                                None if factors is None else factors.double().numpy())
    raise ValueError(f"unknown error model kind {kind!r}; expected 'static' or 'binned'")

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
from galsr.simulator.centre_patch import patch_origin

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


class StaticErrorModel:
    """The same per-pixel error map (C, n, n) for every galaxy."""

    kind = "static"

    def __init__(self, error_maps):
        self.error_maps = np.asarray(error_maps, dtype=np.float64)

    def predict(self, params):
        """(N, C, n, n) float64 errors for parameter rows (N, 18) (a read-only broadcast view)."""
        return np.broadcast_to(self.error_maps, (len(np.atleast_2d(params)),) + self.error_maps.shape)

    def to_file(self):
        return {"kind": self.kind}, {}


class BinnedErrorModel:
    """Error scale by channel, distance from the centre, bulge size and sampling offset (see the module docstring).

    With a central patch (galsr.simulator.centre_patch), the pixels the emulator simulates directly have errors of
    their own (the patch's lighter quadrature, not the network's): they get a second set of distance bins, so the
    distance axis is twice as long and bin k + n_distance holds the patch pixels at distance bin k.

    Args:
        table: (n_bulge, n_offset, C, n_distance x (2 with a patch, else 1)) float64 1-sigma values in the fit's
            units.
        hr_grid, lr_grid: simulator.Grid of the emulator's output and input.
        centre_patch: int, side of the central patch in HR pixels (0: none).
    """

    kind = "binned"

    def __init__(self, table, hr_grid, lr_grid, centre_patch=0):
        self.centre_patch = int(centre_patch)
        self.hr_grid = hr_grid
        self.table = np.asarray(table, dtype=np.float64)
        shape = (len(BULGE_EDGES) + 1, len(OFFSET_EDGES) + 1, self.table.shape[2],
                 len(DISTANCE_EDGES) * (2 if self.centre_patch else 1))
        if self.table.shape != shape:
            raise ValueError(f"error model table has shape {self.table.shape}, expected {shape} for a central patch "
                             f"of {self.centre_patch} HR pixels")
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
        costs no arithmetic per pixel; the central patch's pixels, if any, are moved to the second set of bins."""
        p = np.atleast_2d(params)
        if self.centre_patch:
            origins = patch_origin(p, self.hr_grid, self.centre_patch)
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
        dist = np.stack(dist)
        if self.centre_patch:
            for g, (r0, c0) in enumerate(origins):
                window = dist[g, max(r0, 0):max(r0 + self.centre_patch, 0), max(c0, 0):max(c0 + self.centre_patch, 0)]
                window += len(DISTANCE_EDGES)
        return np.array(bulge), np.array(offset), dist

    def predict(self, params):
        """(N, C, n, n) float64 1-sigma errors for parameter rows (N, 18)."""
        bulge, offset, dist = self.bins(params)
        n = dist.shape[-1]
        # np.take along the first axis of a (distance, channel) table is the fastest gather numpy offers here
        return np.stack([np.take(self._by_distance[b, o], d.ravel(), axis=0).T.reshape(-1, n, n)
                         for b, o, d in zip(bulge, offset, dist)])

    def to_file(self):
        meta = {"kind": self.kind, "distance_edges": list(DISTANCE_EDGES), "bulge_edges": list(BULGE_EDGES),
                "offset_edges": list(OFFSET_EDGES), "centre_patch": self.centre_patch}
        return meta, {"error_model_table": torch.from_numpy(self.table).float()}


def error_model_from_file(meta, tensors, hr_grid, lr_grid, centre_patch=0):
    """The error model an emulator file describes (metadata "error_model", absent in older files: static) for an
    emulator with a central patch of ``centre_patch`` HR pixels (0: none)."""
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
        if int(info.get("centre_patch", 0)) != centre_patch:
            raise ValueError(f"error model: calibrated for a central patch of {info.get('centre_patch', 0)} HR pixels, "
                             f"the emulator has {centre_patch}; recalibrate the emulator")
        return BinnedErrorModel(tensors["error_model_table"].double().numpy(), hr_grid, lr_grid, centre_patch)
    raise ValueError(f"unknown error model kind {kind!r}; expected 'static' or 'binned'")

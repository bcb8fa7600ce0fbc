"""The emulator's prediction of its own error: 1-sigma per pixel, per galaxy, in the fit's units
(galsr.simulator.fit_units: brightness in dex, v and sigma in km/s, M/L in Msun/Lsun).

Two models, one interface (``predict(params, maps, under) -> (N, 4, n, n)``, ``to_file() -> (metadata dict, tensors dict)``):

- ``StaticErrorModel``: one RMS map over validation galaxies, the same for every galaxy (what older emulator files
  hold). It ignores where a galaxy's centre is, so it understates the error at the centres of small bulges.
- ``BinnedErrorModel``: a calibrated table of the error scale by what drives it: the channel, the pixel's distance
  from the galaxy centre in LR pixels, the bulge radius in LR pixels (a bulge smaller than an LR pixel is hit or
  missed by the LR point samples) and how far the centre sits from its nearest LR sample point. Each cell holds the
  scale that makes 68.3 % of held-out residuals in the cell fall within 1 sigma and 95.4 % within 2 sigma as
  closely as one Gaussian scale can (``fit_scale``); it is fitted by galsr.training.error_calibration. A galaxy's
  errors are interpolated between the cells of neighbouring bulge sizes and sampling offsets (linearly in ln sigma,
  between bin centres): the fit's likelihood carries these errors with their ln(2 pi s^2) term, and a table
  looked up bin by bin put steps of tens in ln L at every bulge-size edge, which held an 18-free fit's posterior
  in one bin of an unresolved bulge's radius where the exact likelihood is flat.

  Each channel's table has a unit of its own (``UNITS``), the one in which the emulator's error is most nearly one
  scale across galaxies: "fit" (the likelihood's own unit), "dex" (relative: the error in km/s or Msun/Lsun is
  ln 10 x |emulated value| x the table's value; the network works on log10 sigma and log10 M/L, so its errors there
  are relative, and a galaxy whose dispersion reaches thousands of km/s has errors of tens of km/s where a table in
  km/s predicted a few) or "amplitude" (in units of the galaxy's largest |value| of that channel on the emulated
  map). Files calibrated before the units existed are all "fit".

  With a central patch, the emulator also knows, per galaxy and per call, how wrong its network is near the centre:
  the network's own values under the patch against the patch's simulated ones, on the patch's border ring
  (``RING_WIDTH`` HR pixels wide, 1.5-2 LR pixels from the centre). Their RMS difference in table units, relative to
  its median over the calibration galaxies (the "ring ratio" q), follows the network's error just outside the patch
  closely (log-log correlation 0.87-0.91 per channel over 300 prior galaxies), where a galaxy whose dispersion
  reaches thousands of km/s is tens of per cent wrong. Galaxies with q < 2 fit the table; the others scale it by a
  factor per ring bin, channel and distance bin (``ring_factors``), interpolated in log10 q between bin centres.
"""
import bisect
import math

import numpy as np
import torch

from galsr.emulator import error_kernels
from galsr.simulator import PARAM_NAMES
from galsr.simulator.centre_patch import patch_origin, patch_slices
from galsr.simulator.fit_units import BRIGHTNESS

X0, Y0 = PARAM_NAMES.index("x0"), PARAM_NAMES.index("y0")
BULGE_RADIUS = PARAM_NAMES.index("log10_bulge_radius")
#: Distance from the galaxy centre [LR pixels]: bin edges (the last bin is open).
DISTANCE_EDGES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.0, 10.0)
#: log10(bulge radius / LR pixel): bin edges (open at both ends).
BULGE_EDGES = (-1.5, -1.0, -0.5, 0.0, 0.5)
#: Distance of the centre from its nearest LR sample point [LR pixels, 0 .. 0.71]: bin edges (open at the top).
OFFSET_EDGES = (0.2, 0.4)
#: Where each bulge-size and offset bin's value sits for the interpolation: interior bins at their middles, the
#: open bins half a neighbour's width beyond their edge (the last offset bin ends at sqrt(2) / 2).
BULGE_CENTRES = (-1.75, -1.25, -0.75, -0.25, 0.25, 0.75)
OFFSET_CENTRES = (0.1, 0.3, 0.55)
#: The table's unit per channel (B, v, sigma, M/L) of a new calibration; see the module docstring.
UNITS = ("fit", "amplitude", "dex", "dex")
TABLE_UNITS = ("fit", "dex", "amplitude")
#: Width [HR pixels] of the patch's border ring on which the network is compared with the patch.
RING_WIDTH = 2
#: log10 of the ring ratio q: bin edges (the first bin, q < 2, is the table's own) and interpolation centres.
RING_EDGES = (math.log10(2.0), math.log10(5.0), math.log10(20.0))
RING_CENTRES = (0.0, 0.5, 1.0, 1.6)


def unit_codes(units):
    """(C,) int64 codes of galsr.emulator.error_kernels for per-channel table units (the brightness's "fit" unit
    is dex)."""
    codes = {"fit": error_kernels.FIT, "dex": error_kernels.DEX, "amplitude": error_kernels.AMPLITUDE}
    out = np.array([codes[u] for u in units], dtype=np.int64)
    if units[BRIGHTNESS] == "fit":
        out[BRIGHTNESS] = error_kernels.FIT_DEX
    return out


def table_scale(maps, units):
    """(N, C, n, n) factors turning the table's units into the fit's, from the emulated maps (N, C, n, n) in
    physical units: 1 ("fit"), ln 10 x |map| ("dex"), max |map| of the galaxy and channel ("amplitude")."""
    codes = unit_codes(units)
    return np.stack([error_kernels.unit_scale(np.ascontiguousarray(m, dtype=np.float64), codes) for m in maps])


def ring_mismatch(under, maps, origins, units):
    """(N, C) RMS difference between the network's values under the patch ``under`` (N, C, P, P) and the maps that
    carry the patch (N, C, n, n), on the patch's border ring (``RING_WIDTH``), in table ``units``; ``origins``
    (N, 2) of the patches."""
    codes = unit_codes(units)
    return np.stack([error_kernels.ring_rms(u, m, codes, error_kernels.amplitudes(m, codes), int(o[0]), int(o[1]),
                                            RING_WIDTH) for u, m, o in zip(under, maps, origins)])


def _interpolation(x, centres):
    """(i, w): x sits a fraction w (0 .. 1) of the way from centres[i] to centres[i + 1], clamped at both ends."""
    i = min(max(bisect.bisect_right(centres, x) - 1, 0), len(centres) - 2)
    w = (x - centres[i]) / (centres[i + 1] - centres[i])
    return i, min(max(w, 0.0), 1.0)


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

    def predict(self, params, maps=None, under=None):
        """(N, C, n, n) float64 errors for parameter rows (N, 18) (a read-only broadcast view; ``maps`` and ``under``
        unused)."""
        return np.broadcast_to(self.error_maps, (len(np.atleast_2d(params)),) + self.error_maps.shape)

    def to_file(self):
        return {"kind": self.kind}, {}


class BinnedErrorModel:
    """Error scale by channel, distance from the centre, bulge size and sampling offset (see the module docstring).

    With a central patch (galsr.simulator.centre_patch), the pixels the emulator simulates directly have errors of
    their own (the patch's lighter quadrature, not the network's): they get a second set of distance bins, so the
    distance axis is twice as long and bin k + n_distance holds the patch pixels at distance bin k.

    Args:
        table: (n_bulge, n_offset, C, n_distance x (2 with a patch, else 1)) float64 1-sigma values in ``units``.
        hr_grid, lr_grid: simulator.Grid of the emulator's output and input.
        centre_patch: int, side of the central patch in HR pixels (0: none).
        units: per channel, "fit", "dex" or "amplitude" (``TABLE_UNITS``; default all "fit").
        ring_reference: (C,) median ring mismatch of the calibration galaxies (table units), or None (no ring term).
        ring_factors: (len(RING_CENTRES), C, n_distance x 2) factors on the table per ring bin (with ring_reference).
    """

    kind = "binned"

    def __init__(self, table, hr_grid, lr_grid, centre_patch=0, units=None, ring_reference=None, ring_factors=None):
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
        self.units = tuple(units) if units is not None else ("fit",) * self.table.shape[2]
        if len(self.units) != self.table.shape[2] or not set(self.units) <= set(TABLE_UNITS):
            raise ValueError(f"error model units must be one of {TABLE_UNITS} per channel ({self.table.shape[2]}), "
                             f"got {list(self.units)}")
        self._codes = unit_codes(self.units)
        self.ring_reference = self.ring_factors = None
        if ring_reference is not None:
            ref = np.asarray(ring_reference, dtype=np.float64)
            fac = np.asarray(ring_factors, dtype=np.float64)
            want = (len(RING_CENTRES), self.table.shape[2], self.table.shape[3])
            if not self.centre_patch or ref.shape != (self.table.shape[2],) or fac.shape != want:
                raise ValueError(f"error model ring term needs a central patch, a reference per channel and factors "
                                 f"of shape {want}; got patch {self.centre_patch}, {ref.shape}, {fac.shape}")
            if not (np.all(np.isfinite(ref)) and np.all(ref > 0) and np.all(np.isfinite(fac)) and np.all(fac > 0)):
                raise ValueError("error model ring reference and factors must be finite and > 0")
            self.ring_reference, self.ring_factors = ref, fac
            self._log_ring = np.ascontiguousarray(np.moveaxis(np.log(fac), 2, 1))  # (ring, distance, C)
            self._ring_centres = np.array(RING_CENTRES)
        self.hr_centres = np.asarray(hr_grid.centres, dtype=np.float64)
        self.lr_centres = np.asarray(lr_grid.centres, dtype=np.float64)
        self.lr_pixel = float(lr_grid.pixel_kpc)
        self._log_lr_pixel = math.log10(self.lr_pixel)
        # (bulge, offset, distance, C), in ln sigma for the interpolation
        self._log_by_distance = np.ascontiguousarray(np.moveaxis(np.log(self.table), 3, 2))

        # distance bins around a centre on a grid of half HR pixels, twice the field wide: any centre's map is a
        # strided slice of it
        n = len(self.hr_centres)
        self._template_centre = 2 * n
        k = (np.arange(4 * n) - 2 * n) * 0.5 * (self.hr_centres[1] - self.hr_centres[0]) / self.lr_pixel
        self._template = (np.digitize(np.hypot(k[None, :], k[:, None]), DISTANCE_EDGES) - 1).astype(np.intp)

    def _galaxy_coordinates(self, row):
        """(log10(bulge radius / LR pixel), distance of the centre from its nearest LR sample point [LR pixels]) of
        one parameter row (18,): the two per-galaxy axes of the table. Plain Python: a handful of scalars."""
        off = math.hypot(*(((row[k] - self.lr_centres[0]) / self.lr_pixel + 0.5) % 1.0 - 0.5 for k in (X0, Y0)))
        return row[BULGE_RADIUS] - self._log_lr_pixel, off

    def _distance_bins(self, p, origins=None):
        """(N, n, n) distance bin of every HR pixel of parameter rows (N, 18): a slice of a template at half-pixel
        resolution (the centre rounded to 1/2 HR pixel, 1/8 LR pixel), so it costs no arithmetic per pixel; the
        central patch's pixels, if any, are moved to the second set of bins (``origins`` (N, 2): the patches', if
        known)."""
        n, t0 = len(self.hr_centres), self._template_centre
        half = 0.5 * (self.hr_centres[1] - self.hr_centres[0])
        dist = []
        for row in p:
            kx = round((row[X0] - self.hr_centres[0]) / half)
            ky = round((row[Y0] - self.hr_centres[0]) / half)
            dist.append(self._template[t0 - ky:t0 - ky + 2 * n:2, t0 - kx:t0 - kx + 2 * n:2])
        dist = np.stack(dist)
        if self.centre_patch:
            if origins is None:
                origins = patch_origin(p, self.hr_grid, self.centre_patch)
            for g, origin in enumerate(origins):
                (rows, cols), _ = patch_slices(origin, self.centre_patch, n)
                dist[g, rows, cols] += len(DISTANCE_EDGES)
        return dist

    def bins(self, params):
        """(bulge bin (N,), offset bin (N,), distance bin (N, n, n)) of parameter rows (N, 18): the cells the
        calibration sorts held-out residuals into."""
        p = np.atleast_2d(params)
        coords = [self._galaxy_coordinates(row) for row in p]
        bulge = [bisect.bisect_right(BULGE_EDGES, u) for u, _ in coords]
        offset = [bisect.bisect_right(OFFSET_EDGES, off) for _, off in coords]
        return np.array(bulge), np.array(offset), self._distance_bins(p)

    def galaxy_table(self, row, ring=None):
        """(n_distance, C) 1-sigma table (table units) of one parameter row (18,): ln sigma interpolated bilinearly
        between the four cells around its bulge size and sampling offset (bin centres ``BULGE_CENTRES``,
        ``OFFSET_CENTRES``), times the ring factor of its ring mismatch ``ring`` (C,) when the model has one."""
        u, off = self._galaxy_coordinates(row)
        (b, wb), (o, wo) = _interpolation(u, BULGE_CENTRES), _interpolation(off, OFFSET_CENTRES)
        t = self._log_by_distance
        log_sigma = ((1 - wb) * ((1 - wo) * t[b, o] + wo * t[b, o + 1])
                     + wb * ((1 - wo) * t[b + 1, o] + wo * t[b + 1, o + 1]))
        if self.ring_reference is not None and ring is not None:
            error_kernels.add_ring(log_sigma, self._log_ring, ring / self.ring_reference, self._ring_centres)
        return np.exp(log_sigma)

    def predict(self, params, maps=None, under=None):
        """(N, C, n, n) float64 1-sigma errors in the fit's units for parameter rows (N, 18), their emulated maps
        (N, C, n, n) in physical units (needed unless every channel's unit is "fit") and the network's values under
        the patch (N, C, P, P) (galsr.emulator.Emulator.emulate; needed for the ring term)."""
        p = np.atleast_2d(params)
        origins = patch_origin(p, self.hr_grid, self.centre_patch) if self.centre_patch else None
        dist = self._distance_bins(p, origins)
        if all(u == "fit" for u in self.units) and self.ring_reference is None:
            n = dist.shape[-1]
            # np.take along the first axis of a (distance, channel) table is the fastest gather numpy offers here
            return np.stack([np.take(self.galaxy_table(row), d.ravel(), axis=0).T.reshape(-1, n, n)
                             for row, d in zip(p, dist)])
        if maps is None or (self.ring_reference is not None and under is None):
            raise ValueError("this error model needs the emulated maps and the network's values under the patch")
        maps = np.reshape(maps, (len(p),) + np.shape(maps)[-3:])
        codes = self._codes
        out = []
        for g, (row, d, m) in enumerate(zip(p, dist, maps)):
            amp = error_kernels.amplitudes(m, codes)
            ring = None
            if self.ring_reference is not None:
                o = origins[g]
                ring = error_kernels.ring_rms(under[g], m, codes, amp, int(o[0]), int(o[1]), RING_WIDTH)
            out.append(error_kernels.gather_errors(self.galaxy_table(row, ring), d, m, codes, amp))
        return np.stack(out)

    def to_file(self):
        meta = {"kind": self.kind, "distance_edges": list(DISTANCE_EDGES), "bulge_edges": list(BULGE_EDGES),
                "offset_edges": list(OFFSET_EDGES), "centre_patch": self.centre_patch, "units": list(self.units)}
        tensors = {"error_model_table": torch.from_numpy(self.table).float()}
        if self.ring_reference is not None:
            meta.update(ring_width=RING_WIDTH, ring_edges=list(RING_EDGES), ring_centres=list(RING_CENTRES))
            tensors.update(error_model_ring_reference=torch.from_numpy(self.ring_reference).float(),
                           error_model_ring_factors=torch.from_numpy(self.ring_factors).float())
        return meta, tensors


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
        ring = {}
        if "ring_width" in info:
            if (info["ring_width"], info.get("ring_edges"), info.get("ring_centres")) != (
                    RING_WIDTH, list(RING_EDGES), list(RING_CENTRES)):
                raise ValueError("error model: ring width or bins differ from this galsr's; recalibrate the emulator")
            missing = {"error_model_ring_reference", "error_model_ring_factors"} - set(tensors)
            if missing:
                raise ValueError(f"error model: tensor(s) {sorted(missing)} missing")
            ring = dict(ring_reference=tensors["error_model_ring_reference"].double().numpy(),
                        ring_factors=tensors["error_model_ring_factors"].double().numpy())
        return BinnedErrorModel(tensors["error_model_table"].double().numpy(), hr_grid, lr_grid, centre_patch,
                                units=info.get("units"), **ring)
    raise ValueError(f"unknown error model kind {kind!r}; expected 'static' or 'binned'")

"""The fit's likelihood: a pure function of the data and the model maps (with the model's own 1-sigma errors),
kept apart from the forward model that makes the maps (as astropy.modeling keeps data, model and statistic apart).

ln L = -1/2 sum over usable pixels of [ (d - m)^2 / s^2 + ln(2 pi s^2) ],   s^2 = s_data^2 + s_model^2,

over the maps present, each in the units its noise is Gaussian in: brightness in Lsun/kpc^2 (flux noise is
Gaussian in flux, not in its logarithm), v and sigma in km/s, M/L in Msun/Lsun. Comparing brightness in dex instead
biases a fit: log10 of a noisy flux is low by about s_rel^2 / (2 ln 10) dex, a few 1e-4 dex at S/N 30, and with
thousands of pixels constraining a mass to 1e-4 dex that moved the best fit by 6-7 of its own widths
(benchmarks/bench_coverage.py, simulator-only). s_model is the forward model's predicted error for these parameters
(the emulator's, in the comparison units of galsr.simulator.fit_units, brightness in dex, turned into flux at the
model's brightness: s = m ln 10 s_dex; None for the simulator): because it depends on the parameters, the
ln(2 pi s^2) term is recomputed whenever it is present, or the sampler would favour parameters where the model
claims to be bad.
"""
import math

import numpy as np
from numba import njit

from galsr.simulator.fit_units import BRIGHTNESS, LN10

LN_2PI = math.log(2.0 * math.pi)


class FitData:
    """The usable pixels of a galaxy's maps as flat arrays in physical units.

    Attributes:
        pixels: list of (channel, flat pixel indices (k,) int) per map present.
        values: list of (k,) float64 data values; variances: list of (k,) float64 data variances.
        n_pixels: int, pixels in the likelihood.
        data_norm: float, sum of -1/2 ln(2 pi s_data^2) (the normalisation without model errors).
    """

    def __init__(self, galaxy):
        self.pixels, self.values, self.variances = [], [], []
        for c in range(galaxy.maps.shape[0]):
            ok = galaxy.usable(c)
            if not ok.any():
                continue
            self.pixels.append((c, np.flatnonzero(ok.ravel())))
            self.values.append(galaxy.maps[c][ok].astype(np.float64))
            self.variances.append(galaxy.errors[c][ok].astype(np.float64) ** 2)
        if not self.pixels:
            raise ValueError("no usable pixel in any map: nothing to fit")
        self.n_pixels = int(sum(len(v) for v in self.values))
        self.data_norm = -0.5 * sum(float(np.sum(np.log(v))) + LN_2PI * len(v) for v in self.variances)
        # the same pixels as flat arrays for the fused kernel (what a sampler calls a million times)
        self._flat = (np.concatenate([np.full(len(i), c, dtype=np.int64) for c, i in self.pixels]),
                      np.concatenate([i for _, i in self.pixels]).astype(np.int64),
                      np.concatenate(self.values), np.concatenate(self.variances))

    def chi2_and_variance(self, model_maps, model_errors=None):
        """(sum over the usable pixels of (d - m)^2 / s^2 (float), s^2 (n_pixels,) float64 in the order of the
        maps present) for model maps (4, n, n) in physical units and the model's errors (4, n, n) in the comparison
        units (brightness in dex, turned into flux at the model's value) added in quadrature, or None."""
        maps = np.ascontiguousarray(model_maps).reshape(model_maps.shape[0], -1)
        with_errors = model_errors is not None
        errors = np.ascontiguousarray(model_errors).reshape(maps.shape[0], -1) if with_errors else maps
        total = np.empty(self.n_pixels)
        return _chi2(maps, errors, with_errors, *self._flat, BRIGHTNESS, total), total

    def terms(self, model_maps, model_errors=None):
        """Per map present: (data (k,), model (k,), total variance (k,)) at the usable pixels (see
        :meth:`chi2_and_variance`)."""
        total, start = self.chi2_and_variance(model_maps, model_errors)[1], 0
        for (c, idx), d in zip(self.pixels, self.values):
            yield d, model_maps[c].ravel()[idx], total[start:start + len(idx)]
            start += len(idx)


@njit(cache=True)
def _chi2(maps, errors, with_errors, channel, index, values, variances, brightness, total):
    """sum of (d - m)^2 / s^2 over the flat usable pixels in one pass (float), filling ``total`` (k,) with s^2:
    maps and errors (C, n*n) float, the model's brightness error in dex turned into flux at the model's value."""
    chi2 = 0.0
    for j in range(index.shape[0]):
        c, k = channel[j], index[j]
        m = float(maps[c, k])
        v = variances[j]
        if with_errors:
            e = float(errors[c, k])
            if c == brightness:
                e = e * LN10 * m
            v += e * e
        total[j] = v
        r = values[j] - m
        chi2 += r * r / v
    return chi2


def log_likelihood(data, model_maps, model_errors=None):
    """ln L (float) of model maps (4, n, n) in physical units against ``data`` (FitData), with the model's 1-sigma
    errors (4, n, n) in the comparison units (or None); -inf when a model value is not finite."""
    chi2, total = data.chi2_and_variance(model_maps, model_errors)
    # numpy's vectorised log is several times faster than a scalar one in the kernel's loop
    norm = -0.5 * (float(np.sum(np.log(total))) + LN_2PI * data.n_pixels) if model_errors is not None \
        else data.data_norm
    if not (math.isfinite(chi2) and math.isfinite(norm)):
        return -math.inf
    return norm - 0.5 * chi2


def normalised_residuals(data, model_maps, model_errors=None):
    """(d - m) / s over every usable pixel, (n_pixels,) float64: ln L = norm - 1/2 sum of their squares (what a
    least-squares optimiser of the exact likelihood works on)."""
    return np.concatenate([(d - m) / np.sqrt(v) for d, m, v in data.terms(model_maps, model_errors)])


def log_likelihood_of_parameters(theta, prior, data, forward):
    """Module-level ln L of the free parameters ``theta`` (what dynesty calls): the forward model's maps and errors
    at the full parameter vector, -inf outside the physical cuts."""
    p = prior.full(theta)
    if not prior.space.satisfies_cuts(p)[0]:
        return -math.inf
    maps, errors = forward.predict(p)
    return log_likelihood(data, maps, errors)

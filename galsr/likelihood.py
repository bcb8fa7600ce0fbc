"""The fit's likelihood: a pure function of the data and the model maps (with the model's own 1-sigma errors),
kept apart from the forward model that makes the maps (as astropy.modeling keeps data, model and statistic apart).

ln L = -1/2 sum over usable pixels of [ (d - m)^2 / s^2 + ln(2 pi s^2) ],   s^2 = s_data^2 + s_model^2,

over the maps present, in the comparison units of galsr.simulator.fit_units (brightness in dex, v and sigma in
km/s, M/L in Msun/Lsun). s_model is the forward model's predicted error for these parameters (the emulator's; None
for the simulator): because it depends on the parameters, the ln(2 pi s^2) term is recomputed whenever it changes,
or the sampler would favour parameters where the model claims to be bad.
"""
import math

import numpy as np

from galsr.simulator.fit_units import BRIGHTNESS, brightness_error_to_dex, brightness_to_dex

LN_2PI = math.log(2.0 * math.pi)


class FitData:
    """The usable pixels of a galaxy's maps as flat arrays in the comparison units.

    Attributes:
        pixels: list of (channel, flat pixel indices (k,) int) per map present.
        values: list of (k,) float64 data values; variances: list of (k,) float64 data variances.
        n_pixels: int, pixels in the likelihood.
    """

    def __init__(self, galaxy):
        self.pixels, self.values, self.variances = [], [], []
        for c in range(galaxy.maps.shape[0]):
            ok = galaxy.usable(c)
            if not ok.any():
                continue
            d, s = galaxy.maps[c][ok], galaxy.errors[c][ok]
            if c == BRIGHTNESS:
                d, s = brightness_to_dex(d), brightness_error_to_dex(d, s)
            self.pixels.append((c, np.flatnonzero(ok.ravel())))
            self.values.append(d)
            self.variances.append(s**2)
        if not self.pixels:
            raise ValueError("no usable pixel in any map: nothing to fit")
        self.n_pixels = int(sum(len(v) for v in self.values))
        self._cache = (None, None, None)  # (model errors object, total variances, normalisation)

    def _total_variances(self, model_errors):
        """(variances per map, sum of -1/2 ln(2 pi s^2)) with the model's errors (4, n, n) or None added; the last
        result is reused while the same error array comes back (a model with fixed error maps)."""
        cached_for, var, norm = self._cache
        if var is not None and cached_for is model_errors:
            return var, norm
        var = [v if model_errors is None else v + model_errors[c].ravel()[idx] ** 2
               for (c, idx), v in zip(self.pixels, self.variances)]
        norm = -0.5 * sum(float(np.sum(np.log(v))) + LN_2PI * len(v) for v in var)
        self._cache = (model_errors, var, norm)
        return var, norm


def log_likelihood(data, model_maps, model_errors=None):
    """ln L (float) of model maps (4, n, n) in physical units against ``data`` (FitData), with the model's 1-sigma
    errors (4, n, n) in the comparison units (or None); -inf when a model value is not finite."""
    var, norm = data._total_variances(model_errors)
    chi2 = 0.0
    for (c, idx), d, v in zip(data.pixels, data.values, var):
        m = model_maps[c].ravel()[idx]
        if c == BRIGHTNESS:
            m = brightness_to_dex(np.maximum(m, 1e-300))
        chi2 += float(np.sum((d - m) ** 2 / v))
    if not math.isfinite(chi2):
        return -math.inf
    return norm - 0.5 * chi2


def log_likelihood_of_parameters(theta, prior, data, forward):
    """Module-level ln L of the free parameters ``theta`` (what dynesty calls): the forward model's maps and errors
    at the full parameter vector, -inf outside the physical cuts."""
    p = prior.full(theta)
    if not prior.space.satisfies_cuts(p)[0]:
        return -math.inf
    maps, errors = forward.predict(p)
    return log_likelihood(data, maps, errors)

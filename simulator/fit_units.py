"""The units in which maps are compared, defined once: the fit's likelihood, the emulator's error maps and the
evaluation's residuals all use them.

Brightness spans decades and its errors are relative, so it is compared in dex (log10 of Lsun/kpc^2); velocity and
dispersion in km/s; M/L in Msun/Lsun. An error sigma_B on a brightness B is sigma_B / (B ln 10) dex.
"""
import math

import numpy as np

#: Channel index of the brightness, the one channel compared in log10.
BRIGHTNESS = 0
LN10 = math.log(10.0)


def _log10(x):
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return np.log10(x)
    return x.log10()  # torch


def to_fit_units(maps, channel_axis=-3):
    """Maps (..., 4, n, n) (numpy or torch) in the comparison units: a copy with the brightness in log10."""
    out = maps.copy() if isinstance(maps, np.ndarray) else maps.clone()
    idx = [slice(None)] * out.ndim
    idx[channel_axis] = BRIGHTNESS
    out[tuple(idx)] = _log10(out[tuple(idx)])
    return out


def brightness_to_dex(brightness):
    """log10 of brightness values (any shape; numpy or torch), the data and model side of the comparison."""
    return _log10(brightness)


def brightness_error_to_dex(brightness, error):
    """A 1-sigma brightness error (same unit as ``brightness``) in dex: error / (B ln 10)."""
    return error / (brightness * LN10)


def residual_in_fit_units(model, reference, channel_axis=-3):
    """model - reference (..., 4, n, n) with the brightness difference in dex (numpy or torch)."""
    return to_fit_units(model, channel_axis) - to_fit_units(reference, channel_axis)

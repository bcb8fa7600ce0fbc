"""Noisy mock observations: a simulated galaxy with realistic per-map errors, in the input format (``galsr mock``).

Noise model (per pixel, from the brightness B of the noiseless maps and the signal-to-noise ``snr`` that a pixel
of the median brightness of the galaxy's brighter half has):
    S/N(pixel)  = snr * sqrt(B / B_ref)                    (background-limited photometry)
    brightness  error = B / S/N                            (i.e. 1 / (S/N ln 10) dex)
    velocity    error = max(2, 10 / S/N * snr / 3) km/s    (a few km/s in bright pixels)
    dispersion  error = 1.2 x the velocity error
    M/L         error = 5 % of M/L x snr / S/N
Pixels with S/N < 3 are masked. Noise is Gaussian, drawn from numpy's default_rng(seed).
"""
import numpy as np

from galsr.simulator import EXAMPLE_GALAXY, HR_GRID, PARAM_NAMES, ParameterSpace, as_param_array, simulate

from galsr.galaxy import Galaxy

MIN_SNR = 3.0


def mock_errors(maps, snr):
    """(errors (4, n, n), mask (n, n)) for noiseless maps (4, n, n) at reference signal-to-noise ``snr``."""
    if not snr > 0:
        raise ValueError(f"snr must be > 0, got {snr!r}")
    b = maps[0]
    ref = np.median(b[b >= np.median(b)])
    pix_snr = snr * np.sqrt(b / ref)
    errors = np.empty_like(maps)
    errors[0] = b / pix_snr
    errors[1] = np.maximum(2.0, 10.0 / pix_snr * snr / 3.0)
    errors[2] = 1.2 * errors[1]
    errors[3] = 0.05 * maps[3] * snr / pix_snr
    return errors, pix_snr < MIN_SNR


def make_mock(params=None, seed=0, snr=30.0, grid=None, redshift=0.03, object_name=None):
    """A noisy mock :class:`Galaxy` of ``params`` (dict, (18,), or None for a random draw from the prior with
    ``seed``) on ``grid`` (default HR_GRID), with the true parameters attached."""
    grid = HR_GRID if grid is None else grid
    space = ParameterSpace(redshift=redshift)
    if params is None:
        truth = space.sample_lhs(1, seed=seed)[0]
    else:
        truth = space.validate(params)[0]
    maps = simulate(truth, grid, redshift)
    errors, mask = mock_errors(maps, snr)
    rng = np.random.default_rng(seed)
    noisy = maps + errors * rng.standard_normal(maps.shape)
    return Galaxy(noisy, errors, mask, grid, float(redshift), object_name or f"galsr mock seed {seed} snr {snr:g}",
                  truth)


def example_parameters():
    """The parameters of the shipped example galaxy (simulator.EXAMPLE_GALAXY) as a vector (18,)."""
    return as_param_array({n: EXAMPLE_GALAXY[n] for n in PARAM_NAMES})[0][0]

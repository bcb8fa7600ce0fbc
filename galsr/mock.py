"""Noisy mock observations: a simulated galaxy with realistic per-map errors, in the input format (``galsr mock``).

The errors (statistical part scaling with the pixel's S/N, systematic floors per map, an S/N ceiling) are those of
galsr.noise; the defaults are MaNGA-like (galsr.noise.MANGA). Noise is Gaussian, drawn from numpy's
default_rng(seed).
"""
import numpy as np

from galsr.simulator import EXAMPLE_GALAXY, HR_GRID, PARAM_NAMES, ParameterSpace, as_param_array, simulate

from galsr.galaxy import Galaxy
from galsr.noise import MANGA, MIN_SNR, NoiseModel, mock_errors  # noqa: F401  (the mock API)


def make_mock(params=None, seed=0, snr=30.0, grid=None, redshift=0.03, object_name=None, noise=MANGA,
              overrides=None):
    """A noisy mock :class:`Galaxy` of ``params`` (dict, (18,), or None for a random draw from the prior with
    ``seed``, with the values of ``overrides`` {name: value} put in; ValueError naming a violated physical cut) on
    ``grid`` (default HR_GRID), with the true parameters attached; ``noise`` (galsr.noise.NoiseModel) sets the
    floors and the S/N ceiling."""
    grid = HR_GRID if grid is None else grid
    space = ParameterSpace(redshift=redshift)
    if params is None:
        truth = space.sample_lhs(1, seed=seed)[0]
        if overrides:
            truth, violations = space.complete(overrides, truth)
            if violations:
                raise ValueError(f"parameters violate the physical cuts of the prior: {violations[0]}")
    else:
        truth = space.validate(params)[0]
    maps = simulate(truth, grid, redshift)
    errors, mask = mock_errors(maps, snr, noise)
    rng = np.random.default_rng(seed)
    noisy = maps + errors * rng.standard_normal(maps.shape)
    return Galaxy(noisy, errors, mask, grid, float(redshift), object_name or f"galsr mock seed {seed} snr {snr:g}",
                  truth)


def example_parameters():
    """The parameters of the shipped example galaxy (simulator.EXAMPLE_GALAXY) as a vector (18,)."""
    return as_param_array({n: EXAMPLE_GALAXY[n] for n in PARAM_NAMES})[0][0]

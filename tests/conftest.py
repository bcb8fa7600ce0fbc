"""Shared fixtures: small grids and parameter sets that keep the suite fast."""
import numpy as np
import pytest

from galsr.simulator import EXAMPLE_GALAXY, PARAM_NAMES, ParameterSpace

REFERENCE = __import__("pathlib").Path(__file__).resolve().parent / "data" / "reference_maps.npz"  # see data/README.md


def galaxy(**overrides):
    """A typical galaxy (dict of the 18 parameters) with overrides by name."""
    p = dict(EXAMPLE_GALAXY, **overrides)
    return np.array([p[n] for n in PARAM_NAMES])


@pytest.fixture
def space():
    return ParameterSpace()


@pytest.fixture
def random_params(space):
    return space.sample_lhs(6, seed=11)

"""Shared fixtures: small grids and parameter sets that keep the suite fast."""
import os

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


@pytest.fixture(autouse=True, scope="session")
def checkpoint_key(tmp_path_factory):
    """A per-session fit-checkpoint key (galsr.fit_checkpoint), so tests never touch the user's own; set in
    os.environ so that subprocesses of the tests use it too."""
    from galsr.fit_checkpoint import KEY_ENV

    path = tmp_path_factory.mktemp("key") / "checkpoint.key"
    old = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = str(path)
    yield path
    if old is None:
        del os.environ[KEY_ENV]
    else:
        os.environ[KEY_ENV] = old


@pytest.fixture
def xy_prior():
    """(galsr.prior.Prior with only x0 and y0 free, their values in the example galaxy (2,))."""
    from galsr.prior import Prior

    prior = Prior(fixed={n: v for n, v in EXAMPLE_GALAXY.items() if n not in ("x0", "y0")})
    return prior, np.array([EXAMPLE_GALAXY["x0"], EXAMPLE_GALAXY["y0"]])

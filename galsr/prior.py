"""The fit's prior over the 18 parameters (docs/physics.md#parameters-and-prior), as objects and module-level
functions that dynesty's process pool can pickle.

Uniform in each parametrisation of the box, except the inclination, isotropic (p(i) ∝ sin i on its bounds); any
parameter can be fixed. The physical cuts belong to the prior too: the likelihood gives points that violate them
-inf (galsr.likelihood).
"""
import math

import numpy as np

from galsr.simulator import PARAM_NAMES, ParameterSpace

INCLINATION = PARAM_NAMES.index("inclination")


class Prior:
    """The prior over the free parameters; ``fixed`` = {name: value}. ``free`` = names (default: all not fixed)."""

    def __init__(self, space=None, fixed=None, free=None):
        self.space = space or ParameterSpace()
        fixed = dict(fixed or {})
        unknown = sorted((set(fixed) | set(free or ())) - set(PARAM_NAMES))
        if unknown:
            raise ValueError(f"unknown parameter name(s) {unknown}; expected names from {list(PARAM_NAMES)}")
        if free is not None:
            for name in PARAM_NAMES:
                if name not in free and name not in fixed:
                    raise ValueError(f"parameter {name} is neither free nor fixed")
        self.fixed = {n: float(v) for n, v in fixed.items()}
        for name, value in self.fixed.items():
            lo, hi = self.space.bounds[PARAM_NAMES.index(name)]
            if not lo <= value <= hi:
                raise ValueError(f"fixed parameter {name} = {value:g} is outside its bounds [{lo:g}, {hi:g}]")
        self.free_names = [n for n in PARAM_NAMES if n not in self.fixed]
        if not self.free_names:
            raise ValueError("every parameter is fixed: nothing to fit")
        self.free_index = np.array([PARAM_NAMES.index(n) for n in self.free_names])
        self.template = np.array([self.fixed.get(n, np.nan) for n in PARAM_NAMES])
        self.lo = self.space.bounds[self.free_index, 0]
        self.hi = self.space.bounds[self.free_index, 1]
        self.incl = int(np.flatnonzero(self.free_index == INCLINATION)[0]) if "inclination" in self.free_names \
            else -1

    @property
    def ndim(self):
        return len(self.free_names)

    def transform(self, u):
        """Unit cube (..., ndim) -> free parameters (..., ndim): uniform, inclination isotropic (cos i uniform)."""
        x = self.lo + u * (self.hi - self.lo)
        if self.incl >= 0:
            c_lo, c_hi = math.cos(self.lo[self.incl]), math.cos(self.hi[self.incl])
            x[..., self.incl] = np.arccos(c_lo - u[..., self.incl] * (c_lo - c_hi))
        return x

    def sample(self, n, seed):
        """(n, ndim) independent draws from this prior, physical cuts included (rejection on the full vector), with
        numpy's default_rng(seed): what simulation-based calibration needs, the truths drawn from the very prior
        the fit uses (ParameterSpace.sample_lhs, for training sets, is uniform in the inclination instead)."""
        rng = np.random.default_rng(seed)
        kept, have = [], 0
        while have < int(n):
            x = self.transform(rng.random((max(2 * int(n), 16), self.ndim)))
            x = x[self.space.satisfies_cuts(self.full(x))]
            kept.append(x)
            have += len(x)
        return np.concatenate(kept)[: int(n)]

    def log_density(self, theta):
        """ln prior density (float) at free parameters ``theta`` (ndim,) in their units (-inf outside the box); the
        physical cuts are not included (the likelihood is -inf there, as in the nested sampling)."""
        theta = np.asarray(theta, dtype=np.float64)
        if not np.all((theta >= self.lo) & (theta <= self.hi)):
            return -math.inf
        width = self.hi - self.lo
        logp = -float(np.sum(np.log(np.delete(width, self.incl) if self.incl >= 0 else width)))
        if self.incl >= 0:
            c_lo, c_hi = math.cos(self.lo[self.incl]), math.cos(self.hi[self.incl])
            logp += math.log(math.sin(theta[self.incl])) - math.log(c_lo - c_hi)
        return logp

    def full(self, theta):
        """All 18 parameters (..., 18) from the free ones (..., ndim)."""
        theta = np.asarray(theta, dtype=np.float64)
        p = np.broadcast_to(self.template, theta.shape[:-1] + self.template.shape).copy()
        p[..., self.free_index] = theta
        return p


def prior_transform(u, prior):
    """Module-level prior transform (what dynesty calls)."""
    return prior.transform(np.asarray(u, dtype=np.float64))

"""Prior and likelihood of the fit (design.md "Fit", physics.md prior), as module-level functions that dynesty's
process pool can pickle.

Prior: uniform in each parametrisation of the box, except the inclination, isotropic (p(i) ∝ sin i on its
bounds); parameters can be fixed. The physical cuts are part of the prior: points violating them get a
log-likelihood of -inf.

Likelihood: independent Gaussians on the usable pixels of each map present: log10 brightness (errors in dex),
velocity, dispersion and M/L, each with its ln(2 pi s^2) term; the forward model's own per-pixel error (the
emulator's error maps) is added in quadrature.
"""
import math

import numpy as np

from galsr.simulator import PARAM_NAMES, ParameterSpace

LN10 = math.log(10.0)
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
        """Unit cube (ndim,) -> free parameters (ndim,): uniform, inclination isotropic (cos i uniform)."""
        x = self.lo + u * (self.hi - self.lo)
        if self.incl >= 0:
            c_lo, c_hi = math.cos(self.lo[self.incl]), math.cos(self.hi[self.incl])
            x[self.incl] = math.acos(c_lo - u[self.incl] * (c_lo - c_hi))
        return x

    def full(self, theta):
        """All 18 parameters from the free ones."""
        p = self.template.copy()
        p[self.free_index] = theta
        return p


class LikelihoodData:
    """The usable pixels of each map as flat arrays, with variances including the forward model's own error."""

    def __init__(self, galaxy, forward):
        self.forward = forward
        self.index, self.data, self.var, self.const = [], [], [], 0.0
        model_err = forward.error_maps
        for c in range(4):
            ok = galaxy.usable(c)
            if not ok.any():
                continue
            if c == 0:
                d = np.log10(galaxy.maps[0][ok])
                s = galaxy.errors[0][ok] / (galaxy.maps[0][ok] * LN10)
            else:
                d, s = galaxy.maps[c][ok], galaxy.errors[c][ok]
            var = s**2 + (model_err[c][ok] ** 2 if model_err is not None else 0.0)
            self.index.append((c, np.flatnonzero(ok.ravel())))
            self.data.append(d)
            self.var.append(var)
            self.const += -0.5 * float(np.sum(np.log(2.0 * math.pi * var)))
        self.n_pixels = int(sum(len(d) for d in self.data))

    def log_likelihood(self, maps):
        """ln L of model maps (4, n, n)."""
        chi2 = 0.0
        for (c, idx), d, var in zip(self.index, self.data, self.var):
            m = maps[c].ravel()[idx]
            if c == 0:
                m = np.log10(np.maximum(m, 1e-300))
            chi2 += float(np.sum((d - m) ** 2 / var))
        if not np.isfinite(chi2):
            return -np.inf
        return self.const - 0.5 * chi2


def log_likelihood(theta, prior, data):
    """Module-level ln L of the free parameters ``theta`` (what dynesty calls): -inf outside the physical cuts."""
    p = prior.full(theta)
    if not prior.space.satisfies_cuts(p)[0]:
        return -np.inf
    return data.log_likelihood(data.forward(p))


def prior_transform(u, prior):
    """Module-level prior transform (what dynesty calls)."""
    return prior.transform(np.asarray(u, dtype=np.float64))

"""Sampling coordinates in which the finish's hardest valleys run straight.

**An unresolved bulge** (:class:`BulgeScale`). A Dehnen bulge of mass M, scale radius a and inner slope gamma holds
M (r / (r + a))^(3 - gamma) within r. Beyond a few a, (1 + a / r)^-(3 - gamma) = 1 - (3 - gamma) a / r +
O((a / r)^2): light, rotation and dispersion there depend on a and gamma only through the product (3 - gamma) a. A
bulge whose scale radius the data do not resolve (a of tens of pc against pixels of hundreds) therefore leaves a
valley along

    s = log10 a + log10(3 - gamma) = constant,

curved in (log10 a, gamma), straight in (s, gamma). On an 18-free mock with a = 20 pc the least-squares profile along
gamma held s at -1.4075 +- 0.0002 dex for gamma from 1.0 to 1.75 while ln L changed by 3.3, and random-walk moves
with the particles' covariance in (log10 a, gamma) left the particles at one end of it (docs/fitting.md).
The map (log10 a, gamma) -> (s, gamma) is a shear: its Jacobian is triangular with ones on the diagonal.

**A faint component** (:class:`LightScale`). The brightness maps see a component's light, L = M / (M/L), its
kinematics its mass M. When its mass is small beside the others' (a disc 2.5 dex below the bulge: 18-free mock 18),
the kinematics do not constrain M, the photometry still fixes L, and the posterior runs along M/L proportional to M:
an exponential curve in (log10 M, M/L) over the dex that M may span, a straight line at constant

    l = log10 M - log10(M/L)

in (log10 M, l). Here the Jacobian is not one: M/L = 10^(log10 M - l) gives |d(M/L) / dl| = ln 10 x M/L, so a
density of the free parameters p(x) is p(x(z)) x ln 10 x M/L in the sampling coordinates
(:meth:`SamplingCoordinates.pulled_back` adds that term).

:class:`SamplingCoordinates` composes the two (they read and write different parameters).
"""
import math

import numpy as np

RADIUS, SLOPE = "log10_bulge_radius", "gamma"
#: (log10 mass, M/L) of each component, in galsr's parameter names.
COMPONENTS = (("log10_bulge_mass", "ML_b"), ("log10_disc1_mass", "ML_d1"), ("log10_disc2_mass", "ML_d2"))


class BulgeScale:
    """The shear log10 a -> s = log10 a + log10(3 - gamma) on vectors of the free parameters ``free_names`` (list of
    str), the identity when the bulge's radius or gamma is fixed. ``active``: bool, whether it changes anything."""

    def __init__(self, free_names):
        names = list(free_names)
        self.active = RADIUS in names and SLOPE in names
        self.radius = names.index(RADIUS) if self.active else -1
        self.slope = names.index(SLOPE) if self.active else -1

    def _shift(self, slope):
        """log10(3 - gamma) (...,) [dex]; the prior keeps gamma <= 2.4, so 3 - gamma >= 0.6."""
        return np.log10(3.0 - slope)

    def to_sampling(self, x):
        """Free parameters (..., ndim) -> sampling coordinates (..., ndim) (a new array)."""
        z = np.array(x, dtype=np.float64, copy=True)
        if self.active:
            z[..., self.radius] += self._shift(z[..., self.slope])
        return z

    def from_sampling(self, z):
        """Sampling coordinates (..., ndim) -> free parameters (..., ndim) (a new array)."""
        x = np.array(z, dtype=np.float64, copy=True)
        if self.active:
            x[..., self.radius] -= self._shift(x[..., self.slope])
        return x

    def box(self, lo, hi):
        """The smallest box (lo (ndim,), hi (ndim,)) in sampling coordinates that holds the prior's box [lo, hi]: a
        point inside it may still map outside [lo, hi], where the prior (and so every density) vanishes."""
        zlo, zhi = np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64)
        if self.active:
            zlo[self.radius] += self._shift(hi[self.slope])
            zhi[self.radius] += self._shift(lo[self.slope])
        return zlo, zhi

    def log_jacobian(self, z):
        """ln |dx / dz| (...,) at sampling coordinates ``z`` (..., ndim): 0 (a shear)."""
        return np.zeros(np.shape(z)[:-1])


class LightScale:
    """M/L -> l = log10 M - log10(M/L) [log10 L_sun] for every component (bulge, disc 1, disc 2) whose mass and M/L
    are both free in ``free_names`` (list of str); the identity when there is none. ``active``: bool."""

    def __init__(self, free_names):
        names = list(free_names)
        self.pairs = [(names.index(m), names.index(ml)) for m, ml in COMPONENTS if m in names and ml in names]
        self.active = bool(self.pairs)

    def to_sampling(self, x):
        """Free parameters (..., ndim) -> sampling coordinates (..., ndim) (a new array)."""
        z = np.array(x, dtype=np.float64, copy=True)
        for m, ml in self.pairs:
            z[..., ml] = z[..., m] - np.log10(z[..., ml])
        return z

    def from_sampling(self, z):
        """Sampling coordinates (..., ndim) -> free parameters (..., ndim) (a new array)."""
        x = np.array(z, dtype=np.float64, copy=True)
        for m, ml in self.pairs:
            x[..., ml] = 10.0 ** (x[..., m] - x[..., ml])
        return x

    def box(self, lo, hi):
        """The box (lo (ndim,), hi (ndim,)) in sampling coordinates that holds the prior's box [lo, hi] (M/L > 0)."""
        zlo, zhi = np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64)
        for m, ml in self.pairs:
            zlo[ml], zhi[ml] = lo[m] - math.log10(hi[ml]), hi[m] - math.log10(lo[ml])
        return zlo, zhi

    def log_jacobian(self, z):
        """ln |dx / dz| (...,) at sampling coordinates ``z`` (..., ndim): the sum of ln(ln 10 x M/L) over the pairs."""
        z = np.asarray(z, dtype=np.float64)
        out = np.zeros(z.shape[:-1])
        for m, ml in self.pairs:
            out += math.log(math.log(10.0)) + math.log(10.0) * (z[..., m] - z[..., ml])
        return out


class SamplingCoordinates:
    """:class:`BulgeScale` then :class:`LightScale` on vectors of the free parameters ``free_names`` (list of str):
    the coordinates the finish's SMC particles move in. ``active``: bool, whether they differ from the free
    parameters."""

    def __init__(self, free_names):
        self.maps = [BulgeScale(free_names), LightScale(free_names)]
        self.active = any(m.active for m in self.maps)

    def to_sampling(self, x):
        """Free parameters (..., ndim) -> sampling coordinates (..., ndim) (a new array)."""
        for m in self.maps:
            x = m.to_sampling(x)
        return x

    def from_sampling(self, z):
        """Sampling coordinates (..., ndim) -> free parameters (..., ndim) (a new array)."""
        for m in self.maps[::-1]:
            z = m.from_sampling(z)
        return z

    def box(self, lo, hi):
        """The box (lo (ndim,), hi (ndim,)) in sampling coordinates that holds the prior's box [lo, hi]; points inside
        it may map outside [lo, hi], where the prior (and so every density) vanishes. (Each map's box reads bounds of
        parameters the other leaves alone, so the maps' boxes apply in turn.)"""
        zlo, zhi = lo, hi
        for m in self.maps:
            zlo, zhi = m.box(zlo, zhi)
        return zlo, zhi

    def log_jacobian(self, z):
        """ln |dx / dz| (...,) at sampling coordinates ``z`` (..., ndim)."""
        total, y = np.zeros(np.shape(z)[:-1]), np.asarray(z, dtype=np.float64)
        for m in self.maps[::-1]:  # the chain rule, each map at its own sampling coordinates
            total = total + m.log_jacobian(y)
            y = m.from_sampling(y)
        return total

    def pulled_back(self, density):
        """``density`` (callable (m, ndim) free parameters -> ln density (m,), or a tuple whose first element is the
        ln density and whose others (ln L, say) are values) as a callable of sampling coordinates: the ln density
        plus ln |dx / dz|, the other elements unchanged."""
        def pulled(z):
            out = density(self.from_sampling(z))
            jac = self.log_jacobian(z)
            if isinstance(out, tuple):
                return (out[0] + jac,) + tuple(out[1:])
            return out + jac
        return pulled

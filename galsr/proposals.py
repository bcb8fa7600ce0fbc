"""Proposal densities for importance sampling with the exact likelihood: multivariate Student-t distributions and
weighted mixtures of them (normalised densities in R^d with draws and log densities)."""
import math

import numpy as np
from scipy.special import logsumexp


class StudentT:
    """Multivariate Student-t proposal with location ``mu`` (d,), scale matrix ``cov`` (d, d) and ``df`` degrees of
    freedom, handled in coordinates standardised by the scale's diagonal (parameters differ by orders of magnitude in
    their widths); the correlation matrix's eigenvalues are raised to at least 1e-8 and each scale to at least
    ``floor`` (d,), so a degenerate weighted covariance still gives a proper proposal."""

    def __init__(self, mu, cov, df, floor):
        self.mu, self.df = np.asarray(mu, dtype=np.float64), float(df)
        d = np.sqrt(np.maximum(np.diag(cov), np.asarray(floor) ** 2))
        corr = np.asarray(cov) / np.outer(d, d)
        corr = 0.5 * (corr + corr.T)
        np.fill_diagonal(corr, 1.0)
        vals, vecs = np.linalg.eigh(corr)
        corr = (vecs * np.maximum(vals, 1e-8)) @ vecs.T
        self.scale, self.chol = d, np.linalg.cholesky(corr)
        self.logdet = 2 * float(np.sum(np.log(np.diag(self.chol)))) + 2 * float(np.sum(np.log(d)))

    def rvs(self, n, rng):
        """(n, d) draws."""
        z = rng.standard_normal((int(n), len(self.mu))) @ self.chol.T
        g = rng.chisquare(self.df, int(n)) / self.df
        return self.mu + self.scale * (z / np.sqrt(g)[:, None])

    def logpdf(self, x):
        """(n,) log densities at ``x`` (n, d)."""
        from scipy.linalg import solve_triangular
        from scipy.special import gammaln

        d, nu = len(self.mu), self.df
        y = (np.atleast_2d(x) - self.mu) / self.scale
        u = solve_triangular(self.chol, y.T, lower=True)
        m = np.sum(u**2, axis=0)
        return (gammaln(0.5 * (nu + d)) - gammaln(0.5 * nu) - 0.5 * d * math.log(nu * math.pi) - 0.5 * self.logdet
                - 0.5 * (nu + d) * np.log1p(m / nu))


class StudentTMixture:
    """Mixture of components with ``logpdf`` and ``rvs`` (:class:`StudentT`, or mixtures themselves), with log-weights
    ``logweights`` (k,) summing to 1 (equal by default: the deterministic mixture of an adaptive importance
    sampler's proposals, AMIS); a normalised density in R^d."""

    def __init__(self, components, logweights=None):
        self.components = list(components)
        k = len(self.components)
        self.logweights = np.full(k, -math.log(k)) if logweights is None else np.asarray(logweights, dtype=np.float64)
        self.mu = self.components[0].mu  # the dimension, as for a single component
        self.equal = logweights is None

    def logpdf(self, x):
        """(n,) log densities at ``x`` (n, d)."""
        return logsumexp(np.stack([c.logpdf(x) for c in self.components]) + self.logweights[:, None], axis=0)

    def rvs(self, n, rng):
        """(n, d) draws: a component per draw, chosen with the weights."""
        k = len(self.components)
        pick = rng.integers(k, size=int(n)) if self.equal else \
            rng.choice(k, size=int(n), p=np.exp(self.logweights - logsumexp(self.logweights)))
        out = np.empty((int(n), len(self.components[0].mu)))
        for k, c in enumerate(self.components):
            if np.any(pick == k):
                out[pick == k] = c.rvs(int(np.sum(pick == k)), rng)
        return out

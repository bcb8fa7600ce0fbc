"""Sequential Monte Carlo with the exact likelihood, tempered from a reference posterior: the finish's last resort when
importance sampling cannot cover the exact posterior (18 free parameters: disc parameters bounded by the prior, ridges
that no single Student-t follows).

Particles drawn from a reference density r (normalised by Z_r; in the finish the emulator posterior, prior x L_emulator
with dynesty's ln Z) are moved through the bridge

    gamma_beta(x) = r(x)^(1 - beta) t(x)^beta,   t = prior x L_exact,   beta = 0 -> 1,

with the next beta chosen by bisection so that the Kish effective sample size of the incremental weights
exp((beta' - beta) d), d = ln t - ln r, is ``RHO`` x the particles alive; then a systematic resample, then
random-walk Metropolis moves under gamma_beta (Gaussian steps with the particles' covariance x 2.38^2 / ndim, the
scale adapted to the acceptance rate) until the particles' mean squared Mahalanobis displacement since the resample
reaches ``DISPLACEMENT`` x ndim, or ``MAX_MOVES``. ln Z_t = ln Z_r + the sum over steps of ln mean(incremental weight)
(Del Moral, Doucet & Jasra 2006); the final particles are equally weighted draws of t / Z_t.

Every density evaluation goes through one batch callable, so a process pool (galsr.finish.ExactEvaluator) runs each
move over its workers.
"""
import dataclasses
import math

import numpy as np
from scipy.special import logsumexp

from galsr.weights import kish_ess, resample

#: Particles.
PARTICLES = 400
#: Kish ESS kept per tempering step, as a share of the particles alive.
RHO = 0.5
#: Metropolis moves per step: at least MIN_MOVES, at most MAX_MOVES, stopping once the mean squared Mahalanobis
#: displacement (in the particles' covariance) since the resample reaches DISPLACEMENT x ndim.
MIN_MOVES, MAX_MOVES, DISPLACEMENT = 3, 15, 0.5
#: At beta = 1 the moves go on to DISPLACEMENT_FINAL x ndim (at most MAX_MOVES_FINAL): the output particles should
#: have forgotten the resampling's copies.
DISPLACEMENT_FINAL, MAX_MOVES_FINAL = 1.0, 30
#: At most this many exact evaluations; a run that has not reached beta = 1 by then is returned unfinished.
MAX_EVALUATIONS = 60000


@dataclasses.dataclass
class Tempered:
    """The result of :func:`temper`.

    Attributes:
        samples: (N, ndim) float64 particles (equally weighted when ``beta`` is 1); logl: (N,) their ln L_exact.
        logwt: (N,) float64 log-weights, logsumexp = logz. logz, logzerr: float, ln Z of prior x L and its error.
        ess: float, particles that are distinct after the last moves (a resampled, unmoved copy counts once).
        beta: float, the temperature reached (1 when finished). steps: int; evaluations: int (exact ones);
        acceptance: float, the Metropolis acceptance rate of the last step.
    """

    samples: np.ndarray
    logl: np.ndarray
    logwt: np.ndarray
    logz: float
    logzerr: float
    ess: float
    beta: float
    steps: int
    evaluations: int
    acceptance: float


def _log_increment(d, delta):
    """Log incremental weights (n,) of a tempering step of ``delta`` in beta: delta x d, -inf where d is."""
    return np.where(np.isfinite(d), delta * d, -np.inf)


def _next_beta(beta, d, rho):
    """The next temperature (float) in (beta, 1]: Kish ESS of exp(delta x d) = rho x (finite d), by bisection."""
    alive = np.isfinite(d)
    target = rho * alive.sum()
    if kish_ess(_log_increment(d, 1.0 - beta)) >= target:
        return 1.0
    lo, hi = 0.0, 1.0 - beta
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if kish_ess(_log_increment(d, mid)) >= target:
            lo = mid
        else:
            hi = mid
    return beta + max(lo, 1e-12)


def _difference(log_t, log_r):
    """ln t - ln r (n,), -inf wherever either density vanishes."""
    ok = np.isfinite(log_t) & np.isfinite(log_r)
    return np.where(ok, log_t - np.where(ok, log_r, 0.0), -np.inf)


def temper(log_densities, start, logz_start, lo, hi, seed=0, max_evaluations=MAX_EVALUATIONS, progress=None):
    """Sample t = prior x exact likelihood by tempered SMC from the reference r.

    log_densities : callable (m, ndim) -> (ln r (m,), ln t (m,), ln L_exact (m,)), -inf where a density vanishes (it
        should skip the expensive evaluations outside the prior box, where ln t is -inf anyway).
    start : (N, ndim) equally weighted draws of r / Z_r (the particles). logz_start : ln Z_r.
    lo, hi : (ndim,) the prior box (proposals outside it are rejected without an evaluation).
    progress : callable(str) or None. Returns a :class:`Tempered` (``evaluations`` counts points passed to
    ``log_densities``).
    """
    rng = np.random.default_rng(seed)
    say = progress or (lambda msg: None)
    x = np.array(start, dtype=np.float64)
    n, ndim = x.shape
    log_r, log_t, ll = log_densities(x)
    d = _difference(log_t, log_r)
    evaluations, beta, logz, var_logz, steps, acc = n, 0.0, float(logz_start), 0.0, 0, math.nan
    scale = 2.38 / math.sqrt(ndim)
    while beta < 1.0 and evaluations < max_evaluations:
        if not np.isfinite(d).any():
            return Tempered(x, ll, np.full(n, -np.inf), -math.inf, math.inf, 0.0, beta, steps, evaluations, acc)
        new = _next_beta(beta, d, RHO)
        logw = _log_increment(d, new - beta)
        logz += float(logsumexp(logw) - math.log(n))
        var_logz += max(n / kish_ess(logw) - 1.0, 0.0) / n
        beta, steps = new, steps + 1
        idx = resample(logw, n, rng)
        x, log_r, d, ll = x[idx], log_r[idx], d[idx], ll[idx]
        origin = x.copy()
        cov = np.cov(x.T).reshape(ndim, ndim) + np.diag((1e-10 * (hi - lo)) ** 2)
        chol, prec = np.linalg.cholesky(cov), np.linalg.inv(cov)
        log_gamma = log_r + beta * d
        last = beta >= 1.0
        for move in range(MAX_MOVES_FINAL if last else MAX_MOVES):
            prop = x + scale * rng.standard_normal((n, ndim)) @ chol.T
            inside = np.all((prop >= lo) & (prop <= hi), axis=1)
            r_new, t_new, ll_new = np.full(n, -np.inf), np.full(n, -np.inf), np.full(n, -np.inf)
            if inside.any():
                r_new[inside], t_new[inside], ll_new[inside] = log_densities(prop[inside])
                evaluations += int(inside.sum())
            d_new = _difference(t_new, r_new)
            gamma_new = np.where(np.isfinite(d_new), r_new + beta * d_new, -np.inf)
            accept = np.log(rng.random(n)) < gamma_new - log_gamma
            x[accept], log_r[accept], d[accept], ll[accept], log_gamma[accept] = (
                prop[accept], r_new[accept], d_new[accept], ll_new[accept], gamma_new[accept])
            acc = float(accept.mean())
            scale *= 0.7 if acc < 0.15 else (1.3 if acc > 0.4 else 1.0)
            delta = x - origin
            moved = float(np.mean(np.einsum("ij,jk,ik->i", delta, prec, delta)))
            enough = moved >= (DISPLACEMENT_FINAL if last else DISPLACEMENT) * ndim
            if (move + 1 >= MIN_MOVES and enough) or evaluations >= max_evaluations:
                break
        say(f"finish: tempering step {steps}, beta {beta:.3g}, {move + 1} moves, acceptance {acc:.2f}, "
            f"{evaluations} exact evaluations")
    distinct = float(len(np.unique(x, axis=0)))
    logwt = np.full(n, logz - math.log(n))
    return Tempered(x, ll, logwt, logz, math.sqrt(var_logz), distinct if beta >= 1.0 else 0.0, beta, steps,
                    evaluations, acc)

"""The simulator-exact finish of an emulator fit: the posterior and evidence of the full simulation, at a small
fraction of the cost of a simulator-only fit.

1. **Reweighting** (:func:`reweight`, the maths of dynesty.utils.reweight_run): the emulator run's samples that
   carry weight (the most probable ones holding ``WEIGHT_MASS`` of the posterior; a weight-proportional systematic
   resample of ``max_exact`` of them when there are more) are evaluated with the full simulation on the data's grid,
   over ``workers`` processes that receive data and model once. New log-weights are
   ``ln w + ln L_exact - ln L_emulator``; ln Z_exact = ln Z_emulator + ln sum of the new weights (the weights
   normalised to the emulator posterior). The Kish effective sample size (ESS) of the new weights says how much of
   the sample survives. A random pilot of ``PILOT`` samples goes first: when its ESS, scaled to the whole selection,
   is below ``ESS_MIN``, the rest are never simulated. Weights above sqrt(n) x their mean are truncated (truncated importance sampling, Ionides
   2008) for the posterior, not for the evidence; ``clipped`` counts them.
2. **Exact fallback** (galsr.laplace, :func:`adaptive_importance`): when the ESS is below ``ESS_MIN`` the
   emulator posterior does not cover the exact one, and reweighting cannot be trusted. With tens of thousands of
   pixels the posterior is so narrow that a bias of the emulator of a fraction of a per cent can move it by many of
   its own widths; so the exact best fit is found first, by bounded least squares on the exact normalised residuals
   started at the emulator's best point (a few hundred to a few thousand exact evaluations), then, where a probe
   finds the posterior leaving its Laplace Gaussian (or the Gaussian reaching past the prior's box: a parameter the
   data barely constrain, such as a faint disc's M/L), the valley through it is walked (galsr.laplace.exact_valley:
   along an unresolved bulge's radius-gamma trade-off a single Gaussian sees one end only), and the Student-t
   mixture along it (each point's Gauss-Newton
   covariance, widened by ``LAPLACE_WIDEN``, weighted by its Laplace mass) seeds an adaptive importance sampler with
   the exact likelihood: Student-t proposals (5 degrees of freedom), refitted each round to the exact weighted samples (or, while fewer than
   2 x ndim effective samples exist, shrunk onto the 4 x ndim best-weighted ones, as the cross-entropy method does),
   weights prior x L_exact over the deterministic mixture of all proposals so far (AMIS), until the ESS reaches
   ``ESS_TARGET`` or ``max_rounds``.
   Its samples, evidence and ESS all come from the exact likelihood; the emulator only proposes.
3. **Tempered SMC** (:func:`_tempered_fallback`, galsr.tempering): when even that ends below ``ESS_MIN`` (18 free
   parameters: a curved ridge of the two discs' masses, radii and M/L that no single Student-t follows), particles
   are carried to the exact posterior through r^(1 - beta) x (prior x L_exact)^beta, beta 0 -> 1, by resampling and
   surrogate-transition moves, from the closer of two references r: the emulator posterior, which nested sampling
   spread along the ridge, or the importance sampler's proposals around the exact best fit (when the emulator is far
   off, or narrower than the exact posterior along a flat direction). The moves are random walks under whichever of
   the two, or the Gaussian of the particles themselves, tilted towards the exact posterior, fits it best over the
   particles, each endpoint accepted or rejected with the exact likelihood, until the particles stop climbing and
   (at beta = 1) no parameter's median still drifts nor its spread grows. The particles move in
   galsr.coordinates.SamplingCoordinates, where an unresolved bulge's radius-gamma valley and a faint component's
   mass-M/L valley are straight. Its ESS is the number of distinct final particles; it is trusted only when its final
   moves stopped by those rules rather than their cap, its particles sit where an equilibrium sample of the exact
   posterior would (``GAP_RANGE``), and they are as wide as it along every parameter's line of their own Gaussian
   (:func:`narrow_parameters`); otherwise (or when it does not reach beta = 1 within its
   budget) the result says so (``trusted`` False) and the printed table warns. When its ln Z falls more than
   ``MODE_MARGIN`` below the importance sampler's, the bridge has stayed in a mode holding a negligible share of the
   posterior (a mode the reference sat in, not the one the importance sampler found), and a second bridge runs
   from the other reference (18-free mock 18: the emulator posterior, closer by KL, led to a mode of a massive,
   compact disc 1; the importance proposal sat in the truth's; the first bridge stops at beta = 1, where its ln Z is
   fixed, without its final moves); when that one misses too, the importance sample is
   shown instead, flagged. Particles found narrower are not tempered again: a second run from their Student-t
   widened along the narrow lines was tried on four 18-free mocks and left them where they were (docs/fitting.md).
   Where step 2 walked a valley and the importance sampler holds at least ndim effective samples, no bridge: its own
   sample, which spans the valley, is resampled and only moved at beta = 1 (resample-move), ln Z its own.

The result (:func:`finish_fit`) is a new galsr.fitting.FitResult whose summary, samples, best-fit parameters and
forward model describe the exact posterior; summary["finish"] records method, ESS, exact evaluations and clipping.
"""
import dataclasses
import math
import multiprocessing
import time

import numpy as np
from scipy.special import logsumexp

from galsr.coordinates import SamplingCoordinates
from galsr.laplace import (ExactResiduals, bends, displaced_parameter, exact_laplace, exact_valley, line_falls,
                           valley_mixture, widest_parameter)
from galsr.proposals import StudentT, StudentTMixture
from galsr.weights import kish_ess, resample, truncate

#: Finish methods the fit accepts ("reweight": reweighting with the exact-likelihood fallback; "none": skip).
METHODS = ("reweight", "none")
#: Posterior mass whose samples are evaluated with the exact model.
WEIGHT_MASS = 0.999
#: At most this many exact evaluations for the reweighting (a systematic resample beyond it).
MAX_EXACT = 2000
#: Exact evaluations of a random pilot of the selected samples: if their ESS, scaled to the whole selection, is below
#: ESS_MIN, the rest are not evaluated and the fallback starts at once (Kish ESS grows in proportion to the samples).
PILOT = 200
#: Below this Kish ESS the reweighted posterior is not trusted. Measured by benchmarks/finish_threshold.py (2,000
#: samples, 6 dimensions, shifts 0-3.5 sigma, widths x 0.7-1.3): at median ESS >= 188 the RMS error of the reweighted
#: 16/50/84 % quantiles stays <= 0.12 sigma in every case; at ESS 99-109 it is 0.21-0.24 sigma, below 65 >= 0.24.
ESS_MIN = 200
#: The fallback stops once its ESS reaches this.
ESS_TARGET = 500
#: Exact evaluations per round of the fallback, and its most rounds: small rounds stop it soon after the target.
ROUND, MAX_ROUNDS = 500, 12
#: Widening of the starting covariance (in sigma) for the fallback's first proposal.
WIDEN = 2.0
#: An SMC run is at equilibrium when its particles' median ln L sits between these multiples of the Gaussian value
#: (chi^2_ndim median / 2) below the exact maximum: prior bounds and flat directions lower the gap, curved ridges
#: raise it, neither by a factor 2 in the 18-free runs measured (7.0-10.7 against 8.7); a run whose particles still
#: trail the posterior (33.8) or have collapsed onto part of it is not trusted, whatever its count of distinct
#: particles.
GAP_RANGE = (0.5, 2.0)
#: Widening of the Laplace covariance for the fallback's first proposal (a Student-t already has wide tails).
LAPLACE_WIDEN = 1.2
#: The SMC particles' width check (:func:`narrow_parameters`): ln L_exact along each parameter's line of the
#: particles' own Gaussian, from the exact best fit, at WIDTH_REACH sigma both ways. Particles that sample a Gaussian
#: posterior see it fall by s^2 / 2; a side where it falls by less than WIDTH_SHARE x that says the exact posterior
#: reaches on where the particles do not (along that line it is at least 1 / sqrt(WIDTH_SHARE) x wider).
WIDTH_REACH, WIDTH_SHARE = 2.0, 0.25
#: An SMC run whose ln Z falls more than this below the exact importance sampler's has missed posterior mass the
#: importance sampler found (another mode), and its particles are not shown (:func:`_bridges`). The importance
#: sampler's Z is unbiased and, with few effective samples, mostly underestimated: by Markov's inequality it exceeds
#: the true Z by e^5 with probability below e^-5. Over the 15 18-free runs measured ln Z_importance - ln Z_SMC was
#: -21.8 to 0.2, and +28.9 on mock 18, whose SMC from the emulator posterior stayed in a mode of a massive, compact
#: disc 1 (10^10.7 against the truth's 10^8.9) that the importance sampler's valleys had left behind.
MODE_MARGIN = 5.0


@dataclasses.dataclass
class Reweighted:
    """Importance-reweighted samples.

    Attributes:
        index: (n,) int, rows of the original samples that were evaluated (unique).
        logwt: (n,) float64, new log-weights (normalised so that logsumexp(logwt) = logz), after truncation.
        logz: float, ln Z of the new likelihood; logzerr: float, its 1-sigma error (importance part only).
        ess: float, Kish effective sample size of the new weights (before truncation).
        clipped: int, weights truncated at sqrt(n) x mean; clipped_fraction: float, share of the weight removed.
    """

    index: np.ndarray
    logwt: np.ndarray
    logz: float
    logzerr: float
    ess: float
    clipped: int
    clipped_fraction: float


def select_samples(logwt, mass=WEIGHT_MASS, max_exact=MAX_EXACT, seed=0):
    """The samples to evaluate exactly: (unique row indices (n,), log of their share of the emulator posterior
    (n,), summing to the mass covered). The most probable rows holding ``mass`` of the weight; if more than
    ``max_exact``, a weight-proportional systematic resample of ``max_exact`` draws (multiplicities become the
    shares)."""
    logwt = np.asarray(logwt, dtype=np.float64)
    w = np.exp(logwt - logsumexp(logwt))
    order = np.argsort(w)[::-1]
    keep = order[: int(np.searchsorted(np.cumsum(w[order]), mass) + 1)]
    covered = float(w[keep].sum())
    if len(keep) <= max_exact:
        return keep, np.log(w[keep])
    picks = resample(np.log(w[keep]), max_exact, np.random.default_rng(seed))
    rows, counts = np.unique(keep[picks], return_counts=True)
    return rows, np.log(covered * counts / max_exact)


def reweight(logw_base, logz_old, logl_old, logl_new, clip=True):
    """Reweight samples of an old posterior to a new likelihood (dynesty.utils.reweight_run's maths).

    logw_base : (n,) log of each sample's share of the old posterior (sums to <= 1).
    logz_old : ln Z of the old likelihood. logl_old, logl_new : (n,) ln L of the old and new likelihoods.
    clip : truncate weights above sqrt(n) x mean for the posterior (the evidence is left unclipped).
    Returns a :class:`Reweighted` (index = arange(n)).
    """
    logw = np.asarray(logw_base, dtype=np.float64) + np.asarray(logl_new) - np.asarray(logl_old)
    logw = np.where(np.isfinite(logw), logw, -np.inf)
    if not np.isfinite(logw).any():
        return Reweighted(np.arange(len(logw)), logw, -math.inf, math.inf, 0.0, 0, 0.0)
    total = logsumexp(logw)
    logz = float(logz_old + total)
    ess = kish_ess(logw)
    # importance part of the evidence error: relative spread of the ratio over the old posterior, / sqrt(ESS_old)
    p = np.exp(np.asarray(logw_base) - logsumexp(logw_base))
    r = np.exp(logw - np.asarray(logw_base) - total)
    r = np.where(np.isfinite(r), r, 0.0) * np.exp(logsumexp(logw_base))
    n_old = kish_ess(logw_base)
    logzerr = float(math.sqrt(max(np.sum(p * (r - 1.0) ** 2), 0.0) / max(n_old, 1.0)))
    trunc, n_clip, frac = truncate(logw) if clip else (logw, 0, 0.0)
    trunc = trunc - logsumexp(trunc) + logz
    return Reweighted(np.arange(len(logw)), trunc, logz, logzerr, ess, n_clip, frac)


# ----------------------------------------------------------------------------------------------------------------
# exact evaluations over worker processes (data and model shipped once per worker)

_WORKER = {}


def _init_worker(prior, data, model, reference=None):
    _WORKER.update(prior=prior, data=data, model=model, reference=reference)


def _exact_logl(theta):
    from galsr.likelihood import log_likelihood_of_parameters

    return log_likelihood_of_parameters(theta, _WORKER["prior"], _WORKER["data"], _WORKER["model"])


def _reference_logl(theta):
    from galsr.likelihood import log_likelihood_of_parameters

    return log_likelihood_of_parameters(theta, _WORKER["prior"], _WORKER["data"], _WORKER["reference"])


class ExactEvaluator:
    """ln L of the exact forward model at many parameter vectors, over ``workers`` processes ('spawn'; data, prior and
    models are pickled once per worker). With a ``reference`` forward model (the emulator) :meth:`reference_logl` gives
    its ln L. Use as a context manager; ``calls`` counts exact evaluations."""

    def __init__(self, prior, data, model, workers=1, reference=None):
        self.prior, self.data, self.model, self.workers = prior, data, model, int(workers)
        self.reference = reference
        self.calls, self._pool = 0, None

    def __enter__(self):
        for m in (self.model, self.reference):
            if m is not None:
                m.set_num_threads(1)
        args = (self.prior, self.data, self.model, self.reference)
        if self.workers > 1:
            self._pool = multiprocessing.get_context("spawn").Pool(self.workers, initializer=_init_worker,
                                                                   initargs=args)
        else:
            _init_worker(*args)
        return self

    def __exit__(self, *exc):
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def _map(self, func, thetas):
        thetas = list(np.asarray(thetas, dtype=np.float64))
        if self._pool is None:
            return np.array([func(t) for t in thetas])
        return np.array(self._pool.map(func, thetas, chunksize=max(1, len(thetas) // (8 * self.workers))))

    def map(self, func, jobs):
        """[func(job) for job in jobs], over the workers (``func`` and the jobs picklable)."""
        if self._pool is None:
            return [func(job) for job in jobs]
        return self._pool.map(func, jobs, chunksize=1)

    def __call__(self, thetas):
        """(n,) float64 ln L_exact at free-parameter vectors (n, ndim)."""
        self.calls += len(thetas)
        return self._map(_exact_logl, thetas)

    def reference_logl(self, thetas):
        """(n,) float64 ln L of the reference model at free-parameter vectors (n, ndim) (galsr.tempering counts
        these)."""
        return self._map(_reference_logl, thetas)


# ----------------------------------------------------------------------------------------------------------------
# the fallback: adaptive importance sampling with the exact likelihood


def _weighted_moments(x, logw):
    """(weighted mean (d,), weighted covariance (d, d)) of samples ``x`` (n, d) with log-weights (n,)."""
    w = np.exp(logw - logsumexp(logw))
    mu = w @ x
    d = x - mu
    return mu, (w[:, None] * d).T @ d


def _reweighted_mixture(mixture, x, logw):
    """``mixture`` (a :class:`StudentTMixture`) with its component weights set to the share of the importance weight
    ``logw`` (n,) of samples ``x`` (n, ndim) that each component accounts for (Rao-Blackwellised responsibilities:
    population Monte Carlo, Cappe et al. 2008), each kept at least 1 % of an equal share."""
    ok = np.isfinite(logw)
    if not ok.any():
        return mixture
    logc = np.stack([c.logpdf(x[ok]) for c in mixture.components]) + mixture.logweights[:, None]
    resp = np.exp(logc - logsumexp(logc, axis=0))
    share = resp @ np.exp(logw[ok] - logsumexp(logw[ok]))
    share = np.maximum(share, 0.01 / len(share))
    return StudentTMixture(mixture.components, np.log(share / share.sum()))


def adaptive_importance(evaluate, prior, theta0, logw0, seed=0, n_per_round=ROUND, max_rounds=MAX_ROUNDS, widen=WIDEN,
                        ess_target=ESS_TARGET, df=5.0, start=None):
    """Adaptive importance sampling of prior x exact likelihood, seeded by a weighted sample of an approximate
    posterior (``theta0`` (n, ndim), log-weights ``logw0``) or, when given, by ``start``: (centre (ndim,),
    covariance (ndim, ndim)) (the exact Laplace approximation of galsr.laplace.exact_laplace), or a proposal
    density itself (rvs, logpdf; the Student-t mixture along the posterior's valley, galsr.laplace.valley_mixture),
    the first round's proposal.

    evaluate : callable (m, ndim) -> (m,) ln L_exact (an :class:`ExactEvaluator`).
    Returns (samples (N, ndim), ln L_exact (N,), log-weights (N,) with logsumexp = ln Z, ln Z, its error, Kish ESS,
    rounds, the proposals' :class:`StudentTMixture`).
    """
    rng = np.random.default_rng(seed)
    floor = 1e-8 * (prior.hi - prior.lo)
    logw0 = np.asarray(logw0, dtype=np.float64)
    ok0 = np.isfinite(logw0)
    seed_moments = _weighted_moments(np.asarray(theta0, dtype=np.float64)[ok0], logw0[ok0])
    first = None if start is None or isinstance(start, tuple) else start
    mu, cov = seed_moments if start is None or first is not None else (np.asarray(a, dtype=np.float64) for a in start)
    ndim = len(mu)
    proposals, xs, logls, lls = [], [], [], []
    scale = float(widen)
    logw, ess = None, 0.0
    seeded = start is None  # whether the approximate posterior's own moments have been proposed from
    for r in range(int(max_rounds)):
        q = StudentT(mu, cov * scale**2, df, floor)
        if first is not None:  # a mixture start keeps half the draws, its weights updated from the samples so far
            q = first if r == 0 else StudentTMixture([_reweighted_mixture(first, allx, logw), q])
        x = q.rvs(n_per_round, rng)
        proposals.append(q)
        xs.append(x)
        logp = np.array([prior.log_density(t) if np.all(np.isfinite(t)) else -np.inf for t in x])
        ll = np.full(len(x), -np.inf)
        ok = np.isfinite(logp)
        if ok.any():
            ll[ok] = evaluate(x[ok])
        logls.append(logp + ll)
        lls.append(ll)
        allx, target = np.concatenate(xs), np.concatenate(logls)
        # deterministic mixture of every proposal so far (equal draws per round)
        logq = StudentTMixture(proposals).logpdf(allx)
        logw = np.where(np.isfinite(target) & np.isfinite(logq), target - logq, -np.inf)
        ess = kish_ess(logw)
        nothing_finite = not np.isfinite(logw).any()
        if nothing_finite and not seeded:
            # not one finite sample around the given start (an 18-free coverage mock crashed on this): propose
            # from the approximate posterior's weighted moments instead
            (mu, cov), seeded, scale = seed_moments, True, 1.5
            continue
        if ess >= ess_target or nothing_finite:
            break
        ok = np.flatnonzero(np.isfinite(logw))
        if ess >= 2 * ndim:  # enough weight spread: the weighted moments, widened a little
            mu, cov = _weighted_moments(allx[ok], logw[ok])
            scale = 1.5
        else:  # too few effective samples (the exact posterior is narrower or elsewhere): shrink onto the elite,
            # the best-weighted 4 x ndim samples (cross-entropy method), unwidened
            elite = ok[np.argsort(logw[ok])[::-1][: max(4 * ndim, 2)]]
            if len(elite) > ndim:
                mu, cov = allx[elite].mean(axis=0), np.cov(allx[elite].T).reshape(ndim, ndim)
            else:  # too few finite samples for a covariance: recentre on the best one, halve the widths
                mu, cov = (allx[elite[0]] if len(elite) else mu), 0.25 * cov
            scale = 1.0
    n = len(logw)
    if nothing_finite:
        return allx, np.concatenate(lls), logw, -math.inf, math.inf, 0.0, r + 1, StudentTMixture(proposals)
    logz = float(logsumexp(logw) - math.log(n))
    w = np.exp(logw - logsumexp(logw)) * n
    logzerr = float(math.sqrt(np.var(w) / n))
    return (allx, np.concatenate(lls), logw - logsumexp(logw) + logz, logz, logzerr, ess, r + 1,
            StudentTMixture(proposals))


# ----------------------------------------------------------------------------------------------------------------
# the finish of a fit


def _finished_results(old, theta, logl, logwt, logz, logzerr):
    """A dynesty Results over the finished samples (what galsr.fit_results consumes)."""
    from dynesty.utils import Results

    n = len(theta)
    return Results(dict(samples=np.asarray(theta), samples_u=np.full_like(theta, np.nan), samples_id=np.arange(n),
                        logl=np.asarray(logl), logwt=np.asarray(logwt), logz=np.full(n, logz),
                        logzerr=np.full(n, logzerr), niter=int(old.niter), ncall=np.asarray(old.ncall),
                        eff=float(old.eff), nlive=int(getattr(old, "nlive", 0) or 0)))


def exact_best_fit(result, exact):
    """The exact best fit of an emulator fit (galsr.fitting.FitResult) with the ``exact`` forward model: least squares
    (galsr.laplace.exact_laplace) from the emulator run's best sample, steps scaled by its posterior's widths.
    Returns (the :class:`ExactResiduals`, the start (ndim,), (best fit (ndim,), Gauss-Newton covariance (ndim, ndim),
    simulations))."""
    res, prior = result.results, result.prior
    theta_emu = np.asarray(res.samples)
    w = np.exp(res.logwt - np.max(res.logwt))
    sigma0 = np.sqrt(np.maximum(_weighted_moments(theta_emu, np.log(np.maximum(w, 1e-300)))[1].diagonal(), 0.0))
    residuals = ExactResiduals(prior, result.data, exact)
    start = theta_emu[np.argmax(res.logl)]
    return residuals, start, exact_laplace(residuals, start, sigma0, prior.lo, prior.hi)


def _importance_fallback(result, exact, evaluate, seed, say):
    """The exact best fit from the emulator's best point, the valleys through it where a probe finds the posterior
    leaving its Laplace Gaussian (galsr.laplace.bends, exact_valley), then :func:`adaptive_importance` started from
    the Student-t mixture along them (or from the Laplace Gaussian): ((samples, ln L, log-weights, ln Z, its error),
    info entries, the proposals' :class:`StudentTMixture`). With no
    finite exact likelihood anywhere, the emulator posterior itself, marked ``shown`` = "emulator"."""
    res, prior = result.results, result.prior
    theta_emu = np.asarray(res.samples)
    residuals, best_emu, (centre, cov, n_laplace) = exact_best_fit(result, exact)
    say(f"finish: exact best fit in {n_laplace} simulations")
    # the valleys through it: along the least constrained direction, and along the parameter the emulator's best
    # point is furthest off in (where the exact likelihood is flat enough for the emulator's errors to slide it),
    # where the posterior leaves the Laplace Gaussian
    candidates = dict.fromkeys([widest_parameter(cov, prior.lo, prior.hi),
                                displaced_parameter(best_emu, centre, prior.lo, prior.hi)])
    held, probes = [], {}
    for k in candidates:
        bent, falls, n_probe = bends(residuals, centre, cov, prior.lo, prior.hi, k)
        n_laplace += n_probe
        probes[prior.free_names[k]] = falls
        if bent:
            held.append(k)
    valleys = exact_valley(residuals, centre, cov, prior.lo, prior.hi, parameters=held, map=evaluate.map) \
        if held else []
    walks = []
    for v in valleys:
        k = v.parameter
        walks.append({"parameter": prior.free_names[k], "points": len(v.logl),
                      "range": [float(v.theta[0, k]), float(v.theta[-1, k])],
                      "lnl_range": round(float(np.ptp(v.logl)), 2), "simulations": v.evaluations})
        say(f"finish: the valley along {walks[-1]['parameter']}: {len(v.logl)} points, {v.theta[0, k]:.3g} to "
            f"{v.theta[-1, k]:.3g}, ln L within {np.ptp(v.logl):.1f} ({v.evaluations} simulations)")
    theta, logl, logwt, logz, logzerr, ess, rounds, mixture = adaptive_importance(
        evaluate, result.prior, theta_emu, res.logwt, seed=seed,
        widen=LAPLACE_WIDEN, start=valley_mixture(valleys, prior.lo, prior.hi, LAPLACE_WIDEN) if valleys else
        (centre, cov))
    more = {"ess": round(ess, 1), "n_exact_best_fit": n_laplace + sum(v.evaluations for v in valleys),
            "rounds": int(rounds), "valleys": walks, "valley_probes": probes}
    if not np.isfinite(logz):  # no exact sample with a finite likelihood: nothing exact to show
        say("finish: no exact sample has a finite likelihood; showing the emulator posterior, NOT TRUSTWORTHY")
        return (theta_emu, np.asarray(res.logl), np.asarray(res.logwt), float(res.logz[-1]),
                float(res.logzerr[-1])), dict(more, ess=0.0, shown="emulator"), None
    return (theta, logl, logwt, logz, logzerr), more, mixture


def _draws_inside(proposal, prior, n, rng, tries=8):
    """(n, ndim) draws of ``proposal`` where the prior density is finite (the box and the physical cuts) and the
    share of the proposal's mass there (float), or (None, 0.0) when too few land inside."""
    kept, drawn = [], 0
    for _ in range(tries):
        x = proposal.rvs(2 * n, rng)
        drawn += len(x)
        kept.extend(t for t in x if np.isfinite(prior.log_density(t)))
        if len(kept) >= n:
            return np.array(kept[:n]), len(kept) / drawn
    return None, 0.0


def _tempered_fallback(result, exact, workers, seed, say, proposal=None, importance=None, start_from=None,
                       give_up=None):
    """galsr.tempering.temper to prior x L_exact (the exact simulation as the target, over ``workers`` processes).

    With ``importance`` (samples (N, ndim), ln L_exact (N,), log-weights (N,), ln Z, its error: the exact importance
    sampler's output along a walked valley), resample-move: ``PARTICLES`` resampled from it, moved at beta = 1 only,
    ln Z the importance sampler's. Its particles span the valley already; a bridge from the emulator posterior would
    start at one end of it, and the random-walk moves do not cross it (18-free mocks 2 and 5).
    Otherwise from the closer of two normalised references:

    - the emulator posterior, prior x L_emulator / Z_emulator (dynesty's ln Z; ``PARTICLES`` draws by systematic
      resampling of dynesty's weighted samples), which nested sampling spread along the posterior's ridges;
    - the exact importance sampler's proposal mixture ``proposal`` (a :class:`StudentTMixture` around the exact best
      fit), truncated to where the prior is finite, when there is one: the better start when the emulator is far
      off (a galaxy whose dispersion reaches thousands of km/s) or narrower than the exact posterior along a flat
      direction (an unresolved bulge's radius), where the bridge from the emulator posterior is long.

    Closer: the larger mean of d = ln t - ln r over each reference's draws (KL(r || t / Z_t) = ln Z_t - that mean;
    a draw where t vanishes counts through the share of finite d). The draws are simulated once and the chosen set is
    the start. The moves follow (tilted) whichever of the two, or the Gaussian of the particles themselves, fits ln t
    over the particles best (galsr.tempering's ``surrogates``). ``start_from`` ("emulator posterior" or "importance
    proposal") imposes one instead of the closer (benchmarks/smc_agreement.py: does a run from the other end reach
    the same posterior?). ``give_up`` (callable ln Z -> bool, or None): galsr.tempering.temper's, passed on only when
    the other reference was scored too (a bridge given up can then be replaced). Returns (galsr.tempering.Tempered,
    info dict with the reference, both scores and the simulations spent on choosing)."""
    from galsr.tempering import PARTICLES, temper

    res, prior = result.results, result.prior
    rng = np.random.default_rng(seed)
    with ExactEvaluator(prior, result.data, exact, workers, reference=result.forward) as evaluate:
        def posterior(logl, x):
            """prior x L at (m, ndim), ln L only inside the prior: (ln posterior (m,), ln L (m,))."""
            logp = np.array([prior.log_density(t) for t in x])
            ll = np.full(len(x), -np.inf)
            ok = np.isfinite(logp)
            if ok.any():
                ll[ok] = logl(x[ok])
            return logp + ll, ll

        logz_emu = float(res.logz[-1])
        candidates = {"emulator posterior": (
            lambda x: posterior(evaluate.reference_logl, x)[0] - logz_emu,
            np.asarray(res.samples)[resample(np.asarray(res.logwt), PARTICLES, rng)])}
        if proposal is not None:
            start, share = _draws_inside(proposal, prior, PARTICLES, rng)
            if start is not None:
                def truncated(x, lnshare=math.log(share)):
                    """ln of the proposal truncated to the prior's support (normalised by the share inside)."""
                    inside = np.array([np.isfinite(prior.log_density(t)) for t in x])
                    return np.where(inside, proposal.logpdf(x) - lnshare, -np.inf)

                candidates["importance proposal"] = (truncated, start)
        scored, n_choice, extra = {}, 0, {}
        if importance is not None:  # resample-move: no bridge, the moves may follow the emulator posterior
            theta, ll, logwt, logz_start, logzerr_start = importance
            idx = resample(np.asarray(logwt), PARTICLES, rng)
            name = "emulator posterior"
            reference, start, ll = candidates[name][0], np.asarray(theta)[idx], np.asarray(ll)[idx]
            start_values = (reference(start), np.array([prior.log_density(t) for t in start]) + ll, ll)
            extra = {"reference": "importance sample", "distinct_start": int(len(np.unique(idx)))}
            say(f"finish: moving {PARTICLES} particles resampled from the importance sampler "
                f"({extra['distinct_start']} distinct) at the exact posterior")
        else:
            for name, (reference, x) in candidates.items():
                log_r = reference(x)
                log_t, ll = posterior(evaluate, x)
                n_choice += len(x)
                d = np.where(np.isfinite(log_t) & np.isfinite(log_r), log_t - log_r, -np.inf)
                ok = np.isfinite(d)
                score = float(np.mean(d[ok]) + math.log(ok.mean())) if ok.any() else -math.inf
                scored[name] = (score, (log_r, log_t, ll))
            name = start_from or max(scored, key=lambda k: scored[k][0])
            (reference, start), start_values = candidates[name], scored[name][1]
            logz_start, logzerr_start = 0.0, 0.0
            say(f"finish: tempering from the {name} (mean ln t - ln r: "
                + ", ".join(f"{k} {v[0]:.1f}" for k, v in scored.items()) + ")")
        # the particles move in coordinates where an unresolved bulge's and a faint component's valleys are straight
        # (every density gains the same ln |dx / dz|, so d = ln t - ln r and the evidence are unchanged; the box is
        # widened to hold the prior's, whose cuts the densities still apply)
        coords = SamplingCoordinates(prior.free_names)
        z = coords.to_sampling(start)
        jac = coords.log_jacobian(z)
        tempered = temper(coords.pulled_back(reference), coords.pulled_back(lambda x: posterior(evaluate, x)),
                          z, logz_start, *coords.box(prior.lo, prior.hi), seed=seed, progress=say,
                          start_values=(start_values[0] + jac, start_values[1] + jac, start_values[2]),
                          surrogates={k: coords.pulled_back(v[0]) for k, v in candidates.items() if k != name},
                          at_target=importance is not None, logzerr_start=logzerr_start,
                          give_up=give_up if len(scored) > 1 else None)
        tempered = dataclasses.replace(tempered, samples=coords.from_sampling(tempered.samples))
    info = dict({"reference": name, "reference_scores": {k: round(v[0], 1) for k, v in scored.items()},
                 "evaluations_choosing": n_choice,
                 "moves_followed": [name if b == "reference" else b for b in tempered.bases]}, **extra)
    return tempered, info


def _bridges(result, exact, workers, seed, say, proposal, importance, logz_importance):
    """:func:`_tempered_fallback` with the mode check: when a finished bridge's ln Z falls more than ``MODE_MARGIN``
    below ``logz_importance`` (the exact importance sampler's ln Z; NaN when it has none) and the other reference
    was scored, the bridge is run again from that one, on a budget of its own. The closer reference by KL is not
    always the one inside the posterior's main mode: 18-free mock 18's emulator posterior scored 358 nats closer
    than the importance proposal, and its bridge took 89,416 simulations to reach a mode of a massive, compact disc
    1 holding e^-29 of the importance sampler's evidence; the bridge from the importance proposal, which sits in
    the truth's mode, reached beta = 1 after 15,536, its ln Z 8.6 above the importance sampler's.
    ln Z is fixed when a bridge reaches beta = 1, so a first bridge that will be replaced stops there, without its
    final moves (18-free mock 9: 100 final moves, 36,444 of the finish's 73,704 simulations, in a bridge then
    discarded).
    Returns (galsr.tempering.Tempered, its info dict, simulations of all bridges, ln Z_importance - ln Z of the
    one returned (-inf when it is not comparable), the first bridge's record (dict) when it was replaced, or
    None)."""
    def run(start_from=None, give_up=None):
        tempered, chosen = _tempered_fallback(result, exact, workers, seed, say, proposal, importance, start_from,
                                              give_up)
        missed = logz_importance - tempered.logz if tempered.beta >= 1.0 else math.nan
        return tempered, chosen, tempered.evaluations + chosen["evaluations_choosing"], \
            missed if np.isfinite(missed) else -math.inf

    tempered, chosen, n_smc, missed = run(give_up=lambda logz: logz_importance - logz > MODE_MARGIN)
    others = [k for k in chosen["reference_scores"] if k != chosen["reference"]]
    if missed <= MODE_MARGIN or not others:
        return tempered, chosen, n_smc, missed, None
    first = {"reference": chosen["reference"], "steps": tempered.steps, "final_moves": tempered.final_moves,
             "evaluations": n_smc, "logz": float(tempered.logz), "missed_log_evidence": round(missed, 1)}
    say(f"finish: the SMC from the {chosen['reference']} reached a mode holding e^-{missed:.0f} of the importance "
        f"sampler's evidence; bridging again from the {others[0]}")
    tempered, chosen, n_again, missed = run(others[0])
    return tempered, chosen, n_smc + n_again, missed, first


def _lnl_gap(result, exact, samples, logl, known=-math.inf):
    """How far below the exact maximum the SMC's particles sit, an equilibrium check that the count of distinct
    particles is not: (ln L_max - median ln L of the particles, the same for a Gaussian posterior under a flat prior,
    chi^2_ndim median / 2, simulations used, the highest point found (ndim,)). ln L_max by least squares
    (galsr.laplace.exact_laplace) from the best particle, or ``known``, the highest exact ln L seen before (the
    importance sampler's), if that is higher: least squares from particles gathered at one end of a valley can stop
    short of its top.
    Far above the Gaussian value: the particles have not yet reached the exact posterior; far below: too concentrated
    (a ridge or bounded parameters lower it somewhat on their own)."""
    from scipy.stats import chi2

    from galsr.likelihood import log_likelihood_of_parameters

    best = samples[np.argmax(logl)]
    prior = result.prior
    theta, _, n = exact_laplace(ExactResiduals(prior, result.data, exact), best, np.std(samples, axis=0), prior.lo,
                                prior.hi)
    fitted = log_likelihood_of_parameters(theta, result.prior, result.data, exact)
    top = max(fitted, float(np.max(logl)), known)
    return (top - float(np.median(logl)), float(chi2.median(len(best))) / 2, n + 1,
            theta if fitted >= float(np.max(logl)) else best)


def narrow_parameters(residuals, samples, prior, top):
    """The parameters along which SMC particles (N, ndim) are narrower than the exact posterior: ln L_exact
    (-1/2 |``residuals``(theta)|^2, galsr.laplace.ExactResiduals) along each parameter's line of the particles' own
    Gaussian (galsr.laplace.line_falls), from ``top`` (ndim,), the exact best fit, at ``WIDTH_REACH`` sigma both ways
    where the prior's box does not cut the line (a sample truncated by the box is narrower than the likelihood's
    curvature, rightly). A side falling by less than ``WIDTH_SHARE`` x s^2 / 2 flags the parameter. An equilibrium
    sample passes whatever its correlations; one that has gathered in part of a flat direction does not, even when
    its ln L gap looks right. From the maximum, because from the particles' mean a fall also depends on how far that
    mean sits from the top along the line, which a skewed posterior moves and a curved one takes off the ridge
    altogether (18-free mock 2: ln L rising by hundreds along most lines from the mean of a valley's particles).
    ``prior`` (galsr.prior.Prior): the box and the names.
    Returns ({index: [(s, fall), ...]} of the flagged parameters, {name: [(s, fall), ...]} of all, evaluations)."""
    samples = np.asarray(samples, dtype=np.float64)
    cov = np.cov(samples.T).reshape(samples.shape[1], samples.shape[1])
    top_logl = -0.5 * float(np.sum(residuals(top) ** 2))  # once: every line starts there
    narrow, falls, n = {}, {}, 1
    for k, name in enumerate(prior.free_names):
        sides, m = line_falls(residuals, top, cov, prior.lo, prior.hi, k, WIDTH_REACH, whole=True, top=top_logl)
        n += m
        falls[name] = [(round(s_, 2), round(f, 2)) for s_, f in sides]
        if any(f < WIDTH_SHARE * 0.5 * s_ * s_ for s_, f in sides):
            narrow[k] = sides
    return narrow, falls, n


def finish_fit(result, method="reweight", workers=2, seed=0, max_exact=MAX_EXACT, ess_min=ESS_MIN,
               exact_model=None, progress=None):
    """The simulator-exact finish of an emulator fit (galsr.fitting.FitResult) -> a new FitResult describing the
    exact posterior (the emulator's stays in ``.emulator_result``); with ``method`` "none" (or a fit that already
    used the exact model) the same result with summary["finish"]["method"] = "none".

    workers : processes for the exact evaluations. exact_model : the exact forward model (default: the full
    simulation on the data's grid). ess_min : below it the reweighting is replaced by the exact fallback.
    progress : callable(str) for one-line progress messages, or None.
    """
    from galsr.fit_results import posterior_samples, summarise
    from galsr.forward_models import SimulatorForward

    if method not in METHODS:
        raise ValueError(f"finish must be one of {METHODS}, got {method!r}")
    say = progress or (lambda msg: None)
    if method == "none" or result.forward.name == "simulator":
        info = {"method": "none", "ess": None, "n_exact": 0, "clipped": 0,
                "note": "the fit used the exact simulation" if result.forward.name == "simulator" else
                "skipped: the posterior is the emulator's"}
        summary = dict(result.summary, finish=info, posterior=_posterior_label(result.forward.name, info))
        return dataclasses.replace(result, summary=summary, run=dict(result.run, finish=info), emulator_result=None)
    exact = exact_model or SimulatorForward(result.galaxy.grid, result.galaxy.redshift)
    res = result.results
    t0 = time.time()
    proposal = None  # the exact importance sampler's proposals, when it runs
    rows, logw_base = select_samples(res.logwt, WEIGHT_MASS, max_exact, seed)
    theta_emu = np.asarray(res.samples)
    say(f"finish: evaluating the full simulation at {len(rows)} posterior samples with {workers} worker(s)")
    logl_emu = np.asarray(res.logl)[rows]
    with ExactEvaluator(result.prior, result.data, exact, workers) as evaluate:
        # a random pilot first: when even the whole set could not reach ess_min, go straight to the fallback
        order = np.random.default_rng(seed).permutation(len(rows))
        rows, logw_base, logl_emu = rows[order], logw_base[order], logl_emu[order]
        n_pilot = min(PILOT, len(rows))
        logl_exact = evaluate(theta_emu[rows[:n_pilot]])
        pilot = reweight(logw_base[:n_pilot], float(res.logz[-1]), logl_emu[:n_pilot], logl_exact)
        projected = pilot.ess * len(rows) / n_pilot
        if n_pilot < len(rows) and projected >= ess_min:
            logl_exact = np.concatenate([logl_exact, evaluate(theta_emu[rows[n_pilot:]])])
            rw = reweight(logw_base, float(res.logz[-1]), logl_emu, logl_exact)
        else:
            rw = pilot
            rows, logw_base, logl_emu = rows[:n_pilot], logw_base[:n_pilot], logl_emu[:n_pilot]
        info = {"method": "reweight", "ess": round(rw.ess, 1), "n_exact": int(evaluate.calls),
                "clipped": int(rw.clipped), "clipped_weight_fraction": rw.clipped_fraction,
                "ess_min": float(ess_min), "logz_emulator": float(res.logz[-1])}
        if rw.ess >= ess_min:
            theta, logl, logwt, logz, logzerr = theta_emu[rows], logl_exact, rw.logwt, rw.logz, \
                math.hypot(rw.logzerr, float(res.logzerr[-1]))
        else:
            say(f"finish: effective sample size {rw.ess:.0f} < {ess_min:g}: the emulator posterior does not cover "
                f"the exact one; finding the exact best fit, then an exact-likelihood importance sampler around it")
            (theta, logl, logwt, logz, logzerr), more, proposal = _importance_fallback(result, exact, evaluate,
                                                                                       seed, say)
            info.update(method="reweight+exact-is", ess_reweight=info["ess"], **more, n_exact=int(evaluate.calls) +
                        more["n_exact_best_fit"], clipped=0, clipped_weight_fraction=0.0)
    if info["ess"] < ess_min and info["method"] != "reweight":
        # what the importance sampler found is exact unless the emulator's posterior is what is shown
        exact_so_far = info.get("shown") != "emulator"
        # the best exact ln L so far, for the equilibrium check
        known = float(np.max(np.where(np.isfinite(logl), logl, -np.inf), initial=-np.inf)) if exact_so_far \
            else -math.inf
        say(f"finish: importance sampler ESS {info['ess']:.0f} < {ess_min:g}: tempering to the exact posterior "
            f"(sequential Monte Carlo)")
        # a walked valley that the importance sampler spans (with at least ndim effective samples, enough for the
        # moves' covariance): move its own sample; else bridge from a reference
        spans = bool(info.get("valleys")) and info["ess"] >= len(result.prior.free_names)
        tempered, chosen, n_smc, missed, first = _bridges(
            result, exact, workers, seed, say, proposal, (theta, logl, logwt, logz, logzerr) if spans else None,
            float(logz) if exact_so_far else math.nan)
        info.update(n_exact=info["n_exact"] + n_smc, ess_importance=info["ess"], logz_importance=float(logz),
                    smc=dict(chosen, beta=tempered.beta, steps=tempered.steps, particles=len(tempered.samples),
                             evaluations=n_smc, reference_evaluations=tempered.reference_evaluations,
                             acceptance=tempered.acceptance, final_moves=tempered.final_moves))
        if first is not None:
            info["smc"]["first_bridge"] = first
        if tempered.beta >= 1.0 and np.isfinite(missed):
            info["smc"].update(logz=float(tempered.logz), missed_log_evidence=round(missed, 1))
        if tempered.beta >= 1.0 and missed > MODE_MARGIN:
            say(f"finish: the SMC's particles hold e^-{missed:.0f} of the importance sampler's evidence: it missed a "
                f"mode the importance sampler found; showing the importance sample, NOT TRUSTWORTHY")
        elif tempered.beta >= 1.0:
            theta, logl, logwt, logz, logzerr = (tempered.samples, tempered.logl, tempered.logwt, tempered.logz,
                                                 tempered.logzerr)
            gap, gaussian, n_gap, top = _lnl_gap(result, exact, theta, logl, known)
            narrow, falls, n_width = narrow_parameters(ExactResiduals(result.prior, result.data, exact), theta,
                                                       result.prior, top)
            info["smc"].update(lnl_gap_median=round(gap, 2), lnl_gap_gaussian=round(gaussian, 2),
                               at_equilibrium=at_equilibrium(gap, gaussian), settled=tempered.settled,
                               narrow={result.prior.free_names[k]: falls[result.prior.free_names[k]] for k in narrow},
                               line_falls=falls)
            info.update(method="reweight+exact-is+smc", ess=round(tempered.ess, 1),
                        n_exact=info["n_exact"] + n_gap + n_width)
            info.pop("shown", None)
    logwt = np.where(np.isfinite(logwt), logwt, -np.inf)  # no NaN reaches the summaries
    smc = info.get("smc", {})
    info["trusted"] = bool(info["ess"] >= ess_min and smc.get("at_equilibrium", True) and smc.get("settled", True)
                           and not smc.get("narrow"))
    info["wall_time_s"] = time.time() - t0
    info["logz"] = float(logz)
    finished = _finished_results(res, theta, logl, logwt, logz, logzerr)
    full, weights, equal, best = posterior_samples(finished, result.prior, seed)
    summary = summarise(finished, full, weights, best, result.prior, result.galaxy.truth, result.forward.name)
    summary.update(finish=info, posterior=_posterior_label(result.forward.name, info),
                   **{k: v for k, v in result.summary.items() if k not in summary})
    run = dict(result.run, finish=info)
    return dataclasses.replace(result, results=finished, forward=exact, samples=full, weights=weights,
                               equal_samples=equal, map=best, summary=summary, run=run, emulator_result=result)


def _posterior_label(forward_name, info):
    """One line saying which posterior a summary describes."""
    if info["method"] == "none":
        return f"{forward_name} posterior" + (" (no exact finish)" if forward_name != "simulator" else "")
    if info.get("shown") == "emulator":
        return "emulator posterior: the exact finish found no sample with a finite exact likelihood; NOT TRUSTWORTHY"
    how = {"reweight": "reweighted to", "reweight+exact-is": "replaced by an importance sampler with",
           "reweight+exact-is+smc": "replaced by sequential Monte Carlo with"}[info["method"]]
    if info["method"].endswith("smc") and info["smc"].get("reference") == "importance sample":
        how = "replaced by an importance sampler, resampled and moved, with"
    text = f"exact posterior: emulator run {how} the full simulation (ESS {info['ess']:.0f}, " \
           f"{info['n_exact']} exact evaluations)"
    if not info["trusted"]:
        smc, reasons = info.get("smc", {}), []
        if info["ess"] < info["ess_min"]:
            reasons.append(f"ESS below {info['ess_min']:g}")
        if smc.get("missed_log_evidence", 0.0) > MODE_MARGIN:
            # the bridge shown last, and the one it replaced, when there was one
            first = smc.get("first_bridge", smc)
            reasons.append(f"the SMC from the {first['reference']} reached a mode holding "
                           f"e^-{first['missed_log_evidence']:.0f} of the importance sampler's evidence")
            if first is not smc:
                reasons[-1] += f", and so did the one from the {smc['reference']} " \
                               f"(e^-{smc['missed_log_evidence']:.0f})"
        if smc.get("at_equilibrium") is False:
            reasons.append(f"not at equilibrium (median ln L {smc['lnl_gap_median']:.1f} below the exact maximum; a "
                           f"Gaussian posterior: {smc['lnl_gap_gaussian']:.1f})")
        if smc.get("settled") is False:
            reasons.append(f"the particles still spreading or drifting after the last {smc['final_moves']} moves")
        if smc.get("narrow"):
            reasons.append(f"narrower than the exact posterior along {', '.join(smc['narrow'])}")
        text += "; NOT TRUSTWORTHY: " + "; ".join(reasons)
    return text


def at_equilibrium(gap, gaussian):
    """Whether an SMC run's ln L gap (ln L_max - median ln L of its particles) is within ``GAP_RANGE`` x the
    Gaussian value (bool)."""
    return bool(GAP_RANGE[0] * gaussian <= gap <= GAP_RANGE[1] * gaussian)

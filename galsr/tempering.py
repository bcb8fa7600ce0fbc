"""Sequential Monte Carlo with the exact likelihood, tempered from a reference posterior: the finish's last resort when
importance sampling cannot cover the exact posterior (18 free parameters: disc parameters bounded by the prior, ridges
that no single Student-t follows).

Particles drawn from a reference density r (normalised by Z_r; in the finish the emulator posterior, prior x L_emulator
with dynesty's ln Z, or the exact importance sampler's proposal mixture) are moved through the bridge

    gamma_beta(x) = r(x)^(1 - beta) t(x)^beta,   t = prior x L_exact,   beta = 0 -> 1,

with the next beta chosen by bisection so that the Kish effective sample size of the incremental weights
exp((beta' - beta) d), d = ln t - ln r, is ``RHO`` x the particles alive; then a systematic resample, then moves
that leave gamma_beta invariant, until the particles' mean squared Mahalanobis displacement since the resample reaches
``DISPLACEMENT`` x ndim (``DISPLACEMENT_FINAL`` x ndim at beta = 1; independent draws give 2 x ndim) and their median
ln gamma_beta has stopped rising (``RISE``) and, at beta = 1, no parameter's median still drifts (``DRIFT``,
``DRIFT_LONG``) nor its spread grows (``SPREAD``).
ln Z_t = ln Z_r + the sum over steps of ln mean(incremental weight) (Del Moral, Doucet & Jasra 2006); the final
particles are equally weighted draws of t / Z_t.

The moves are surrogate transitions (Liu 2001, Monte Carlo Strategies in Scientific Computing, sec. 9.4.3; the same
algebra as delayed acceptance, Christen & Fox 2005): the reference is cheap (the emulator, about 1 ms, or a Student-t
mixture) and the target is not (the simulation, about 16 ms).
So each particle takes ``INNER`` random-walk Metropolis steps under the surrogate

    s_beta(x) = (1 - beta) ln r(x) + beta (ln q(x) + a + b . u + c . u^2),   u = x standardised over the particles,

a cheap base density q tilted by a least-squares fit of ln t - ln q over the particles (refitted, with the choice of
q, at every step and every ``REFRESH`` moves, so that it follows the particles as they move):
q is the reference itself (then s_beta = ln r + beta x tilt of d), one of the other cheap densities offered
(``surrogates``), or the Gaussian with the particles' own mean and covariance (restricted to the reference's
support), whichever tilt leaves the smallest RMS residual over the particles. The tilt's per-parameter squares can
widen or narrow a base but cannot add a correlation it lacks: moves under a reference without the posterior's ridge
are mostly rejected and leave the particles short of it (a 4-D Gaussian of correlation 0.97: 3 % acceptance,
widths 0.85 of the truth, tests/test_finish.py), while the particles' Gaussian has the ridge's linear part.
The walk's endpoint y is then accepted with probability min(1, exp([ln gamma_beta(y) - ln gamma_beta(x)] - [s_beta(y) -
s_beta(x)])). The inner walk is reversible with respect to exp(s_beta), so this keeps gamma_beta exactly invariant,
whatever the surrogate's quality (a poor one only lowers the acceptance), for one exact evaluation per particle and
move instead of one per step. Random-walk steps: the particles' covariance (refreshed every ``REFRESH`` moves) x a
scale adapted to an inner acceptance of 15-40 %, starting at 2.38 / sqrt(ndim).

Every density evaluation goes through two batch callables, so a process pool (galsr.finish.ExactEvaluator) runs them
over its workers.
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
#: Surrogate random-walk steps per move (reference evaluations per exact one).
INNER = 10
#: Moves per step: at least MIN_MOVES, at most MAX_MOVES, stopping once the mean squared Mahalanobis displacement (in
#: the particles' covariance at the resample) reaches DISPLACEMENT x ndim.
MIN_MOVES, MAX_MOVES, DISPLACEMENT = 3, 20, 0.5
#: At beta = 1 the moves go on to DISPLACEMENT_FINAL x ndim (at most MAX_MOVES_FINAL): the output particles should
#: have forgotten the resampling's copies (independent draws: 2 x ndim). A run that reaches the cap with the rules
#: below unmet is returned with ``settled`` False. 18-free mock 18 settled after 80 moves; mock 20's gamma still moved
#: at 100 (the cap until then) and it settled after 129, from 8/18 and 16/18 truths in the 68 / 95 % intervals to
#: 7/18 and 16/18, with the same ln Z; the other 18-free SMC runs settled within 10-50 moves. At 400 particles a
#: move costs 400 simulations, so the cap bounds the final moves at 80,000.
DISPLACEMENT_FINAL, MAX_MOVES_FINAL = 1.5, 200
#: Moves go on (up to the caps) while the particles' median ln gamma_beta still rose by more than RISE over the last
#: REFRESH moves: particles that are still climbing have not reached gamma_beta, however far they have moved (18-free
#: mock 1: the displacement was reached after 6 moves at beta = 1 with the median ln L 29 below the exact maximum;
#: it then rose by 6.1, 6.7, 4.2, 2.4, 1.2, 0.4 per 5 moves and settled 8.3 below; a Gaussian posterior: 8.7).
RISE = 0.5
#: At beta = 1 the moves also go on while some parameter's particle median moved by more than DRIFT x its spread over
#: the last REFRESH moves: particles can stop climbing in ln L while still sliding along a constrained parameter
#: (18-free mock 8: stopped after 25 moves by the rules above, one more round of moves shifted the bulge mass by 0.75
#: of its posterior width).
DRIFT = 0.15
#: And, at beta = 1, while over the last LONG moves some parameter's median moved by more than DRIFT_LONG x its spread
#: or its spread grew by more than a factor SPREAD: particles spreading from a clump along a direction the data leave
#: flat neither climb nor, spreading evenly, drift, and their displacement, measured in the clump's own covariance,
#: soon looks large (a 4-D toy with one flat direction, tests/test_finish.py: stopped after 3 moves at 0.15 of the
#: posterior's width; 18-free mock 18, disc 1's mass: stopped after 15 moves, its spread tripled since the resample;
#: now after 80, its median log10 M 8.71 -> 8.99, and 14/18, 18/18 truths in the 68 / 95 % intervals for 9/18,
#: 15/18). Noise alone, at equilibrium (an 18-D Gaussian started on exact draws, moves 20-100): the largest
#: of the 18 parameters' 20-move shifts is 0.20 sigma (median; 90 % below 0.25), the largest growth 1.09 (1.13).
LONG, DRIFT_LONG, SPREAD = 20, 0.3, 1.15
#: Exact acceptance below which the surrogate walk is shortened whatever its own acceptance (18-free mock 5's
#: resample-move: 0.25 % at the end, 169 distinct particles of 400 after 50 moves).
ACCEPT_MIN = 0.05
#: Moves between refreshes of the random walk's covariance and of the surrogate from the particles.
REFRESH = 5
#: The base density fitted to the particles at each step (offered beside the reference and ``surrogates``).
GAUSSIAN = "particles' Gaussian"
#: At most this many exact evaluations; a run that has not reached beta = 1 by then is returned unfinished. The
#: other 18-free runs measured took 5,000-30,000; mock 18's bridge from the emulator posterior, which lay 150 nats
#: (in KL) from the exact one, took 89,416 over 16 steps (60,000, the cap until then, ran out at beta = 0.50).
MAX_EVALUATIONS = 150000


@dataclasses.dataclass
class Tempered:
    """The result of :func:`temper`.

    Attributes:
        samples: (N, ndim) float64 particles (equally weighted when ``beta`` is 1); logl: (N,) their ln L_exact.
        logwt: (N,) float64 log-weights, logsumexp = logz. logz, logzerr: float, ln Z of prior x L and its error.
        ess: float, particles that are distinct after the last moves (a resampled, unmoved copy counts once).
        beta: float, the temperature reached (1 when finished). steps: int; evaluations: int (exact ones);
        reference_evaluations: int (of the reference and the offered densities in the walks); acceptance: float,
        the exact acceptance rate of the last move. bases: list of str, the surrogate's base density at the start of
        each step ("reference", a key of ``surrogates`` or ``GAUSSIAN``). final_moves: int, the moves of the last
        step; settled: bool, whether they ended by the stopping rules (False: by ``MAX_MOVES_FINAL`` or the budget,
        the particles still moving).
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
    reference_evaluations: int
    acceptance: float
    bases: list = dataclasses.field(default_factory=list)
    final_moves: int = 0
    settled: bool = False


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


def _tilt(x, d):
    """The least-squares fit a + b . u + c . u^2 (u: the particles standardised per parameter) of d over the particles
    with finite d: (a callable (m, ndim) -> (m,), the fit's RMS residual), (zero, inf) when there are too few
    particles to fit it. The squares let the surrogate be wider or narrower than its base where the exact posterior
    is."""
    ok = np.isfinite(d)
    if ok.sum() <= 2 * x.shape[1] + 1:
        return (lambda y: np.zeros(len(y))), math.inf
    centre, width = x[ok].mean(axis=0), x[ok].std(axis=0) + 1e-300

    def design(y):
        u = (y - centre) / width
        return np.column_stack([np.ones(len(y)), u, u ** 2])

    coef = np.linalg.lstsq(design(x[ok]), d[ok], rcond=None)[0]
    rms = float(np.sqrt(np.mean((design(x[ok]) @ coef - d[ok]) ** 2)))
    return (lambda y: design(y) @ coef), rms


def _gaussian(x, prec):
    """ln of the Gaussian (up to a constant) with the particles' mean and precision ``prec`` (ndim, ndim): a callable
    (m, ndim) -> (m,). It has the posterior's correlations, which a tilt of per-parameter squares cannot add."""
    centre = x.mean(axis=0)
    return lambda y: -0.5 * np.einsum("ij,jk,ik->i", y - centre, prec, y - centre)


def _choose_base(x, log_r, d, surrogates):
    """The surrogate's base for this step: (name, callable ln q or None for the reference, tilt callable, ln q at the
    particles (n,), {name: RMS residual}) of the density (the reference or one of ``surrogates``) whose tilted version
    fits ln t over the particles with the smallest RMS residual."""
    log_t = np.where(np.isfinite(d), log_r + np.where(np.isfinite(d), d, 0.0), -np.inf)
    tilt, rms = _tilt(x, d)
    best, scores = ("reference", None, tilt, log_r), {"reference": rms}
    for name, base in surrogates.items():
        log_q = base(x)
        if np.any(np.isfinite(log_t) & ~np.isfinite(log_q)):  # it must cover every particle the target does
            continue
        tilt, scores[name] = _tilt(x, _difference(log_t, log_q))
        if scores[name] < min(v for k, v in scores.items() if k != name):
            best = (name, base, tilt, log_q)
    return best + (scores,)


class _Surrogate:
    """The surrogate s_beta of the moves (see the module's docstring), fitted to the particles ``x`` (n, ndim) with
    their ln r (n,) and d = ln t - ln r (n,) at temperature ``beta``: the base among the reference and ``offered``
    ({name: callable}) whose tilt fits ln t best. Attributes: name (str: "reference" or a key of ``offered``),
    fits ({name: RMS residual}), s_x ((n,) s_beta at the particles), per_point (int: reference and offered-density
    evaluations per point, counted as reference evaluations). Calling it on (m, ndim) points inside the box gives
    (s_beta (m,), ln r (m,), NaN where not evaluated)."""

    def __init__(self, x, log_r, d, beta, reference, offered):
        self.name, self.base, self.tilt, log_q, self.fits = _choose_base(x, log_r, d, offered)
        self.beta, self.reference = beta, reference
        # the reference is still needed for the support of the particles' Gaussian (the prior's cuts), not for an
        # offered density, which has its own, at beta = 1
        self.with_r = self.base is None or self.name == GAUSSIAN or beta < 1.0
        self.per_point = int(self.with_r) + int(self.base is not None and self.name != GAUSSIAN)
        self.s_x = log_r + beta * self.tilt(x) if self.base is None else \
            beta * (log_q + self.tilt(x)) + (1.0 - beta) * log_r

    def __call__(self, y):
        beta = self.beta
        if self.base is None:
            r_y = self.reference(y)
            return np.where(np.isfinite(r_y), r_y + beta * self.tilt(y), -np.inf), r_y
        q_y = self.base(y)
        s_y = np.where(np.isfinite(q_y), beta * (q_y + self.tilt(y)), -np.inf)
        if not self.with_r:
            return s_y, np.full(len(y), np.nan)
        r_y = self.reference(y)
        finite = np.isfinite(r_y)
        return np.where(finite, s_y + (1.0 - beta) * np.where(finite, r_y, 0.0), -np.inf), r_y


def _random_walk_factor(x, lo, hi):
    """Cholesky factor (ndim, ndim) of the particles' covariance (a floor of 1e-10 of the box keeps it definite) and
    the covariance's inverse."""
    cov = np.cov(x.T).reshape(x.shape[1], x.shape[1]) + np.diag((1e-10 * (hi - lo)) ** 2)
    return np.linalg.cholesky(cov), np.linalg.inv(cov)


def temper(reference, target, start, logz_start, lo, hi, seed=0, max_evaluations=MAX_EVALUATIONS, progress=None,
           start_values=None, surrogates=None, at_target=False, logzerr_start=0.0, give_up=None):
    """Sample t = prior x exact likelihood by tempered SMC from the reference r; with ``at_target``, by the moves at
    beta = 1 alone (resample-move, Gilks & Berzuini 2001) from particles that are already a resampled sample of t.

    reference : callable (m, ndim) -> ln r (m,), cheap; -inf where r vanishes.
    target : callable (m, ndim) -> (ln t (m,), ln L_exact (m,)), expensive; -inf where t vanishes (it should skip the
        evaluations outside the prior box, where ln t is -inf anyway).
    start : (N, ndim) equally weighted draws of r / Z_r (the particles), or of t / Z_t with ``at_target`` (then with
        copies: an importance sample resampled). logz_start : ln Z_r, or ln Z_t with ``at_target``; logzerr_start:
        its error.
    lo, hi : (ndim,) the prior box (proposals outside it are rejected without an evaluation).
    progress : callable(str) or None. start_values : (ln r, ln t, ln L_exact) at ``start`` when already known (they
        are then not evaluated again), or None. surrogates : {name: callable (m, ndim) -> ln q (m,)}, further cheap
        densities the moves may follow instead of the reference (any normalisation), or None. give_up : callable
        (ln Z_t: float) -> bool or None, asked once when the tempering reaches beta = 1: True returns the particles
        as resampled there, without the final moves (ln Z is fixed by then, and a caller that discards a bridge
        ending in the wrong mode need not pay for them: up to ``MAX_MOVES_FINAL`` x N evaluations).
    Returns a :class:`Tempered` (``evaluations`` counts points passed to ``target`` here).
    """
    rng = np.random.default_rng(seed)
    say = progress or (lambda msg: None)
    x = np.array(start, dtype=np.float64)
    n, ndim = x.shape
    if start_values is None:
        log_r, (log_t, ll), evaluations = reference(x), target(x), n
    else:
        log_r, log_t, ll = (np.array(v, dtype=np.float64) for v in start_values)
        evaluations = 0
    d = _difference(log_t, log_r)
    n_ref, logz, var_logz, steps, acc, bases = n, float(logz_start), float(logzerr_start) ** 2, 0, math.nan, []
    beta, resampled = (1.0, True) if at_target else (0.0, False)
    scale = 2.38 / math.sqrt(ndim)
    move, stopped = -1, False
    while (beta < 1.0 or resampled) and evaluations < max_evaluations:
        if not np.isfinite(d).any():
            return Tempered(x, ll, np.full(n, -np.inf), -math.inf, math.inf, 0.0, beta, steps, evaluations, n_ref,
                            acc, bases)
        if resampled:  # particles already at beta = 1: only their moves
            resampled, steps = False, steps + 1
        else:
            new = _next_beta(beta, d, RHO)
            logw = _log_increment(d, new - beta)
            logz += float(logsumexp(logw) - math.log(n))
            var_logz += max(n / kish_ess(logw) - 1.0, 0.0) / n
            beta, steps = new, steps + 1
            idx = resample(logw, n, rng)
            x, log_r, d, ll = x[idx], log_r[idx], d[idx], ll[idx]
            if beta >= 1.0 and give_up is not None and give_up(logz):
                move, stopped = -1, False
                say(f"finish: tempering step {steps}, beta 1 reached, ln Z {logz:.1f}, {evaluations} exact "
                    "evaluations; no final moves (given up)")
                break
        origin = x.copy()
        chol, prec = _random_walk_factor(x, lo, hi)
        log_gamma = log_r + beta * d
        last = beta >= 1.0
        def fitted(precision):
            """The surrogate fitted to the particles as they are now."""
            return _Surrogate(x, log_r, d, beta, reference, dict(surrogates or {},
                                                                 **{GAUSSIAN: _gaussian(x, precision)}))

        sur = fitted(prec)
        bases.append(sur.name)
        s_x = sur.s_x
        levels = [float(np.median(log_gamma))]  # the particles' median ln gamma_beta after each move
        # and, at beta = 1, their per-parameter medians and spreads
        centres, spreads = ([np.median(x, axis=0)], [np.std(x, axis=0)]) if last else ([], [])
        for move in range(MAX_MOVES_FINAL if last else MAX_MOVES):
            if move and move % REFRESH == 0:
                # the walk's covariance and the surrogate follow the particles as they move
                chol, moved_prec = _random_walk_factor(x, lo, hi)
                sur = fitted(moved_prec)
                s_x = sur.s_x
            # the surrogate walk
            y, r_y, s_y, inner = x.copy(), log_r.copy(), s_x.copy(), 0.0
            for _ in range(INNER):
                prop = y + scale * rng.standard_normal((n, ndim)) @ chol.T
                inside = np.all((prop >= lo) & (prop <= hi), axis=1)
                s_prop, r_prop = np.full(n, -np.inf), np.full(n, -np.inf)
                if inside.any():
                    s_prop[inside], r_prop[inside] = sur(prop[inside])
                    n_ref += sur.per_point * int(inside.sum())
                take = np.log(rng.random(n)) < s_prop - s_y
                y[take], r_y[take], s_y[take] = prop[take], r_prop[take], s_prop[take]
                inner += float(take.mean()) / INNER
            # the exact correction at the endpoints that moved
            moved = np.any(y != x, axis=1)
            t_y, ll_y = np.full(n, -np.inf), np.full(n, -np.inf)
            if moved.any():
                t_y[moved], ll_y[moved] = target(y[moved])
                evaluations += int(moved.sum())
                unknown = moved & np.isnan(r_y)
                if unknown.any():  # the reference at the endpoints, for d (its weight in gamma_1 is nil)
                    r_y[unknown] = reference(y[unknown])
                    n_ref += int(unknown.sum())
            d_y = _difference(t_y, r_y)
            gamma_y = np.where(np.isfinite(d_y), r_y + beta * d_y, -np.inf)
            accept = moved & (np.log(rng.random(n)) < (gamma_y - log_gamma) - (s_y - s_x))
            x[accept], log_r[accept], d[accept], ll[accept], log_gamma[accept], s_x[accept] = (
                y[accept], r_y[accept], d_y[accept], ll_y[accept], gamma_y[accept], s_y[accept])
            acc = float(accept.mean())
            # the surrogate's acceptance sets the walk's scale, unless the exact correction rejects nearly every
            # endpoint: the surrogate is then wrong over that distance, and a shorter walk errs less
            scale *= 0.7 if inner < 0.15 or acc < ACCEPT_MIN else (1.3 if inner > 0.4 else 1.0)
            delta = x - origin
            moved_by = float(np.mean(np.einsum("ij,jk,ik->i", delta, prec, delta)))
            enough = moved_by >= (DISPLACEMENT_FINAL if last else DISPLACEMENT) * ndim
            levels.append(float(np.median(log_gamma)))
            settled = levels[-1] - levels[max(0, len(levels) - 1 - REFRESH)] < RISE
            if last:
                centres.append(np.median(x, axis=0))
                spreads.append(np.std(x, axis=0))
                shift, long_shift = (np.abs(centres[-1] - centres[max(0, len(centres) - 1 - lag)]) / spreads[-1]
                                     for lag in (REFRESH, LONG))
                growth = spreads[-1] / spreads[max(0, len(spreads) - 1 - LONG)]
                settled = (settled and float(np.nanmax(shift)) < DRIFT and float(np.nanmax(long_shift)) < DRIFT_LONG
                           and float(np.nanmax(growth)) < SPREAD)
            stopped = move + 1 >= MIN_MOVES and enough and settled
            if stopped or evaluations >= max_evaluations:
                break
        say(f"finish: tempering step {steps}, beta {beta:.3g}, {move + 1} moves, acceptance {acc:.2f} (surrogate "
            f"{inner:.2f}, following the {sur.name}), {evaluations} exact "
            "evaluations; tilt RMS " + ", ".join(f"{k} {v:.2f}" for k, v in sur.fits.items()))
    distinct = float(len(np.unique(x, axis=0)))
    logwt = np.full(n, logz - math.log(n))
    return Tempered(x, ll, logwt, logz, math.sqrt(var_logz), distinct if beta >= 1.0 else 0.0, beta, steps,
                    evaluations, n_ref, acc, bases, move + 1, stopped and beta >= 1.0)

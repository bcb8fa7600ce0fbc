"""The exact likelihood's best fit, its Laplace approximation, and the valley of the posterior through it.

ln L_exact is -1/2 chi^2 of the normalised residuals (galsr.likelihood.normalised_residuals) with fixed data errors,
so its maximum is a bounded least-squares problem and the Gauss-Newton matrix J^T J is the Hessian of -ln L there
(:func:`exact_laplace`).

One Gaussian is not always enough. An unresolved bulge fixes only its light inside the PSF, so its radius and inner
slope gamma trade off along a curved valley (18-free coverage mock 5: with gamma held at 1.8, 1.5, 1.2, 0.9, 0.6
and 0.3 and the other 17 parameters refitted, ln L falls by only 0.1, 0.5, 1.0, 1.6, 2.2 and 2.7 below the best
fit at gamma 1.89, while the radius moves from -1.65 to -2.0 dex; the straight line between the ends crosses a
barrier of thousands in ln L). The best fit's Gaussian sees one end of it, the emulator posterior (or a sampler
started there) the other, and the truth (1.33) lies between. :func:`bends` probes whether a parameter's line of the
Laplace Gaussian keeps to it (or reaches past the box, where the data barely constrain the parameter);
:func:`exact_valley` walks the valley: it holds a parameter (by default the one that moves most along the Laplace
covariance's widest direction, in units of the prior's widths) at values stepped by its local width (an eighth of
the box where that width exceeds the box), refits the others from the tangent's prediction, and stops where the
local Laplace mass (ln L + 1/2 ln det of the local covariance) has fallen ``VALLEY_DROP`` below the best fit's, at
the prior's bound, or after ``VALLEY_POINTS`` steps each way. :func:`valley_mixture` turns the points into a
proposal: Student-t components weighted by their Laplace masses. Around a Gaussian posterior the walk stops after
two or three steps each way and the mixture is the Laplace approximation widened a little along that parameter's
line.
"""
import dataclasses
import functools
import math

import numpy as np
from scipy.special import logsumexp

#: At most this many exact evaluations for one least-squares fit. Enough to converge along the bulge radius-gamma
#: valley: 18-free mocks 2 and 5 converged in 1,411 and 2,475 evaluations, at the truth's end of the valley (gamma
#: 2.00 and 1.89; truths 2.14 and 1.33); stopped at 1,000 they were still climbing (gamma 1.73 and 0.87).
LAPLACE_MAX_EVALUATIONS = 5000
#: Steps along the valley, in the held parameter's local Laplace sigma.
VALLEY_STEP = 1.5
#: The walk stops where the local Laplace mass is this far (in ln) below the best fit's: e^-8 of its mass.
VALLEY_DROP = 8.0
#: The walk runs only where the posterior leaves the Laplace Gaussian: ln L at BEND_REACH sigma along the Gaussian's
#: line falls by more or less than BEND_TOLERANCE x the Gaussian's reach^2 / 2 (:func:`bends`).
BEND_REACH, BEND_TOLERANCE = 2.0, 0.5
#: Where VALLEY_STEP local sigmas would cross the whole box (the data barely constrain the held parameter, and its
#: sigma says nothing about how densely to walk), steps of this share of the box's width instead.
VALLEY_BOX_STEP = 0.125
#: At most this many steps each way.
VALLEY_POINTS = 20
#: Neighbouring points about this far apart (Mahalanobis distance in the last one's covariance; the Student-t
#: components of the mixture, widened 1.2 x, still overlap there).
VALLEY_OVERLAP = 2.0
#: At most this many exact evaluations for the refit at each step (warm-started from the last point; 18 free: about
#: 20 Gauss-Newton iterations).
VALLEY_EVALUATIONS = 400
#: A side stops after this many steps in a row that land beyond the overlap (each halving the next): refits that
#: move off the last point even for a step 2^-9 of the one that began the run do not continue the valley from it.
#: 18-free mock 20's walk along the halo fraction halved its steps down to 1e-16 of the first on both sides and spent
#: 30,042 simulations for no point; the walks of the other twenty 18-free mocks found points after at most 7 in a row.
VALLEY_FAR = 10


class ExactResiduals:
    """The callable theta (ndim,) -> normalised residuals (n,) of the exact ``model`` against ``data`` at the free
    parameters theta of ``prior``: a constant wall of 1e3 outside the physical cuts or where the model is not finite
    (so that least squares is pushed back, not stopped). Picklable, so that worker processes can walk valleys."""

    def __init__(self, prior, data, model):
        self.prior, self.data, self.model = prior, data, model
        self.n_res = None

    def __call__(self, theta):
        from galsr.likelihood import normalised_residuals

        p = self.prior.full(theta)
        if self.prior.space.satisfies_cuts(p)[0]:
            r = normalised_residuals(self.data, *self.model.predict(p))
            if np.all(np.isfinite(r)):
                self.n_res = len(r)
                return r
        return np.full(self.n_res or self.data.n_pixels, 1e3)


def _relative_step(theta, sigma):
    """Finite-difference steps of a tenth of ``sigma``, relative to |theta| as scipy's diff_step wants."""
    return 0.1 * sigma / np.maximum(np.abs(theta), 1.0)


def exact_laplace(residuals, theta0, sigma0, lo, hi, max_evaluations=LAPLACE_MAX_EVALUATIONS):
    """The best fit of normalised ``residuals`` (callable, :class:`ExactResiduals`) within the box [lo, hi] (ndim,)
    and its Laplace covariance, from a starting point ``theta0`` (ndim,).

    scipy's trust-region reflective solver, steps scaled by the widths ``sigma0`` (ndim,) (an approximate
    posterior's), finite differences of a tenth of them. The covariance is (J^T J)^-1 at the optimum (the
    Gauss-Newton Hessian of -ln L). Runs in this process; returns (theta (ndim,), covariance (ndim, ndim),
    evaluations).
    """
    from scipy.optimize import least_squares

    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    theta0 = np.clip(np.asarray(theta0, dtype=np.float64), lo, hi)
    sigma0 = np.maximum(np.asarray(sigma0, dtype=np.float64), 1e-9 * (hi - lo))
    sol = least_squares(residuals, theta0, bounds=(lo, hi), x_scale=sigma0,
                        diff_step=_relative_step(theta0, sigma0), method="trf",
                        max_nfev=max(1, max_evaluations // (len(theta0) + 1)))
    return sol.x, _gauss_newton_covariance(sol.jac), int(sol.nfev + sol.njev * len(theta0))


def _gauss_newton_covariance(jac):
    """(J^T J)^-1 (pseudo-inverse) from a Jacobian (n, ndim) of normalised residuals."""
    jtj = jac.T @ jac
    return np.linalg.pinv(0.5 * (jtj + jtj.T))


def local_gaussian(residuals, theta, sigma, lo, hi):
    """ln L = -1/2 |residuals(theta)|^2 at ``theta`` (ndim,) and the Gauss-Newton covariance there (central
    differences of a tenth of ``sigma``, one-sided at the bounds ``lo``, ``hi``: forward differences would tilt it
    where the valley bends): (ln L, covariance (ndim, ndim), evaluations). ln L lacks the data's constant: only
    differences between points mean anything."""
    theta = np.asarray(theta, dtype=np.float64)
    r0 = residuals(theta)
    h = 0.1 * np.maximum(np.asarray(sigma, dtype=np.float64), 1e-9 * (np.asarray(hi) - np.asarray(lo)))
    up, down = np.minimum(theta + h, hi), np.maximum(theta - h, lo)
    jac, n = np.empty((len(r0), len(theta))), 1
    for j in range(len(theta)):
        ends = []
        for v in (up[j], down[j]):
            if v == theta[j]:
                ends.append(r0)
                continue
            x = theta.copy()
            x[j] = v
            ends.append(residuals(x))
            n += 1
        jac[:, j] = (ends[0] - ends[1]) / (up[j] - down[j])
    return -0.5 * float(r0 @ r0), _gauss_newton_covariance(jac), n


@dataclasses.dataclass
class Valley:
    """Points along the exact posterior's valley (:func:`exact_valley`).

    Attributes:
        theta: (k, ndim) points, the best fit among them, in order of the held parameter; cov: (k, ndim, ndim) their
        Gauss-Newton covariances;
        logl: (k,) ln L (-1/2 chi^2, differences only); parameter: the index of the parameter held at each step;
        evaluations: exact evaluations spent.
    """

    theta: np.ndarray
    cov: np.ndarray
    logl: np.ndarray
    parameter: int
    evaluations: int

    @property
    def log_mass(self):
        """(k,) ln L + 1/2 ln det(cov): each point's Laplace mass, up to a shared constant."""
        return self.logl + 0.5 * np.array([np.linalg.slogdet(c)[1] for c in self.cov])


def widest_parameter(cov, lo, hi):
    """Index of the parameter that moves most along the widest direction of ``cov`` (ndim, ndim) measured in units
    of the box's widths hi - lo: the least constrained combination, and the one a Gaussian misdescribes first when
    the posterior bends."""
    width = np.asarray(hi, dtype=np.float64) - np.asarray(lo, dtype=np.float64)
    vals, vecs = np.linalg.eigh(cov / np.outer(width, width))
    return int(np.argmax(np.abs(vecs[:, -1])))


def _mahalanobis(delta, cov):
    """sqrt(delta^T cov^-1 delta) (pseudo-inverse: a Gauss-Newton covariance can be near singular)."""
    return float(math.sqrt(max(delta @ np.linalg.pinv(cov) @ delta, 0.0)))


def displaced_parameter(theta, other, lo, hi):
    """Index of the parameter in which two points (ndim,) differ most, in units of the box's widths hi - lo: where an
    approximate posterior (the emulator's best point) and the exact best fit disagree most is where the exact
    likelihood is flattest, so that an approximate model's small errors slide its answer along it."""
    return int(np.argmax(np.abs(np.asarray(theta) - np.asarray(other)) / (np.asarray(hi) - np.asarray(lo))))


def line_falls(residuals, theta, cov, lo, hi, parameter, reach, whole=False, top=None):
    """How far ln L (-1/2 |residuals|^2) falls below its value at ``theta`` at ``reach`` sigma both ways along a
    Gaussian's line for ``parameter`` (index): theta + s cov[:, i] / sqrt(cov[i, i]), the others at their conditional
    means, where the Gaussian (ndim, ndim) predicts a fall of s^2 / 2. The box [lo, hi] clips the line; a side that
    the box cuts to less than half the reach is skipped (nothing to learn there), or, with ``whole``, a side that it
    cuts at all (a Gaussian fitted to a sample the box truncates is narrower than the likelihood's own curvature).
    ``top``: ln L at ``theta`` when already known (float; not evaluated again), or None.
    Returns ([(s, fall), ...] for the sides probed (s signed, in sigma), evaluations)."""
    theta = np.asarray(theta, dtype=np.float64)
    i = int(parameter)
    if not cov[i, i] > 0:
        return [], 0  # the parameter leaves the residuals unchanged: no line to follow
    n = 0
    if top is None:
        top, n = -0.5 * float(np.sum(residuals(theta) ** 2)), 1
    line = np.asarray(cov)[:, i] / math.sqrt(cov[i, i])
    out = []
    for sign in (1.0, -1.0):
        free = theta + sign * reach * line
        y = np.clip(free, lo, hi)
        s = (y[i] - theta[i]) / line[i] if line[i] != 0 else 0.0
        if abs(s) < 0.5 * reach or (whole and np.any(y != free)):
            continue
        out.append((float(s), top + 0.5 * float(np.sum(residuals(y) ** 2))))
    return out, n + len(out)


def bends(residuals, theta, cov, lo, hi, parameter, reach=BEND_REACH, tolerance=BEND_TOLERANCE):
    """Whether the posterior leaves its Laplace Gaussian along ``parameter`` (index): :func:`line_falls` from the best
    fit ``theta`` at ``reach`` sigma both ways. A fall that differs from the prediction s^2 / 2 by more than
    ``tolerance`` x the prediction either way (a valley that bends away from the line, or a flatter one) says a
    single Gaussian misdescribes the posterior there; so does a Gaussian whose sigma along the parameter reaches past
    both of the box's bounds (no side left to probe): the data barely constrain it, and the posterior fills the box
    along a valley that the Gaussian's straight line does not follow (18-free mock 9: a faint disc's M/L held at 1.4,
    3, 6, 10, 15.7 and 20 of the box's 0.1-20 with the other 17 parameters refitted, ln L within 0.7, the disc's
    radius moving by 0.23 dex; the Laplace sigma 140). Returns (bool, the falls (list), evaluations)."""
    sides, n = line_falls(residuals, theta, cov, lo, hi, parameter, reach)
    falls = [round(f, 2) for _, f in sides]
    if not sides and cov[parameter, parameter] > 0:
        return True, falls, n  # the Gaussian outreaches both of the box's bounds: the box shapes the posterior there
    bent = any(not math.isfinite(f) or abs(f - 0.5 * s * s) > tolerance * 0.5 * s * s for s, f in sides)
    return bent, falls, n


def valley_side(residuals, theta, cov, lo, hi, parameter, top, sign, step=VALLEY_STEP, drop=VALLEY_DROP,
                points=VALLEY_POINTS, overlap=VALLEY_OVERLAP, max_evaluations=VALLEY_EVALUATIONS):
    """One way (``sign`` +1 or -1) of :func:`exact_valley`'s walk, holding ``parameter`` (index), stopping where the
    Laplace mass falls ``drop`` below ``top`` (the best fit's): (list of (point (ndim,), covariance (ndim, ndim),
    ln L), evaluations).

    Steps start at ``step`` local sigmas of the held parameter (``VALLEY_BOX_STEP`` of the box's width in it where
    that would cross the whole box) and shrink where the valley bends: a new point must
    lie within ``overlap`` (Mahalanobis, in the last point's covariance) of the last one, so that neighbouring
    Student-t components of :func:`valley_mixture` overlap; a step that lands beyond 1.5 x ``overlap`` is halved and
    retried (``VALLEY_FAR`` such steps in a row end the side), the next one is scaled by sqrt(overlap / distance)
    (by 1/2 to 2); a step past the drop is halved while longer than half a local sigma, so that the walk ends near
    where the mass has fallen by ``drop``."""
    i, found, n, far = int(parameter), [], 0, 0
    x, c = np.asarray(theta, dtype=np.float64), np.asarray(cov, dtype=np.float64)
    width = hi[i] - lo[i]

    def stride(var):
        """``step`` local sigmas, or VALLEY_BOX_STEP of the box where that would cross all of it."""
        return step * math.sqrt(var) if step * math.sqrt(var) <= width else VALLEY_BOX_STEP * width

    h, tries = stride(c[i, i]), 0
    while len(found) < int(points) and tries < 4 * int(points):
        tries += 1
        value = float(np.clip(x[i] + sign * h, lo[i], hi[i]))
        if value == x[i]:
            break  # at the box's bound
        sigma = np.sqrt(np.diag(c))
        # predictor: the others' conditional mean under the last point's Gaussian (the valley's tangent), corrected
        # by least squares
        guess = np.clip(x + (value - x[i]) * c[:, i] / c[i, i], lo, hi)
        rest, _, used = exact_laplace(lambda z, v=value: residuals(np.insert(z, i, v)), np.delete(guess, i),
                                      np.delete(sigma, i), np.delete(lo, i), np.delete(hi, i), max_evaluations)
        y = np.insert(rest, i, value)
        n += used
        distance = _mahalanobis(y - x, c)
        far = far + 1 if distance > 1.5 * overlap else 0
        if far >= VALLEY_FAR:
            break  # the refits leave the last point however short the step: no valley to follow from it
        if far:
            h *= 0.5  # the valley bends within this step: a shorter one
            continue
        logl, c_y, used_local = local_gaussian(residuals, y, sigma, lo, hi)
        n += used_local
        mass = logl + 0.5 * np.linalg.slogdet(c_y)[1]
        if not np.isfinite(mass) or mass < top - drop:
            if np.isfinite(mass) and abs(value - x[i]) > 0.5 * sigma[i]:
                h = 0.5 * abs(value - x[i])  # past the end in one stride: close in on it
                continue
            break
        found.append((y, c_y, logl))
        # the distance grows with the step's square where the valley bends: scale by the square root
        grow = min(max(math.sqrt(overlap / max(distance, 1e-12)), 0.5), 2.0)
        h = min(abs(value - x[i]) * grow, stride(c_y[i, i]))
        x, c = y, c_y
    return found, n


def exact_valley(residuals, theta, cov, lo, hi, parameters=None, map=map, **walk):
    """Walk the posterior's valleys both ways from the best fit ``theta`` (ndim,) of normalised ``residuals``
    (callable; picklable, :class:`ExactResiduals`, when ``map`` runs in other processes) with Laplace covariance
    ``cov`` within the box [lo, hi] (module docstring), holding each of ``parameters`` (indices; default
    [:func:`widest_parameter`]) in turn. ``map`` runs the walk's sides (:func:`valley_side`; ``walk`` its
    settings), e.g. a process pool's. Returns a list of :class:`Valley`, one per parameter (the best fit alone when
    no step stays above the drop)."""
    theta = np.asarray(theta, dtype=np.float64)
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    held = [widest_parameter(cov, lo, hi)] if parameters is None else [int(k) for k in parameters]
    logl0, _, n0 = local_gaussian(residuals, theta, np.sqrt(np.diag(cov)), lo, hi)
    top = logl0 + 0.5 * np.linalg.slogdet(cov)[1]
    # no walk from a best fit without a finite Laplace mass (nothing finite: a wall of constant residuals)
    jobs = [(i, sign) for i in held for sign in (1.0, -1.0)] if np.isfinite(top) else []
    sides = list(map(functools.partial(_side, residuals, theta, cov, lo, hi, top, walk), jobs))
    valleys = []
    sides = sides or [([], 0)] * (2 * len(held))
    for k, i in enumerate(held):
        found = [(theta, cov, logl0)] + sides[2 * k][0] + sides[2 * k + 1][0]
        order = np.argsort([t[i] for t, _, _ in found])
        valleys.append(Valley(np.array([found[j][0] for j in order]), np.array([found[j][1] for j in order]),
                              np.array([found[j][2] for j in order]), i,
                              sides[2 * k][1] + sides[2 * k + 1][1] + (n0 if k == 0 else 0)))
    return valleys


def _side(residuals, theta, cov, lo, hi, top, walk, job):
    """:func:`valley_side` for job = (parameter, sign): a module-level function, so that process pools can run it."""
    return valley_side(residuals, theta, cov, lo, hi, job[0], top, job[1], **walk)


def valley_mixture(valleys, lo, hi, widen, df=5.0):
    """The proposal along one or more :class:`Valley` walks from the same best fit: a
    :class:`galsr.proposals.StudentTMixture` of Student-t components at their points (each best fit once; scale
    matrices widened by ``widen`` in sigma), weighted by their Laplace masses."""
    from galsr.proposals import StudentT, StudentTMixture

    theta = np.concatenate([v.theta for v in valleys])
    cov = np.concatenate([v.cov for v in valleys])
    log_mass = np.concatenate([v.log_mass for v in valleys])
    _, first = np.unique(theta, axis=0, return_index=True)
    first = np.sort(first)
    if np.isfinite(log_mass[first]).any():
        first = first[np.isfinite(log_mass[first])]
    else:  # no finite likelihood or a singular covariance everywhere: the points, equally weighted
        log_mass = np.zeros(len(log_mass))
    floor = 1e-8 * (np.asarray(hi, dtype=np.float64) - np.asarray(lo, dtype=np.float64))
    components = [StudentT(theta[k], cov[k] * widen**2, df, floor) for k in first]
    return StudentTMixture(components, log_mass[first] - logsumexp(log_mass[first]))
